/*
 * MTA-STS policies as fetched over HTTPS, and _mta-sts TXT records: the
 * policy parser, the TXT id parser and the mx pattern match.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client/mtasts.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sts_policy *p;
	char err[128], id[STS_ID_MAX + 1], *s, *half;
	size_t i;

	if (size > STS_BODY_MAX || (p = malloc(sizeof(*p))) == NULL)
		return 0;
	if (sts_parse((const char *)data, size, p, err, sizeof(err)) == 0) {
		if (p->nmx > STS_MX_MAX || strlen(p->text) >= sizeof(p->text))
			__builtin_trap();
		for (i = 0; i < p->nmx; i++)
			(void)sts_mx_match(p, p->mx[i]);
	}
	free(p);
	/* The same bytes as a TXT record, and as pattern NUL host. */
	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (sts_txt_id(s, id, sizeof(id)) == 0 && strlen(id) > STS_ID_MAX)
		__builtin_trap();
	half = s + strlen(s);
	(void)sts_pattern_match(s, half < s + size ? half + 1 : half);
	free(s);
	return 0;
}
