/*
 * runner_int.h: what the queue runner's parts share -- the scheduler
 * (runner_sched.c: which message is due when), the delivery round
 * (runner_round.c: one pass over one message) and the delivery pool
 * (runner.c: worker threads, destinations, start and stop).  Not for use
 * outside the runner.
 */
#ifndef RUNNER_INT_H
#define RUNNER_INT_H

#include <sys/queue.h>

#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "agent.h"
#include "qstore.h"
#include "queueconf.h"
#include "runner.h"
#include "sched.h"
#include "spool.h"

#define DEST_MAX	300
#define KEY_MAX		(DEST_MAX + 16)
#define DEST_BUCKETS	4096
#define FIFO_LINE_MAX	128

/* One message's delivery round, shared by its jobs. */
struct round {
	struct runner		*r;
	struct sched_msg	*m;
	struct queue_conf	*qc;
	struct envelope		*env;
	struct qstore_state	*st;
	int			 fd;
	int			 jobs_left;
	int			 changed;	/* results recorded */
	pthread_mutex_t		 mu;	/* st, while jobs run */
};

/* A message's due recipients at one destination. */
struct job {
	struct round		*rd;
	const struct route	*route;
	char			 key[KEY_MAX];
	char			 dest[DEST_MAX];
	size_t			*ridx;	/* into rd->st->r */
	size_t			 n, cap;
	TAILQ_ENTRY(job)	 entry;		/* its destination's queue */
};
TAILQ_HEAD(job_list, job);

struct idle_sess;
TAILQ_HEAD(idle_list, idle_sess);

struct rdest {
	char		 key[KEY_MAX];
	char		 dest[DEST_MAX];
	struct job_list	 jobs;
	size_t		 njobs;
	unsigned int	 active, limit;
	struct idle_list idle;		/* sessions kept, newest first */
	unsigned int	 nidle;		/* ... and those being closed */
	int		 ready;
	TAILQ_ENTRY(rdest) rentry;	/* the ready list */
	struct rdest	*hnext;
};
TAILQ_HEAD(rdest_list, rdest);
TAILQ_HEAD(sched_list, sched_msg);

struct kick {
	char		 id[SPOOL_ID_LEN + 1];
	int		 force;		/* 0: only news of a new message */
	struct kick	*next;
};

struct runner {
	char		 spooldir[PATH_MAX];
	struct qstore	*qs;
	struct spool	*sp;		/* DSNs are queued through it */
	int		 lockfd, fifofd;
	int		 notifyfd;	/* inotify on queue/, -1 without */
	int		 dropwd;	/* its watch on maildrop/, or -1 */
	int		 wakep[2];
	int		 once;

	pthread_mutex_t	 mu;
	pthread_cond_t	 work_cv;
	pthread_cond_t	 done_cv;
	struct queue_conf *qc;
	int		 stopping;
	int		 once_done;

	struct sched	 q;		/* every message we know of */
	struct kick	*kicks;
	size_t		 nkicks;
	int		 kick_scan, kick_all, wake_sent;
	time_t		 sleep_until;	/* when the scheduler wakes by itself */

	struct rdest	*dtab[DEST_BUCKETS];
	struct rdest_list ready;	/* destinations a worker may take */
	struct sched_list load;		/* due, for workers to read */
	int		 busy_rounds;
	int		 max_rounds;	/* each holds its message file open */
	int		 throttled;	/* due messages wait for a free round */

	struct idle_list idle;		/* every session kept, oldest first */
	size_t		 nidle;

	pthread_t	 sched_thread;
	pthread_t	*workers;
	size_t		 nworkers;
	int		 sched_started;
};

/* runner_sched.c (runner lock held unless said) */
unsigned long	 runner_hash(const char *);
void		 sched_wakeup(struct runner *);
void		*sched_main(void *);

/* runner_round.c (runner lock not held) */
void		 round_load(struct runner *, struct sched_msg *);
void		 round_finish(struct round *);
void		 round_free(struct round *);
void		 round_job_free(struct job *);
void		 round_apply(struct round *, struct qstore_rcpt *,
		    const struct agent_result *, time_t);
int		 round_save(struct round *);

/* runner.c (runner lock held) */
struct rdest	*pool_dest_get(struct runner *, const struct job *);
void		 pool_dest_update(struct runner *, struct rdest *);
/* Forgets d once nobody uses it. */
void		 pool_dest_release(struct runner *, struct rdest *);

/* runner_cache.c: idle sessions (runner lock held unless said) */
void		 cache_init(struct runner *);
void		 cache_dest_init(struct rdest *);
/* d's most recently used idle session and its message count, or NULL. */
void		*cache_take(struct runner *, struct rdest *,
		    unsigned int *used);
/* Keeps sess for d's next message; -1 when it is not to be kept. */
int		 cache_put(struct runner *, struct rdest *,
		    const struct agent_ops *, void *sess, unsigned int used);
/* When the oldest idle session expires (monotonic ms), or -1. */
long long	 cache_next_expiry(const struct runner *);
/*
 * Moves those expired by now (all once stopping) into out; 1 if there
 * are any.
 */
int		 cache_take_expired(struct runner *, long long now,
		    struct idle_list *out);
/* Closes what cache_take_expired() took; runner lock not held. */
void		 cache_close(struct idle_list *);
/* Then forgets them, and their destinations if unused now. */
void		 cache_release(struct runner *, struct idle_list *);

#endif
