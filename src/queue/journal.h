/*
 * journal: the daemon's commit journal for small messages, with group
 * commit; spool.c's fast path.  A committed message is durable in the
 * journal at once and is written out as its queue file in the background;
 * what the last run left is replayed when the journal is opened.
 *
 * On-disk format: doc/smtpd-spool.5.
 */
#ifndef JOURNAL_H
#define JOURNAL_H

#include <stddef.h>

#include "lib/str.h"

#define JOURNAL_INLINE	(128 * 1024)	/* largest message journaled */

struct journal;

/* Told of each message once queue/ID exists. */
typedef void (*journal_published_fn)(void *arg, const char *id);

/*
 * Opens the journal of the spool at dir (queue/ must exist), replays
 * what is left in it and starts its threads.  Only one process may own
 * it.  NULL with a message in err.
 */
struct journal *journal_open(const char *dir, journal_published_fn, void *arg,
	    char *err, size_t errlen);
/*
 * For a daemon that keeps no journal (spool_durability = "files"): takes
 * the journal's lock, so that one daemon owns the spool either way, and
 * puts into queue/ what a journal of an earlier run left behind.  The
 * lock's descriptor, to be held until exit, or -1 with a message in err.
 */
int	journal_recover(const char *dir, char *err, size_t errlen);
/* Lets the threads finish what they hold, then stops them. */
void	journal_close(struct journal **);
/*
 * Makes data (the whole queue file of message id) durable; it becomes
 * queue/ID soon after.  Takes data over.  0, or -1 with errno: ENOSPC (or
 * another error of the disk) when it cannot be stored, ETIMEDOUT when the
 * journal did not take it in time.
 */
int	journal_commit(struct journal *, const char *id, struct str *data);

#endif
