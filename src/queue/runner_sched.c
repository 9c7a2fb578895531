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

#include "lib/log.h"
#include "lib/str.h"
#include "maildrop.h"
#include "qstore.h"
#include "runner_int.h"
#include "tlsrpt.h"

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

/* Makes id due now (runner lock held). */
static void
wake_locked(struct runner *r, const char *id, time_t now)
{
	struct sched_msg *m;

	if ((m = sched_find(&r->q, id)) == NULL) {
		if (qstore_valid_id(id) && sched_add(&r->q, id, now) == NULL)
			log_err("queue: out of memory; %s waits for a rescan",
			    id);
		return;
	}
	(void)sched_wake(&r->q, m);
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
	if (sched_find(&r->q, id) == NULL && qstore_valid_id(id) &&
	    sched_add(&r->q, id, now) == NULL)
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
	time_t now = sched_now(&r->q);

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
		if (sched_find(&r->q, ids[i]) == NULL &&
		    sched_add(&r->q, ids[i], now) == NULL) {
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
	time_t now = sched_now(&r->q);
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
	struct sched_msg *m;
	struct pollfd pfd[3];
	char fifobuf[FIFO_LINE_MAX], drain[64];
	size_t fifolen = 0, i;
	time_t now, next_scan, due = 0;
	long long wait_ms;
	int scan, all, any;

	qstore_clean_orphans(r->qs);
	scan_queue(r);
	now = sched_now(&r->q);
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
		now = sched_now(&r->q);
		if (scan || now >= next_scan) {
			pthread_mutex_unlock(&r->mu);
			scan_queue(r);
			pthread_mutex_lock(&r->mu);
			next_scan = now + (time_t)r->qc->scan_interval;
		}
		if (all)
			for (i = 0; i < r->q.msize; i++)
				for (m = r->q.mtab[i]; m != NULL; m = m->hnext)
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
		while (!r->stopping && r->busy_rounds < r->max_rounds &&
		    (m = sched_pop_due(&r->q)) != NULL) {
			m->busy = 1;
			r->busy_rounds++;
			TAILQ_INSERT_TAIL(&r->load, m, lentry);
			pthread_cond_signal(&r->work_cv);
		}
		any = sched_next_due(&r->q, &due);
		if (r->once && r->busy_rounds == 0 && (!any || due > now)) {
			r->once_done = 1;
			pthread_cond_broadcast(&r->done_cv);
			break;
		}

		/*
		 * Sleep until the next due message, a scan or a request; when
		 * due messages wait for rounds to end, until one ends.
		 */
		r->throttled = any && due <= now;
		r->sleep_until = next_scan;
		if (!r->throttled && any && due < r->sleep_until)
			r->sleep_until = due;
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
