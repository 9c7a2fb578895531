/*
 * sched: which queued message is due when.  A set of messages by id and a
 * heap by the time of each one's next attempt, the retry backoff and the
 * give-up after the queue lifetime.  The time comes from a clock the owner
 * gives it (the runner: the wall clock; tests: one they move by hand).
 *
 * Not locked: the owner serializes the calls (the runner holds its lock).
 */
#ifndef SCHED_H
#define SCHED_H

#include <sys/queue.h>

#include <stddef.h>
#include <time.h>

#include "queueconf.h"
#include "spool.h"

#define SCHED_NOHEAP	((size_t)-1)

struct sched_clock {
	time_t		(*now)(void *arg);
	unsigned int	(*random)(void *arg);	/* retry jitter */
	void		*arg;
};

struct sched_msg {
	char		 id[SPOOL_ID_LEN + 1];
	time_t		 due;
	size_t		 hidx;		/* place in the heap, SCHED_NOHEAP if none */
	int		 busy;		/* a delivery round is under way */
	int		 held;		/* on hold: out of the heap */
	int		 force;		/* try all pending recipients now */
	int		 wake;		/* woken while busy */
	struct sched_msg *hnext;
	TAILQ_ENTRY(sched_msg) lentry;	/* the owner's list of rounds to load */
};

struct sched {
	struct sched_clock clock;
	struct sched_msg **mtab;
	size_t		 msize, nmsgs;
	struct sched_msg **heap;
	size_t		 nheap, heapcap;
};

/* clock NULL: the wall clock and GnuTLS's random numbers.  0 or -1. */
int	sched_init(struct sched *, const struct sched_clock *clock);
/* Frees every message. */
void	sched_free(struct sched *);
time_t	sched_now(const struct sched *);

struct sched_msg *sched_find(struct sched *, const char *id);
/*
 * Adds id, due at due, to the set and the heap.  NULL when out of memory
 * (the next scan of queue/ finds it again).
 */
struct sched_msg *sched_add(struct sched *, const char *id, time_t due);
/* Removes m from the set and the heap and frees it. */
void	sched_forget(struct sched *, struct sched_msg *);
/*
 * Puts m (back) into the heap at m->due.  0, or -1 when the heap cannot
 * grow: the caller then forgets m.
 */
int	sched_push(struct sched *, struct sched_msg *);
/* Takes the earliest message out of the heap if it is due now, or NULL. */
struct sched_msg *sched_pop_due(struct sched *);
/* 1 and *due, the earliest due time in the heap; 0 when the heap is empty. */
int	sched_next_due(const struct sched *, time_t *due);
/*
 * Makes m due now (and forced); a message in a round is marked to be
 * looked at again when the round ends.  -1 when m could not go back into
 * the heap and was forgotten.
 */
int	sched_wake(struct sched *, struct sched_msg *);

/*
 * The wait before attempt attempts+1: queue.retry_min doubled for each
 * attempt after the first, at most queue.retry_max, +-25% of jitter.
 */
time_t	sched_backoff(const struct sched *, const struct queue_conf *,
	    unsigned int attempts);
/*
 * After a temporary failure of a message that arrived at arrival, at its
 * attempts-th attempt: 1 when it is to be given up (queue.lifetime has
 * passed), else 0 with *next, the time of the next attempt.
 */
int	sched_give_up(const struct sched *, const struct queue_conf *,
	    time_t arrival, unsigned int attempts, time_t *next);

#endif
