#include "config.h"

#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/crypto.h>

#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/str.h"
#include "spool.h"

#define SPOOL_BUF	16384
#define SPOOL_VERSION	"smtpd-spool 1"

/*
 * The journal.  Messages up to JOURNAL_INLINE are kept in memory while
 * they arrive; at commit they are appended to the current journal segment
 * by one committer thread, which flushes a whole batch with one fdatasync.
 * That makes a commit cost a share of one sequential write and one flush,
 * where a file per message costs several scattered writes and flushes.
 * A second thread then writes each journaled message out as its queue file
 * (batched, one syncfs), and deletes a segment once all of its messages
 * are safely in queue/.  At start-up the journal is replayed.
 */
#define JOURNAL_INLINE		(128 * 1024)
#define JOURNAL_SEGMENT_MAX	(32 * 1024 * 1024)
#define JOURNAL_BACKLOG_MAX	(256 * 1024 * 1024)	/* on disk */
#define JOURNAL_BATCH		512
#define JOURNAL_MAGIC		"SJR1"
#define JOURNAL_HDR		12	/* magic, length, crc32 */
#define JOURNAL_RECORD_MAX	(JOURNAL_INLINE + 1024 * 1024)

struct segment {
	struct segment	*next;
	int		 rfd;		/* for the writer to read records back */
	unsigned long long seq;
	unsigned int	 outstanding;	/* records not yet in queue/ */
	int		 closed;	/* no more records will be added */
};

/*
 * A session's wait for its record.  It lives on the session's stack: a
 * durable record belongs to the writer thread, which may free it before
 * the session wakes up to look.
 */
struct jwait {
	int		 state;		/* 0 waiting, 1 durable, -1 failed */
	int		 err;
};

struct jrec {
	struct jrec	*next;
	char		 id[SPOOL_ID_LEN + 1];
	unsigned char	 hdr[JOURNAL_HDR];
	struct str	 data;		/* the whole queue file, until journaled */
	struct segment	*seg;		/* where it is then, and at what offset */
	off_t		 off;
	size_t		 len;
	struct jwait	*wait;		/* the session's; NULL once durable */
};

struct spool {
	char		 dir[PATH_MAX];
	char		 tmpdir[PATH_MAX];
	char		 queuedir[PATH_MAX];
	int		 queuefd;	/* the queue directory, for fsync */

	/*
	 * Group commit of the queue directory for messages written as files:
	 * each committer bumps requested; one of them fsyncs for everybody
	 * who asked before it started, the rest wait for synced.
	 */
	pthread_mutex_t	 mu;
	pthread_cond_t	 cv;
	unsigned long	 requested, synced;
	int		 syncing;
	int		 sync_error;
	unsigned long	 failed_upto;

	/* The journal, when this process owns it (SPOOL_JOURNAL). */
	int		 journal;
	int		 lockfd;
	char		 jdir[PATH_MAX];
	char		 jtmpdir[PATH_MAX];
	pthread_t	 committer, writer;
	pthread_mutex_t	 jmu;
	pthread_cond_t	 jwork;		/* committer: records to write */
	pthread_cond_t	 jdone;		/* sessions: a batch is durable */
	pthread_cond_t	 jmat;		/* writer: records to materialize */
	pthread_cond_t	 jspace;	/* sessions: backlog went down */
	struct jrec	*pend_head, *pend_tail;
	struct jrec	*mat_head, *mat_tail;
	size_t		 backlog;	/* bytes not yet in queue/ */
	int		 jstop;
	int		 cbusy;		/* the committer is writing a batch */
	int		 segfd;
	off_t		 segoff;
	struct segment	*segs;		/* oldest first; last is current */
	unsigned long long nextseq;

	spool_hook_fn	 hook;		/* told of each message in queue/ */
	void		*hook_arg;
};

struct spool_msg {
	struct spool	*sp;
	size_t		 envlen;	/* bytes of envelope before the message */
	int		 fd;		/* -1 while held in memory */
	int		 failed;
	char		 id[SPOOL_ID_LEN + 1];
	char		 tmppath[PATH_MAX];
	struct str	 mem;		/* journal mode: the message so far */
	char		 buf[SPOOL_BUF];
	size_t		 buflen;
};

static int	spool_flush(struct spool_msg *);
static int	spool_sync_queue(struct spool *);
static int	spool_to_file(struct spool_msg *);
static int	commit_file(struct spool_msg *);
static int	commit_journal(struct spool_msg *);
static void	clean_tmp(const char *, int all);
static void	call_hook(struct spool *, const char *);
static void	put_clean(struct str *, const char *);
static void	put_line(struct str *, const char *, const char *);
static void	put_path(struct str *, const char *, const char *);
static uint32_t	crc32_update(uint32_t, const unsigned char *, size_t);
static int	journal_open(struct spool *, char *, size_t);
static void	journal_close(struct spool *);
static int	journal_replay(struct spool *, char *, size_t);
static void	*committer_main(void *);
static void	*writer_main(void *);
static int	materialize(struct spool *, const struct jrec *);
static int	write_queue_file(struct spool *, const char *id, const char *,
		    size_t, int sync);

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void
crc_init(void)
{
	uint32_t c;
	int i, k;

	for (i = 0; i < 256; i++) {
		c = (uint32_t)i;
		for (k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

/* CRC-32 (IEEE 802.3), to spot a torn journal record after a crash. */
static uint32_t
crc32_update(uint32_t crc, const unsigned char *p, size_t n)
{
	(void)pthread_once(&crc_once, crc_init);
	crc = ~crc;
	while (n-- > 0)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

static void
put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static uint32_t
get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

void
spool_new_id(char *buf)
{
	static const char b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
	struct timespec ts;
	unsigned long long t;
	unsigned int rnd = 0;
	int i;

	clock_gettime(CLOCK_REALTIME, &ts);
	t = (unsigned long long)ts.tv_sec * 1000000ULL +
	    (unsigned long long)ts.tv_nsec / 1000ULL;
	if (gnutls_rnd(GNUTLS_RND_NONCE, &rnd, sizeof(rnd)) != 0)
		rnd = (unsigned int)ts.tv_nsec ^ (unsigned int)getpid();
	/* 11 characters of microseconds (sortable), 5 of randomness. */
	for (i = 10; i >= 0; i--) {
		buf[i] = b32[t & 31];
		t >>= 5;
	}
	for (i = 11; i < SPOOL_ID_LEN; i++) {
		buf[i] = b32[rnd & 31];
		rnd >>= 5;
	}
	buf[SPOOL_ID_LEN] = '\0';
}

/*
 * Removes files nobody is writing: a writer holds a lock on its temporary
 * file, so a file we can lock was left behind by a crash.  all: remove
 * without asking (a directory only this process uses).
 */
static void
clean_tmp(const char *dir, int all)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int fd;

	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir,
		    de->d_name) >= sizeof(path))
			continue;
		if (!all) {
			fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
			if (fd == -1)
				continue;
			if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
				close(fd);
				continue;
			}
			(void)unlink(path);
			close(fd);
		} else
			(void)unlink(path);
	}
	closedir(d);
}

struct spool *
spool_open(const char *dir, int flags, char *err, size_t errlen)
{
	struct spool *sp;

	if ((sp = calloc(1, sizeof(*sp))) == NULL) {
		snprintf(err, errlen, "spool: out of memory");
		return NULL;
	}
	sp->queuefd = -1;
	sp->lockfd = -1;
	sp->segfd = -1;
	if (str_lcpy(sp->dir, dir, sizeof(sp->dir)) >= sizeof(sp->dir) ||
	    (size_t)snprintf(sp->tmpdir, sizeof(sp->tmpdir), "%s/tmp", dir) >=
	    sizeof(sp->tmpdir) ||
	    (size_t)snprintf(sp->queuedir, sizeof(sp->queuedir), "%s/queue",
	    dir) >= sizeof(sp->queuedir) ||
	    (size_t)snprintf(sp->jdir, sizeof(sp->jdir), "%s/journal", dir) >=
	    sizeof(sp->jdir) ||
	    (size_t)snprintf(sp->jtmpdir, sizeof(sp->jtmpdir), "%s/journal/tmp",
	    dir) >= sizeof(sp->jtmpdir)) {
		snprintf(err, errlen, "spool %.100s: path too long", dir);
		goto fail;
	}
	if (fs_mkdirs(sp->tmpdir, 0700) == -1 ||
	    fs_mkdirs(sp->queuedir, 0700) == -1 ||
	    fs_mkdirs(sp->jtmpdir, 0700) == -1) {
		snprintf(err, errlen, "spool %.200s: %s", dir, strerror(errno));
		goto fail;
	}
	sp->queuefd = open(sp->queuedir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sp->queuefd == -1) {
		snprintf(err, errlen, "spool %.200s: %s", sp->queuedir,
		    strerror(errno));
		goto fail;
	}
	pthread_mutex_init(&sp->mu, NULL);
	pthread_cond_init(&sp->cv, NULL);
	/* Whatever is in tmp/ and unlocked was never acknowledged. */
	clean_tmp(sp->tmpdir, 0);
	if ((flags & SPOOL_JOURNAL) && journal_open(sp, err, errlen) == -1) {
		close(sp->queuefd);
		pthread_mutex_destroy(&sp->mu);
		pthread_cond_destroy(&sp->cv);
		goto fail;
	}
	return sp;
fail:
	if (sp->queuefd != -1)
		close(sp->queuefd);
	free(sp);
	return NULL;
}

void
spool_close(struct spool **spp)
{
	struct spool *sp = *spp;

	if (sp == NULL)
		return;
	*spp = NULL;
	if (sp->journal)
		journal_close(sp);
	close(sp->queuefd);
	pthread_mutex_destroy(&sp->mu);
	pthread_cond_destroy(&sp->cv);
	free(sp);
}

const char *
spool_dir(const struct spool *sp)
{
	return sp->dir;
}

void
spool_set_hook(struct spool *sp, spool_hook_fn fn, void *arg)
{
	pthread_mutex_lock(&sp->mu);
	sp->hook = fn;
	sp->hook_arg = arg;
	pthread_mutex_unlock(&sp->mu);
}

/* Tells whoever asked (the queue runner) that queue/ID exists now. */
static void
call_hook(struct spool *sp, const char *id)
{
	spool_hook_fn fn;
	void *arg;

	pthread_mutex_lock(&sp->mu);
	fn = sp->hook;
	arg = sp->hook_arg;
	pthread_mutex_unlock(&sp->mu);
	if (fn != NULL)
		fn(arg, id);
}

/* Envelope values are one line each: control characters become '?'. */
static void
put_clean(struct str *s, const char *val)
{
	const char *p;

	for (p = val; *p != '\0'; p++)
		(void)str_appendc(s, (unsigned char)*p < 0x20 || *p == 0x7f ?
		    '?' : *p);
}

static void
put_line(struct str *s, const char *key, const char *val)
{
	(void)str_appends(s, key);
	(void)str_appendc(s, ' ');
	put_clean(s, val);
	(void)str_appendc(s, '\n');
}

static void
put_path(struct str *s, const char *key, const char *mailbox)
{
	(void)str_appends(s, key);
	(void)str_appends(s, " <");
	put_clean(s, mailbox);
	(void)str_appends(s, ">\n");
}

/* Creates the message's temporary file, locked against the tmp cleaner. */
static int
open_tmp(struct spool_msg *m)
{
	int tries;

	for (tries = 0; tries < 10; tries++) {
		/* Once the envelope names the id, the id may not change. */
		if (tries > 0 && m->mem.len > 0) {
			errno = EEXIST;
			return -1;
		}
		if (tries > 0 || m->id[0] == '\0')
			spool_new_id(m->id);
		if ((size_t)snprintf(m->tmppath, sizeof(m->tmppath), "%s/%s",
		    m->sp->tmpdir, m->id) >= sizeof(m->tmppath)) {
			errno = ENAMETOOLONG;
			return -1;
		}
		/* Group-readable for mailq where the admin gives queue/ the
		 * maildrop group (smtpd-spool(5)); the directories are 0700. */
		m->fd = open(m->tmppath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		    0640);
		if (m->fd != -1)
			break;
		if (errno != EEXIST)
			return -1;
	}
	if (m->fd == -1)
		return -1;
	if (flock(m->fd, LOCK_EX) == -1) {
		int e = errno;

		close(m->fd);
		m->fd = -1;
		(void)unlink(m->tmppath);
		errno = e;
		return -1;
	}
	return 0;
}

struct spool_msg *
spool_begin(struct spool *sp, const struct spool_envelope *env)
{
	struct spool_msg *m;
	struct str hdr;
	char num[32];
	size_t i;

	if ((m = malloc(sizeof(*m))) == NULL)
		return NULL;
	m->sp = sp;
	m->failed = 0;
	m->buflen = 0;
	m->fd = -1;
	m->id[0] = '\0';
	m->tmppath[0] = '\0';
	str_init(&m->mem, JOURNAL_INLINE);
	if (sp->journal)
		spool_new_id(m->id);
	else if (open_tmp(m) == -1) {
		free(m);
		return NULL;
	}

	str_init(&hdr, 1024 * 1024);
	(void)str_appends(&hdr, SPOOL_VERSION "\n");
	put_line(&hdr, "id", m->id);
	snprintf(num, sizeof(num), "%lld", (long long)env->arrival);
	put_line(&hdr, "arrival", num);
	put_path(&hdr, "from", env->sender);
	for (i = 0; i < env->nrcpts; i++) {
		(void)str_appends(&hdr, "rcpt <");
		put_clean(&hdr, env->rcpts[i].addr);
		(void)str_appendc(&hdr, '>');
		if (env->rcpts[i].notify != NULL) {
			(void)str_appends(&hdr, " notify=");
			put_clean(&hdr, env->rcpts[i].notify);
		}
		if (env->rcpts[i].orcpt != NULL) {
			(void)str_appends(&hdr, " orcpt=");
			put_clean(&hdr, env->rcpts[i].orcpt);
		}
		(void)str_appendc(&hdr, '\n');
	}
	if (env->ret != NULL)
		put_line(&hdr, "ret", env->ret);
	if (env->envid != NULL)
		put_line(&hdr, "envid", env->envid);
	if (env->auth != NULL)
		put_line(&hdr, "auth", env->auth);
	if (env->helo != NULL)
		put_line(&hdr, "helo", env->helo);
	if (env->peer_addr != NULL)
		put_line(&hdr, "peer", env->peer_addr);
	if (env->peer_name != NULL)
		put_line(&hdr, "peer-name", env->peer_name);
	if (env->protocol != NULL)
		put_line(&hdr, "protocol", env->protocol);
	if (env->body != NULL)
		put_line(&hdr, "body", env->body);
	if (env->smtputf8)
		(void)str_appends(&hdr, "smtputf8\n");
	if (env->user != NULL)
		put_line(&hdr, "user", env->user);
	m->envlen = hdr.len + 1;
	if (str_appendc(&hdr, '\n') == -1 ||
	    spool_write(m, hdr.s, hdr.len) == -1) {
		str_free(&hdr);
		spool_abort(&m);
		errno = ENOMEM;
		return NULL;
	}
	str_free(&hdr);
	return m;
}

const char *
spool_msg_id(const struct spool_msg *m)
{
	return m->id;
}

static int
spool_flush(struct spool_msg *m)
{
	if (m->buflen == 0)
		return 0;
	if (fs_write_all(m->fd, m->buf, m->buflen) == -1) {
		m->failed = errno;
		return -1;
	}
	m->buflen = 0;
	return 0;
}

/* A message too big for the journal goes on as a file. */
static int
spool_to_file(struct spool_msg *m)
{
	if (open_tmp(m) == -1 ||
	    fs_write_all(m->fd, m->mem.s, m->mem.len) == -1) {
		m->failed = errno;
		return -1;
	}
	str_free(&m->mem);
	return 0;
}

int
spool_write(struct spool_msg *m, const void *p, size_t n)
{
	if (m->failed) {
		errno = m->failed;
		return -1;
	}
	if (m->fd == -1) {
		if (str_append(&m->mem, p, n) == 0)
			return 0;
		if (spool_to_file(m) == -1)
			return -1;
	}
	if (m->buflen + n > sizeof(m->buf)) {
		if (spool_flush(m) == -1)
			return -1;
		if (n >= sizeof(m->buf)) {
			if (fs_write_all(m->fd, p, n) == -1) {
				m->failed = errno;
				return -1;
			}
			return 0;
		}
	}
	memcpy(m->buf + m->buflen, p, n);
	m->buflen += n;
	return 0;
}

/*
 * fsyncs the queue directory on behalf of every committer that has renamed
 * its file before the sync starts.  0 or -1 (errno set).
 */
static int
spool_sync_queue(struct spool *sp)
{
	unsigned long mine, upto;
	int r = 0, e;

	pthread_mutex_lock(&sp->mu);
	mine = ++sp->requested;
	while (sp->synced < mine) {
		if (sp->syncing) {
			pthread_cond_wait(&sp->cv, &sp->mu);
			continue;
		}
		sp->syncing = 1;
		upto = sp->requested;
		pthread_mutex_unlock(&sp->mu);
		e = fsync(sp->queuefd) == -1 ? errno : 0;
		pthread_mutex_lock(&sp->mu);
		sp->syncing = 0;
		sp->synced = upto;
		if (e != 0) {
			sp->sync_error = e;
			sp->failed_upto = upto;
		}
		pthread_cond_broadcast(&sp->cv);
	}
	if (sp->failed_upto >= mine && sp->sync_error != 0) {
		errno = sp->sync_error;
		r = -1;
	}
	pthread_mutex_unlock(&sp->mu);
	return r;
}

/* write, fdatasync, rename into queue/, fsync the directory. */
static int
commit_file(struct spool_msg *m)
{
	char qpath[PATH_MAX];
	int e;

	if (spool_flush(m) == -1 || fdatasync(m->fd) == -1)
		goto fail;
	if ((size_t)snprintf(qpath, sizeof(qpath), "%s/%s", m->sp->queuedir,
	    m->id) >= sizeof(qpath)) {
		errno = ENAMETOOLONG;
		goto fail;
	}
	if (rename(m->tmppath, qpath) == -1)
		goto fail;
	/* The lock goes with the close; the file is in queue/ by now. */
	if (close(m->fd) == -1) {
		m->fd = -1;
		e = errno;
		(void)unlink(qpath);
		errno = e;
		return -1;
	}
	m->fd = -1;
	if (spool_sync_queue(m->sp) == -1) {
		/*
		 * The rename may or may not survive a crash: take the
		 * message back so the client's retry is the only copy.
		 */
		e = errno;
		(void)unlink(qpath);
		errno = e;
		return -1;
	}
	call_hook(m->sp, m->id);
	return 0;
fail:
	e = errno;
	(void)unlink(m->tmppath);
	errno = e;
	return -1;
}

/* Hands the message to the committer and waits until it is durable. */
static int
commit_journal(struct spool_msg *m)
{
	struct spool *sp = m->sp;
	struct jwait w = { 0, 0 };
	struct jrec *r;
	int state, e;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return -1;
	r->wait = &w;
	memcpy(r->id, m->id, sizeof(r->id));
	r->data = m->mem;
	str_init(&m->mem, 0);
	memcpy(r->hdr, JOURNAL_MAGIC, 4);
	put32(r->hdr + 4, (uint32_t)r->data.len);
	put32(r->hdr + 8, crc32_update(0, (const unsigned char *)r->data.s,
	    r->data.len));

	pthread_mutex_lock(&sp->jmu);
	/* Back-pressure: the queue-file writer must keep up. */
	while (sp->backlog > JOURNAL_BACKLOG_MAX && !sp->jstop)
		pthread_cond_wait(&sp->jspace, &sp->jmu);
	if (sp->jstop) {
		pthread_mutex_unlock(&sp->jmu);
		str_free(&r->data);
		free(r);
		errno = ESHUTDOWN;
		return -1;
	}
	sp->backlog += r->data.len;
	if (sp->pend_tail != NULL)
		sp->pend_tail->next = r;
	else
		sp->pend_head = r;
	sp->pend_tail = r;
	pthread_cond_signal(&sp->jwork);
	while (w.state == 0)
		pthread_cond_wait(&sp->jdone, &sp->jmu);
	state = w.state;
	e = w.err;
	if (state == -1) {
		/* Failed records are ours to free; durable ones the writer's. */
		sp->backlog -= r->data.len;
		pthread_cond_broadcast(&sp->jspace);
		pthread_mutex_unlock(&sp->jmu);
		str_free(&r->data);
		free(r);
		errno = e;
		return -1;
	}
	pthread_mutex_unlock(&sp->jmu);
	return 0;
}

int
spool_commit(struct spool_msg **mp)
{
	struct spool_msg *m = *mp;
	int r, e;

	*mp = NULL;
	if (m->failed) {
		e = m->failed;
		if (m->fd != -1) {
			close(m->fd);
			(void)unlink(m->tmppath);
		}
		str_free(&m->mem);
		free(m);
		errno = e;
		return -1;
	}
	if (m->fd == -1)
		r = commit_journal(m);
	else
		r = commit_file(m);
	e = errno;
	if (m->fd != -1)
		close(m->fd);
	str_free(&m->mem);
	free(m);
	errno = e;
	return r;
}

void
spool_abort(struct spool_msg **mp)
{
	struct spool_msg *m = *mp;

	if (m == NULL)
		return;
	*mp = NULL;
	if (m->fd != -1) {
		(void)unlink(m->tmppath);
		close(m->fd);
	}
	str_free(&m->mem);
	free(m);
}

/*
 * Writes a queue file through the journal's own temporary directory.  The
 * caller makes it durable (sync) or batches that itself.  0 or -1.
 */
static int
write_queue_file(struct spool *sp, const char *id, const char *data,
    size_t len, int sync)
{
	char tmp[PATH_MAX], path[PATH_MAX];
	int fd, e;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s/%s", sp->jtmpdir, id) >=
	    sizeof(tmp) ||
	    (size_t)snprintf(path, sizeof(path), "%s/%s", sp->queuedir, id) >=
	    sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd == -1)
		return -1;
	if (fs_write_all(fd, data, len) == -1 || (sync && fdatasync(fd) == -1)) {
		e = errno;
		close(fd);
		(void)unlink(tmp);
		errno = e;
		return -1;
	}
	if (close(fd) == -1) {
		e = errno;
		(void)unlink(tmp);
		errno = e;
		return -1;
	}
	return 0;
}

/* Moves a written queue file from journal/tmp into queue/. */
static int
publish_queue_file(struct spool *sp, const char *id)
{
	char tmp[PATH_MAX], path[PATH_MAX];

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s/%s", sp->jtmpdir, id) >=
	    sizeof(tmp) ||
	    (size_t)snprintf(path, sizeof(path), "%s/%s", sp->queuedir, id) >=
	    sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return rename(tmp, path);
}

static int
segment_path(const struct spool *sp, unsigned long long seq, char *buf,
    size_t len)
{
	return (size_t)snprintf(buf, len, "%s/%012llu.j", sp->jdir, seq) >= len ?
	    -1 : 0;
}

/* Opens a fresh segment; the previous one takes no more records. */
static int
segment_rotate(struct spool *sp)
{
	char path[PATH_MAX];
	struct segment *s, **tail;
	int fd;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return -1;
	s->seq = sp->nextseq++;
	if (segment_path(sp, s->seq, path, sizeof(path)) == -1 ||
	    (fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) ==
	    -1) {
		free(s);
		return -1;
	}
	/* The new name must survive a crash before records go into it. */
	if (fs_sync_dir(sp->jdir) == -1 ||
	    (s->rfd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		close(fd);
		(void)unlink(path);
		free(s);
		return -1;
	}
	if (sp->segfd != -1)
		close(sp->segfd);
	for (tail = &sp->segs; *tail != NULL; tail = &(*tail)->next)
		(*tail)->closed = 1;
	*tail = s;
	sp->segfd = fd;
	sp->segoff = 0;
	return 0;
}

static struct segment *
current_segment(struct spool *sp)
{
	struct segment *s = sp->segs;

	while (s != NULL && s->next != NULL)
		s = s->next;
	return s;
}

/* Deletes closed segments whose records are all in queue/.  Locked. */
static void
segment_reap(struct spool *sp)
{
	char path[PATH_MAX];
	struct segment **sp_, *s;

	for (sp_ = &sp->segs; (s = *sp_) != NULL;) {
		if (!s->closed || s->outstanding > 0) {
			sp_ = &s->next;
			continue;
		}
		if (segment_path(sp, s->seq, path, sizeof(path)) == 0)
			(void)unlink(path);
		*sp_ = s->next;
		close(s->rfd);
		free(s);
	}
}

static void *
committer_main(void *arg)
{
	struct spool *sp = arg;
	struct iovec iov[2 * JOURNAL_BATCH];
	struct jrec *batch, *r, *last;
	size_t total, done;
	int n, e, i;
	ssize_t w;

	pthread_mutex_lock(&sp->jmu);
	for (;;) {
		while (sp->pend_head == NULL && !sp->jstop)
			pthread_cond_wait(&sp->jwork, &sp->jmu);
		if (sp->pend_head == NULL)
			break;
		/* Take up to a batch of waiting records. */
		batch = sp->pend_head;
		last = batch;
		for (n = 1; n < JOURNAL_BATCH && last->next != NULL; n++)
			last = last->next;
		sp->pend_head = last->next;
		if (sp->pend_head == NULL)
			sp->pend_tail = NULL;
		last->next = NULL;
		sp->cbusy = 1;
		e = 0;
		/*
		 * A new segment when the current one is big, or when all it
		 * holds is already in queue/: a segment that outlives its
		 * messages could bring delivered ones back after a crash.
		 */
		if (sp->segfd == -1 || sp->segoff > JOURNAL_SEGMENT_MAX ||
		    (sp->segoff > 0 && current_segment(sp)->outstanding == 0)) {
			e = segment_rotate(sp) == -1 ? errno : 0;
			segment_reap(sp);
		}
		pthread_mutex_unlock(&sp->jmu);

		total = 0;
		i = 0;
		for (r = batch; r != NULL; r = r->next) {
			iov[i].iov_base = r->hdr;
			iov[i++].iov_len = JOURNAL_HDR;
			iov[i].iov_base = r->data.s;
			iov[i++].iov_len = r->data.len;
			total += JOURNAL_HDR + r->data.len;
		}
		for (done = 0; e == 0 && done < total; done += (size_t)w) {
			struct iovec *v = iov;
			int nv = i;
			size_t skip = done;

			/* Resume a short write where it stopped. */
			while (skip >= v->iov_len) {
				skip -= v->iov_len;
				v++;
				nv--;
			}
			v->iov_base = (char *)v->iov_base + skip;
			v->iov_len -= skip;
			w = pwritev(sp->segfd, v, nv > IOV_MAX ? IOV_MAX : nv,
			    sp->segoff + (off_t)done);
			v->iov_base = (char *)v->iov_base - skip;
			v->iov_len += skip;
			if (w <= 0)
				e = w == 0 ? EIO : errno;
		}
		if (e == 0 && fdatasync(sp->segfd) == -1)
			e = errno;

		pthread_mutex_lock(&sp->jmu);
		if (e != 0) {
			log_err("spool journal: %s", strerror(e));
			/* What we wrote may be torn: start a new segment. */
			if (sp->segfd != -1) {
				close(sp->segfd);
				sp->segfd = -1;
			}
			/* The sessions free failed records themselves. */
			for (r = batch; r != NULL; r = batch) {
				batch = r->next;
				r->wait->state = -1;
				r->wait->err = e;
			}
		} else {
			struct segment *cur = current_segment(sp);
			off_t off = sp->segoff;

			sp->segoff += (off_t)total;
			/* From here on the journal holds them: free the memory. */
			for (r = batch; r != NULL; r = r->next) {
				r->wait->state = 1;
				r->wait = NULL;
				r->seg = cur;
				r->off = off + JOURNAL_HDR;
				r->len = r->data.len;
				off += (off_t)(JOURNAL_HDR + r->data.len);
				str_free(&r->data);
				cur->outstanding++;
			}
			/* The writer takes them over from here. */
			if (sp->mat_tail != NULL)
				sp->mat_tail->next = batch;
			else
				sp->mat_head = batch;
			sp->mat_tail = last;
			pthread_cond_signal(&sp->jmat);
		}
		sp->cbusy = 0;
		pthread_cond_broadcast(&sp->jdone);
	}
	pthread_mutex_unlock(&sp->jmu);
	return NULL;
}

/* Reads a record back from its segment and writes its queue file. */
static int
materialize(struct spool *sp, const struct jrec *r)
{
	char *buf;
	ssize_t n;
	int rc, e;

	if ((buf = malloc(r->len ? r->len : 1)) == NULL)
		return -1;
	n = pread(r->seg->rfd, buf, r->len, r->off);
	if (n != (ssize_t)r->len) {
		free(buf);
		errno = n == -1 ? errno : EIO;
		return -1;
	}
	rc = write_queue_file(sp, r->id, buf, r->len, 0);
	e = errno;
	free(buf);
	errno = e;
	return rc;
}

/* Writes journaled messages out as queue files, in durable batches. */
static void *
writer_main(void *arg)
{
	struct spool *sp = arg;
	struct jrec *batch, *r, *next;
	size_t freed;
	int e, n;

	pthread_mutex_lock(&sp->jmu);
	for (;;) {
		while (sp->mat_head == NULL && !sp->jstop)
			pthread_cond_wait(&sp->jmat, &sp->jmu);
		if (sp->mat_head == NULL)
			break;
		batch = sp->mat_head;
		sp->mat_head = sp->mat_tail = NULL;
		pthread_mutex_unlock(&sp->jmu);

		e = 0;
		for (r = batch, n = 0; r != NULL && e == 0; r = r->next, n++)
			if (materialize(sp, r) == -1)
				e = errno;
#ifdef HAVE_SYNCFS
		/* One flush for the whole batch of new files. */
		if (e == 0 && syncfs(sp->queuefd) == -1)
			e = errno;
#else
		sync();
#endif
		for (r = batch; r != NULL && e == 0; r = r->next)
			if (publish_queue_file(sp, r->id) == -1)
				e = errno;
		if (e == 0 && fsync(sp->queuefd) == -1)
			e = errno;
		if (e != 0) {
			/*
			 * The journal still holds every one of them: try
			 * again shortly rather than lose anything.
			 */
			log_err("spool: writing queue files: %s", strerror(e));
			pthread_mutex_lock(&sp->jmu);
			if (sp->jstop) {
				/* The journal keeps them for the next start. */
				for (r = batch; r != NULL; r = next) {
					next = r->next;
					free(r);
				}
				break;
			}
			pthread_mutex_unlock(&sp->jmu);
			sleep(1);
			pthread_mutex_lock(&sp->jmu);
			for (r = batch; r->next != NULL; r = r->next)
				;
			r->next = sp->mat_head;
			sp->mat_head = batch;
			if (sp->mat_tail == NULL)
				sp->mat_tail = r;
			continue;
		}
		for (r = batch; r != NULL; r = r->next)
			call_hook(sp, r->id);
		freed = 0;
		pthread_mutex_lock(&sp->jmu);
		for (r = batch; r != NULL; r = next) {
			next = r->next;
			r->seg->outstanding--;
			freed += r->len;
			free(r);
		}
		sp->backlog -= freed;
		/*
		 * All quiet and everything in queue/: close the segment now,
		 * so that no journal outlives the messages it holds.
		 */
		if (!sp->cbusy && sp->pend_head == NULL && sp->segfd != -1 &&
		    current_segment(sp)->outstanding == 0) {
			close(sp->segfd);
			sp->segfd = -1;
			current_segment(sp)->closed = 1;
		}
		segment_reap(sp);
		pthread_cond_broadcast(&sp->jspace);
	}
	pthread_mutex_unlock(&sp->jmu);
	return NULL;
}

/* Reads a segment and writes out every whole record it holds. */
static int
replay_segment(struct spool *sp, const char *path, unsigned int *count)
{
	unsigned char hdr[JOURNAL_HDR];
	char id[SPOOL_ID_LEN + 1], *data = NULL;
	uint32_t len;
	ssize_t n;
	int fd, r = 0;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	for (;;) {
		n = read(fd, hdr, sizeof(hdr));
		if (n != (ssize_t)sizeof(hdr) || memcmp(hdr, JOURNAL_MAGIC, 4) != 0)
			break;	/* end, or a torn tail never acknowledged */
		len = get32(hdr + 4);
		if (len > JOURNAL_RECORD_MAX || (data = malloc(len + 1)) == NULL)
			break;
		if (read(fd, data, len) != (ssize_t)len ||
		    crc32_update(0, (unsigned char *)data, len) != get32(hdr + 8)) {
			free(data);
			break;
		}
		data[len] = '\0';
		/* The id is on the second line: "id XXXX\n". */
		if (len > sizeof(SPOOL_VERSION) + 3 + SPOOL_ID_LEN &&
		    strncmp(data, SPOOL_VERSION "\nid ", sizeof(SPOOL_VERSION) + 3) == 0) {
			memcpy(id, data + sizeof(SPOOL_VERSION) + 3, SPOOL_ID_LEN);
			id[SPOOL_ID_LEN] = '\0';
			if (write_queue_file(sp, id, data, len, 1) == -1 ||
			    publish_queue_file(sp, id) == -1)
				r = -1;
			else
				(*count)++;
		}
		free(data);
		if (r == -1)
			break;
	}
	close(fd);
	return r;
}

/* Puts whatever the last run journaled into queue/, then empties it. */
static int
journal_replay(struct spool *sp, char *err, size_t errlen)
{
	char path[PATH_MAX];
	struct dirent *de;
	unsigned long long seq, maxseq = 0;
	unsigned int count = 0;
	DIR *d;
	int r = 0;

	clean_tmp(sp->jtmpdir, 1);
	if ((d = opendir(sp->jdir)) == NULL) {
		snprintf(err, errlen, "spool %.200s: %s", sp->jdir, strerror(errno));
		return -1;
	}
	/* Order does not matter: each record names its own queue file. */
	while ((de = readdir(d)) != NULL && r == 0) {
		if (sscanf(de->d_name, "%llu.j", &seq) != 1)
			continue;
		if (seq >= maxseq)
			maxseq = seq + 1;
		if (segment_path(sp, seq, path, sizeof(path)) == -1)
			continue;
		if (replay_segment(sp, path, &count) == -1) {
			snprintf(err, errlen, "spool journal %.200s: %s", path,
			    strerror(errno));
			r = -1;
		}
	}
	closedir(d);
	if (r == -1)
		return -1;
	if (fsync(sp->queuefd) == -1) {
		snprintf(err, errlen, "spool %.200s: %s", sp->queuedir,
		    strerror(errno));
		return -1;
	}
	if ((d = opendir(sp->jdir)) != NULL) {
		while ((de = readdir(d)) != NULL)
			if (sscanf(de->d_name, "%llu.j", &seq) == 1 &&
			    segment_path(sp, seq, path, sizeof(path)) == 0)
				(void)unlink(path);
		closedir(d);
	}
	if (count > 0)
		log_info("spool: recovered %u messages from the journal", count);
	sp->nextseq = maxseq;
	return 0;
}

static int
journal_open(struct spool *sp, char *err, size_t errlen)
{
	char path[PATH_MAX];

	if ((size_t)snprintf(path, sizeof(path), "%s/lock", sp->jdir) >=
	    sizeof(path)) {
		snprintf(err, errlen, "spool: path too long");
		return -1;
	}
	sp->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (sp->lockfd == -1) {
		snprintf(err, errlen, "spool %.200s: %s", path, strerror(errno));
		return -1;
	}
	if (flock(sp->lockfd, LOCK_EX | LOCK_NB) == -1) {
		snprintf(err, errlen, "spool %.200s is in use by another smtpd",
		    sp->dir);
		goto fail;
	}
	if (journal_replay(sp, err, errlen) == -1)
		goto fail;
	pthread_mutex_init(&sp->jmu, NULL);
	pthread_cond_init(&sp->jwork, NULL);
	pthread_cond_init(&sp->jdone, NULL);
	pthread_cond_init(&sp->jmat, NULL);
	pthread_cond_init(&sp->jspace, NULL);
	sp->journal = 1;
	if (pthread_create(&sp->committer, NULL, committer_main, sp) != 0) {
		snprintf(err, errlen, "spool: cannot start the journal thread");
		goto fail;
	}
	if (pthread_create(&sp->writer, NULL, writer_main, sp) != 0) {
		snprintf(err, errlen, "spool: cannot start the queue writer");
		pthread_mutex_lock(&sp->jmu);
		sp->jstop = 1;
		pthread_cond_broadcast(&sp->jwork);
		pthread_mutex_unlock(&sp->jmu);
		pthread_join(sp->committer, NULL);
		goto fail;
	}
	return 0;
fail:
	sp->journal = 0;
	close(sp->lockfd);
	sp->lockfd = -1;
	return -1;
}

/* Lets both threads finish what they hold, then stops them. */
static void
journal_close(struct spool *sp)
{
	struct segment *s, *n;

	pthread_mutex_lock(&sp->jmu);
	sp->jstop = 1;
	pthread_cond_broadcast(&sp->jwork);
	pthread_cond_broadcast(&sp->jspace);
	pthread_mutex_unlock(&sp->jmu);
	pthread_join(sp->committer, NULL);
	pthread_mutex_lock(&sp->jmu);
	pthread_cond_broadcast(&sp->jmat);
	pthread_mutex_unlock(&sp->jmu);
	pthread_join(sp->writer, NULL);
	if (sp->segfd != -1)
		close(sp->segfd);
	for (s = sp->segs; s != NULL; s = n) {
		n = s->next;
		s->closed = 1;
	}
	segment_reap(sp);
	for (s = sp->segs; s != NULL; s = n) {
		n = s->next;
		close(s->rfd);
		free(s);
	}
	pthread_mutex_destroy(&sp->jmu);
	pthread_cond_destroy(&sp->jwork);
	pthread_cond_destroy(&sp->jdone);
	pthread_cond_destroy(&sp->jmat);
	pthread_cond_destroy(&sp->jspace);
	close(sp->lockfd);
}

int
spool_save(struct spool_msg **mp, const char *dir, size_t max, char *path,
    size_t pathlen)
{
	struct spool_msg *m = *mp;
	char day[PATH_MAX], buf[SPOOL_BUF];
	struct tm tm;
	time_t now = time(NULL);
	size_t left = max;
	ssize_t n;
	int fd = -1, in = -1, r = -1, e = 0;

	localtime_r(&now, &tm);
	if ((size_t)snprintf(day, sizeof(day), "%s/%04d%02d%02d", dir,
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday) >= sizeof(day) ||
	    (size_t)snprintf(path, pathlen, "%s/%s", day, m->id) >= pathlen) {
		e = ENAMETOOLONG;
		goto out;
	}
	if (m->failed || fs_mkdirs(day, 0700) == -1 ||
	    (fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) == -1) {
		e = m->failed ? m->failed : errno;
		goto out;
	}
	if (m->fd == -1) {
		if (fs_write_all(fd, m->mem.s, m->mem.len < max ? m->mem.len :
		    max) == -1) {
			e = errno;
			goto out;
		}
	} else {
		if (spool_flush(m) == -1 ||
		    (in = open(m->tmppath, O_RDONLY | O_CLOEXEC)) == -1) {
			e = errno;
			goto out;
		}
		while (left > 0 && (n = read(in, buf, left < sizeof(buf) ?
		    left : sizeof(buf))) > 0) {
			if (fs_write_all(fd, buf, (size_t)n) == -1) {
				e = errno;
				goto out;
			}
			left -= (size_t)n;
		}
	}
	r = 0;
out:
	if (in != -1)
		close(in);
	if (fd != -1 && close(fd) == -1 && r == 0) {
		e = errno;
		r = -1;
	}
	if (r == -1 && fd != -1)
		(void)unlink(path);
	spool_abort(mp);
	errno = e;
	return r;
}

int
spool_msg_read_fd(struct spool_msg *m)
{
	int fd;

	if (m->failed) {
		errno = m->failed;
		return -1;
	}
	/* A message still in memory goes to its file first. */
	if (m->fd == -1 && spool_to_file(m) == -1)
		return -1;
	if (spool_flush(m) == -1)
		return -1;
	if ((fd = open(m->tmppath, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	if (lseek(fd, (off_t)m->envlen, SEEK_SET) == -1) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}
