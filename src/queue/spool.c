#include "config.h"

#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/crypto.h>

#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/str.h"
#include "journal.h"
#include "spool.h"
#include "spool_files.h"

#define SPOOL_BUF	16384

struct spool {
	char		 dir[PATH_MAX];
	char		 tmpdir[PATH_MAX];
	char		 queuedir[PATH_MAX];
	int		 queuefd;	/* the queue directory, for fsync */
	struct dirsync	*dirsync;	/* its group fsync (spool_files.c) */
	pthread_mutex_t	 mu;

	struct journal	*journal;	/* when this process owns it */
	int		 lockfd;	/* SPOOL_FILES: the daemon's lock */
	int		 files;		/* SPOOL_FILES: small messages too */

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
	int		 hold;		/* hold/ID made: undo on failure */
	int		 same_id;	/* replaces a message: its id stays */
	struct str	 mem;		/* journal mode: the message so far */
	char		 buf[SPOOL_BUF];
	size_t		 buflen;
};

static int	spool_flush(struct spool_msg *);
static int	spool_to_file(struct spool_msg *);
static int	commit_file(struct spool_msg *);
static void	clean_tmp(const char *, int all);
static void	call_hook(struct spool *, const char *);
static void	journal_published(void *, const char *);

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
	sp->queuefd = sp->lockfd = -1;
	if (str_lcpy(sp->dir, dir, sizeof(sp->dir)) >= sizeof(sp->dir) ||
	    (size_t)snprintf(sp->tmpdir, sizeof(sp->tmpdir), "%s/tmp", dir) >=
	    sizeof(sp->tmpdir) ||
	    (size_t)snprintf(sp->queuedir, sizeof(sp->queuedir), "%s/queue",
	    dir) >= sizeof(sp->queuedir)) {
		snprintf(err, errlen, "spool %.100s: path too long", dir);
		goto fail;
	}
	if (fs_mkdirs(sp->tmpdir, 0700) == -1 ||
	    fs_mkdirs(sp->queuedir, 0700) == -1) {
		snprintf(err, errlen, "spool %.200s: %s", dir, strerror(errno));
		goto fail;
	}
	sp->queuefd = open(sp->queuedir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sp->queuefd == -1) {
		snprintf(err, errlen, "spool %.200s: %s", sp->queuedir,
		    strerror(errno));
		goto fail;
	}
	if ((sp->dirsync = dirsync_new(sp->queuefd)) == NULL) {
		snprintf(err, errlen, "spool: out of memory");
		goto fail;
	}
	pthread_mutex_init(&sp->mu, NULL);
	/* Whatever is in tmp/ and unlocked was never acknowledged. */
	clean_tmp(sp->tmpdir, 0);
	if ((flags & SPOOL_JOURNAL) && (sp->journal = journal_open(sp->dir,
	    journal_published, sp, err, errlen)) == NULL) {
		pthread_mutex_destroy(&sp->mu);
		goto fail;
	}
	if ((flags & SPOOL_FILES) &&
	    (sp->lockfd = journal_recover(sp->dir, err, errlen)) == -1) {
		pthread_mutex_destroy(&sp->mu);
		goto fail;
	}
	sp->files = (flags & SPOOL_FILES) != 0;
	return sp;
fail:
	dirsync_free(&sp->dirsync);
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
	journal_close(&sp->journal);
	if (sp->lockfd != -1)
		close(sp->lockfd);
	dirsync_free(&sp->dirsync);
	close(sp->queuefd);
	pthread_mutex_destroy(&sp->mu);
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

static void
journal_published(void *arg, const char *id)
{
	call_hook(arg, id);
}

/* Creates the message's temporary file, locked against the tmp cleaner. */
static int
open_tmp(struct spool_msg *m)
{
	int tries;

	for (tries = 0; tries < 10; tries++) {
		/* Once the envelope names the id, the id may not change. */
		if (tries > 0 && (m->mem.len > 0 || m->same_id)) {
			errno = EEXIST;
			return -1;
		}
		if (tries > 0 || m->id[0] == '\0')
			spool_new_id(m->id);
		/* A replacement has a name of its own beside the first. */
		if ((size_t)snprintf(m->tmppath, sizeof(m->tmppath), "%s/%s%s",
		    m->sp->tmpdir, m->id, m->same_id ? ".r" : "") >=
		    sizeof(m->tmppath)) {
			errno = ENAMETOOLONG;
			return -1;
		}
		/* Group-readable for mailq where the admin gives queue/ the
		 * maildrop group (smtpd-spool(5)); the directories are 0700. */
		m->fd = open(m->tmppath, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
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

static struct spool_msg *
begin(struct spool *sp, const struct envelope *env, const char *id)
{
	struct spool_msg *m;
	struct envelope e;
	struct str hdr;
	char err[256];
	int e2;

	if ((m = malloc(sizeof(*m))) == NULL)
		return NULL;
	m->sp = sp;
	m->failed = 0;
	m->hold = 0;
	m->same_id = id != NULL;
	m->buflen = 0;
	m->fd = -1;
	m->id[0] = '\0';
	if (id != NULL)
		str_lcpy(m->id, id, sizeof(m->id));
	m->tmppath[0] = '\0';
	str_init(&m->mem, JOURNAL_INLINE);
	/* Held in memory until the commit writes it in one go. */
	if (sp->journal || sp->files) {
		if (id == NULL)
			spool_new_id(m->id);
	} else if (open_tmp(m) == -1) {
		free(m);
		return NULL;
	}

	/* The envelope names the id the message will have. */
	e = *env;
	if (str_lcpy(e.id, m->id, sizeof(e.id)) >= sizeof(e.id)) {
		spool_abort(&m);
		errno = ENAMETOOLONG;
		return NULL;
	}
	str_init(&hdr, ENVELOPE_MAX);
	if (envelope_format(&e, &hdr, err, sizeof(err)) == -1) {
		log_err("spool: message %s: %s", m->id, err);
		str_free(&hdr);
		spool_abort(&m);
		errno = EINVAL;
		return NULL;
	}
	m->envlen = hdr.len;
	if (spool_write(m, hdr.s, hdr.len) == -1) {
		e2 = errno;
		str_free(&hdr);
		spool_abort(&m);
		errno = e2;
		return NULL;
	}
	str_free(&hdr);
	return m;
}

struct spool_msg *
spool_begin(struct spool *sp, const struct envelope *env)
{
	return begin(sp, env, NULL);
}

struct spool_msg *
spool_begin_replacement(struct spool_msg *old,
    const struct envelope *env)
{
	return begin(old->sp, env, old->id);
}

/* Bytes of the file or memory from off on, envelope included. */
static ssize_t
raw_pread(struct spool_msg *m, void *buf, size_t n, off_t off)
{
	ssize_t r;

	if (m->failed) {
		errno = m->failed;
		return -1;
	}
	if (m->fd == -1) {
		if (off < 0 || (size_t)off >= m->mem.len)
			return 0;
		if (n > m->mem.len - (size_t)off)
			n = m->mem.len - (size_t)off;
		memcpy(buf, m->mem.s + off, n);
		return (ssize_t)n;
	}
	if (spool_flush(m) == -1)
		return -1;
	while ((r = pread(m->fd, buf, n, off)) == -1 && errno == EINTR)
		;
	return r;
}

ssize_t
spool_msg_pread(struct spool_msg *m, void *buf, size_t n, off_t off)
{
	return raw_pread(m, buf, n, off + (off_t)m->envlen);
}

int
spool_msg_envelope(struct spool_msg *m, struct str *out)
{
	char buf[SPOOL_BUF];
	off_t off = 0;
	ssize_t r;
	size_t want;

	while ((size_t)off < m->envlen) {
		want = m->envlen - (size_t)off;
		if ((r = raw_pread(m, buf, want < sizeof(buf) ? want :
		    sizeof(buf), off)) <= 0) {
			if (r == 0)
				errno = EIO;
			return -1;
		}
		if (str_append(out, buf, (size_t)r) == -1) {
			errno = ENOMEM;
			return -1;
		}
		off += r;
	}
	return 0;
}

int
spool_tmpfile(struct spool_msg *m)
{
	char path[PATH_MAX];
	int fd;

#ifdef O_TMPFILE
	fd = open(m->sp->tmpdir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd != -1 || (errno != EOPNOTSUPP && errno != EISDIR &&
	    errno != EINVAL))
		return fd;
#endif
	if ((size_t)snprintf(path, sizeof(path), "%s/%s.tXXXXXX",
	    m->sp->tmpdir, m->id) >= sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((fd = mkostemp(path, O_CLOEXEC)) != -1)
		(void)unlink(path);
	return fd;
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

/* The file's bytes from off on, appended to fd.  0 or -1. */
static int
copy_from(struct spool_msg *m, int in, off_t off, off_t end, int fd)
{
	ssize_t n;

	while (off < end) {
		n = pread(in, m->buf, end - off < (off_t)sizeof(m->buf) ?
		    (size_t)(end - off) : sizeof(m->buf), off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return -1;
		}
		if (fs_write_all(fd, m->buf, (size_t)n) == -1)
			return -1;
		off += n;
	}
	return 0;
}

/*
 * A message in its file: a new file gets envelope, bytes and the rest,
 * then takes the old one's name.  Both are locked against the cleaner.
 */
static int
insert_file(struct spool_msg *m, const void *p, size_t n)
{
	char path[PATH_MAX];
	off_t end;
	int fd = -1, in = -1, e;

	if (spool_flush(m) == -1 || (end = lseek(m->fd, 0, SEEK_END)) == -1 ||
	    (size_t)snprintf(path, sizeof(path), "%s.new", m->tmppath) >=
	    sizeof(path) ||
	    (in = open(m->tmppath, O_RDONLY | O_CLOEXEC)) == -1)
		goto fail;
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (fd == -1 || flock(fd, LOCK_EX) == -1)
		goto fail;
	if (copy_from(m, in, 0, (off_t)m->envlen, fd) == -1 ||
	    fs_write_all(fd, p, n) == -1 ||
	    copy_from(m, in, (off_t)m->envlen, end, fd) == -1 ||
	    rename(path, m->tmppath) == -1)
		goto fail;
	close(in);
	close(m->fd);
	m->fd = fd;
	return 0;
fail:
	e = errno;
	if (in != -1)
		close(in);
	if (fd != -1) {
		(void)unlink(path);
		close(fd);
	}
	m->failed = e;
	errno = e;
	return -1;
}

int
spool_insert(struct spool_msg *m, const void *p, size_t n)
{
	if (m->failed) {
		errno = m->failed;
		return -1;
	}
	if (n == 0)
		return 0;
	if (m->fd == -1) {
		if (str_append(&m->mem, p, n) == 0) {
			memmove(m->mem.s + m->envlen + n, m->mem.s + m->envlen,
			    m->mem.len - n - m->envlen);
			memcpy(m->mem.s + m->envlen, p, n);
			return 0;
		}
		if (spool_to_file(m) == -1)
			return -1;
	}
	return insert_file(m, p, n);
}

int
spool_hold(struct spool_msg *m)
{
	char path[PATH_MAX], dir[PATH_MAX];
	int fd;

	if ((size_t)snprintf(dir, sizeof(dir), "%s/hold", m->sp->dir) >=
	    sizeof(dir) || (size_t)snprintf(path, sizeof(path), "%s/%s", dir,
	    m->id) >= sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (fs_mkdirs(dir, 0700) == -1)
		return -1;
	fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd == -1 || close(fd) == -1 || fs_sync_dir(dir) == -1)
		return -1;
	m->hold = 1;
	return 0;
}

/* A held message that did not make it: its mark goes too. */
static void
unhold(struct spool_msg *m)
{
	char path[PATH_MAX];

	if (m->hold && (size_t)snprintf(path, sizeof(path), "%s/hold/%s",
	    m->sp->dir, m->id) < sizeof(path))
		(void)unlink(path);
	m->hold = 0;
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
	if (dirsync_wait(m->sp->dirsync) == -1) {
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

int
spool_commit(struct spool_msg **mp)
{
	struct spool_msg *m = *mp;
	int r, e;

	*mp = NULL;
	if (m->failed) {
		e = m->failed;
		unhold(m);
		if (m->fd != -1) {
			close(m->fd);
			(void)unlink(m->tmppath);
		}
		str_free(&m->mem);
		free(m);
		errno = e;
		return -1;
	}
	if (m->fd == -1 && m->sp->journal != NULL)
		r = journal_commit(m->sp->journal, m->id, &m->mem);
	else if (m->fd == -1 && spool_to_file(m) == -1) {
		if (m->fd != -1)
			(void)unlink(m->tmppath);
		errno = m->failed;
		r = -1;
	} else
		r = commit_file(m);
	e = errno;
	if (r == -1)
		unhold(m);
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
	unhold(m);
	if (m->fd != -1) {
		(void)unlink(m->tmppath);
		close(m->fd);
	}
	str_free(&m->mem);
	free(m);
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
