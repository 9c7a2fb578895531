#include "config.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
