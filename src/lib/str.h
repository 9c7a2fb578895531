/*
 * str: a growable byte string with a hard upper bound.
 *
 * Every str has a maximum size fixed at init; appends that would pass it
 * fail with -1 and leave the string unchanged, so untrusted input can never
 * grow memory without limit.  The buffer is always NUL-terminated.
 */
#ifndef STR_H
#define STR_H

#include <stdarg.h>
#include <stddef.h>

struct str {
	char	*s;	/* NUL-terminated contents, NULL until first append */
	size_t	 len;
	size_t	 cap;
	size_t	 max;	/* largest len allowed */
};

/* Starts an empty string that may hold at most max bytes. */
void	str_init(struct str *, size_t max);
/* Frees the buffer; the str may be reused after str_init. */
void	str_free(struct str *);
/* Empties the string, keeping its buffer. */
void	str_clear(struct str *);
/* 0 on success, -1 when the result would exceed max or memory ran out. */
int	str_append(struct str *, const void *, size_t);
int	str_appends(struct str *, const char *);
int	str_appendc(struct str *, int);
int	str_appendf(struct str *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
int	str_vappendf(struct str *, const char *, va_list)
	    __attribute__((format(printf, 2, 0)));
/* Drops len bytes from the front. */
void	str_consume(struct str *, size_t len);
/* Never NULL: "" for an empty string. */
const char *str_cstr(const struct str *);

/* strlcpy/strlcat semantics; return the length they tried to create. */
size_t	str_lcpy(char *dst, const char *src, size_t size);
size_t	str_lcat(char *dst, const char *src, size_t size);
/* Copies a bounded, printable rendering of untrusted bytes for logs. */
void	str_printable(char *dst, size_t size, const char *src, size_t len);
/* Case-insensitive prefix test. */
int	str_iprefix(const char *s, const char *prefix);
/* Wipes memory that held secrets. */
void	str_wipe(void *, size_t);

/*
 * Appends what fd has to its end.  0; -1 on a read error (errno); -2 when
 * s would pass its maximum (errno EFBIG; what fit is in s).  The bounce
 * buffer is wiped: fd may hold secrets.
 */
int	str_read_fd(struct str *, int fd);

/* One %-variable of a template: %key becomes value. */
struct str_var {
	char		 key;
	const char	*value;
};
/*
 * Appends template tmpl with each %key replaced by its value in vars and
 * %% by '%'.  0, or -1 on an unknown or missing key or when s would pass
 * its maximum.
 */
int	str_expand(struct str *, const char *tmpl, const struct str_var *vars,
	    size_t nvars);

/*
 * 1 when a and b name the same host: DNS names compare without regard to
 * case (RFC 4343), and a trailing dot (the root) changes nothing.
 */
int	str_host_eq(const char *a, const char *b);

#endif
