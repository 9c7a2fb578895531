/*
 * The runner's scheduler: which message is due when.  Every queued message
 * is in a hash by id and, unless a round is under way or it is on hold, in
 * a heap by the time of its next attempt; one thread sleeps until the
 * first is due, a scan, or a request (runner_kick, the FIFO, inotify).
 */
#include "config.h"

#include <sys/types.h>
#ifdef HAVE_SYS_INOTIFY_H
#include <sys/inotify.h>
#endif

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/crypto.h>

#include "lib/log.h"
#include "lib/str.h"
#include "maildrop.h"
#include "qstore.h"
#include "runner_int.h"
#include "tlsrpt.h"

static struct rmsg	*msg_find(struct runner *, const char *);
static struct rmsg	*msg_add(struct runner *, const char *, time_t);
static struct rmsg	*heap_pop(struct runner *);
static void		 heap_fix(struct runner *, size_t);
static void		 wake_locked(struct runner *, const char *, time_t);
static void		 notice_locked(struct runner *, const char *, time_t);
static void		 kick(struct runner *, const char *, int);
static void		 scan_queue(struct runner *);
static void		 read_fifo(struct runner *, char *, size_t *);

unsigned long
runner_hash(const char *s)
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

	for (m = r->mtab[runner_hash(id) & (r->msize - 1)]; m != NULL;
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
					m->hnext = nt[runner_hash(m->id) &
					    (nsize - 1)];
					nt[runner_hash(m->id) & (nsize - 1)] = m;
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
	i = runner_hash(id) & (r->msize - 1);
	m->hnext = r->mtab[i];
	r->mtab[i] = m;
	r->nmsgs++;
	if (sched_push(r, m) == -1) {
		sched_forget(r, m);
		return NULL;
	}
	return m;
}

void
sched_forget(struct runner *r, struct rmsg *m)
{
	struct rmsg **pp;

	for (pp = &r->mtab[runner_hash(m->id) & (r->msize - 1)]; *pp != NULL;
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
int
sched_push(struct runner *r, struct rmsg *m)
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
	else if (sched_push(r, m) == -1)
		sched_forget(r, m);
}

/* Nudges the scheduler out of its sleep (runner lock held). */
void
sched_wakeup(struct runner *r)
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
	sched_wakeup(r);
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
				sched_wakeup(r);
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

void *
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

time_t
sched_backoff(const struct queue_conf *qc, unsigned int attempts)
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
