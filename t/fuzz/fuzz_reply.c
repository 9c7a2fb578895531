/*
 * The client's SMTP reply parser: the input is what a server sends, one
 * reply after another, cut into lines as lineio does.  Checks that a
 * complete reply has a code in 200..599, an enhanced status code that
 * belongs to it or none, and printable text.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "client/reply.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
check(const struct reply *r)
{
	const char *p;

	if (r->code < 200 || r->code > 599 ||
	    (r->status[0] != '\0' && !reply_status_fits(r->status, r->code)) ||
	    strlen(r->text) >= sizeof(r->text))
		__builtin_trap();
	for (p = r->text; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			__builtin_trap();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct reply_parser p;
	struct reply r;
	struct str lines;
	const char *s = (const char *)data, *nl;
	size_t i, e;
	int rc = 1;

	str_init(&lines, 2048);
	for (i = 0; i < size; i = e) {
		if (rc != 0) {
			str_clear(&lines);
			reply_init(&p, &r, &lines);
		}
		nl = memchr(s + i, '\n', size - i);
		e = nl != NULL ? (size_t)(nl - s) + 1 : size;
		if ((rc = reply_line(&p, s + i, e - i)) == 1)
			check(&r);
		else if (rc == -2)
			rc = 1;	/* not SMTP: the next line starts afresh */
		if (lines.len > lines.max)
			__builtin_trap();
	}
	str_free(&lines);
	return 0;
}
