/*
 * The commit journal.  Messages up to JOURNAL_INLINE are kept in memory
 * while they arrive; at commit they are appended to the current segment,
 * a whole batch flushed with one fdatasync by the session that found no
 * flush under way (the others queued meanwhile wait for the next one).
 * That makes a commit cost a share of one sequential write and one flush,
 * where a file per message costs several scattered writes and flushes.
 * A writer thread then writes each journaled message out as its queue file
 * (batched, one syncfs), records in the segment's header how far it got
 * (the mark), and deletes a segment once all of its messages are safely in
 * queue/.  At start-up the journal is replayed from each segment's mark
 * (journal_replay.c).
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/net.h"
#include "lib/str.h"
#include "lib/thread.h"
#include "journal_int.h"
#include "spool.h"

static const struct journal_io system_io = { pwritev, fdatasync, rename };
const struct journal_io *journal_io = &system_io;

#define JOURNAL_BACKLOG_MAX	(256 * 1024 * 1024)	/* on disk */
#define JOURNAL_BATCH		512	/* records per flush */
#define WRITER_BATCH		1024	/* queue files per syncfs */
/*
 * Woken for new records less than WRITER_BUSY_MS after its last batch
 * (messages are streaming in), the writer lets more gather for
 * WRITER_LINGER_MS before it writes them out: bigger batches, fewer
 * flushes and wake-ups, for queue files some milliseconds later (the
 * messages are durable in the journal already).  Each syncfs writes the
 * inode, bitmap and directory blocks the batch touched, and competes at
 * the disk with the sessions' journal flushes: 50 ms rather than 5 took
 * 13-15 % more messages a second (bench/RESULTS.md).  A message that
 * comes alone is written out at once.
 */
#define WRITER_BUSY_MS		10
#define WRITER_LINGER_MS	50
/*
 * A commit not taken by the journal in this time is refused (4xx): long
 * enough for a disk that is only slow under load, well inside the ten
 * minutes a client waits for the reply to the end of data (RFC 5321
 * 4.5.3.2.6).
 */
#define JOURNAL_WAIT_SECS	120


struct jrec {
	struct jrec	*next;
	char		 id[SPOOL_ID_LEN + 1];
	unsigned char	 hdr[JOURNAL_HDR];	/* its check: crc ^ salt */
	uint32_t	 crc;
	struct str	 data;		/* the whole queue file, until journaled */
	struct segment	*seg;		/* where it is then, and at what offset */
	off_t		 off;
	size_t		 len;
	struct jwait	*wait;		/* the session's; NULL once durable */
};

/*
 * Makes the next segment file, with its header, from a spare or anew,
 * outside the lock: only the flush leader calls it.  Its fd for writing
 * records goes to *wfd.
 */
static struct segment *
segment_create(struct journal *j, int *wfd)
{
	unsigned char hdr[SEGMENT_HDR];
	char path[PATH_MAX];
	struct segment *s;
	int e;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->seq = j->nextseq++;
	s->fd = *wfd = -1;
	if (journal_segment_path(j, s->seq, path, sizeof(path)) == -1) {
		errno = ENAMETOOLONG;
		goto fail;
	}
	if ((s->fd = journal_spare_take(j, path, &s->salt)) == -1) {
		s->salt = journal_salt();
		journal_segment_header(hdr, s->salt);
		if ((s->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
		    0600)) == -1)
			goto fail;
		if (fs_write_all(s->fd, hdr, sizeof(hdr)) == -1)
			goto fail_unlink;
	}
	/* The name must survive a crash before records go into the file. */
	if (fs_sync_dir(j->dir) == -1 ||
	    (*wfd = open(path, O_WRONLY | O_CLOEXEC)) == -1)
		goto fail_unlink;
	return s;
fail_unlink:
	e = errno;
	(void)unlink(path);
	errno = e;
fail:
	e = errno;
	if (s->fd != -1)
		close(s->fd);
	free(s);
	errno = e;
	return NULL;
}

static struct segment *
current_segment(struct journal *j)
{
	struct segment *s = j->segs;

	while (s != NULL && s->next != NULL)
		s = s->next;
	return s;
}

/* Takes closed segments whose records are all in queue/ off the list. */
static struct segment *
segment_reap_take(struct journal *j)
{
	struct segment **pp, *s, *dead = NULL;

	for (pp = &j->segs; (s = *pp) != NULL;) {
		if (!s->closed || s->outstanding > 0) {
			pp = &s->next;
			continue;
		}
		*pp = s->next;
		s->next = dead;
		dead = s;
	}
	return dead;
}

/* Keeps as spares or deletes what segment_reap_take() took; unlocked. */
static void
segment_delete(struct journal *j, struct segment *dead)
{
	char path[PATH_MAX];
	struct segment *n;

	for (; dead != NULL; dead = n) {
		n = dead->next;
		if (journal_segment_path(j, dead->seq, path, sizeof(path)) == 0)
			journal_spare_put(j, path, dead->fd);
		close(dead->fd);
		free(dead);
	}
}

/*
 * Records in s's header that every record before off is in queue/: the
 * two slots take turns, so a torn write leaves the previous mark whole.
 */
static int
segment_mark(struct segment *s, off_t off)
{
	unsigned char slot[MARK_SLOT_LEN];
	uint32_t ctr = ++s->markctr;

	journal_put32(slot, ctr);
	journal_put32(slot + 4, (uint32_t)((unsigned long long)off & 0xffffffffu));
	journal_put32(slot + 8, (uint32_t)((unsigned long long)off >> 32));
	journal_put32(slot + 12, journal_crc32(0, slot, 12));
	if (pwrite(s->fd, slot, sizeof(slot), MARK_SLOT0 +
	    (off_t)(ctr & 1) * MARK_SLOT_LEN) != (ssize_t)sizeof(slot))
		return -1;
	return journal_io->fdatasync(s->fd);
}

/* The waits of a batch's sessions, to post once the batch is done. */
static int
batch_waits(struct jrec *batch, struct jwait **ws)
{
	struct jrec *r;
	int n = 0;

	for (r = batch; r != NULL; r = r->next) {
		ws[n++] = r->wait;
		r->wait = NULL;
	}
	return n;
}

/* Appends a batch at the current segment's end and flushes it. */
static int
append_batch(struct journal *j, struct jrec *batch, size_t *totalp)
{
	struct iovec iov[2 * JOURNAL_BATCH];
	struct jrec *r;
	size_t total = 0, done;
	int i = 0;
	ssize_t w;

	for (r = batch; r != NULL; r = r->next) {
		journal_put32(r->hdr + 8, r->crc ^ j->segsalt);
		iov[i].iov_base = r->hdr;
		iov[i++].iov_len = JOURNAL_HDR;
		iov[i].iov_base = r->data.s;
		iov[i++].iov_len = r->data.len;
		total += JOURNAL_HDR + r->data.len;
	}
	for (done = 0; done < total; done += (size_t)w) {
		struct iovec *v = iov;
		int nv = i;
		size_t skip = done;

		/* Resume a short write where it stopped (skip < total, so
		 * v stays within the filled iov). */
		/* NOLINTNEXTLINE: the analyzer loses the iov bound */
		while (skip >= v->iov_len) {
			skip -= v->iov_len;
			v++;
			nv--;
		}
		v->iov_base = (char *)v->iov_base + skip;
		v->iov_len -= skip;
		w = journal_io->pwritev(j->segfd, v, nv > IOV_MAX ? IOV_MAX : nv,
		    j->segoff + (off_t)done);
		v->iov_base = (char *)v->iov_base - skip;
		v->iov_len += skip;
		if (w <= 0) {
			if (w == 0)
				errno = EIO;
			return -1;
		}
	}
	*totalp = total;
	return journal_io->fdatasync(j->segfd);
}

/*
 * Starts a new segment when the current one is big, or when all it holds
 * is already in queue/.  The file work is done unlocked; a flush is
 * under way (cbusy), so nobody else touches segfd meanwhile.
 */
static int
maybe_rotate(struct journal *j, int need)
{
	struct segment *s, *t, *dead;
	int wfd, oldfd;

	if (!need)
		return 0;
	if ((s = segment_create(j, &wfd)) == NULL)
		return -1;
	pthread_mutex_lock(&j->mu);
	for (t = j->segs; t != NULL; t = t->next)
		t->closed = 1;
	if ((t = current_segment(j)) != NULL)
		t->next = s;
	else
		j->segs = s;
	oldfd = j->segfd;
	j->segfd = wfd;
	j->segsalt = s->salt;
	j->segoff = SEGMENT_HDR;
	dead = segment_reap_take(j);
	pthread_mutex_unlock(&j->mu);
	if (oldfd != -1)
		close(oldfd);
	segment_delete(j, dead);
	return 0;
}

/*
 * Leads one group commit: appends the records at the head of the queue
 * (the caller's own first) to the current segment and flushes them with
 * one fdatasync, tells their sessions, then passes the lead to the
 * session whose record is next in the queue, if any.  So the session
 * that finds no flush under way does it itself, without waking a thread
 * and sleeping, and those that queue meanwhile share the next flush.
 * Called with j->mu held and cbusy set; returns with j->mu held.  cbusy
 * stays set when the lead is passed on, so that no one else starts a
 * flush meanwhile.
 */
static void
group_commit(struct journal *j, struct jwait *self)
{
	struct jwait *ws[JOURNAL_BATCH], *next;
	struct jrec *batch, *r, *last;
	struct segment *cur;
	size_t total = 0;
	off_t off;
	int n, nw, e, rotate, wake_writer, i;

	/* Take up to a batch of waiting records. */
	batch = j->pend_head;
	last = batch;
	for (n = 1; n < JOURNAL_BATCH && last->next != NULL; n++)
		last = last->next;
	j->pend_head = last->next;
	if (j->pend_head == NULL)
		j->pend_tail = NULL;
	last->next = NULL;
	/*
	 * A segment that outlives its messages would only be read again
	 * after a crash: start afresh when all is written out.
	 */
	rotate = j->segfd == -1 || j->segoff > j->segmax ||
	    (j->segoff > SEGMENT_HDR && current_segment(j)->outstanding == 0);
	pthread_mutex_unlock(&j->mu);

	e = 0;
	if (maybe_rotate(j, rotate) == -1 ||
	    append_batch(j, batch, &total) == -1)
		e = errno;

	pthread_mutex_lock(&j->mu);
	/* The sessions free failed records themselves: no more use. */
	nw = batch_waits(batch, ws);
	wake_writer = 0;
	if (e != 0) {
		log_err("spool journal: %s", strerror(e));
		/* What we wrote may be torn: start a new segment. */
		if (j->segfd != -1) {
			close(j->segfd);
			j->segfd = -1;
		}
	} else {
		cur = current_segment(j);
		off = j->segoff;
		j->segoff += (off_t)total;
		j->journaled += (off_t)total;
		/* From here on the journal holds them: free the memory. */
		for (r = batch; r != NULL; r = r->next) {
			r->seg = cur;
			r->off = off + JOURNAL_HDR;
			r->len = r->data.len;
			off += (off_t)(JOURNAL_HDR + r->data.len);
			str_free(&r->data);
			cur->outstanding++;
		}
		/* The writer takes them over from here. */
		if (j->mat_tail != NULL)
			j->mat_tail->next = batch;
		else
			j->mat_head = batch;
		j->mat_tail = last;
		/* Only a writer waiting for work needs a wake-up. */
		wake_writer = j->widle;
		j->widle = 0;
	}
	/*
	 * The next record's session leads the next flush.  Its state is set
	 * under the lock: a session gives up on a record (its deadline) only
	 * under the lock and only while the state is still 0, so the one
	 * chosen is still there to lead.
	 */
	next = NULL;
	if (j->pend_head != NULL) {
		next = j->pend_head->wait;
		atomic_store_explicit(&next->state, JWAIT_LEAD,
		    memory_order_release);
	} else {
		j->cbusy = 0;
		if (j->stop)
			pthread_cond_broadcast(&j->quiet);
	}
	/* Our own outcome needs no wake-up. */
	for (i = 0; i < nw; i++)
		if (ws[i] == self) {
			self->err = e;
			atomic_store_explicit(&self->state, e != 0 ? -1 : 1,
			    memory_order_relaxed);
			ws[i] = ws[--nw];
			break;
		}
#ifdef JWAIT_FUTEX
	pthread_mutex_unlock(&j->mu);
	jwait_post_all(ws, nw, e != 0 ? -1 : 1, e);
	if (next != NULL && next != self)
		jwait_wake(next);
	if (wake_writer)
		pthread_cond_signal(&j->mat);
	pthread_mutex_lock(&j->mu);
#else
	jwait_post_all(ws, nw, e != 0 ? -1 : 1, e);
	if (next != NULL && next != self)
		jwait_wake(next);
	if (wake_writer)
		pthread_cond_signal(&j->mat);
#endif
}

/* Reads a record back from its segment and writes its queue file. */
static int
materialize(struct journal *j, const struct jrec *r)
{
	char *buf;
	ssize_t n;
	int rc, e;

	if ((buf = malloc(r->len ? r->len : 1)) == NULL)
		return -1;
	n = pread(r->seg->fd, buf, r->len, r->off);
	if (n != (ssize_t)r->len) {
		free(buf);
		errno = n == -1 ? errno : EIO;
		return -1;
	}
	rc = journal_write_file(j, r->id, buf, r->len);
	e = errno;
	free(buf);
	errno = e;
	return rc;
}

/*
 * Writes a batch out: queue files, one flush, renames, the directory,
 * then the marks.  Unlocked; the batch is the writer's alone.  0 or an
 * errno.
 */
static int
write_out(struct journal *j, struct jrec *batch)
{
	struct jrec *r;

	for (r = batch; r != NULL; r = r->next)
		if (materialize(j, r) == -1)
			return errno;
	/* One flush for the whole batch of new files. */
	if (journal_sync_all(j) == -1)
		return errno;
	for (r = batch; r != NULL; r = r->next)
		if (journal_publish_file(j, r->id) == -1)
			return errno;
	if (fsync(j->queuefd) == -1)
		return errno;
	/*
	 * Records are written out in journal order: mark each segment up to
	 * the end of its last one here, so that a replay skips them.  A
	 * failed mark costs duplicates after a crash, never a message.
	 */
	for (r = batch; r != NULL; r = r->next)
		if ((r->next == NULL || r->next->seg != r->seg) &&
		    segment_mark(r->seg, r->off + (off_t)r->len) == -1)
			log_warn("spool journal: mark: %s", strerror(errno));
	return 0;
}

/* Writes journaled messages out as queue files, in durable batches. */
static void *
writer_main(void *arg)
{
	struct journal *j = arg;
	struct jrec *batch, *r, *next;
	struct segment *dead;
	struct timespec dl;
	long long last_ms = -WRITER_BUSY_MS;	/* its last batch ended */
	size_t freed;
	int e, n, oldfd;

	(void)thread_batch();
	pthread_mutex_lock(&j->mu);
	for (;;) {
		if (j->mat_head == NULL && !j->wstop) {
			while (j->mat_head == NULL && !j->wstop) {
				j->widle = 1;
				pthread_cond_wait(&j->mat, &j->mu);
			}
			j->widle = 0;
			/* Let a batch gather; journal_close ends the wait. */
			if (net_now_ms() - last_ms < WRITER_BUSY_MS) {
				net_deadline_ts(&dl, WRITER_LINGER_MS);
				while (!j->wstop && pthread_cond_timedwait(
				    &j->mat, &j->mu, &dl) != ETIMEDOUT)
					;
			}
		}
		if (j->mat_head == NULL)
			break;
		batch = r = j->mat_head;
		for (n = 1; n < WRITER_BATCH && r->next != NULL; n++)
			r = r->next;
		j->mat_head = r->next;
		if (j->mat_head == NULL)
			j->mat_tail = NULL;
		r->next = NULL;
		pthread_mutex_unlock(&j->mu);

		if ((e = write_out(j, batch)) != 0) {
			/*
			 * The journal still holds every one of them: try
			 * again shortly rather than lose anything.  Until then
			 * new commits are refused with this error.
			 */
			pthread_mutex_lock(&j->mu);
			if (j->werr != e)
				log_err("spool: writing queue files: %s",
				    strerror(e));
			j->werr = e;
			pthread_cond_broadcast(&j->space);
			if (j->wstop) {
				/* The journal keeps them for the next start. */
				for (r = batch; r != NULL; r = next) {
					next = r->next;
					free(r);
				}
				while ((r = j->mat_head) != NULL) {
					j->mat_head = r->next;
					free(r);
				}
				break;
			}
			pthread_mutex_unlock(&j->mu);
			if (e == ENOSPC)
				journal_spares_drop(j);
			sleep(1);
			pthread_mutex_lock(&j->mu);
			for (r = batch; r->next != NULL; r = r->next)
				;
			r->next = j->mat_head;
			j->mat_head = batch;
			if (j->mat_tail == NULL)
				j->mat_tail = r;
			continue;
		}
		for (r = batch; r != NULL; r = r->next)
			if (j->published != NULL)
				j->published(j->arg, r->id);
		last_ms = net_now_ms();
		freed = 0;
		oldfd = -1;
		pthread_mutex_lock(&j->mu);
		if (j->werr != 0)
			log_info("spool: writing queue files again");
		j->werr = 0;
		for (r = batch; r != NULL; r = next) {
			next = r->next;
			r->seg->outstanding--;
			freed += r->len;
			free(r);
		}
		j->backlog -= freed;
		/*
		 * All quiet and everything in queue/: close the segment now,
		 * so that no journal outlives the messages it holds.
		 */
		if (!j->cbusy && j->pend_head == NULL && j->segfd != -1 &&
		    current_segment(j)->outstanding == 0) {
			oldfd = j->segfd;
			j->segfd = -1;
			current_segment(j)->closed = 1;
		}
		dead = segment_reap_take(j);
		pthread_cond_broadcast(&j->space);
		pthread_mutex_unlock(&j->mu);
		if (oldfd != -1)
			close(oldfd);
		segment_delete(j, dead);
		journal_spare_prepare(j);
		pthread_mutex_lock(&j->mu);
	}
	pthread_mutex_unlock(&j->mu);
	return NULL;
}

/* Takes r out of the flush queue if it is still there.  Locked. */
static int
unqueue(struct journal *j, struct jrec *r)
{
	struct jrec **pp, *prev = NULL;

	for (pp = &j->pend_head; *pp != NULL; prev = *pp, pp = &(*pp)->next) {
		if (*pp != r)
			continue;
		*pp = r->next;
		if (j->pend_tail == r)
			j->pend_tail = prev;
		return 1;
	}
	return 0;
}

/*
 * Gives up on r once its deadline passed, unless a flush has it already
 * (or its session was handed the lead).  With JWAIT_FUTEX unlocked, else
 * under j->mu.
 */
static void
give_up(struct journal *j, struct jrec *r, struct jwait *w)
{
#ifdef JWAIT_FUTEX
	pthread_mutex_lock(&j->mu);
#endif
	if (atomic_load(&w->state) == 0 && unqueue(j, r)) {
		w->err = ETIMEDOUT;
		atomic_store(&w->state, -1);
	}
#ifdef JWAIT_FUTEX
	pthread_mutex_unlock(&j->mu);
#endif
}

int
journal_commit(struct journal *j, const char *id, struct str *data)
{
	struct jwait w;
	struct timespec deadline;
	struct jrec *r;
	int e = 0, st, late = 0;

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		str_free(data);
		return -1;
	}
	atomic_init(&w.state, 0);
	w.err = 0;
#ifndef JWAIT_FUTEX
	if ((e = pthread_cond_init(&w.cv, &j->waitattr)) != 0) {
		free(r);
		str_free(data);
		errno = e;
		return -1;
	}
#endif
	r->wait = &w;
	str_lcpy(r->id, id, sizeof(r->id));
	r->data = *data;
	str_init(data, 0);
	memcpy(r->hdr, JOURNAL_MAGIC, 4);
	journal_put32(r->hdr + 4, (uint32_t)r->data.len);
	r->crc = journal_crc32(0, (const unsigned char *)r->data.s,
	    r->data.len);
	net_deadline_ts(&deadline, JOURNAL_WAIT_SECS * 1000LL);

	pthread_mutex_lock(&j->mu);
	/*
	 * While the writer cannot write queue files (a full disk) the
	 * journal would only grow: refuse at once, with its error.  When it
	 * merely lags, wait for it, but not beyond the deadline.
	 */
	for (;;) {
		if (j->stop)
			e = ESHUTDOWN;
		else if (j->werr != 0)
			e = j->werr;
		else if (j->backlog > JOURNAL_BACKLOG_MAX)
			e = pthread_cond_timedwait(&j->space, &j->mu,
			    &deadline) == ETIMEDOUT ? ETIMEDOUT : 0;
		else
			break;
		if (e != 0)
			goto refused;
	}
	j->backlog += r->data.len;
	if (j->pend_tail != NULL)
		j->pend_tail->next = r;
	else
		j->pend_head = r;
	j->pend_tail = r;
	/* No flush under way: ours is the first record, we flush. */
	if (!j->cbusy) {
		j->cbusy = 1;
		atomic_store_explicit(&w.state, JWAIT_LEAD,
		    memory_order_relaxed);
	}
#ifdef JWAIT_FUTEX
	pthread_mutex_unlock(&j->mu);
#endif
	for (;;) {
		st = atomic_load_explicit(&w.state, memory_order_acquire);
		if (st == JWAIT_LEAD) {
#ifdef JWAIT_FUTEX
			pthread_mutex_lock(&j->mu);
#endif
			group_commit(j, &w);
#ifdef JWAIT_FUTEX
			pthread_mutex_unlock(&j->mu);
#endif
			continue;
		}
		if (st != 0)
			break;
		/* Past the deadline: only a flush that has it can end it. */
		if (jwait_wait(j, &w, late ? NULL : &deadline) == 0) {
			late = 1;
			give_up(j, r, &w);
		}
	}
	if (st == -1) {
		/* Failed records are ours to free; durable ones the writer's. */
#ifdef JWAIT_FUTEX
		pthread_mutex_lock(&j->mu);
#endif
		j->backlog -= r->data.len;
		pthread_cond_broadcast(&j->space);
		e = w.err;
		goto refused;
	}
#ifndef JWAIT_FUTEX
	pthread_mutex_unlock(&j->mu);
	pthread_cond_destroy(&w.cv);
#endif
	return 0;
refused:
	pthread_mutex_unlock(&j->mu);
#ifndef JWAIT_FUTEX
	pthread_cond_destroy(&w.cv);
#endif
	str_free(&r->data);
	free(r);
	errno = e;
	return -1;
}

/* Starts a journal thread; signals belong to the daemon's main thread. */
static int
start_thread(pthread_t *t, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	int e;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	e = pthread_create(t, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return e;
}

static void
journal_free(struct journal *j)
{
	if (j->queuefd != -1)
		close(j->queuefd);
	if (j->lockfd != -1)
		close(j->lockfd);
	free(j);
}

struct journal *
journal_open(const char *dir, journal_published_fn fn, void *arg, char *err,
    size_t errlen)
{
	pthread_condattr_t ca;
	struct journal *j;

	if ((j = calloc(1, sizeof(*j))) == NULL) {
		snprintf(err, errlen, "spool: out of memory");
		return NULL;
	}
	j->queuefd = j->lockfd = j->segfd = -1;
	j->published = fn;
	j->arg = arg;
	if (journal_take(j, dir, err, errlen) == -1)
		goto fail;
	j->segmax = JOURNAL_SEGMENT_MAX;
	journal_spares_load(j, 1);
	pthread_mutex_init(&j->mu, NULL);
	pthread_cond_init(&j->quiet, NULL);
	/* Sessions and the writer wait with deadlines on the monotonic clock. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&j->mat, &ca);
	pthread_cond_init(&j->space, &ca);
	pthread_condattr_destroy(&ca);
	pthread_condattr_init(&j->waitattr);
	pthread_condattr_setclock(&j->waitattr, CLOCK_MONOTONIC);
	if (start_thread(&j->writer, writer_main, j) != 0) {
		snprintf(err, errlen, "spool: cannot start the queue writer");
		goto fail_sync;
	}
	return j;
fail_sync:
	pthread_mutex_destroy(&j->mu);
	pthread_cond_destroy(&j->quiet);
	pthread_condattr_destroy(&j->waitattr);
	pthread_cond_destroy(&j->mat);
	pthread_cond_destroy(&j->space);
fail:
	journal_free(j);
	return NULL;
}

void
journal_close(struct journal **jp)
{
	struct journal *j = *jp;
	struct segment *s;

	if (j == NULL)
		return;
	*jp = NULL;
	pthread_mutex_lock(&j->mu);
	j->stop = 1;
	pthread_cond_broadcast(&j->space);
	/* The flushes under way end with their batches in the writer's. */
	while (j->cbusy)
		pthread_cond_wait(&j->quiet, &j->mu);
	j->wstop = 1;
	pthread_cond_broadcast(&j->mat);
	pthread_mutex_unlock(&j->mu);
	pthread_join(j->writer, NULL);
	if (j->segfd != -1)
		close(j->segfd);
	/* Segments with records not yet written out stay for the replay. */
	for (s = j->segs; s != NULL; s = s->next)
		s->closed = 1;
	segment_delete(j, segment_reap_take(j));
	while ((s = j->segs) != NULL) {
		j->segs = s->next;
		close(s->fd);
		free(s);
	}
	pthread_mutex_destroy(&j->mu);
	pthread_cond_destroy(&j->quiet);
	pthread_condattr_destroy(&j->waitattr);
	pthread_cond_destroy(&j->mat);
	pthread_cond_destroy(&j->space);
	journal_free(j);
}
