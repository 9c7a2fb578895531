#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "str.h"

static int	str_reserve(struct str *, size_t);

void
str_init(struct str *s, size_t max)
{
	s->s = NULL;
	s->len = 0;
	s->cap = 0;
	s->max = max;
}

void
str_free(struct str *s)
{
	free(s->s);
	s->s = NULL;
	s->len = s->cap = 0;
}

void
str_clear(struct str *s)
{
	s->len = 0;
	if (s->s != NULL)
		s->s[0] = '\0';
}

/* Makes room for need more bytes plus the NUL. */
static int
str_reserve(struct str *s, size_t need)
{
	size_t ncap;
	char *p;

	if (need > s->max || s->len > s->max - need)
		return -1;
	if (s->len + need + 1 <= s->cap)
		return 0;
	ncap = s->cap ? s->cap : 64;
	while (ncap < s->len + need + 1)
		ncap *= 2;
	if (ncap > s->max + 1)
		ncap = s->max + 1;
	if ((p = realloc(s->s, ncap)) == NULL)
		return -1;
	s->s = p;
	s->cap = ncap;
	return 0;
}

int
str_append(struct str *s, const void *p, size_t n)
{
	if (str_reserve(s, n) == -1)
		return -1;
	if (n > 0)
		memcpy(s->s + s->len, p, n);
	s->len += n;
	s->s[s->len] = '\0';
	return 0;
}

int
str_appends(struct str *s, const char *p)
{
	return str_append(s, p, strlen(p));
}

int
str_appendc(struct str *s, int c)
{
	char ch = (char)c;

	return str_append(s, &ch, 1);
}

int
str_vappendf(struct str *s, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0 || str_reserve(s, (size_t)n) == -1)
		return -1;
	if (vsnprintf(s->s + s->len, (size_t)n + 1, fmt, ap) != n)
		return -1;
	s->len += (size_t)n;
	return 0;
}

int
str_appendf(struct str *s, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = str_vappendf(s, fmt, ap);
	va_end(ap);
	return r;
}

void
str_consume(struct str *s, size_t n)
{
	if (n >= s->len) {
		str_clear(s);
		return;
	}
	memmove(s->s, s->s + n, s->len - n);
	s->len -= n;
	s->s[s->len] = '\0';
}

const char *
str_cstr(const struct str *s)
{
	return s->s ? s->s : "";
}

size_t
str_lcpy(char *dst, const char *src, size_t size)
{
	size_t n = strlen(src);

	if (size > 0) {
		size_t c = n < size - 1 ? n : size - 1;
		memcpy(dst, src, c);
		dst[c] = '\0';
	}
	return n;
}

size_t
str_lcat(char *dst, const char *src, size_t size)
{
	size_t d = strnlen(dst, size);

	if (d == size)
		return d + strlen(src);
	return d + str_lcpy(dst + d, src, size - d);
}

void
str_printable(char *dst, size_t size, const char *src, size_t len)
{
	size_t o = 0, i;

	if (size == 0)
		return;
	for (i = 0; i < len && o + 1 < size; i++) {
		unsigned char c = (unsigned char)src[i];

		if (c >= 0x20 && c < 0x7f && c != '\\') {
			dst[o++] = (char)c;
		} else {
			if (o + 5 >= size)
				break;
			snprintf(dst + o, size - o, "\\x%02x", c);
			o += 4;
		}
	}
	dst[o] = '\0';
}

int
str_iprefix(const char *s, const char *prefix)
{
	return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

void
str_wipe(void *p, size_t n)
{
#ifdef HAVE_EXPLICIT_BZERO
	explicit_bzero(p, n);
#else
	volatile unsigned char *v = p;

	while (n-- > 0)
		*v++ = 0;
#endif
}

int
str_read_fd(struct str *s, int fd)
{
	char buf[16384];
	ssize_t n;
	int rc = 0;

	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n == 0 ? 0 : -1;
			break;
		}
		if (str_append(s, buf, (size_t)n) == -1) {
			rc = -2;
			break;
		}
	}
	str_wipe(buf, sizeof(buf));
	if (rc == -2)
		errno = EFBIG;
	return rc;
}

int
str_expand(struct str *s, const char *tmpl, const struct str_var *vars,
    size_t nvars)
{
	const char *p;
	size_t i;

	for (p = tmpl; *p != '\0'; p++) {
		if (*p != '%') {
			if (str_appendc(s, *p) == -1)
				return -1;
			continue;
		}
		if (*++p == '%') {
			if (str_appendc(s, '%') == -1)
				return -1;
			continue;
		}
		for (i = 0; i < nvars; i++)
			if (vars[i].key == *p)
				break;
		/* Unknown, or the template ends in '%'. */
		if (*p == '\0' || i == nvars ||
		    str_appends(s, vars[i].value) == -1)
			return -1;
	}
	return 0;
}

int
str_host_eq(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la > 0 && a[la - 1] == '.')
		la--;
	if (lb > 0 && b[lb - 1] == '.')
		lb--;
	return la == lb && strncasecmp(a, b, la) == 0;
}
