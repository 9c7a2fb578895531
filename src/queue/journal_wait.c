/*
 * How a session waits for the journal to take its message: on a futex of
 * its own where there is one, else on a condition variable of its own;
 * and the monotonic clock the waits use.
 */
#include "config.h"

#ifdef __linux__
#include <sys/syscall.h>
#include <linux/futex.h>
#endif

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "journal_int.h"

/*
 * Tells a session how its commit ended: state 1 durable, -1 failed with
 * err.  With the futex, called unlocked, and w may be gone as soon as
 * state is stored: a wake-up at a stale address is at most a spurious one
 * for whoever waits there.  Else under j->mu.
 */
void
jwait_post(struct jwait *w, int state, int err)
{
	w->err = err;
	atomic_store_explicit(&w->state, state, memory_order_release);
	jwait_wake(w);
}

/* Wakes w's session; a stale w is harmless, as in jwait_post(). */
void
jwait_wake(struct jwait *w)
{
#ifdef JWAIT_FUTEX
	(void)syscall(SYS_futex, &w->state, FUTEX_WAKE_PRIVATE, 1, NULL,
	    NULL, 0);
#else
	pthread_cond_signal(&w->cv);
#endif
}

void
jwait_post_all(struct jwait **ws, int n, int state, int err)
{
	int i;

	for (i = 0; i < n; i++)
		jwait_post(ws[i], state, err);
}

/*
 * Waits until w is posted (or handed the lead) or the deadline
 * (CLOCK_MONOTONIC; NULL for none) passes.  With the futex, unlocked;
 * else under j->mu.  The state, 0 on timeout.
 */
int
jwait_wait(struct journal *j, struct jwait *w, const struct timespec *dl)
{
	int st;

#ifdef JWAIT_FUTEX
	(void)j;
	while ((st = atomic_load_explicit(&w->state,
	    memory_order_acquire)) == 0) {
		if (syscall(SYS_futex, &w->state, FUTEX_WAIT_BITSET_PRIVATE, 0,
		    dl, NULL, FUTEX_BITSET_MATCH_ANY) == -1 &&
		    errno == ETIMEDOUT)
			return atomic_load_explicit(&w->state,
			    memory_order_acquire);
	}
#else
	while ((st = atomic_load_explicit(&w->state,
	    memory_order_relaxed)) == 0) {
		if (dl == NULL)
			pthread_cond_wait(&w->cv, &j->mu);
		else if (pthread_cond_timedwait(&w->cv, &j->mu, dl) ==
		    ETIMEDOUT)
			return atomic_load_explicit(&w->state,
			    memory_order_relaxed);
	}
#endif
	return st;
}
