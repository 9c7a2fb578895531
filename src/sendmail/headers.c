/*
 * headers: what sendmail -t needs from the message header -- the
 * addresses of To, Cc and Bcc (RFC 5322 address lists: display names,
 * quoted strings, comments, groups), and the From: address that picks a
 * smarthost account.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client/convert.h"
#include "sendmail/sendmail.h"

#define FIELD_MAX	(256 * 1024)	/* one unfolded field */

/* What to do with each address of a list. */
struct collect {
	const char	 *domain;
	char		(*list)[SM_ADDR_MAX];
	size_t		  max, n;
	int		  first_only, failed;
};

static void	add_addr(struct collect *, const char *, size_t);
static void	parse_list(struct collect *, const char *, size_t);
static int	each_field(const char *, size_t, int (*)(const char *, size_t,
		    const char *, size_t, void *), void *);

/* One address (an addr-spec or the inside of <...>), comments removed. */
static void
add_addr(struct collect *c, const char *p, size_t len)
{
	char spec[SM_ADDR_MAX];
	size_t o = 0, i;
	int depth = 0, quoted = 0;

	if (c->failed || (c->first_only && c->n > 0))
		return;
	for (i = 0; i < len; i++) {
		if (quoted) {
			if (p[i] == '\\' && i + 1 < len) {
				if (o + 2 >= sizeof(spec))
					goto toolong;
				spec[o++] = p[i++];
			} else if (p[i] == '"')
				quoted = 0;
		} else if (depth > 0) {
			if (p[i] == '\\' && i + 1 < len)
				i++;
			else if (p[i] == '(')
				depth++;
			else if (p[i] == ')')
				depth--;
			continue;
		} else if (p[i] == '(') {
			depth = 1;
			continue;
		} else if (p[i] == '"')
			quoted = 1;
		else if (isspace((unsigned char)p[i]))
			continue;
		if (o + 1 >= sizeof(spec))
			goto toolong;
		spec[o++] = p[i];
	}
	spec[o] = '\0';
	if (o == 0)
		return;
	if (c->n == c->max) {
		c->failed = 1;
		return;
	}
	if (conv_envelope_addr(spec, c->domain, c->list[c->n],
	    sizeof(c->list[c->n])) == -1)
		goto toolong;
	if (c->list[c->n][0] != '\0')
		c->n++;
	return;
toolong:
	c->failed = 1;
}

/*
 * An address list: mailboxes separated by commas, "name <addr>" forms,
 * and groups "name: a, b;" whose members count (an empty group adds
 * nothing).
 */
static void
parse_list(struct collect *c, const char *v, size_t len)
{
	const char *start = v, *lt = NULL;
	size_t i;
	int depth = 0, quoted = 0, angle = 0;

	for (i = 0; i <= len && !c->failed; i++) {
		char ch = i < len ? v[i] : ',';

		if (quoted) {
			if (ch == '\\' && i + 1 < len)
				i++;
			else if (ch == '"')
				quoted = 0;
			continue;
		}
		if (depth > 0) {
			if (ch == '\\' && i + 1 < len)
				i++;
			else if (ch == '(')
				depth++;
			else if (ch == ')')
				depth--;
			continue;
		}
		switch (ch) {
		case '"':
			quoted = 1;
			break;
		case '(':
			depth = 1;
			break;
		case '<':
			angle = 1;
			lt = v + i + 1;
			break;
		case '>':
			if (angle && lt != NULL)
				add_addr(c, lt, (size_t)(v + i - lt));
			angle = 0;
			break;
		case ':':
			if (!angle)
				start = v + i + 1;	/* a group's name */
			break;
		case ',':
		case ';':
			if (angle)
				break;
			if (lt == NULL)
				add_addr(c, start, (size_t)(v + i - start));
			start = v + i + 1;
			lt = NULL;
			break;
		}
	}
}

/*
 * Calls fn(name, namelen, unfolded value, len, arg) for each header field
 * until the empty line; stops early when fn returns non-zero.
 */
static int
each_field(const char *msg, size_t len, int (*fn)(const char *, size_t,
    const char *, size_t, void *), void *arg)
{
	const char *p = msg, *end = msg + len, *nl, *colon;
	size_t vl, ll, nlen;
	char name[80], *val;
	int r = 0;

	if ((val = malloc(FIELD_MAX)) == NULL)
		return -1;
	/* A leading Unix "From " line is no field. */
	if (len >= 5 && memcmp(p, "From ", 5) == 0) {
		nl = memchr(p, '\n', len);
		p = nl != NULL ? nl + 1 : end;
	}
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		ll = (size_t)((nl != NULL ? nl : end) - p);
		if (ll > 0 && p[ll - 1] == '\r')
			ll--;
		if (ll == 0)
			break;		/* the end of the header */
		colon = memchr(p, ':', ll);
		if (colon == NULL || colon == p || isspace((unsigned char)*p))
			break;		/* the body starts here */
		nlen = (size_t)(colon - p);
		if (nlen >= sizeof(name))
			nlen = sizeof(name) - 1;
		memcpy(name, p, nlen);
		name[nlen] = '\0';
		vl = ll - (size_t)(colon + 1 - p);
		if (vl >= FIELD_MAX)
			vl = FIELD_MAX - 1;
		memcpy(val, colon + 1, vl);
		p = nl != NULL ? nl + 1 : end;
		/* Continuation lines. */
		while (p < end && (*p == ' ' || *p == '\t')) {
			nl = memchr(p, '\n', (size_t)(end - p));
			ll = (size_t)((nl != NULL ? nl : end) - p);
			if (ll > 0 && p[ll - 1] == '\r')
				ll--;
			if (vl + ll < FIELD_MAX) {
				memcpy(val + vl, p, ll);
				vl += ll;
			}
			p = nl != NULL ? nl + 1 : end;
		}
		val[vl] = '\0';
		if ((r = fn(name, nlen, val, vl, arg)) != 0)
			break;
	}
	free(val);
	return r;
}

struct rcpt_scan {
	struct collect	c;
	int		resent;		/* 1: Resent- fields seen; the pass */
	int		pass;
};

static int
rcpt_field(const char *name, size_t nlen, const char *v, size_t vl,
    void *arg)
{
	struct rcpt_scan *s = arg;
	int resent = nlen > 7 && strncasecmp(name, "Resent-", 7) == 0;
	const char *base = resent ? name + 7 : name;

	(void)nlen;
	if (strcasecmp(base, "To") != 0 && strcasecmp(base, "Cc") != 0 &&
	    strcasecmp(base, "Bcc") != 0)
		return 0;
	if (s->pass == 0) {
		if (resent)
			s->resent = 1;
		return 0;
	}
	if (resent == s->resent)
		parse_list(&s->c, v, vl);
	return s->c.failed;
}

int
sm_header_rcpts(const char *msg, size_t len, const char *domain,
    char (*list)[SM_ADDR_MAX], size_t max)
{
	struct rcpt_scan s;

	memset(&s, 0, sizeof(s));
	s.c.domain = domain;
	s.c.list = list;
	s.c.max = max;
	/* RFC 5322 3.6.6: a resent message goes to the Resent- ones. */
	(void)each_field(msg, len, rcpt_field, &s);
	s.pass = 1;
	(void)each_field(msg, len, rcpt_field, &s);
	return s.c.failed ? -1 : (int)s.c.n;
}

static int
from_field(const char *name, size_t nlen, const char *v, size_t vl,
    void *arg)
{
	(void)nlen;
	if (strcasecmp(name, "From") != 0)
		return 0;
	parse_list(arg, v, vl);
	return 1;
}

void
sm_header_from(const char *msg, size_t len, char *out, size_t outlen)
{
	char one[1][SM_ADDR_MAX];
	struct collect c;

	memset(&c, 0, sizeof(c));
	c.list = one;
	c.max = 1;
	c.first_only = 1;
	(void)each_field(msg, len, from_field, &c);
	if (c.n == 1 && !c.failed)
		str_lcpy(out, one[0], outlen);
	else if (outlen > 0)
		out[0] = '\0';
}
