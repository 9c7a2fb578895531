/*
 * throttle: slows down and then blocks AUTH guessing, per client address
 * and for the whole server.
 *
 * Per client: each AUTH attempt is counted when it begins
 * (throttle_reserve()), before any password is checked, so that parallel
 * sessions cannot have more passwords checked than the limit allows.  A
 * failure earns a delay before the 535 reply: delay_ms, then twice that,
 * four times, ... up to max_delay_ms.  The count is forgotten after
 * `window` seconds without an attempt, and cleared by a successful AUTH.
 * At max_failures the client is blocked for `block` seconds: the session
 * answers 421 4.7.0 and closes, and AUTH from that client gets the same
 * until the block ends; while max_failures attempts are still running, a
 * further one is refused the same way.  IPv6 clients are counted per /64,
 * since whoever has one address usually has the whole network;
 * IPv4-mapped IPv6 counts as IPv4; clients without an IP address share
 * one count.
 *
 * Globally: the networks (IPv4 /24, IPv6 /64) with a failure are counted
 * in fixed windows of global_window seconds, each network once however
 * many of its addresses fail.  As the count approaches global_failures
 * the delay grows linearly towards max_delay_ms for everyone; reaching it
 * blocks all AUTH for global_block seconds.  That stops a guessing
 * attack spread over many networks, at the price that such an attack
 * also locks out honest users for a while: set global_failures to 0 to
 * turn the global block off.  throttle_news() tells when the global
 * block starts and ends, for the log.
 *
 * Memory is fixed: table_size entries, the least recently seen one is
 * forgotten when a new one needs room.  All functions are thread-safe.
 * Times are seconds on a monotonic clock (throttle_now()); tests pass
 * their own.  With throttle_attach_file() the table lives in a file that
 * several processes share (stdio mode: one process per session).
 *
 * In the session, around each AUTH:
 *
 *	st = throttle_reserve(t, peer, throttle_now(), &left);
 *	THROTTLE_ERROR: 454 4.7.0; BLOCKED*: 421 4.7.0 and close;
 *	... the exchange ...
 *	SASL_OK:   if (throttle_success(t, peer, now)) treat as SASL_FAIL;
 *	SASL_FAIL: ms = throttle_fail(t, peer, throttle_now(), &blocked);
 *		   sleep ms (bounded by max_delay_ms); log user and peer;
 *		   blocked ? 421 4.7.0 and close : 535 5.7.8;
 *	otherwise: throttle_release(t, peer, now) (no password was judged).
 */
#ifndef THROTTLE_H
#define THROTTLE_H

#include <sys/socket.h>

#include <stddef.h>
#include <time.h>

/* Defaults; each has a config key under auth.throttle. */
#define THROTTLE_DEF_MAX_FAILURES	5
#define THROTTLE_DEF_WINDOW		600
#define THROTTLE_DEF_BLOCK		900
#define THROTTLE_DEF_DELAY_MS		1000
#define THROTTLE_DEF_MAX_DELAY_MS	10000
#define THROTTLE_DEF_GLOBAL_FAILURES	500
#define THROTTLE_DEF_GLOBAL_WINDOW	60
#define THROTTLE_DEF_GLOBAL_BLOCK	60
#define THROTTLE_DEF_TABLE_SIZE		4096
/* Limits for the values above. */
#define THROTTLE_MAX_SECONDS		86400
#define THROTTLE_MAX_DELAY		60000	/* ms */
#define THROTTLE_MIN_TABLE		16
#define THROTTLE_MAX_TABLE		1000000

struct throttle_conf {
	unsigned int	 max_failures;	/* per client, then block; 0: never */
	unsigned int	 window;	/* s without failure to forget them */
	unsigned int	 block;		/* s a client stays blocked */
	unsigned int	 delay_ms;	/* delay after the first failure */
	unsigned int	 max_delay_ms;	/* the delay never exceeds this */
	unsigned int	 global_failures; /* all clients; 0: no global block */
	unsigned int	 global_window;	/* s */
	unsigned int	 global_block;	/* s */
	unsigned int	 table_size;	/* clients remembered */
};

enum throttle_state {
	THROTTLE_OK = 0,
	THROTTLE_BLOCKED,		/* this client */
	THROTTLE_BLOCKED_GLOBAL,	/* everyone */
	THROTTLE_ERROR,			/* the state file failed */
};

enum throttle_news {
	THROTTLE_NEWS_NONE = 0,
	THROTTLE_NEWS_GLOBAL_START,	/* the global block began */
	THROTTLE_NEWS_GLOBAL_END,	/* it ended */
};

struct throttle;

void	throttle_conf_defaults(struct throttle_conf *);
/* 0, or -1 with the offending key named in err. */
int	throttle_conf_check(const struct throttle_conf *, char *err,
	    size_t errlen);
/* NULL with a message in err on a bad conf or no memory. */
struct throttle *throttle_new(const struct throttle_conf *, char *err,
	    size_t errlen);
/*
 * New limits for a running throttle (SIGHUP); the counts stay, the table
 * keeps its size.  0, or -1 with err (then nothing changed).
 */
int	throttle_configure(struct throttle *, const struct throttle_conf *,
	    char *err, size_t errlen);
void	throttle_free(struct throttle **);

/* Seconds on the monotonic clock, for the `now` arguments. */
time_t	throttle_now(void);

/*
 * Uses path as the table, shared with other processes through fcntl()
 * locks; created (mode 0600) if missing.  Refused unless a regular file
 * owned by root or us that the group and others may not write.  0, or
 * -1 with err; the throttle then answers THROTTLE_ERROR (refuse AUTH)
 * rather than count nothing.
 */
int	throttle_attach_file(struct throttle *, const char *path, char *err,
	    size_t errlen);

/*
 * Whether this client may try, without counting anything.  *left (may
 * be NULL) gets the seconds the block still lasts.
 */
enum throttle_state throttle_check(struct throttle *, const struct sockaddr *,
	    time_t now, unsigned int *left);
/*
 * Before an AUTH exchange: counts the attempt if the client may try
 * (THROTTLE_OK); else nothing is counted.  *left as for throttle_check().
 */
enum throttle_state throttle_reserve(struct throttle *,
	    const struct sockaddr *, time_t now, unsigned int *left);
/*
 * A failed AUTH (reserved or not).  Returns the delay in milliseconds to
 * wait before answering; *blocked (may be NULL) is set when the client or
 * everyone is blocked now: then answer 421 4.7.0 and close.
 */
unsigned int throttle_fail(struct throttle *, const struct sockaddr *,
	    time_t now, int *blocked);
/*
 * A successful AUTH: forgets the client's failures and returns 0, or
 * returns 1 when the client or everyone became blocked meanwhile; then
 * the success must be answered as a failure (throttle_fail()).
 */
int	throttle_success(struct throttle *, const struct sockaddr *,
	    time_t now);
/*
 * An exchange that judged no password (cancelled, malformed, a mechanism
 * the account cannot use): drops the reservation.  Returns the delay a
 * failure would wait now, for answers that must look like one.
 */
unsigned int throttle_release(struct throttle *, const struct sockaddr *,
	    time_t now);
/* What changed globally since the last call; *networks counted. */
enum throttle_news throttle_news(struct throttle *, unsigned int *networks);

/* The client's current failure count (for logs and tests). */
unsigned int throttle_failures(struct throttle *, const struct sockaddr *,
	    time_t now);
/* How many clients the table remembers now. */
size_t	throttle_clients(struct throttle *);

#endif
