/*
 * The runner's delivery pool: worker threads take due messages to read
 * and jobs to deliver, at most a destination's concurrency at a time, and
 * deliver several messages to one destination over one agent session.
 * Also the runner's start and stop.
 */
#include "config.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#ifdef HAVE_SYS_INOTIFY_H
#include <sys/inotify.h>
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/net.h"
#include "lib/str.h"
#include "agent.h"
#include "maildrop.h"
#include "qstore.h"
#include "runner.h"
#include "runner_int.h"
#include "spool.h"

static struct job	*dest_pop(struct rdest *);
static int		 run_job(const struct agent_ops *, void *,
			    struct job *);
static void		 fail_job(struct job *, const struct agent_result *);
static void		 job_done(struct job *, struct agent_rcpt *);
static void		*worker_main(void *);
static struct runner	*runner_new(const char *, struct queue_conf *, int,
			    char *, size_t);

/* --- destinations and workers (runner lock held unless said) --- */

struct rdest *
pool_dest_get(struct runner *r, const struct job *j)
{
	struct rdest *d;
	unsigned long h = runner_hash(j->key) & (DEST_BUCKETS - 1);

	for (d = r->dtab[h]; d != NULL; d = d->hnext)
		if (strcmp(d->key, j->key) == 0)
			return d;
	if ((d = calloc(1, sizeof(*d))) == NULL)
		return NULL;
	str_lcpy(d->key, j->key, sizeof(d->key));
	str_lcpy(d->dest, j->dest, sizeof(d->dest));
	d->limit = j->route->concurrency ? j->route->concurrency : 1;
	TAILQ_INIT(&d->jobs);
	cache_dest_init(d);
	d->hnext = r->dtab[h];
	r->dtab[h] = d;
	return d;
}

static struct job *
dest_pop(struct rdest *d)
{
	struct job *j = TAILQ_FIRST(&d->jobs);

	if (j == NULL)
		return NULL;
	TAILQ_REMOVE(&d->jobs, j, entry);
	d->njobs--;
	return j;
}

/* Keeps d on the ready list exactly when a worker may take it. */
void
pool_dest_update(struct runner *r, struct rdest *d)
{
	int want = d->njobs > 0 && d->active < d->limit && !r->stopping;

	if (want == d->ready)
		return;
	if (want)
		TAILQ_INSERT_TAIL(&r->ready, d, rentry);
	else
		TAILQ_REMOVE(&r->ready, d, rentry);
	d->ready = want;
}

void
pool_dest_release(struct runner *r, struct rdest *d)
{
	struct rdest **pp;

	pool_dest_update(r, d);
	if (d->njobs > 0 || d->active > 0 || d->ready || d->nidle > 0)
		return;
	for (pp = &r->dtab[runner_hash(d->key) & (DEST_BUCKETS - 1)]; *pp != NULL;
	    pp = &(*pp)->hnext)
		if (*pp == d) {
			*pp = d->hnext;
			break;
		}
	free(d);
}

/* Records a job's results; the last job of a round finishes it. */
static void
job_done(struct job *j, struct agent_rcpt *ar)
{
	struct round *rd = j->rd;
	time_t now = sched_now(&rd->r->q);
	size_t i;
	int last;

	pthread_mutex_lock(&rd->mu);
	/* ar is NULL only with j->n == 0 (fail_job() out of memory). */
	for (i = 0; i < j->n; i++)
		/* cppcheck-suppress nullPointer */
		round_apply(rd, &rd->st->r[j->ridx[i]], &ar[i].res, now);
	last = --rd->jobs_left == 0;
	/* Other destinations still to go: keep what we know. */
	if (!last)
		(void)round_save(rd);
	pthread_mutex_unlock(&rd->mu);
	round_job_free(j);
	if (last)
		round_finish(rd);
}

static void
fail_job(struct job *j, const struct agent_result *res)
{
	struct agent_rcpt *ar;
	size_t i;

	if ((ar = calloc(j->n, sizeof(*ar))) == NULL) {
		log_err("queue: out of memory");
		/* Leave the recipients pending; the round still ends. */
		j->n = 0;
		job_done(j, NULL);
		return;
	}
	for (i = 0; i < j->n; i++)
		ar[i].res = *res;
	job_done(j, ar);
	free(ar);
}

static int
run_job(const struct agent_ops *ops, void *sess, struct job *j)
{
	struct round *rd = j->rd;
	struct agent_rcpt *ar;
	struct agent_msg msg;
	struct qstore_rcpt *q;
	size_t i;
	int rc;

	if ((ar = calloc(j->n, sizeof(*ar))) == NULL) {
		struct agent_result res;

		memset(&res, 0, sizeof(res));
		agent_set(&res, AGENT_TEMP, 451, "4.3.0", "out of memory");
		fail_job(j, &res);
		return 0;
	}
	for (i = 0; i < j->n; i++) {
		q = &rd->st->r[j->ridx[i]];
		ar[i].mailbox = q->mailbox;
		ar[i].orig = &rd->env->rcpts[q->orig];
		agent_set(&ar[i].res, AGENT_TEMP, 451, "4.3.0", "no result "
		    "from the %s agent", ops->name);
	}
	msg.id = rd->m->id;
	msg.env = rd->env;
	msg.fd = rd->fd;
	msg.qc = rd->qc;
	msg.cancel = &rd->r->stopping;
	rc = ops->deliver(sess, j->route, &msg, ar, j->n);
	job_done(j, ar);
	free(ar);
	return rc;
}

/*
 * Waits for work; with sessions kept idle, not past the first one's
 * expiry.  Runner lock held.
 */
static void
idle_wait(struct runner *r)
{
	struct timespec ts;
	long long due = cache_next_expiry(r), ms;

	if (due == -1) {
		pthread_cond_wait(&r->work_cv, &r->mu);
		return;
	}
	if ((ms = due - net_now_ms()) <= 0)
		return;
	net_deadline_ts(&ts, ms);
	(void)pthread_cond_timedwait(&r->work_cv, &r->mu, &ts);
}

static void *
worker_main(void *arg)
{
	struct runner *r = arg;
	const struct agent_ops *ops;
	struct agent_result res;
	struct idle_list expired;
	struct rdest *d;
	struct sched_msg *m;
	struct job *j;
	unsigned int count, max;
	void *sess;
	int ok;

	pthread_mutex_lock(&r->mu);
	for (;;) {
		/* Idle sessions past their time (all of them once stopping). */
		if (cache_take_expired(r, net_now_ms(), &expired)) {
			pthread_mutex_unlock(&r->mu);
			cache_close(&expired);
			pthread_mutex_lock(&r->mu);
			cache_release(r, &expired);
			continue;
		}
		if (r->stopping)
			break;
		if (TAILQ_EMPTY(&r->ready) && TAILQ_EMPTY(&r->load)) {
			idle_wait(r);
			continue;
		}
		/* Reading a message comes first: it makes the jobs. */
		if ((m = TAILQ_FIRST(&r->load)) != NULL) {
			TAILQ_REMOVE(&r->load, m, lentry);
			pthread_mutex_unlock(&r->mu);
			round_load(r, m);
			pthread_mutex_lock(&r->mu);
			continue;
		}
		d = TAILQ_FIRST(&r->ready);
		d->active++;
		j = dest_pop(d);
		pool_dest_update(r, d);
		max = r->qc->session_messages;

		sess = cache_take(r, d, &count);
		pthread_mutex_unlock(&r->mu);

		ops = agent_for(j->route->action);
		if (sess != NULL && !ops->idle_ok(sess))
			ops->close(&sess);
		if (sess == NULL) {
			count = 0;
			memset(&res, 0, sizeof(res));
			sess = ops->open(j->route, d->dest, j->rd->m->id,
			    j->rd->qc, &res);
		}
		if (sess == NULL) {
			/* Everybody waiting for d would meet the same fate. */
			fail_job(j, &res);
			pthread_mutex_lock(&r->mu);
			while ((j = dest_pop(d)) != NULL) {
				pool_dest_update(r, d);
				pthread_mutex_unlock(&r->mu);
				fail_job(j, &res);
				pthread_mutex_lock(&r->mu);
			}
			d->active--;
			pool_dest_release(r, d);
			continue;
		}
		for (;;) {
			ok = run_job(ops, sess, j) == 0 && ++count < max;
			if (!ok)
				break;
			pthread_mutex_lock(&r->mu);
			j = r->stopping ? NULL : dest_pop(d);
			pool_dest_update(r, d);
			pthread_mutex_unlock(&r->mu);
			if (j == NULL)
				break;
		}
		pthread_mutex_lock(&r->mu);
		if (!ok || cache_put(r, d, ops, sess, count) == -1) {
			pthread_mutex_unlock(&r->mu);
			ops->close(&sess);
			pthread_mutex_lock(&r->mu);
		}
		d->active--;
		pool_dest_release(r, d);
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

/* --- start and stop --- */

static int
start_thread(pthread_t *t, void *(*fn)(void *), void *arg)
{
	pthread_attr_t attr;
	sigset_t all, old;
	int e;

	if ((e = pthread_attr_init(&attr)) != 0)
		return e;
	(void)pthread_attr_setstacksize(&attr, RUNNER_STACK_SIZE);
	/* Signals belong to the main thread. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	e = pthread_create(t, &attr, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	return e;
}

static void
runner_free(struct runner *r)
{
	struct rdest *d, *dn;
	struct job *j;
	struct round *rd;
	struct kick *k;
	size_t i;

	/* Jobs nobody started: their rounds end without a result. */
	for (i = 0; i < DEST_BUCKETS; i++)
		for (d = r->dtab[i]; d != NULL; d = dn) {
			dn = d->hnext;
			while ((j = dest_pop(d)) != NULL) {
				rd = j->rd;
				round_job_free(j);
				if (--rd->jobs_left == 0)
					round_free(rd);
			}
			free(d);
		}
	sched_free(&r->q);
	while ((k = r->kicks) != NULL) {
		r->kicks = k->next;
		free(k);
	}
	free(r->workers);
	if (r->fifofd != -1)
		close(r->fifofd);
	if (r->notifyfd != -1)
		close(r->notifyfd);
	if (r->wakep[0] != -1) {
		close(r->wakep[0]);
		close(r->wakep[1]);
	}
	spool_close(&r->sp);
	qstore_close(&r->qs);
	if (r->lockfd != -1)
		close(r->lockfd);
	queueconf_unref(&r->qc);
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->work_cv);
	pthread_cond_destroy(&r->done_cv);
	free(r);
}

/*
 * How many messages may be in delivery at once: each keeps its file open,
 * and workers need a few descriptors more.  The soft limit on open files
 * is raised as far as allowed first.
 */
static int
rounds_limit(unsigned int workers)
{
	struct rlimit rl;
	long long avail, n;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return 64;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < 65536 &&
	    (rl.rlim_max == RLIM_INFINITY || rl.rlim_max > rl.rlim_cur)) {
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ||
		    rl.rlim_max > 65536 ? 65536 : rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
		(void)getrlimit(RLIMIT_NOFILE, &rl);
	}
	avail = rl.rlim_cur == RLIM_INFINITY ? 65536 : (long long)rl.rlim_cur;
	/* Half for smtpd's sessions when we run inside it. */
	n = (avail / 2 - 64 - 8 * (long long)workers);
	if (n > RUNNER_ROUNDS_MAX)
		n = RUNNER_ROUNDS_MAX;
	return n < 16 ? 16 : (int)n;
}

static int
open_fifo(struct runner *r, char *err, size_t errlen)
{
	const char *path = qstore_fifo_path(r->qs);
	struct stat st;

	if (lstat(path, &st) == 0 && !S_ISFIFO(st.st_mode))
		(void)unlink(path);
	if (mkfifo(path, 0600) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	/* Read-write, so the FIFO never reports end-of-file to us. */
	if ((r->fifofd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static struct runner *
runner_new(const char *spooldir, struct queue_conf *qc, int once,
    char *err, size_t errlen)
{
	pthread_condattr_t ca;
	struct runner *r;
	size_t i;
	int e;

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	r->lockfd = r->fifofd = r->notifyfd = r->wakep[0] = r->wakep[1] = -1;
	TAILQ_INIT(&r->ready);
	TAILQ_INIT(&r->load);
	cache_init(r);
	r->dropwd = -1;
	r->once = once;
	r->qc = queueconf_ref(qc);
	pthread_mutex_init(&r->mu, NULL);
	/* Workers wait for the idle sessions' expiry on it (idle_wait()). */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->work_cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&r->done_cv, NULL);
	str_lcpy(r->spooldir, spooldir, sizeof(r->spooldir));
	if (sched_init(&r->q, NULL) == -1) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if ((r->qs = qstore_open(spooldir, QSTORE_CREATE, err, errlen)) == NULL)
		goto fail;
	if ((r->lockfd = qstore_runner_lock(r->qs, err, errlen)) == -1)
		goto fail;
	if ((r->sp = spool_open(spooldir, 0, err, errlen)) == NULL)
		goto fail;
	spool_set_hook(r->sp, runner_spool_hook, r);
	if (pipe2(r->wakep, O_CLOEXEC | O_NONBLOCK) == -1) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		goto fail;
	}
	if (!once && open_fifo(r, err, errlen) == -1)
		goto fail;
#ifdef HAVE_SYS_INOTIFY_H
	if (!once) {
		char qdir[PATH_MAX];

		/* Without it, the periodic scan finds new messages. */
		snprintf(qdir, sizeof(qdir), "%s/queue", spooldir);
		r->notifyfd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		if (r->notifyfd != -1 && inotify_add_watch(r->notifyfd, qdir,
		    IN_MOVED_TO) == -1) {
			log_warn("queue: cannot watch %s: %s", qdir,
			    strerror(errno));
			close(r->notifyfd);
			r->notifyfd = -1;
		}
		snprintf(qdir, sizeof(qdir), "%s/%s", spooldir, MAILDROP_DIR);
		if (r->notifyfd != -1)
			r->dropwd = inotify_add_watch(r->notifyfd, qdir,
			    IN_ATTRIB | IN_MOVED_TO);
	}
#endif
	r->max_rounds = rounds_limit(qc->concurrency);
	r->nworkers = qc->concurrency;
	if ((r->workers = calloc(r->nworkers, sizeof(*r->workers))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (i = 0; i < r->nworkers; i++)
		if ((e = start_thread(&r->workers[i], worker_main, r)) != 0) {
			snprintf(err, errlen, "cannot start a thread: %s",
			    strerror(e));
			r->nworkers = i;
			goto fail;
		}
	if ((e = start_thread(&r->sched_thread, sched_main, r)) != 0) {
		snprintf(err, errlen, "cannot start a thread: %s", strerror(e));
		goto fail;
	}
	r->sched_started = 1;
	log_info("queue runner started: spool=%s workers=%zu%s", spooldir,
	    r->nworkers, once ? " (one pass)" : "");
	return r;
fail:
	runner_stop(&r);
	return NULL;
}

struct runner *
runner_start(const char *spooldir, struct queue_conf *qc, char *err,
    size_t errlen)
{
	return runner_new(spooldir, qc, 0, err, errlen);
}

void
runner_stop(struct runner **rp)
{
	struct runner *r = *rp;
	struct rdest *d;
	size_t i;

	if (r == NULL)
		return;
	*rp = NULL;
	pthread_mutex_lock(&r->mu);
	/* Read without the lock by delivery programs' watchers. */
	__atomic_store_n(&r->stopping, 1, __ATOMIC_RELAXED);
	for (i = 0; i < DEST_BUCKETS; i++)
		for (d = r->dtab[i]; d != NULL; d = d->hnext)
			pool_dest_update(r, d);
	pthread_cond_broadcast(&r->work_cv);
	if (r->wakep[1] != -1)
		sched_wakeup(r);
	pthread_mutex_unlock(&r->mu);
	if (r->sched_started)
		pthread_join(r->sched_thread, NULL);
	for (i = 0; i < r->nworkers; i++)
		pthread_join(r->workers[i], NULL);
	if (r->sched_started)
		log_info("queue runner stopped");
	runner_free(r);
}

int
runner_run_once(const char *spooldir, struct queue_conf *qc, char *err,
    size_t errlen)
{
	struct runner *r;

	if ((r = runner_new(spooldir, qc, 1, err, errlen)) == NULL)
		return -1;
	pthread_mutex_lock(&r->mu);
	while (!r->once_done)
		pthread_cond_wait(&r->done_cv, &r->mu);
	pthread_mutex_unlock(&r->mu);
	runner_stop(&r);
	return 0;
}

