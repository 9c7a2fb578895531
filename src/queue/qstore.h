/*
 * qstore: what the queue keeps on disk beside smtpd's message files --
 * per-recipient delivery state, hold marks, quarantine of damaged files,
 * the one-runner lock and the runner's wake-up FIFO.
 *
 * Every change is atomic (write a temporary file, fsync, rename, fsync the
 * directory).  Changes to one message's state are made under an exclusive
 * flock(2) on its message file (qstore_lock), so smtpq and the runner never
 * interleave read-modify-write cycles.  Format: doc/smtpd-spool.5.
 */
#ifndef QSTORE_H
#define QSTORE_H

#include <sys/types.h>

#include <limits.h>
#include <stddef.h>
#include <time.h>

#include "lib/reply.h"

#define QSTORE_MTA_MAX		256
#define QSTORE_LOCK_WAIT	10	/* seconds to wait for a message lock */

enum qstore_rstate {
	QS_PENDING,		/* still to be delivered */
	QS_DELIVERED,		/* delivered here, or relayed with DSN passed on */
	QS_RELAYED,		/* handed to a host that does not do DSN */
	QS_FAILED,		/* permanently failed or expired */
};

enum qstore_dsn {
	QS_DSN_NONE,		/* nothing to report */
	QS_DSN_OWED,		/* a DSN must still be sent */
	QS_DSN_SENT,
};

struct qstore_rcpt {
	char		*mailbox;	/* where it is delivered (after aliases) */
	size_t		 orig;		/* index of the envelope's rcpt line */
	enum qstore_rstate state;
	enum qstore_dsn	 dsn;
	unsigned int	 attempts;
	time_t		 next;		/* earliest next attempt */
	time_t		 last;		/* last attempt, 0 = none */
	struct reply	 reply;		/* the last reply, code 0 = none */
	char		 mta[QSTORE_MTA_MAX];	/* remote MTA, "" = local */
};

struct qstore_state {
	int		    warned;	/* a delay warning was sent */
	struct qstore_rcpt *r;
	size_t		    n;
};

struct qstore;

/* How qstore_open treats a spool that is not all there. */
enum qstore_mode {
	QSTORE_READ,	/* dir/queue must exist; nothing is made */
	QSTORE_WRITE,	/* dir/queue must exist; state/, hold/, corrupt/ made */
	QSTORE_CREATE,	/* everything made as needed (the runner) */
};

/*
 * Opens the spool's queue at dir.  NULL with err (naming the path) and
 * errno, e.g. ENOENT when dir/queue does not exist and mode does not
 * allow to make it.
 */
struct qstore *qstore_open(const char *dir, enum qstore_mode mode,
	    char *err, size_t errlen);
void	qstore_close(struct qstore **);
const char *qstore_dir(const struct qstore *);

/* 1 if id looks like a queue id (SPOOL_ID_LEN chars of the alphabet). */
int	qstore_valid_id(const char *id);
/*
 * The ids in queue/, sorted (oldest first).  *ids is malloc'd, free with
 * qstore_free_ids.  0 or -1 (errno).
 */
int	qstore_list(struct qstore *, char (**ids)[32], size_t *n);
void	qstore_free_ids(char (**ids)[32]);

/* Opens queue/ID read-only.  fd, or -1 (errno ENOENT when it is gone). */
int	qstore_open_msg(struct qstore *, const char *id);
/*
 * Takes the message's exclusive lock on fd, waiting up to
 * QSTORE_LOCK_WAIT seconds.  0; 1 if the message has been removed in the
 * meantime (the lock is then released); -1 on error or timeout.
 */
int	qstore_lock(int fd);
void	qstore_unlock(int fd);

/*
 * Reads state/ID.  0 with *st; 1 when there is none yet (*st NULL);
 * -1 on an I/O error; -2 when the file is damaged (err says how).
 */
int	qstore_state_load(struct qstore *, const char *id,
	    struct qstore_state **st, char *err, size_t errlen);
/* Writes state/ID atomically; the caller holds the message lock.  0/-1. */
int	qstore_state_save(struct qstore *, const char *id,
	    const struct qstore_state *, char *err, size_t errlen);
/* Pure parser and writer of the state format. */
int	qstore_state_parse(const char *buf, size_t len,
	    struct qstore_state **st, char *err, size_t errlen);
int	qstore_state_format(const struct qstore_state *, char **out,
	    size_t *len);
struct qstore_state *qstore_state_new(void);
/* Appends a pending recipient.  0 or -1 (out of memory). */
int	qstore_state_add(struct qstore_state *, const char *mailbox,
	    size_t orig);
void	qstore_state_free(struct qstore_state **);
/* Moves a damaged state/ID aside to corrupt/ID.state.  0 or -1. */
int	qstore_state_discard(struct qstore *, const char *id);
const char *qstore_rstate_name(enum qstore_rstate);

/*
 * Removes a message whose delivery is over: queue/ID first (so a crash
 * can only leave a harmless state file), then state/ID and hold/ID.
 * The caller holds the message lock.  0 or -1.
 */
int	qstore_remove(struct qstore *, const char *id);
/* Moves a damaged queue/ID to corrupt/ID, keeping it for inspection. */
int	qstore_quarantine(struct qstore *, const char *id);

/* 1 if the message is on hold, 0 if not. */
int	qstore_held(struct qstore *, const char *id);
/*
 * Puts the message on hold (on = 1) or releases it.  0; 1 when there was
 * nothing to do (already held, or not held); -1 on error.
 */
int	qstore_set_hold(struct qstore *, const char *id, int on);

/*
 * Removes state/ and hold/ files whose message is gone (left by a crash
 * between the removal steps).
 */
void	qstore_clean_orphans(struct qstore *);

/*
 * The one-runner lock.  Returns an fd holding the lock (the runner keeps
 * it open), or -1: err says another runner (with its pid) holds it.
 */
int	qstore_runner_lock(struct qstore *, char *err, size_t errlen);
/* The pid of the running runner, 0 if none, -1 on error. */
long	qstore_runner_pid(struct qstore *);
/* The wake-up FIFO's path (the runner creates and reads it). */
const char *qstore_fifo_path(const struct qstore *);
/*
 * Writes one request line ("wake ID", "wake *", "scan") to the runner's
 * FIFO without blocking.  1 sent; 0 no runner is listening; -1 error.
 */
int	qstore_wake(struct qstore *, const char *line);

#endif
