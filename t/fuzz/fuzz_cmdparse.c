/* The SMTP command-line grammar: split, MAIL, RCPT and BDAT arguments. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/cmdparse.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mail_params mp;
	struct rcpt_params rp;
	unsigned long long n;
	struct addr a;
	struct cmd c;
	const char *why;
	char *line;
	int last;

	if (size > CMD_AUTH_LINE_MAX)
		return 0;
	if ((line = malloc(size + 1)) == NULL)
		return 0;
	memcpy(line, data, size);
	line[size] = '\0';
	if (cmd_split(line, size, &c) == 0) {
		(void)cmd_parse_mail(c.arg, &a, &mp, &why);
		(void)cmd_parse_rcpt(c.arg, 0, &a, &rp, &why);
		(void)cmd_parse_rcpt(c.arg, 1, &a, &rp, &why);
		(void)cmd_parse_bdat(c.arg, &n, &last);
	}
	free(line);
	return 0;
}
