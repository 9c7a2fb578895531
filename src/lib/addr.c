#include "config.h"

#include <arpa/inet.h>

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "addr.h"

static int	is_atext(unsigned char);
static size_t	parse_domain(const char *, size_t, int, int *, const char **);
static size_t	parse_literal(const char *, size_t, const char **);
static size_t	parse_local(const char *, size_t, int, int *, int *,
		    const char **);

/* RFC 5322 atext. */
static int
is_atext(unsigned char c)
{
	return isalnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

size_t
addr_utf8_seq(const unsigned char *s, size_t len)
{
	size_t n, i;
	unsigned int cp;

	if (len == 0)
		return 0;
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		cp = s[0] & 0x07;
	} else
		return 0;
	if (len < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates, beyond U+10FFFF. */
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return n;
}

/*
 * Local-part = Dot-string / Quoted-string.  Returns the bytes used, 0 on
 * a syntax error.
 */
static size_t
parse_local(const char *s, size_t len, int utf8_ok, int *quoted, int *utf8,
    const char **why)
{
	size_t i = 0, n;
	int atom_len = 0;

	if (len > 0 && s[0] == '"') {
		*quoted = 1;
		for (i = 1; i < len; i++) {
			unsigned char c = (unsigned char)s[i];

			if (c == '"')
				return i + 1;
			if (c == '\\') {
				if (i + 1 >= len || s[i + 1] < 32 ||
				    s[i + 1] > 126) {
					*why = "bad quoted pair";
					return 0;
				}
				i++;
				continue;
			}
			if (c >= 0x80) {
				if ((n = addr_utf8_seq((const unsigned char *)s + i,
				    len - i)) == 0) {
					*why = "invalid UTF-8";
					return 0;
				}
				*utf8 = 1;
				i += n - 1;
				continue;
			}
			if (c < 32 || c > 126) {
				*why = "control character in quoted string";
				return 0;
			}
		}
		*why = "unterminated quoted string";
		return 0;
	}
	while (i < len) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			if (atom_len == 0) {
				*why = "empty atom in local part";
				return 0;
			}
			atom_len = 0;
			i++;
			continue;
		}
		if (c >= 0x80) {
			if ((n = addr_utf8_seq((const unsigned char *)s + i,
			    len - i)) == 0) {
				*why = "invalid UTF-8";
				return 0;
			}
			*utf8 = 1;
			i += n;
			atom_len++;
			continue;
		}
		if (!is_atext(c))
			break;
		atom_len++;
		i++;
	}
	(void)utf8_ok;
	if (i == 0 || atom_len == 0) {
		*why = i == 0 ? "empty local part" : "local part ends with a dot";
		return 0;
	}
	return i;
}

/*
 * address-literal (RFC 5321 4.1.3): "[" IPv4 "]", "[IPv6:" IPv6 "]", or a
 * General-address-literal "[tag:content]".  Returns bytes used, 0 on error.
 */
static size_t
parse_literal(const char *s, size_t len, const char **why)
{
	char buf[ADDR_DOMAIN_MAX + 1];
	unsigned char bin[16];
	const char *colon;
	size_t i, n, t;

	for (i = 1; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == ']')
			break;
		/* dcontent: printable US-ASCII except [ \ ] */
		if (c < 33 || c > 126 || c == '[' || c == '\\') {
			*why = "bad address literal";
			return 0;
		}
	}
	n = i - 1;
	if (i >= len || n == 0 || n >= sizeof(buf)) {
		*why = "bad address literal";
		return 0;
	}
	memcpy(buf, s + 1, n);
	buf[n] = '\0';
	if (inet_pton(AF_INET, buf, bin) == 1)
		return i + 1;
	if ((colon = strchr(buf, ':')) == NULL) {
		*why = "bad IPv4 address literal";
		return 0;
	}
	t = (size_t)(colon - buf);
	if (t == 4 && strncasecmp(buf, "IPv6", 4) == 0) {
		if (inet_pton(AF_INET6, colon + 1, bin) != 1) {
			*why = "bad IPv6 address literal";
			return 0;
		}
		return i + 1;
	}
	/* Standardized-tag = Ldh-str, then 1*dcontent. */
	for (n = 0; n < t; n++)
		if (!isalnum((unsigned char)buf[n]) && buf[n] != '-')
			break;
	if (t == 0 || n != t || buf[t - 1] == '-' || colon[1] == '\0') {
		*why = "bad address literal";
		return 0;
	}
	return i + 1;
}

/*
 * Domain = sub-domain *("." sub-domain); sub-domain = Let-dig [Ldh-str].
 * A single trailing dot is tolerated.  Returns bytes used, 0 on error.
 */
static size_t
parse_domain(const char *s, size_t len, int utf8_ok, int *utf8,
    const char **why)
{
	size_t i = 0, label = 0, n;
	int last_hyphen = 0;

	while (i < len) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			if (label == 0 || last_hyphen) {
				*why = "bad domain";
				return 0;
			}
			label = 0;
			i++;
			continue;
		}
		if (c >= 0x80) {
			if ((n = addr_utf8_seq((const unsigned char *)s + i,
			    len - i)) == 0) {
				*why = "invalid UTF-8";
				return 0;
			}
			*utf8 = 1;
			i += n;
			label += n;
			last_hyphen = 0;
			continue;
		}
		if (c == '-') {
			if (label == 0) {
				*why = "bad domain";
				return 0;
			}
			last_hyphen = 1;
		} else if (isalnum(c)) {
			last_hyphen = 0;
		} else
			break;
		label++;
		i++;
		if (label > 63) {
			*why = "domain label too long";
			return 0;
		}
	}
	(void)utf8_ok;
	if (i == 0 || last_hyphen || (label == 0 && i == 1)) {
		*why = "bad domain";
		return 0;
	}
	return i;
}

int
addr_valid_domain(const char *s, size_t len, int utf8_ok)
{
	const char *why;
	int utf8 = 0;

	if (len == 0 || len > ADDR_DOMAIN_MAX)
		return 0;
	if (parse_domain(s, len, utf8_ok, &utf8, &why) != len)
		return 0;
	return utf8_ok || !utf8;
}

enum addr_error
addr_parse_path(const char *s, size_t len, int flags, struct addr *a,
    size_t *consumed, const char **why)
{
	const char *dummy;
	size_t i = 0, n, lstart, dstart, dlen, llen;
	int brackets = 1, utf8 = 0;

	if (why == NULL)
		why = &dummy;
	*why = "syntax error";
	memset(a, 0, sizeof(*a));
	if (len == 0 || s[0] != '<') {
		if (!(flags & ADDR_NOBRACKETS_OK) || len == 0)
			return ADDR_ESYNTAX;
		brackets = 0;
	} else
		i = 1;

	if (brackets && i < len && s[i] == '>') {
		if (!(flags & ADDR_NULL_OK)) {
			*why = "null path not allowed here";
			return ADDR_ESYNTAX;
		}
		a->is_null = 1;
		*consumed = i + 1;
		return ADDR_OK;
	}

	/* A-d-l ":" -- a source route, accepted and ignored (RFC 5321 C). */
	if (i < len && s[i] == '@') {
		for (;;) {
			if (i >= len || s[i] != '@') {
				*why = "bad source route";
				return ADDR_ESYNTAX;
			}
			i++;
			if (i < len && s[i] == '[')
				n = parse_literal(s + i, len - i, why);
			else
				n = parse_domain(s + i, len - i, 1, &utf8, why);
			if (n == 0)
				return ADDR_ESYNTAX;
			i += n;
			if (i < len && s[i] == ',') {
				i++;
				continue;
			}
			if (i < len && s[i] == ':') {
				i++;
				break;
			}
			*why = "bad source route";
			return ADDR_ESYNTAX;
		}
		a->routed = 1;
	}

	lstart = i;
	n = parse_local(s + i, len - i, flags & ADDR_UTF8_OK, &a->quoted,
	    &utf8, why);
	if (n == 0)
		return ADDR_ESYNTAX;
	i += n;
	llen = n;
	if (llen > ADDR_LOCAL_MAX) {
		*why = "local part too long";
		return ADDR_ETOOLONG;
	}

	if (i >= len || s[i] != '@') {
		/* RFC 5321 4.1.1.3: "<Postmaster>" needs no domain. */
		if ((flags & ADDR_POSTMASTER_OK) && !a->quoted &&
		    llen == 10 && strncasecmp(s + lstart, "postmaster", 10) == 0 &&
		    (!brackets || (i < len && s[i] == '>'))) {
			memcpy(a->mailbox, s + lstart, llen);
			a->mailbox[llen] = '\0';
			a->local_len = llen;
			*consumed = i + (brackets ? 1 : 0);
			return ADDR_OK;
		}
		*why = "address has no domain";
		return ADDR_ESYNTAX;
	}
	i++;
	dstart = i;
	if (i < len && s[i] == '[') {
		n = parse_literal(s + i, len - i, why);
		a->literal = 1;
	} else
		n = parse_domain(s + i, len - i, 1, &utf8, why);
	if (n == 0)
		return ADDR_ESYNTAX;
	i += n;
	dlen = n;
	if (brackets) {
		if (i >= len || s[i] != '>') {
			*why = "missing closing bracket";
			return ADDR_ESYNTAX;
		}
		i++;
	}
	/* A trailing dot on the domain names the same domain: drop it. */
	if (!a->literal && dlen > 1 && s[dstart + dlen - 1] == '.')
		dlen--;
	if (dlen > ADDR_DOMAIN_MAX || llen + 1 + dlen > ADDR_PATH_MAX) {
		*why = "address too long";
		return ADDR_ETOOLONG;
	}
	if (utf8 && !(flags & ADDR_UTF8_OK)) {
		*why = "non-ASCII address without SMTPUTF8";
		return ADDR_EUTF8;
	}
	memcpy(a->mailbox, s + lstart, llen);
	a->mailbox[llen] = '@';
	memcpy(a->mailbox + llen + 1, s + dstart, dlen);
	a->mailbox[llen + 1 + dlen] = '\0';
	a->local_len = llen;
	a->utf8 = utf8;
	*consumed = i;
	return ADDR_OK;
}

const char *
addr_domain(const struct addr *a)
{
	if (a->is_null || a->mailbox[a->local_len] != '@')
		return "";
	return a->mailbox + a->local_len + 1;
}

int
addr_domain_match(const char *pattern, const char *domain)
{
	size_t pl = strlen(pattern), dl = strlen(domain);

	if (strcmp(pattern, "*") == 0)
		return 1;
	if (pl > 1 && pattern[pl - 1] == '.')
		pl--;
	if (dl > 1 && domain[dl - 1] == '.')
		dl--;
	if (pl > 2 && pattern[0] == '*' && pattern[1] == '.') {
		/* The suffix with its dot: ".example.com" of "*.example.com". */
		pattern++;
		pl--;
		return dl > pl &&
		    strncasecmp(domain + dl - pl, pattern, pl) == 0;
	}
	return dl == pl && strncasecmp(domain, pattern, pl) == 0;
}

int
addr_valid_bare(const char *addr, int null_ok)
{
	char path[ADDR_PATH_MAX + 4];
	struct addr a;
	size_t used;
	int n;

	n = snprintf(path, sizeof(path), "<%s>", addr);
	if (n < 0 || (size_t)n >= sizeof(path))
		return 0;
	return addr_parse_path(path, (size_t)n, ADDR_UTF8_OK |
	    (null_ok ? ADDR_NULL_OK : ADDR_POSTMASTER_OK), &a, &used,
	    NULL) == ADDR_OK && used == (size_t)n;
}

int
addr_has_8bit(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return 1;
	return 0;
}
