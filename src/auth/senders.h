/*
 * senders: which envelope senders an authenticated login may use
 * (config auth.senders).  A mismatch is 553 5.7.1.
 *
 * The map gives each login a list of patterns:
 *
 *	"alice@example.org"	exactly this address (ASCII case ignored)
 *	"@example.org"		any address in this domain
 *	"*"			any sender at all
 *	"<>"			the null reverse-path (bounces)
 *
 * A login not in the map may use only its own name as sender, when the
 * login is itself an address.  Without a map (NULL) there is no rule:
 * every authenticated login may use every sender.
 *
 * Build the map with senders_add() for each (login, pattern), then call
 * senders_finish(); after that it is read-only and may be shared by
 * threads.
 */
#ifndef SENDERS_H
#define SENDERS_H

#include <stddef.h>

#define SENDERS_LOGIN_MAX	255
#define SENDERS_PATTERN_MAX	320	/* RFC 5321 4.5.3.1: 64 + 1 + 255 */
#define SENDERS_ENTRIES_MAX	100000	/* (login, pattern) pairs */

struct senders;
struct table;

/*
 * Takes the map from a table (auth.senders = "file:..."): login -> sender
 * patterns separated by commas or blanks.  m owns t from now on.
 */
void	senders_use_table(struct senders *m, struct table *t);

struct senders *senders_new(void);
/* 0, or -1 with err ("bad pattern ...", "too many entries"). */
int	senders_add(struct senders *, const char *login, const char *pattern,
	    char *err, size_t errlen);
/* Sorts the map for lookups.  0 or -1 (no memory). */
int	senders_finish(struct senders *);
void	senders_free(struct senders **);
size_t	senders_count(const struct senders *);

/*
 * The i-th (login, pattern) pair in login order (after senders_finish()),
 * for listing the map.  0, or -1 when i is out of range.
 */
int	senders_get(const struct senders *, size_t i, const char **login,
	    const char **pattern);

/*
 * 1 when login may use sender ("local@domain" without angle brackets,
 * "" for the null sender), else 0; -1 when the table cannot be read now.
 */
int	senders_allowed(const struct senders *, const char *login,
	    const char *sender);

#endif
