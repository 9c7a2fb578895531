/*
 * addr: RFC 5321 path parsing (with RFC 6531 SMTPUTF8 extensions).
 *
 * Pure: a byte range in, a struct out, no I/O and no global state.
 */
#ifndef ADDR_H
#define ADDR_H

#include <stddef.h>

#define ADDR_LOCAL_MAX	64	/* RFC 5321 4.5.3.1.1 */
#define ADDR_DOMAIN_MAX	255	/* RFC 5321 4.5.3.1.2 */
#define ADDR_PATH_MAX	256	/* RFC 5321 4.5.3.1.3 */

/* Flags for addr_parse_path(). */
#define ADDR_NULL_OK		0x01	/* "<>" is acceptable (reverse-path) */
#define ADDR_UTF8_OK		0x02	/* the client said SMTPUTF8 */
#define ADDR_POSTMASTER_OK	0x04	/* bare "<Postmaster>" (forward-path) */
#define ADDR_NOBRACKETS_OK	0x08	/* tolerate a path without <> */

enum addr_error {
	ADDR_OK = 0,
	ADDR_ESYNTAX = -1,	/* not an RFC 5321 path */
	ADDR_EUTF8 = -2,	/* non-ASCII without SMTPUTF8 */
	ADDR_ETOOLONG = -3,	/* a part longer than RFC 5321 allows */
};

struct addr {
	/* "local@domain" with the local part as sent; "" for "<>". */
	char	 mailbox[ADDR_PATH_MAX + 1];
	size_t	 local_len;	/* bytes before the '@' */
	int	 is_null;	/* "<>" */
	int	 utf8;		/* has non-ASCII bytes */
	int	 quoted;	/* the local part is a quoted string */
	int	 literal;	/* the domain is an [address literal] */
	int	 routed;	/* a source route was given (and dropped) */
};

/*
 * Parses a path at s (len bytes).  *consumed gets the bytes used, so the
 * caller can parse ESMTP parameters after it.  *why, when non-NULL, gets a
 * short English reason on failure.
 */
enum addr_error addr_parse_path(const char *s, size_t len, int flags,
	    struct addr *, size_t *consumed, const char **why);
/* Pointer to the domain part ("" for "<>" or a bare Postmaster). */
const char *addr_domain(const struct addr *);
/* 1 if the domain is syntactically valid (RFC 5321 Domain). */
int	addr_valid_domain(const char *s, size_t len, int utf8_ok);
/* Length of a valid UTF-8 sequence at s, 0 if invalid. */
size_t	addr_utf8_seq(const unsigned char *s, size_t len);
/*
 * 1 if domain matches pattern, ignoring case and a trailing dot on either:
 * "*" matches every domain, "*.example.com" the domains below
 * example.com but not example.com itself, anything else only itself.
 * ourdomains, routes and access rules all mean this.
 */
int	addr_domain_match(const char *pattern, const char *domain);
/*
 * 1 if addr, given without <> as on a command line, is a valid RFC 5321
 * path (UTF-8 allowed): the reverse-path "" too when null_ok, else a
 * forward-path (bare Postmaster allowed).
 */
int	addr_valid_bare(const char *addr, int null_ok);
/* 1 if s has a byte above 0x7f (it needs SMTPUTF8 or 8BITMIME). */
int	addr_has_8bit(const char *s);

#endif
