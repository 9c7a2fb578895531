/*
 * smtp's message conversion (smtp -f): the input is the message as smtp
 * reads it, after one byte that picks the options.  Checks that every
 * line of the result ends in CRLF and that converting the result again
 * changes nothing.  The same bytes also go through the envelope address,
 * address field and "From " date parsers.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client/convert.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define OUT_MAX	(64 * 1024)

static void
check_crlf(const struct str *s)
{
	size_t i;

	if (s->len > 0 && (s->len < 2 || s->s[s->len - 1] != '\n'))
		__builtin_trap();
	for (i = 0; i < s->len; i++)
		if ((s->s[i] == '\n' && (i == 0 || s->s[i - 1] != '\r')) ||
		    (s->s[i] == '\r' && (i + 1 == s->len ||
		    s->s[i + 1] != '\n')))
			__builtin_trap();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conv_opts o;
	struct conv_info info, again;
	struct str out, out2;
	char *s, addr[512];
	time_t t;

	if (size == 0 || size > OUT_MAX / 4)
		return 0;
	memset(&o, 0, sizeof(o));
	o.sender = data[0] & 1 ? "" : "user@example.org";
	o.domain = data[0] & 2 ? NULL : "example.org";
	o.now = 1700000000;
	o.msgid_local = "20231114.abc";
	o.fullname = data[0] & 4 ? "A \"quoted\" User" : NULL;
	data++;
	size--;

	str_init(&out, OUT_MAX);
	str_init(&out2, OUT_MAX);
	if (conv_message((const char *)data, size, &o, &out, &info) == 0) {
		check_crlf(&out);
		if (conv_message(out.s != NULL ? out.s : "", out.len, &o,
		    &out2, &again) != 0 || out2.len != out.len ||
		    (out.len > 0 && memcmp(out.s, out2.s, out.len) != 0) ||
		    again.added_from || again.added_date ||
		    again.added_msgid || again.removed_bcc)
			__builtin_trap();
	}
	str_free(&out);
	str_free(&out2);

	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (conv_envelope_addr(s, o.domain, addr, sizeof(addr)) == 0 &&
	    strlen(addr) >= sizeof(addr))
		__builtin_trap();
	str_init(&out, OUT_MAX);
	(void)conv_addr_field(s, size, o.domain, &out);
	str_free(&out);
	(void)conv_from_line_date(s, size, &t);
	free(s);
	return 0;
}
