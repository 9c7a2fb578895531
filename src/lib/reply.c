/*
 * reply: one SMTP reply with bounded fields; see reply.h for the rules.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "reply.h"

static int	digits(const char **, char);
static size_t	utf8_cut(const char *, size_t);

void
reply_clear(struct reply *r)
{
	r->code = 0;
	r->status[0] = '\0';
	r->text[0] = '\0';
}

/* Skips 1 to 3 digits then the terminator end; 0 when that is not there. */
static int
digits(const char **pp, char end)
{
	const char *p = *pp;
	int n = 0;

	while (*p >= '0' && *p <= '9' && n < 4) {
		p++;
		n++;
	}
	if (n < 1 || n > 3 || *p != end)
		return 0;
	*pp = p + (end != '\0');
	return 1;
}

int
reply_status_valid(const char *status)
{
	const char *p = status;

	if (p == NULL || (p[0] != '2' && p[0] != '4' && p[0] != '5') ||
	    p[1] != '.')
		return 0;
	p += 2;
	return digits(&p, '.') && digits(&p, '\0');
}

int
reply_status_fits(const char *status, int code)
{
	return code >= 200 && code <= 599 && reply_status_valid(status) &&
	    status[0] == '0' + code / 100;
}

const char *
reply_status_default(int code)
{
	switch (code / 100) {
	case 2:
		return "2.0.0";
	case 4:
		return "4.0.0";
	case 5:
		return "5.0.0";
	default:
		return "";
	}
}

int
reply_set_status(struct reply *r, const char *status)
{
	if (status == NULL || *status == '\0') {
		r->status[0] = '\0';
		return 0;
	}
	if (!reply_status_fits(status, r->code)) {
		/* Never a cut or foreign code: the class's own default. */
		(void)snprintf(r->status, sizeof(r->status), "%s",
		    reply_status_default(r->code));
		return -1;
	}
	(void)snprintf(r->status, sizeof(r->status), "%s", status);
	return 0;
}

/*
 * The largest length <= n at which s may be cut without splitting a UTF-8
 * sequence (s holds at least n + 1 bytes).  Bytes that are not UTF-8 are
 * taken one by one.
 */
static size_t
utf8_cut(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = n, lead;
	size_t need;

	/* Back over continuation bytes to the sequence that holds s[n]. */
	while (i > 0 && n - i < 3 && (u[i] & 0xc0) == 0x80)
		i--;
	if ((u[i] & 0xc0) == 0x80)
		return n;	/* not UTF-8 here: any place will do */
	lead = i;
	if (u[lead] >= 0xf0)
		need = 4;
	else if (u[lead] >= 0xe0)
		need = 3;
	else if (u[lead] >= 0xc0)
		need = 2;
	else
		need = 1;
	/* s[n] starts a character, or the sequence would end past n. */
	if (lead == n || lead + need > n)
		return lead;
	return n;
}

size_t
reply_text_cpy(char *dst, const char *src, size_t dstlen)
{
	size_t len = strlen(src), n;

	if (dstlen == 0)
		return len;
	n = len;
	if (n >= dstlen)
		n = utf8_cut(src, dstlen - 1);
	memcpy(dst, src, n);
	dst[n] = '\0';
	return len;
}

int
reply_set_text(struct reply *r, const char *s, size_t len)
{
	size_t n = len;

	if (memchr(s, '\0', len) != NULL)
		n = strlen(s);
	if (n >= sizeof(r->text)) {
		n = utf8_cut(s, sizeof(r->text) - 1);
		memcpy(r->text, s, n);
		r->text[n] = '\0';
		return -1;
	}
	memcpy(r->text, s, n);
	r->text[n] = '\0';
	return 0;
}

int
reply_vset(struct reply *r, int code, const char *status, const char *fmt,
    va_list ap)
{
	char buf[REPLY_TEXT_MAX * 2];
	int n, rc = 0;

	if (code != 0 && (code < 200 || code > 599)) {
		reply_clear(r);
		return -1;
	}
	r->code = code;
	if (reply_set_status(r, status) == -1)
		rc = -1;
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	if (n < 0)
		buf[0] = '\0';
	else if ((size_t)n >= sizeof(buf))
		rc = -1;
	if (reply_set_text(r, buf, strlen(buf)) == -1)
		rc = -1;
	return rc;
}

int
reply_set(struct reply *r, int code, const char *status, const char *fmt,
    ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = reply_vset(r, code, status, fmt, ap);
	va_end(ap);
	return rc;
}

enum reply_class
reply_class(int code)
{
	switch (code >= 200 && code <= 599 ? code / 100 : 0) {
	case 2:
		return REPLY_POSITIVE;
	case 3:
		return REPLY_INTERMEDIATE;
	case 4:
		return REPLY_TEMPORARY;
	case 5:
		return REPLY_PERMANENT;
	default:
		return REPLY_NONE;
	}
}

int
reply_temporary(const struct reply *r)
{
	return reply_class(r->code) == REPLY_TEMPORARY;
}

int
reply_permanent(const struct reply *r)
{
	return reply_class(r->code) == REPLY_PERMANENT;
}

int
reply_format(const struct reply *r, struct str *out)
{
	const char *p = r->text, *nl;
	size_t start = out->len;
	int last;

	if (r->code < 200 || r->code > 599)
		return -1;
	do {
		nl = strchr(p, '\n');
		last = nl == NULL;
		if (last)
			nl = p + strlen(p);
		if (str_appendf(out, "%d%c%s%s%.*s\r\n", r->code,
		    last ? ' ' : '-', r->status, r->status[0] ? " " : "",
		    (int)(nl - p), p) == -1) {
			out->len = start;
			if (out->s != NULL)
				out->s[start] = '\0';
			return -1;
		}
		p = nl + 1;
	} while (!last);
	return 0;
}
