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
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/crypto.h>

#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/str.h"
#include "agent.h"
#include "alias.h"
#include "dsn.h"
#include "maildrop.h"
#include "envelope.h"
#include "qstore.h"
#include "runner.h"
#include "tlsrpt.h"
#include "spool.h"

#define NOHEAP		SIZE_MAX
#define DEST_MAX	300
#define KEY_MAX		(DEST_MAX + 16)
#define DEST_BUCKETS	4096
#define FIFO_LINE_MAX	128

struct rmsg {
	char		 id[SPOOL_ID_LEN + 1];
	time_t		 due;
	size_t		 hidx;		/* place in the heap, NOHEAP if none */
	int		 busy;		/* a delivery round is under way */
	int		 held;		/* on hold: out of the heap */
	int		 force;		/* try all pending recipients now */
	int		 wake;		/* woken while busy */
	struct rmsg	*hnext;
	struct rmsg	*lnext;		/* the queue of rounds to load */
};

/* One message's delivery round, shared by its jobs. */
struct round {
	struct runner		*r;
	struct rmsg		*m;
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
	struct job		*next;
};

struct rdest {
	char		 key[KEY_MAX];
	char		 dest[DEST_MAX];
	struct job	*head, *tail;
	size_t		 njobs;
	unsigned int	 active, limit;
	int		 ready;
	struct rdest	*rprev, *rnext;	/* the ready list */
	struct rdest	*hnext;
};

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

	struct rmsg	**mtab;
	size_t		 msize, nmsgs;
	struct rmsg	**heap;
	size_t		 nheap, heapcap;
	struct kick	*kicks;
	size_t		 nkicks;
	int		 kick_scan, kick_all, wake_sent;
	time_t		 sleep_until;	/* when the scheduler wakes by itself */

	struct rdest	*dtab[DEST_BUCKETS];
	struct rdest	*ready_head, *ready_tail;
	struct rmsg	*load_head, *load_tail;	/* due, for workers to read */
	int		 busy_rounds;
	int		 max_rounds;	/* each holds its message file open */
	int		 throttled;	/* due messages wait for a free round */

	pthread_t	 sched;
	pthread_t	*workers;
	size_t		 nworkers;
	int		 sched_started;
};

static unsigned long	hash_str(const char *);
static struct rmsg	*msg_find(struct runner *, const char *);
static struct rmsg	*msg_add(struct runner *, const char *, time_t);
static void		 msg_forget(struct runner *, struct rmsg *);
static int		 heap_push(struct runner *, struct rmsg *);
static struct rmsg	*heap_pop(struct runner *);
static void		 heap_fix(struct runner *, size_t);
static void		 wake_locked(struct runner *, const char *, time_t);
static void		 notice_locked(struct runner *, const char *, time_t);
static void		 kick(struct runner *, const char *, int);
static void		 wake_scheduler(struct runner *);
static void		 scan_queue(struct runner *);
static void		*sched_main(void *);
static void		*worker_main(void *);
static void		 load_round(struct runner *, struct rmsg *);
static void		 finish_round(struct round *);
static void		 free_round(struct round *);
static void		 requeue(struct runner *, struct rmsg *, time_t);
static void		 round_ended(struct runner *);
static void		 apply_result(struct round *, struct qstore_rcpt *,
			    const struct agent_result *, time_t);
static int		 save_state(struct round *);
static time_t		 backoff(const struct queue_conf *, unsigned int);
static struct rdest	*dest_get(struct runner *, const struct job *);
static struct job	*dest_pop(struct rdest *);
static void		 dest_update(struct runner *, struct rdest *);
static void		 dest_release(struct runner *, struct rdest *);
static void		 job_free(struct job *);
static int		 run_job(const struct agent_ops *, void *,
			    struct job *);
static void		 fail_job(struct job *, const struct agent_result *);
static void		 job_done(struct job *, struct agent_rcpt *);
static void		 read_fifo(struct runner *, char *, size_t *);
static struct runner	*runner_new(const char *, struct queue_conf *, int,
			    char *, size_t);

static unsigned long
hash_str(const char *s)
{
	unsigned long h = 2166136261UL;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619UL;
	return h;
}

/* --- messages: a hash by id and a heap by due time (runner lock held) --- */

static struct rmsg *
msg_find(struct runner *r, const char *id)
{
	struct rmsg *m;

	for (m = r->mtab[hash_str(id) & (r->msize - 1)]; m != NULL;
	    m = m->hnext)
		if (strcmp(m->id, id) == 0)
			return m;
	return NULL;
}

static struct rmsg *
msg_add(struct runner *r, const char *id, time_t due)
{
	struct rmsg *m, **nt, *next;
	size_t i, nsize;

	if (r->nmsgs >= r->msize) {
		nsize = r->msize * 2;
		/* NOLINTNEXTLINE(bugprone-sizeof-expression): pointers */
		if ((nt = calloc(nsize, sizeof(*nt))) != NULL) {
			for (i = 0; i < r->msize; i++)
				for (m = r->mtab[i]; m != NULL; m = next) {
					next = m->hnext;
					m->hnext = nt[hash_str(m->id) &
					    (nsize - 1)];
					nt[hash_str(m->id) & (nsize - 1)] = m;
				}
			free(r->mtab);
			r->mtab = nt;
			r->msize = nsize;
		}
	}
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return NULL;
	str_lcpy(m->id, id, sizeof(m->id));
	m->due = due;
	m->hidx = NOHEAP;
	i = hash_str(id) & (r->msize - 1);
	m->hnext = r->mtab[i];
	r->mtab[i] = m;
	r->nmsgs++;
	if (heap_push(r, m) == -1) {
		msg_forget(r, m);
		return NULL;
	}
	return m;
}

static void
msg_forget(struct runner *r, struct rmsg *m)
{
	struct rmsg **pp;

	for (pp = &r->mtab[hash_str(m->id) & (r->msize - 1)]; *pp != NULL;
	    pp = &(*pp)->hnext)
		if (*pp == m) {
			*pp = m->hnext;
			r->nmsgs--;
			break;
		}
	free(m);
}

static void
heap_swap(struct runner *r, size_t a, size_t b)
{
	struct rmsg *t = r->heap[a];

	r->heap[a] = r->heap[b];
	r->heap[b] = t;
	r->heap[a]->hidx = a;
	r->heap[b]->hidx = b;
}

/* Restores the heap order around position i. */
static void
heap_fix(struct runner *r, size_t i)
{
	size_t c;

	while (i > 0 && r->heap[(i - 1) / 2]->due > r->heap[i]->due) {
		heap_swap(r, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
	for (;;) {
		c = 2 * i + 1;
		if (c >= r->nheap)
			break;
		if (c + 1 < r->nheap && r->heap[c + 1]->due < r->heap[c]->due)
			c++;
		if (r->heap[i]->due <= r->heap[c]->due)
			break;
		heap_swap(r, i, c);
		i = c;
	}
}

/*
 * 0, or -1 when the heap cannot grow: the caller then forgets m, and the
 * next scan of queue/ finds it again.
 */
static int
heap_push(struct runner *r, struct rmsg *m)
{
	struct rmsg **nh;
	size_t ncap;

	if (m->hidx != NOHEAP)
		return 0;
	if (r->nheap == r->heapcap) {
		ncap = r->heapcap ? r->heapcap * 2 : 1024;
		/* NOLINTNEXTLINE(bugprone-sizeof-expression): pointers */
		if ((nh = realloc(r->heap, ncap * sizeof(*nh))) == NULL) {
			log_err("queue: out of memory; %s waits for a rescan",
			    m->id);
			return -1;
		}
		r->heap = nh;
		r->heapcap = ncap;
	}
	m->hidx = r->nheap;
	r->heap[r->nheap++] = m;
	heap_fix(r, m->hidx);
	return 0;
}

static struct rmsg *
heap_pop(struct runner *r)
{
	struct rmsg *m;

	if (r->nheap == 0)
		return NULL;
	m = r->heap[0];
	r->nheap--;
	if (r->nheap > 0) {
		r->heap[0] = r->heap[r->nheap];
		r->heap[0]->hidx = 0;
		heap_fix(r, 0);
	}
	m->hidx = NOHEAP;
	return m;
}

/* Makes id due now (runner lock held). */
static void
wake_locked(struct runner *r, const char *id, time_t now)
{
	struct rmsg *m;

	if ((m = msg_find(r, id)) == NULL) {
		if (qstore_valid_id(id) && msg_add(r, id, now) == NULL)
			log_err("queue: out of memory; %s waits for a rescan",
			    id);
		return;
	}
	m->force = 1;
	if (m->busy) {
		m->wake = 1;
		return;
	}
	m->held = 0;
	m->due = now;
	if (m->hidx != NOHEAP)
		heap_fix(r, m->hidx);
	else if (heap_push(r, m) == -1)
		msg_forget(r, m);
}

/* Nudges the scheduler out of its sleep (runner lock held). */
static void
wake_scheduler(struct runner *r)
{
	char c = 'w';

	if (r->wake_sent)
		return;
	r->wake_sent = 1;
	if (write(r->wakep[1], &c, 1) == -1 && errno != EAGAIN)
		log_warn("queue: cannot wake the scheduler: %s",
		    strerror(errno));
}

/*
 * A message is new to the runner only once: the spool's hook and inotify
 * both report it, and a second report must not try it again (runner lock
 * held).
 */
static void
notice_locked(struct runner *r, const char *id, time_t now)
{
	if (msg_find(r, id) == NULL && qstore_valid_id(id) &&
	    msg_add(r, id, now) == NULL)
		r->kick_scan = 1;
}

static void
kick(struct runner *r, const char *id, int force)
{
	struct kick *k;

	pthread_mutex_lock(&r->mu);
	if (id == NULL) {
		r->kick_scan = 1;
	} else if (r->nkicks >= RUNNER_KICKS_MAX ||
	    (k = malloc(sizeof(*k))) == NULL) {
		/* Too many to keep apart: look at everything instead. */
		r->kick_all = 1;
		r->kick_scan = 1;
	} else {
		str_lcpy(k->id, id, sizeof(k->id));
		k->force = force;
		k->next = r->kicks;
		r->kicks = k;
		r->nkicks++;
	}
	wake_scheduler(r);
	pthread_mutex_unlock(&r->mu);
}

void
runner_kick(struct runner *r, const char *id)
{
	kick(r, id, 1);
}

void
runner_spool_hook(void *arg, const char *id)
{
	kick(arg, id, 0);
}

void
runner_reconfigure(struct runner *r, struct queue_conf *qc)
{
	struct queue_conf *old;

	pthread_mutex_lock(&r->mu);
	old = r->qc;
	r->qc = queueconf_ref(qc);
	pthread_mutex_unlock(&r->mu);
	queueconf_unref(&old);
}

/* Adds every message in queue/ we do not know yet (runner lock NOT held). */
static void
scan_queue(struct runner *r)
{
	char (*ids)[32], conffile[PATH_MAX];
	struct queue_conf *qc;
	size_t i, n;
	time_t now = time(NULL);

	/* Local submissions (sendmail) become queue files first. */
	pthread_mutex_lock(&r->mu);
	str_lcpy(conffile, r->qc->file, sizeof(conffile));
	qc = queueconf_ref(r->qc);
	pthread_mutex_unlock(&r->mu);
	(void)maildrop_pickup(r->sp, r->spooldir, conffile);
	tlsrpt_daily(r->sp, qc, now);	/* once a day */
	queueconf_unref(&qc);
	if (qstore_list(r->qs, &ids, &n) == -1) {
		log_err("queue: cannot list %s/queue: %s", r->spooldir,
		    strerror(errno));
		return;
	}
	pthread_mutex_lock(&r->mu);
	for (i = 0; i < n; i++)
		if (msg_find(r, ids[i]) == NULL && msg_add(r, ids[i], now) ==
		    NULL) {
			log_err("queue: out of memory while scanning");
			break;
		}
	pthread_mutex_unlock(&r->mu);
	qstore_free_ids(&ids);
}

/*
 * New files in queue/, as inotify reports them: messages committed by
 * another process (a stdio-mode smtpd), known without waiting for a scan.
 */
static void
read_notify(struct runner *r)
{
#ifdef HAVE_SYS_INOTIFY_H
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event *ev;
	time_t now = time(NULL);
	ssize_t n;
	char *p;

	for (;;) {
		n = read(r->notifyfd, buf, sizeof(buf));
		if (n <= 0)
			return;
		pthread_mutex_lock(&r->mu);
		for (p = buf; p < buf + n; p += sizeof(*ev) + ev->len) {
			ev = (const struct inotify_event *)p;
			if (ev->mask & IN_Q_OVERFLOW || ev->wd == r->dropwd)
				r->kick_scan = 1;
			else if (ev->len > 0)
				notice_locked(r, ev->name, now);
		}
		pthread_mutex_unlock(&r->mu);
	}
#else
	(void)r;
#endif
}

/* Requests from smtpq: "wake ID", "wake *", "scan". */
static void
read_fifo(struct runner *r, char *buf, size_t *len)
{
	char *nl, *line;
	ssize_t n;

	for (;;) {
		n = read(r->fifofd, buf + *len, FIFO_LINE_MAX - *len);
		if (n <= 0)
			return;
		*len += (size_t)n;
		while ((nl = memchr(buf, '\n', *len)) != NULL) {
			*nl = '\0';
			line = buf;
			if (strcmp(line, "scan") == 0)
				runner_kick(r, NULL);
			else if (strcmp(line, "wake *") == 0) {
				pthread_mutex_lock(&r->mu);
				r->kick_all = 1;
				r->kick_scan = 1;
				wake_scheduler(r);
				pthread_mutex_unlock(&r->mu);
			} else if (strncmp(line, "wake ", 5) == 0 &&
			    qstore_valid_id(line + 5))
				runner_kick(r, line + 5);
			else
				log_debug("queue: ignored request on the FIFO");
			*len -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, *len);
		}
		if (*len == FIFO_LINE_MAX)
			*len = 0;	/* no newline in sight: garbage */
	}
}

static void *
sched_main(void *arg)
{
	struct runner *r = arg;
	struct kick *kicks, *k;
	struct rmsg *m;
	struct pollfd pfd[3];
	char fifobuf[FIFO_LINE_MAX], drain[64];
	size_t fifolen = 0, i;
	time_t now, next_scan;
	long long wait_ms;
	int scan, all;

	qstore_clean_orphans(r->qs);
	scan_queue(r);
	now = time(NULL);
	pthread_mutex_lock(&r->mu);
	next_scan = now + (time_t)r->qc->scan_interval;
	while (!r->stopping) {
		/* Requests first. */
		kicks = r->kicks;
		r->kicks = NULL;
		r->nkicks = 0;
		scan = r->kick_scan;
		all = r->kick_all;
		r->kick_scan = r->kick_all = 0;
		r->wake_sent = 0;
		now = time(NULL);
		if (scan || now >= next_scan) {
			pthread_mutex_unlock(&r->mu);
			scan_queue(r);
			pthread_mutex_lock(&r->mu);
			next_scan = now + (time_t)r->qc->scan_interval;
		}
		if (all)
			for (i = 0; i < r->msize; i++)
				for (m = r->mtab[i]; m != NULL; m = m->hnext)
					wake_locked(r, m->id, now);
		while ((k = kicks) != NULL) {
			kicks = k->next;
			if (k->force)
				wake_locked(r, k->id, now);
			else
				notice_locked(r, k->id, now);
			free(k);
		}

		/*
		 * Everything that is due, as far as open files allow, goes to
		 * the workers to be read: a message that takes long to read
		 * or expand holds up no other.
		 */
		while (!r->stopping && r->nheap > 0 && r->heap[0]->due <= now &&
		    r->busy_rounds < r->max_rounds) {
			m = heap_pop(r);
			m->busy = 1;
			r->busy_rounds++;
			m->lnext = NULL;
			if (r->load_tail != NULL)
				r->load_tail->lnext = m;
			else
				r->load_head = m;
			r->load_tail = m;
			pthread_cond_signal(&r->work_cv);
		}
		if (r->once && r->busy_rounds == 0 &&
		    (r->nheap == 0 || r->heap[0]->due > now)) {
			r->once_done = 1;
			pthread_cond_broadcast(&r->done_cv);
			break;
		}

		/*
		 * Sleep until the next due message, a scan or a request; when
		 * due messages wait for rounds to end, until one ends.
		 */
		r->throttled = r->nheap > 0 && r->heap[0]->due <= now;
		r->sleep_until = next_scan;
		if (!r->throttled && r->nheap > 0 &&
		    r->heap[0]->due < r->sleep_until)
			r->sleep_until = r->heap[0]->due;
		wait_ms = ((long long)r->sleep_until - (long long)now) * 1000;
		if (wait_ms < 0)
			wait_ms = 0;
		if (wait_ms > 3600 * 1000)
			wait_ms = 3600 * 1000;
		pthread_mutex_unlock(&r->mu);
		pfd[0].fd = r->wakep[0];
		pfd[0].events = POLLIN;
		pfd[1].fd = r->fifofd;		/* -1: ignored by poll */
		pfd[1].events = POLLIN;
		pfd[2].fd = r->notifyfd;
		pfd[2].events = POLLIN;
		pfd[1].revents = pfd[2].revents = 0;
		if (poll(pfd, 3, (int)wait_ms) > 0) {
			if (pfd[0].revents)
				while (read(r->wakep[0], drain, sizeof(drain)) > 0)
					;
			if (pfd[1].revents)
				read_fifo(r, fifobuf, &fifolen);
			if (pfd[2].revents)
				read_notify(r);
		}
		pthread_mutex_lock(&r->mu);
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

/* --- delivery rounds --- */

static time_t
backoff(const struct queue_conf *qc, unsigned int attempts)
{
	unsigned long long d = qc->retry_min;
	unsigned int i, rnd = 0;

	for (i = 1; i < attempts && d < qc->retry_max; i++)
		d *= 2;
	if (d > qc->retry_max)
		d = qc->retry_max;
	/* Jitter of +-25% keeps retries from marching in step. */
	if (gnutls_rnd(GNUTLS_RND_NONCE, &rnd, sizeof(rnd)) != 0)
		rnd = (unsigned int)time(NULL);
	d = d - d / 4 + rnd % (d / 2 + 1);
	return d < 1 ? 1 : (time_t)d;
}

static int
notify_failure(const struct envelope *env, const struct env_rcpt *o)
{
	if (env->sender[0] == '\0')
		return 0;	/* never a bounce to a bounce */
	return o->notify == 0 || (o->notify & ENV_NOTIFY_FAILURE);
}

static void
apply_result(struct round *rd, struct qstore_rcpt *q,
    const struct agent_result *res, time_t now)
{
	const struct envelope *env = rd->env;
	const struct env_rcpt *o = &env->rcpts[q->orig];
	const char *what = "?";
	char orig[300];
	time_t next = 0;

	rd->changed = 1;
	q->attempts++;
	q->last = now;
	q->code = res->code;
	str_lcpy(q->status, res->enhanced, sizeof(q->status));
	str_lcpy(q->text, res->text, sizeof(q->text));
	str_lcpy(q->mta, res->mta, sizeof(q->mta));
	switch (res->status) {
	case AGENT_DELIVERED:
	case AGENT_RELAYED:
		q->state = res->status == AGENT_DELIVERED ? QS_DELIVERED :
		    QS_RELAYED;
		q->dsn = (o->notify & ENV_NOTIFY_SUCCESS) &&
		    env->sender[0] != '\0' ? QS_DSN_OWED : QS_DSN_NONE;
		what = res->status == AGENT_DELIVERED ? "delivered" : "relayed";
		break;
	case AGENT_PASSED:
		q->state = QS_DELIVERED;
		q->dsn = QS_DSN_NONE;
		what = "relayed";
		break;
	case AGENT_PERM:
		q->state = QS_FAILED;
		q->dsn = notify_failure(env, o) ? QS_DSN_OWED : QS_DSN_NONE;
		what = "bounced";
		break;
	case AGENT_TEMP:
		if (now - env->arrival >= (time_t)rd->qc->lifetime) {
			q->state = QS_FAILED;
			if (q->status[0] != '4')
				str_lcpy(q->status, "4.4.7", sizeof(q->status));
			q->dsn = notify_failure(env, o) ? QS_DSN_OWED :
			    QS_DSN_NONE;
			what = "expired";
		} else {
			next = backoff(rd->qc, q->attempts);
			q->next = now + next;
			what = "deferred";
		}
		break;
	}
	metrics_delivery(what, q->mta[0] != '\0');
	orig[0] = '\0';
	if (strcmp(o->mailbox, q->mailbox) != 0)
		snprintf(orig, sizeof(orig), " orig=<%.200s>", o->mailbox);
	if (next)
		log_info("%s queue %s to=<%.256s>%s attempts=%u next=%llds "
		    "reply=\"%d %s %.300s\"", rd->m->id, what, q->mailbox, orig,
		    q->attempts, (long long)next, q->code, q->status, q->text);
	else
		log_info("%s queue %s to=<%.256s>%s%s%s reply=\"%d %s %.300s\"",
		    rd->m->id, what, q->mailbox, orig, q->mta[0] ? " relay=" :
		    "", q->mta, q->code, q->status, q->text);
}

/* Writes the round's state under the message lock (round's mu held). */
static int
save_state(struct round *rd)
{
	char err[512];
	int rc;

	if ((rc = qstore_lock(rd->fd)) != 0) {
		if (rc == -1)
			log_err("%s queue cannot lock the message: %s",
			    rd->m->id, strerror(errno));
		return -1;
	}
	rc = qstore_state_save(rd->r->qs, rd->m->id, rd->st, err,
	    sizeof(err));
	qstore_unlock(rd->fd);
	if (rc == -1)
		log_err("%s queue cannot save state: %s", rd->m->id, err);
	return rc;
}

/*
 * A bare <Postmaster> that an older smtpd queued as it came is ours:
 * postmaster@hostname, routed like our other addresses.  0 or -1.
 */
static int
qualify_postmaster(struct round *rd)
{
	char buf[300];
	size_t i;

	for (i = 0; i < rd->env->nrcpts; i++) {
		if (strchr(rd->env->rcpts[i].mailbox, '@') != NULL)
			continue;
		if ((size_t)snprintf(buf, sizeof(buf), "postmaster@%s",
		    rd->qc->hostname) >= sizeof(buf))
			continue;	/* cannot be: hostname is a domain */
		if (envelope_set_mailbox(rd->env, i, buf) == -1)
			return -1;
	}
	return 0;
}

/*
 * The state of a message seen for the first time: aliases expanded.
 * *aliased counts the recipients that were aliases.
 */
static struct qstore_state *
initial_state(struct round *rd, size_t *aliased)
{
	struct qstore_state *st;
	struct qstore_rcpt *q;
	struct qc_addrset rcpts, addrs;
	char **list, err[256];
	size_t i, j, n;
	int rc;

	memset(&rcpts, 0, sizeof(rcpts));
	memset(&addrs, 0, sizeof(addrs));
	*aliased = 0;
	if ((st = qstore_state_new()) == NULL)
		return NULL;
	for (i = 0; i < rd->env->nrcpts; i++) {
		/* A recipient given twice (in any case) expands once. */
		if ((rc = queueconf_addrset_add(&rcpts,
		    rd->env->rcpts[i].mailbox)) == -1)
			goto fail;
		if (rc == 0)
			continue;
		rc = queueconf_expand(rd->qc, rd->env->rcpts[i].mailbox, &list,
		    &n, err, sizeof(err));
		if (rc == -2) {
			/* An alias table is down: try the message later. */
			log_err("%s queue deferred: %s", rd->m->id, err);
			errno = EAGAIN;
			goto fail;
		}
		if (rc == -1) {
			if (queueconf_addrset_add(&addrs,
			    rd->env->rcpts[i].mailbox) == -1 ||
			    qstore_state_add(st, rd->env->rcpts[i].mailbox, i) ==
			    -1)
				goto fail;
			q = &st->r[st->n - 1];
			q->state = QS_FAILED;
			q->dsn = notify_failure(rd->env, &rd->env->rcpts[i]) ?
			    QS_DSN_OWED : QS_DSN_NONE;
			q->code = 550;
			str_lcpy(q->status, "5.4.6", sizeof(q->status));
			str_lcpy(q->text, err, sizeof(q->text));
			q->last = time(NULL);
			log_info("%s queue bounced to=<%.256s> reply=\"550 5.4.6 "
			    "%s\"", rd->m->id, q->mailbox, err);
			continue;
		}
		if (n != 1 || strcmp(list[0], rd->env->rcpts[i].mailbox) != 0)
			(*aliased)++;
		for (j = 0; j < n; j++) {
			/* One copy per address, however many ways lead to it. */
			if ((rc = queueconf_addrset_add(&addrs, list[j])) == 0)
				continue;
			if (rc == -1 || qstore_state_add(st, list[j], i) == -1) {
				queueconf_free_list(&list, n);
				goto fail;
			}
		}
		queueconf_free_list(&list, n);
	}
	queueconf_addrset_free(&rcpts);
	queueconf_addrset_free(&addrs);
	return st;
fail:
	queueconf_addrset_free(&rcpts);
	queueconf_addrset_free(&addrs);
	qstore_state_free(&st);
	return NULL;
}

/*
 * 1 if a round with no deliveries has nothing to do either (no DSN owed,
 * no delay warning due, recipients still pending); *due gets the time of
 * the next attempt.
 */
static int
round_idle(struct round *rd, time_t now, time_t *due)
{
	struct qstore_rcpt *q;
	size_t i;
	int pending = 0;

	*due = 0;
	for (i = 0; i < rd->st->n; i++) {
		q = &rd->st->r[i];
		if (q->dsn == QS_DSN_OWED)
			return 0;
		if (q->state != QS_PENDING)
			continue;
		pending = 1;
		if (*due == 0 || q->next < *due)
			*due = q->next;
	}
	if (!pending)
		return 0;
	if (!rd->st->warned && rd->qc->delay_warning != 0 &&
	    now - rd->env->arrival >= (time_t)rd->qc->delay_warning)
		return 0;
	return 1;
}

/* A round is over (runner lock held). */
static void
round_ended(struct runner *r)
{
	r->busy_rounds--;
	if (r->throttled || r->once)
		wake_scheduler(r);
}

static void
requeue(struct runner *r, struct rmsg *m, time_t due)
{
	pthread_mutex_lock(&r->mu);
	round_ended(r);
	m->busy = 0;
	m->due = m->wake ? time(NULL) : due;
	m->wake = 0;
	if (r->once || m->due < r->sleep_until)
		wake_scheduler(r);
	if (heap_push(r, m) == -1)
		msg_forget(r, m);
	pthread_mutex_unlock(&r->mu);
}

static void
free_round(struct round *rd)
{
	if (rd->fd != -1)
		close(rd->fd);
	envelope_free(&rd->env);
	qstore_state_free(&rd->st);
	queueconf_unref(&rd->qc);
	pthread_mutex_destroy(&rd->mu);
	free(rd);
}

static void
job_free(struct job *j)
{
	free(j->ridx);
	free(j);
}

/*
 * Reads message m and queues jobs for its due recipients (in a worker,
 * runner lock not held).
 */
static void
load_round(struct runner *r, struct rmsg *m)
{
	struct round *rd;
	struct job *jobs = NULL, *j, *next;
	struct qstore_rcpt *q;
	struct agent_result res;
	const struct route *route;
	char err[512], dest[DEST_MAX], key[KEY_MAX];
	size_t i, *nr, aliased;
	time_t now = time(NULL);
	int rc, force, njobs = 0;

	if ((rd = calloc(1, sizeof(*rd))) == NULL) {
		requeue(r, m, now + 60);
		return;
	}
	rd->r = r;
	rd->m = m;
	rd->fd = -1;
	pthread_mutex_init(&rd->mu, NULL);
	pthread_mutex_lock(&r->mu);
	rd->qc = queueconf_ref(r->qc);
	force = m->force;
	m->force = 0;
	pthread_mutex_unlock(&r->mu);

	if ((rd->fd = qstore_open_msg(r->qs, m->id)) == -1) {
		if (errno != ENOENT) {
			log_err("%s queue cannot open: %s", m->id,
			    strerror(errno));
			requeue(r, m, now + (time_t)rd->qc->retry_min);
		} else {
			pthread_mutex_lock(&r->mu);
			round_ended(r);
			msg_forget(r, m);
			pthread_mutex_unlock(&r->mu);
		}
		free_round(rd);
		return;
	}
	if ((rc = envelope_read(rd->fd, &rd->env, err, sizeof(err))) != 0) {
		if (rc == -2) {
			log_err("%s queue damaged message moved to corrupt/: %s",
			    m->id, err);
			if (qstore_quarantine(r->qs, m->id) == 0) {
				pthread_mutex_lock(&r->mu);
				round_ended(r);
				msg_forget(r, m);
				pthread_mutex_unlock(&r->mu);
				free_round(rd);
				return;
			}
			log_err("%s queue cannot move to corrupt/: %s", m->id,
			    strerror(errno));
		} else
			log_err("%s queue cannot read: %s", m->id, err);
		requeue(r, m, now + (time_t)rd->qc->retry_max);
		free_round(rd);
		return;
	}
	if (qstore_held(r->qs, m->id)) {
		log_debug("%s queue on hold", m->id);
		pthread_mutex_lock(&r->mu);
		round_ended(r);
		m->busy = 0;
		m->held = 1;
		if (m->wake) {
			/* Released while we looked: have another look. */
			m->wake = 0;
			m->held = 0;
			m->due = now;
			if (heap_push(r, m) == -1)
				msg_forget(r, m);
		}
		pthread_mutex_unlock(&r->mu);
		free_round(rd);
		return;
	}
	if (qualify_postmaster(rd) == -1) {
		log_err("%s queue out of memory", m->id);
		requeue(r, m, now + 60);
		free_round(rd);
		return;
	}
	rc = qstore_state_load(r->qs, m->id, &rd->st, err, sizeof(err));
	if (rc == 0) {
		for (i = 0; i < rd->st->n; i++)
			if (rd->st->r[i].orig >= rd->env->nrcpts)
				break;
		if (i < rd->st->n) {
			rc = -2;
			snprintf(err, sizeof(err), "recipient index out of "
			    "range");
			qstore_state_free(&rd->st);
		}
	}
	if (rc == -2) {
		/* Starting over may deliver twice, but loses nothing. */
		log_err("%s queue damaged state discarded (delivery starts "
		    "over): %s", m->id, err);
		(void)qstore_state_discard(r->qs, m->id);
		rc = 1;
	}
	if (rc == -1) {
		log_err("%s queue cannot read state: %s", m->id, err);
		requeue(r, m, now + (time_t)rd->qc->retry_min);
		free_round(rd);
		return;
	}
	if (rc == 1 && (rd->st = initial_state(rd, &aliased)) == NULL) {
		if (errno != EAGAIN)
			log_err("%s queue out of memory", m->id);
		requeue(r, m, now + 60);
		free_round(rd);
		return;
	}
	if (rc == 1 && aliased > 0)
		log_info("%s queue expanded nrcpt=%zu aliases=%zu addresses=%zu",
		    m->id, rd->env->nrcpts, aliased, rd->st->n);

	/* Group the due recipients by destination. */
	for (i = 0; i < rd->st->n; i++) {
		q = &rd->st->r[i];
		if (q->state != QS_PENDING || (!force && q->next > now))
			continue;
		if ((route = queueconf_route_from(rd->qc, q->mailbox,
		    rd->env->sender, rd->env->auth)) == NULL) {
			agent_set(&res, AGENT_TEMP, 451, "4.3.5", "no route for "
			    "this recipient in %.200s", rd->qc->file);
			res.mta[0] = '\0';
			apply_result(rd, q, &res, now);
			continue;
		}
		agent_dest(route, q->mailbox, dest, sizeof(dest));
		snprintf(key, sizeof(key), "%u:%s", route->index, dest);
		for (j = jobs; j != NULL; j = j->next)
			if (strcmp(j->key, key) == 0)
				break;
		if (j == NULL) {
			if ((j = calloc(1, sizeof(*j))) == NULL)
				goto nomem;
			j->rd = rd;
			j->route = route;
			str_lcpy(j->key, key, sizeof(j->key));
			str_lcpy(j->dest, dest, sizeof(j->dest));
			j->next = jobs;
			jobs = j;
			njobs++;
		}
		if (j->n == j->cap) {
			j->cap = j->cap ? j->cap * 2 : 4;
			if ((nr = realloc(j->ridx, j->cap * sizeof(*nr))) ==
			    NULL)
				goto nomem;
			j->ridx = nr;
		}
		j->ridx[j->n++] = i;
	}
	if (njobs == 0) {
		time_t due;

		if (!rd->changed && round_idle(rd, now, &due)) {
			/* Not due yet: nothing to write. */
			requeue(r, m, due);
			free_round(rd);
			return;
		}
		finish_round(rd);
		return;
	}
	rd->jobs_left = njobs;
	pthread_mutex_lock(&r->mu);
	for (j = jobs; j != NULL; j = next) {
		struct rdest *d;

		next = j->next;
		j->next = NULL;
		if ((d = dest_get(r, j)) == NULL) {
			/* Dropped job: its recipients wait for the next round. */
			rd->jobs_left--;
			job_free(j);
			continue;
		}
		if (d->tail != NULL)
			d->tail->next = j;
		else
			d->head = j;
		d->tail = j;
		d->njobs++;
		dest_update(r, d);
	}
	pthread_cond_broadcast(&r->work_cv);
	if (rd->jobs_left == 0) {
		pthread_mutex_unlock(&r->mu);
		finish_round(rd);
		return;
	}
	pthread_mutex_unlock(&r->mu);
	return;
nomem:
	log_err("%s queue out of memory", m->id);
	for (j = jobs; j != NULL; j = next) {
		next = j->next;
		job_free(j);
	}
	requeue(r, m, now + 60);
	free_round(rd);
}

/* A list of the recipients a DSN of kind reports on. */
static int
send_dsn(struct round *rd, enum dsn_kind kind, time_t now)
{
	struct dsn_report rep;
	struct dsn_rcpt *dr;
	struct qstore_rcpt *q;
	const struct env_rcpt *o;
	char id[SPOOL_ID_LEN + 1], err[512];
	size_t i, n = 0;
	int want;

	if ((dr = calloc(rd->st->n, sizeof(*dr))) == NULL)
		return -1;
	for (i = 0; i < rd->st->n; i++) {
		q = &rd->st->r[i];
		o = &rd->env->rcpts[q->orig];
		switch (kind) {
		case DSN_FAILURE:
			want = q->state == QS_FAILED && q->dsn == QS_DSN_OWED;
			break;
		case DSN_SUCCESS:
			want = (q->state == QS_DELIVERED ||
			    q->state == QS_RELAYED) && q->dsn == QS_DSN_OWED;
			break;
		default:
			want = q->state == QS_PENDING && (o->notify == 0 ||
			    (o->notify & ENV_NOTIFY_DELAY));
			break;
		}
		if (!want)
			continue;
		dr[n].mailbox = q->mailbox;
		dr[n].orcpt = o->orcpt;
		dr[n].action = kind == DSN_FAILURE ? "failed" :
		    kind == DSN_DELAY ? "delayed" :
		    q->state == QS_RELAYED ? "relayed" : "delivered";
		dr[n].status = q->status;
		dr[n].code = q->code;
		dr[n].text = q->text;
		dr[n].mta = q->mta;
		dr[n].last_attempt = q->last;
		n++;
	}
	if (n == 0) {
		free(dr);
		return 0;
	}
	memset(&rep, 0, sizeof(rep));
	rep.kind = kind;
	rep.hostname = rd->qc->hostname;
	rep.queue_id = rd->m->id;
	rep.env = rd->env;
	rep.fd = rd->fd;
	rep.bounce_size = rd->qc->bounce_size;
	rep.retry_until = rd->env->arrival + (time_t)rd->qc->lifetime;
	rep.rcpts = dr;
	rep.nrcpts = n;
	if (dsn_queue(rd->r->sp, &rep, id, sizeof(id), err, sizeof(err)) ==
	    -1) {
		log_err("%s queue cannot send a DSN: %s", rd->m->id, err);
		free(dr);
		return -1;
	}
	free(dr);
	log_info("%s queue dsn id=%s kind=%s to=<%.256s> nrcpt=%zu", rd->m->id,
	    id, kind == DSN_FAILURE ? "failure" : kind == DSN_DELAY ? "delay" :
	    "success", rd->env->sender, n);
	(void)now;
	return 0;
}

/*
 * The end of a round: expiry, DSNs, and either the message's removal or
 * its next due time.  The round is no longer shared.
 */
static void
finish_round(struct round *rd)
{
	struct runner *r = rd->r;
	struct rmsg *m = rd->m;
	struct qstore_rcpt *q;
	time_t now = time(NULL), due = 0;
	char err[512];
	size_t i;
	int rc, final = 1, owed = 0, pending = 0;

	if ((rc = qstore_lock(rd->fd)) != 0) {
		if (rc == 1) {
			log_info("%s queue removed while being delivered",
			    m->id);
			pthread_mutex_lock(&r->mu);
			round_ended(r);
			msg_forget(r, m);
			if (r->once)
				wake_scheduler(r);
			pthread_mutex_unlock(&r->mu);
		} else {
			log_err("%s queue cannot lock: %s", m->id,
			    strerror(errno));
			requeue(r, m, now + (time_t)rd->qc->retry_min);
		}
		free_round(rd);
		return;
	}

	for (i = 0; i < rd->st->n; i++)
		if (rd->st->r[i].state == QS_PENDING)
			pending = 1;
	if (pending && !rd->st->warned && rd->qc->delay_warning != 0 &&
	    now - rd->env->arrival >= (time_t)rd->qc->delay_warning) {
		if (rd->env->sender[0] == '\0' ||
		    send_dsn(rd, DSN_DELAY, now) == 0)
			rd->st->warned = 1;
	}
	if (send_dsn(rd, DSN_FAILURE, now) == 0)
		for (i = 0; i < rd->st->n; i++)
			if (rd->st->r[i].state == QS_FAILED &&
			    rd->st->r[i].dsn == QS_DSN_OWED)
				rd->st->r[i].dsn = QS_DSN_SENT;
	if (send_dsn(rd, DSN_SUCCESS, now) == 0)
		for (i = 0; i < rd->st->n; i++)
			if (rd->st->r[i].state != QS_PENDING &&
			    rd->st->r[i].state != QS_FAILED &&
			    rd->st->r[i].dsn == QS_DSN_OWED)
				rd->st->r[i].dsn = QS_DSN_SENT;
	/* A report still not sent after the lifetime is given up. */
	if (now - rd->env->arrival >= (time_t)rd->qc->lifetime) {
		size_t dropped = 0;

		for (i = 0; i < rd->st->n; i++)
			if (rd->st->r[i].dsn == QS_DSN_OWED) {
				rd->st->r[i].dsn = QS_DSN_NONE;
				dropped++;
			}
		if (dropped > 0)
			log_warn("%s queue dsn dropped to=<%.256s> nrcpt=%zu: "
			    "not sent within the lifetime", m->id,
			    rd->env->sender, dropped);
	}

	for (i = 0; i < rd->st->n; i++) {
		q = &rd->st->r[i];
		if (q->dsn == QS_DSN_OWED)
			owed = 1;
		if (q->state == QS_PENDING) {
			final = 0;
			if (due == 0 || q->next < due)
				due = q->next;
		}
	}
	if (final && !owed) {
		if (qstore_remove(r->qs, m->id) == -1) {
			log_err("%s queue cannot remove: %s", m->id,
			    strerror(errno));
			qstore_unlock(rd->fd);
			requeue(r, m, now + (time_t)rd->qc->retry_min);
			free_round(rd);
			return;
		}
		qstore_unlock(rd->fd);
		log_info("%s queue removed: every recipient is done", m->id);
		pthread_mutex_lock(&r->mu);
		round_ended(r);
		msg_forget(r, m);
		if (r->once)
			wake_scheduler(r);
		pthread_mutex_unlock(&r->mu);
		free_round(rd);
		return;
	}
	if (qstore_state_save(r->qs, m->id, rd->st, err, sizeof(err)) == -1)
		log_err("%s queue cannot save state: %s", m->id, err);
	qstore_unlock(rd->fd);
	/* A DSN that could not be queued is tried again soon. */
	if (owed && (due == 0 || due > now + (time_t)rd->qc->retry_min))
		due = now + (time_t)rd->qc->retry_min;
	requeue(r, m, due);
	free_round(rd);
}

/* --- destinations and workers (runner lock held unless said) --- */

static struct rdest *
dest_get(struct runner *r, const struct job *j)
{
	struct rdest *d;
	unsigned long h = hash_str(j->key) & (DEST_BUCKETS - 1);

	for (d = r->dtab[h]; d != NULL; d = d->hnext)
		if (strcmp(d->key, j->key) == 0)
			return d;
	if ((d = calloc(1, sizeof(*d))) == NULL)
		return NULL;
	str_lcpy(d->key, j->key, sizeof(d->key));
	str_lcpy(d->dest, j->dest, sizeof(d->dest));
	d->limit = j->route->concurrency ? j->route->concurrency : 1;
	d->hnext = r->dtab[h];
	r->dtab[h] = d;
	return d;
}

static struct job *
dest_pop(struct rdest *d)
{
	struct job *j = d->head;

	if (j == NULL)
		return NULL;
	d->head = j->next;
	if (d->head == NULL)
		d->tail = NULL;
	d->njobs--;
	j->next = NULL;
	return j;
}

/* Keeps d on the ready list exactly when a worker may take it. */
static void
dest_update(struct runner *r, struct rdest *d)
{
	int want = d->njobs > 0 && d->active < d->limit && !r->stopping;

	if (want == d->ready)
		return;
	if (want) {
		d->rprev = r->ready_tail;
		d->rnext = NULL;
		if (r->ready_tail != NULL)
			r->ready_tail->rnext = d;
		else
			r->ready_head = d;
		r->ready_tail = d;
	} else {
		if (d->rprev != NULL)
			d->rprev->rnext = d->rnext;
		else
			r->ready_head = d->rnext;
		if (d->rnext != NULL)
			d->rnext->rprev = d->rprev;
		else
			r->ready_tail = d->rprev;
		d->rprev = d->rnext = NULL;
	}
	d->ready = want;
}

/* Forgets d once nobody uses it. */
static void
dest_release(struct runner *r, struct rdest *d)
{
	struct rdest **pp;

	dest_update(r, d);
	if (d->njobs > 0 || d->active > 0 || d->ready)
		return;
	for (pp = &r->dtab[hash_str(d->key) & (DEST_BUCKETS - 1)]; *pp != NULL;
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
	time_t now = time(NULL);
	size_t i;
	int last;

	pthread_mutex_lock(&rd->mu);
	/* ar is NULL only with j->n == 0 (fail_job() out of memory). */
	for (i = 0; i < j->n; i++)
		/* cppcheck-suppress nullPointer */
		apply_result(rd, &rd->st->r[j->ridx[i]], &ar[i].res, now);
	last = --rd->jobs_left == 0;
	/* Other destinations still to go: keep what we know. */
	if (!last)
		(void)save_state(rd);
	pthread_mutex_unlock(&rd->mu);
	job_free(j);
	if (last)
		finish_round(rd);
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

static void *
worker_main(void *arg)
{
	struct runner *r = arg;
	const struct agent_ops *ops;
	struct agent_result res;
	struct rdest *d;
	struct rmsg *m;
	struct job *j;
	unsigned int count, max;
	void *sess;

	pthread_mutex_lock(&r->mu);
	for (;;) {
		while (!r->stopping && r->ready_head == NULL &&
		    r->load_head == NULL)
			pthread_cond_wait(&r->work_cv, &r->mu);
		if (r->stopping)
			break;
		/* Reading a message comes first: it makes the jobs. */
		if ((m = r->load_head) != NULL) {
			if ((r->load_head = m->lnext) == NULL)
				r->load_tail = NULL;
			m->lnext = NULL;
			pthread_mutex_unlock(&r->mu);
			load_round(r, m);
			pthread_mutex_lock(&r->mu);
			continue;
		}
		d = r->ready_head;
		d->active++;
		j = dest_pop(d);
		dest_update(r, d);
		max = r->qc->session_messages;
		pthread_mutex_unlock(&r->mu);

		ops = agent_for(j->route->action);
		memset(&res, 0, sizeof(res));
		sess = ops->open(j->route, d->dest, j->rd->m->id, j->rd->qc,
		    &res);
		if (sess == NULL) {
			/* Everybody waiting for d would meet the same fate. */
			fail_job(j, &res);
			pthread_mutex_lock(&r->mu);
			while ((j = dest_pop(d)) != NULL) {
				dest_update(r, d);
				pthread_mutex_unlock(&r->mu);
				fail_job(j, &res);
				pthread_mutex_lock(&r->mu);
			}
			d->active--;
			dest_release(r, d);
			continue;
		}
		for (count = 1; ; count++) {
			if (run_job(ops, sess, j) == -1 || count >= max)
				break;
			pthread_mutex_lock(&r->mu);
			j = r->stopping ? NULL : dest_pop(d);
			dest_update(r, d);
			pthread_mutex_unlock(&r->mu);
			if (j == NULL)
				break;
		}
		ops->close(&sess);
		pthread_mutex_lock(&r->mu);
		d->active--;
		dest_release(r, d);
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
	struct rmsg *m, *mn;
	struct kick *k;
	size_t i;

	/* Jobs nobody started: their rounds end without a result. */
	for (i = 0; i < DEST_BUCKETS; i++)
		for (d = r->dtab[i]; d != NULL; d = dn) {
			dn = d->hnext;
			while ((j = dest_pop(d)) != NULL) {
				rd = j->rd;
				job_free(j);
				if (--rd->jobs_left == 0)
					free_round(rd);
			}
			free(d);
		}
	for (i = 0; i < r->msize; i++)
		for (m = r->mtab[i]; m != NULL; m = mn) {
			mn = m->hnext;
			free(m);
		}
	while ((k = r->kicks) != NULL) {
		r->kicks = k->next;
		free(k);
	}
	free(r->mtab);
	free(r->heap);
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
	struct runner *r;
	size_t i;
	int e;

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	r->lockfd = r->fifofd = r->notifyfd = r->wakep[0] = r->wakep[1] = -1;
	r->dropwd = -1;
	r->once = once;
	r->qc = queueconf_ref(qc);
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->work_cv, NULL);
	pthread_cond_init(&r->done_cv, NULL);
	str_lcpy(r->spooldir, spooldir, sizeof(r->spooldir));
	r->msize = 1024;
	/* NOLINTNEXTLINE(bugprone-sizeof-expression): pointers */
	if ((r->mtab = calloc(r->msize, sizeof(*r->mtab))) == NULL) {
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
	if ((e = start_thread(&r->sched, sched_main, r)) != 0) {
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
			dest_update(r, d);
	pthread_cond_broadcast(&r->work_cv);
	if (r->wakep[1] != -1)
		wake_scheduler(r);
	pthread_mutex_unlock(&r->mu);
	if (r->sched_started)
		pthread_join(r->sched, NULL);
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
