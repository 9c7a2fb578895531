/*
 * runner: the queue runner -- scheduler, retries, expiry, DSNs.
 *
 * One runner per spool (an flock on spool/runner.lock).  It runs inside
 * smtpd (threads, started by main) or alone as "smtpq run".  A scheduler
 * thread keeps every queued message in a heap ordered by its next attempt;
 * when a message is due it reads the envelope and per-recipient state,
 * groups the due recipients by destination and queues one job per group.
 * A pool of queue.concurrency worker threads takes jobs, at most
 * queue.destination_concurrency (or the route's concurrency) per
 * destination, and delivers several messages to one destination over one
 * agent session.  Results are written to state/ID atomically; a message
 * leaves the queue when every recipient is final and every DSN is queued.
 *
 * It learns of new messages from runner_kick() (smtpd: install
 * runner_spool_hook on its spool), from lines written to
 * spool/runner.fifo by smtpq, and from a periodic scan of queue/.
 */
#ifndef RUNNER_H
#define RUNNER_H

#include <stddef.h>

#include "queueconf.h"

#define RUNNER_STACK_SIZE	(256 * 1024)
#define RUNNER_KICKS_MAX	10000	/* pending wake-ups kept one by one */
#define RUNNER_ROUNDS_MAX	10000	/* messages in delivery at once */

struct runner;

/*
 * Takes the spool's runner lock and starts the threads.  The runner keeps
 * its own reference to qc.  NULL with err when another runner holds the
 * lock or the spool cannot be used.  Signals are blocked in its threads.
 */
struct runner *runner_start(const char *spooldir, struct queue_conf *qc,
	    char *err, size_t errlen);
/*
 * Stops the runner: no new deliveries start; delivery programs still
 * running are stopped (their recipients stay pending, to be tried again by
 * the next runner); other deliveries under way finish, each bounded by its
 * agent's timeouts.  Frees *rp.
 */
void	runner_stop(struct runner **rp);
/*
 * Makes message id due now whatever its schedule (smtpq flush, release);
 * NULL: look for new messages in queue/.  Cheap and safe from any thread.
 */
void	runner_kick(struct runner *, const char *id);
/*
 * For spool_set_hook(sp, runner_spool_hook, runner): news of a new
 * message, which is tried at once unless the runner knows it already
 * (inotify may have reported it first).
 */
void	runner_spool_hook(void *runner, const char *id);
/* Uses qc for deliveries that start from now on (SIGHUP). */
void	runner_reconfigure(struct runner *, struct queue_conf *qc);

/*
 * One pass, for cron-style use (smtpq run -o): delivers every message
 * that is due now (and the DSNs that produces), waits for the deliveries
 * to finish and returns.  0, or -1 with err (as runner_start).
 */
int	runner_run_once(const char *spooldir, struct queue_conf *qc,
	    char *err, size_t errlen);

#endif
