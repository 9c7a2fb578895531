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

#include <sys/types.h>

#include <stddef.h>
#include <time.h>

#include "envelope.h"

#define SPOOL_ID_LEN	16	/* characters in a queue id */

struct spool;
struct spool_msg;
struct str;

/* Called after each successful commit with the new queue id. */
typedef void (*spool_hook_fn)(void *arg, const char *id);

/* spool_open() flags. */
#define SPOOL_JOURNAL	0x01	/* this process owns the journal (the daemon) */
#define SPOOL_FILES	0x02	/* the daemon, keeping no journal */

/*
 * Opens (creating as needed) the spool at dir and removes temporary files
 * left by a crash.  With SPOOL_JOURNAL, small messages are committed
 * through an append-only journal with group commit, replayed at start-up;
 * only one process may own it.  With SPOOL_FILES, every message is
 * committed as its own file (spool_files.h), and what a journal left
 * behind is replayed; the journal's lock is held all the same.  NULL
 * with a message in err.
 */
struct spool *spool_open(const char *dir, int flags, char *err, size_t errlen);
void	spool_close(struct spool **);
const char *spool_dir(const struct spool *);
/*
 * Installs fn to be called, once queue/ID exists, for every message
 * committed through this handle, e.g. to wake the queue runner:
 * spool_set_hook(sp, runner_spool_hook, runner).  It runs in the
 * committing thread, or in the journal's writer thread for journaled
 * messages, and must not call back into this spool handle's commit.
 */
void	spool_set_hook(struct spool *, spool_hook_fn fn, void *arg);

/*
 * Starts a message with its envelope (its id is the new queue id, not
 * env's).  NULL with errno set; EINVAL, logged with the reason, for an
 * envelope envelope_format() refuses.
 */
struct spool_msg *spool_begin(struct spool *, const struct envelope *env);
/*
 * Starts the message that is to take old's place: the same queue id, a
 * new envelope, content written with spool_write; the caller then
 * spool_abort()s old and commits this one.  NULL with errno set.
 */
struct spool_msg *spool_begin_replacement(struct spool_msg *old,
	    const struct envelope *);
/* Reads the message written so far (no envelope) at off: bytes, 0, -1. */
ssize_t	spool_msg_pread(struct spool_msg *, void *, size_t, off_t);
/* Appends the envelope as written (with its empty line) to out.  0, -1. */
int	spool_msg_envelope(struct spool_msg *, struct str *out);
/*
 * A temporary file without a name beside the spool's messages (for data
 * too large for memory); gone when closed.  The descriptor, or -1.
 */
int	spool_tmpfile(struct spool_msg *);
/* The queue id the message will have. */
const char *spool_msg_id(const struct spool_msg *);
/* Appends message bytes.  0 or -1 (errno set; the message is then unusable). */
int	spool_write(struct spool_msg *, const void *, size_t);
/*
 * Puts bytes in front of the message written so far (just after the
 * envelope): header fields that can only be made once the whole message
 * is known, such as a DKIM-Signature.  A message still in memory moves
 * its bytes; one already in its file is copied once into a new file.
 * 0 or -1 (errno set; the message is then unusable).
 */
int	spool_insert(struct spool_msg *, const void *, size_t);
/*
 * Marks the message to be queued on hold (smtpq release lets it go): the
 * mark is made before the message enters the queue, so no delivery can
 * start first.  0 or -1.
 */
int	spool_hold(struct spool_msg *);
/*
 * Makes the message durable and part of the queue.  0: it is queued;
 * -1: it is not (errno says why) and nothing of it is left.  Frees *mp.
 */
int	spool_commit(struct spool_msg **mp);
/*
 * A new descriptor reading the message written so far (without the
 * envelope), for handing it to a program.  -1 with errno set.
 */
int	spool_msg_read_fd(struct spool_msg *);
/* Throws the message away.  Frees *mp. */
void	spool_abort(struct spool_msg **mp);
/*
 * Keeps a refused message for the postmaster instead: its first max bytes
 * (envelope and message, as in the queue) go to dir/YYYYMMDD/ID, not
 * flushed to disk.  The message is then thrown away.  0 or -1; *mp freed
 * either way.  path gets the file's name.
 */
int	spool_save(struct spool_msg **mp, const char *dir, size_t max,
	    char *path, size_t pathlen);

/* Makes a fresh queue id (SPOOL_ID_LEN chars + NUL). */
void	spool_new_id(char *buf);

#endif
