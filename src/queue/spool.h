/*
 * spool: the durable queue of accepted messages.
 *
 * A message is written while it arrives and becomes part of the queue only
 * in spool_commit(), which returns once the message and its envelope are on
 * stable storage.  A crash at any moment leaves either no message or a whole
 * one.  Commits from many threads share their flushes (group commit), so
 * callers just call spool_commit() and wait.
 *
 * On-disk format: doc/smtpd-spool.5.
 */
#ifndef SPOOL_H
#define SPOOL_H

#include <stddef.h>
#include <time.h>

#define SPOOL_ID_LEN	16	/* characters in a queue id */

struct spool;
struct spool_msg;

/* Called after each successful commit with the new queue id. */
typedef void (*spool_hook_fn)(void *arg, const char *id);

struct spool_envelope {
	const char	 *sender;	/* mailbox, "" for the null sender */
	const char	**rcpts;
	size_t		  nrcpts;
	const char	 *helo;		/* what the client said, may be NULL */
	const char	 *peer_addr;	/* numeric address, may be NULL */
	const char	 *peer_name;	/* verified reverse name, may be NULL */
	const char	 *protocol;	/* "ESMTP", ... */
	const char	 *body;		/* "7BIT", "8BITMIME" or NULL */
	int		  smtputf8;
	time_t		  arrival;
};

/*
 * Opens (creating as needed) the spool at dir and removes temporary files
 * left by a crash.  NULL with a message in err.
 */
struct spool *spool_open(const char *dir, char *err, size_t errlen);
void	spool_close(struct spool **);
const char *spool_dir(const struct spool *);
/*
 * Installs fn to be called (in the committing thread, after the message is
 * durable) for every message committed through this handle, e.g. to wake
 * the queue runner: spool_set_hook(sp, runner_spool_hook, runner).
 * fn must not call back into this spool handle's commit.
 */
void	spool_set_hook(struct spool *, spool_hook_fn fn, void *arg);

/* Starts a message with its envelope; NULL with errno set. */
struct spool_msg *spool_begin(struct spool *, const struct spool_envelope *);
/* The queue id the message will have. */
const char *spool_msg_id(const struct spool_msg *);
/* Appends message bytes.  0 or -1 (errno set; the message is then unusable). */
int	spool_write(struct spool_msg *, const void *, size_t);
/*
 * Makes the message durable and part of the queue.  0: it is queued;
 * -1: it is not (errno says why) and nothing of it is left.  Frees *mp.
 */
int	spool_commit(struct spool_msg **mp);
/* Throws the message away.  Frees *mp. */
void	spool_abort(struct spool_msg **mp);

/* Makes a fresh queue id (SPOOL_ID_LEN chars + NUL). */
void	spool_new_id(char *buf);

#endif
