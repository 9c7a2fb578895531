/* reply: the client's parser of SMTP replies (see reply.h). */
#include "config.h"

#include <ctype.h>
#include <string.h>

#include "reply.h"

/* "2.1.5" at the start of a reply's text, if it matches the code. */
static void
parse_status(const char *t, size_t n, int code, char *out, size_t outlen)
{
	size_t i = 0, part, digits;

	out[0] = '\0';
	if (n < 5 || t[0] != '0' + code / 100 || t[1] != '.')
		return;
	i = 2;
	for (part = 0; part < 2; part++) {
		for (digits = 0; i < n && isdigit((unsigned char)t[i]) &&
		    digits < 3; digits++)
			i++;
		if (digits == 0)
			return;
		if (part == 0) {
			if (i >= n || t[i] != '.')
				return;
			i++;
		}
	}
	if (i < n && t[i] != ' ')
		return;
	if (i < outlen) {
		memcpy(out, t, i);
		out[i] = '\0';
	}
}

void
reply_init(struct reply_parser *p, struct reply *r, struct str *lines)
{
	p->r = r;
	p->lines = lines;
	p->jlen = 0;
	p->n = 0;
	r->code = 0;
	r->status[0] = '\0';
	r->text[0] = '\0';
}

int
reply_line(struct reply_parser *p, const char *line, size_t len)
{
	struct reply *r = p->r;
	size_t tlen;
	int code;

	if (p->n >= CLIENT_REPLY_LINES)
		return -2;
	while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	if (len < 3 || !isdigit((unsigned char)line[0]) ||
	    !isdigit((unsigned char)line[1]) ||
	    !isdigit((unsigned char)line[2]) ||
	    (len > 3 && line[3] != ' ' && line[3] != '-'))
		return -2;
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	if (code < 200 || code > 599 || (p->n > 0 && code != r->code))
		return -2;
	r->code = code;
	tlen = len > 4 ? len - 4 : 0;
	if (p->n == 0)
		parse_status(line + len - tlen, tlen, code, r->status,
		    sizeof(r->status));
	if (p->lines != NULL && (str_append(p->lines, line + len - tlen,
	    tlen) == -1 || str_appendc(p->lines, '\n') == -1))
		return -2;
	if (p->jlen + 1 < sizeof(p->joined)) {
		if (p->n > 0)
			p->joined[p->jlen++] = ' ';
		if (tlen > sizeof(p->joined) - 1 - p->jlen)
			tlen = sizeof(p->joined) - 1 - p->jlen;
		memcpy(p->joined + p->jlen, line + len - tlen, tlen);
		p->jlen += tlen;
	}
	p->n++;
	if (len <= 3 || line[3] == ' ') {
		str_printable(r->text, sizeof(r->text), p->joined, p->jlen);
		return 1;
	}
	return 0;
}
