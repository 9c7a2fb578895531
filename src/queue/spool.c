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
#include "lib/str.h"
#include "spool.h"

#define SPOOL_BUF	16384
#define SPOOL_VERSION	"smtpd-spool 1"

struct spool {
	char		 dir[PATH_MAX];
	char		 tmpdir[PATH_MAX];
	char		 queuedir[PATH_MAX];
	int		 queuefd;	/* the queue directory, for fsync */

	/*
	 * Group commit of the queue directory: each committer bumps
	 * requested; one of them fsyncs for everybody who asked before it
	 * started, the rest wait for synced to pass their number.
	 */
	pthread_mutex_t	 mu;
	pthread_cond_t	 cv;
	unsigned long	 requested, synced;
	int		 syncing;
	int		 sync_error;	/* errno of the last failed fsync */
	unsigned long	 failed_upto;

	spool_hook_fn	 hook;		/* told of each committed message */
	void		*hook_arg;
};

struct spool_msg {
	struct spool	*sp;
	int		 fd;
	int		 failed;
	char		 id[SPOOL_ID_LEN + 1];
	char		 tmppath[PATH_MAX];
	char		 buf[SPOOL_BUF];
	size_t		 buflen;
};

static int	spool_flush(struct spool_msg *);
static int	spool_sync_queue(struct spool *);
static void	clean_tmp(const char *);
static void	put_clean(struct str *, const char *);
static void	put_line(struct str *, const char *, const char *);
static void	put_path(struct str *, const char *, const char *);

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
 * Removes what a crash left in tmp/.  A file that is still locked belongs
 * to a message another process (a stdio-mode smtpd, the queue runner) is
 * writing right now, so it stays.
 */
static void
clean_tmp(const char *dir)
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
		fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
		if (fd == -1)
			continue;
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			(void)unlink(path);
		close(fd);
	}
	closedir(d);
}

struct spool *
spool_open(const char *dir, char *err, size_t errlen)
{
	struct spool *sp;

	if ((sp = calloc(1, sizeof(*sp))) == NULL) {
		snprintf(err, errlen, "spool: out of memory");
		return NULL;
	}
	sp->queuefd = -1;
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
	/* Whatever is in tmp/ was never acknowledged: a crash left it. */
	clean_tmp(sp->tmpdir);
	pthread_mutex_init(&sp->mu, NULL);
	pthread_cond_init(&sp->cv, NULL);
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
	close(sp->queuefd);
	pthread_mutex_destroy(&sp->mu);
	pthread_cond_destroy(&sp->cv);
	free(sp);
	*spp = NULL;
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

struct spool_msg *
spool_begin(struct spool *sp, const struct spool_envelope *env)
{
	struct spool_msg *m;
	struct str hdr;
	char num[32];
	size_t i;
	int tries;

	if ((m = malloc(sizeof(*m))) == NULL)
		return NULL;
	m->sp = sp;
	m->failed = 0;
	m->buflen = 0;
	m->fd = -1;
	for (tries = 0; tries < 10 && m->fd == -1; tries++) {
		spool_new_id(m->id);
		if ((size_t)snprintf(m->tmppath, sizeof(m->tmppath), "%s/%s",
		    sp->tmpdir, m->id) >= sizeof(m->tmppath)) {
			errno = ENAMETOOLONG;
			break;
		}
		m->fd = open(m->tmppath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		    0600);
		if (m->fd == -1 && errno != EEXIST)
			break;
	}
	if (m->fd == -1) {
		free(m);
		return NULL;
	}
	/* Marks the file as in use for clean_tmp() in other processes. */
	if (flock(m->fd, LOCK_EX | LOCK_NB) == -1) {
		spool_abort(&m);
		return NULL;
	}

	str_init(&hdr, 1024 * 1024);
	(void)str_appends(&hdr, SPOOL_VERSION "\n");
	put_line(&hdr, "id", m->id);
	snprintf(num, sizeof(num), "%lld", (long long)env->arrival);
	put_line(&hdr, "arrival", num);
	put_path(&hdr, "from", env->sender);
	for (i = 0; i < env->nrcpts; i++)
		put_path(&hdr, "rcpt", env->rcpts[i]);
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

int
spool_write(struct spool_msg *m, const void *p, size_t n)
{
	if (m->failed) {
		errno = m->failed;
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

int
spool_commit(struct spool_msg **mp)
{
	struct spool_msg *m = *mp;
	char qpath[PATH_MAX];
	spool_hook_fn hook;
	void *hook_arg;
	int e;

	*mp = NULL;
	if (m->failed) {
		e = m->failed;
		goto fail;
	}
	if (spool_flush(m) == -1 || fdatasync(m->fd) == -1) {
		e = errno;
		goto fail;
	}
	if (close(m->fd) == -1) {
		m->fd = -1;
		e = errno;
		goto fail;
	}
	m->fd = -1;
	if ((size_t)snprintf(qpath, sizeof(qpath), "%s/%s", m->sp->queuedir,
	    m->id) >= sizeof(qpath)) {
		e = ENAMETOOLONG;
		goto fail;
	}
	if (rename(m->tmppath, qpath) == -1) {
		e = errno;
		goto fail;
	}
	if (spool_sync_queue(m->sp) == -1) {
		/*
		 * The rename may or may not survive a crash: take the
		 * message back so the client's retry is the only copy.
		 */
		e = errno;
		(void)unlink(qpath);
		free(m);
		errno = e;
		return -1;
	}
	pthread_mutex_lock(&m->sp->mu);
	hook = m->sp->hook;
	hook_arg = m->sp->hook_arg;
	pthread_mutex_unlock(&m->sp->mu);
	if (hook != NULL)
		hook(hook_arg, m->id);
	free(m);
	return 0;
fail:
	if (m->fd != -1)
		close(m->fd);
	(void)unlink(m->tmppath);
	free(m);
	errno = e;
	return -1;
}

void
spool_abort(struct spool_msg **mp)
{
	struct spool_msg *m = *mp;

	if (m == NULL)
		return;
	*mp = NULL;
	if (m->fd != -1)
		close(m->fd);
	(void)unlink(m->tmppath);
	free(m);
}
