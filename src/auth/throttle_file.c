/*
 * throttle's state file (throttle_attach_file()): the table as a header
 * and the entries from oldest to newest, times in wall-clock seconds, read
 * and written back under an fcntl() lock around every call, so that the
 * processes of stdio mode share one count.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/str.h"
#include "throttle_int.h"

/* The state file: a header, then the entries from oldest to newest. */
#define DISK_MAGIC	"SMTPDTH1"

struct disk_head {
	char		 magic[8];
	uint32_t	 recsize;
	uint32_t	 n;
	uint32_t	 gfailures;
	uint32_t	 pad;
	int64_t		 gstart, gblocked_until;	/* wall clock */
	uint64_t	 gseq;
};

struct disk_rec {
	unsigned char	 key[KEYLEN];
	unsigned char	 pad[3];
	uint32_t	 failures, inflight;
	int64_t		 last, blocked_until;		/* wall clock */
	uint64_t	 gseq;
};

static time_t	clock_offset(void);
static int	disk_load(struct throttle *, time_t);
static int	disk_save(struct throttle *, time_t);

/* Wall clock minus monotonic clock, in seconds. */
static time_t
clock_offset(void)
{
	struct timespec rt, mt;

	if (clock_gettime(CLOCK_REALTIME, &rt) == -1 ||
	    clock_gettime(CLOCK_MONOTONIC, &mt) == -1)
		return 0;
	return rt.tv_sec - mt.tv_sec;
}

int
throttle_attach_file(struct throttle *t, const char *path, char *err,
    size_t errlen)
{
	struct stat st;
	int fd;

	/* Until it works, AUTH is refused rather than left unthrottled. */
	pthread_mutex_lock(&t->mu);
	if (t->fd >= 0)
		(void)close(t->fd);
	t->fd = -2;
	pthread_mutex_unlock(&t->mu);
	if (str_lcpy(t->path, path, sizeof(t->path)) >= sizeof(t->path)) {
		snprintf(err, errlen, "%.100s...: path too long", path);
		return -1;
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW |
	    O_NOCTTY | O_NONBLOCK, 0600);
	if (fd == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		(void)close(fd);
		return -1;
	}
	/* Whoever else may write it could unblock anyone. */
	if (!S_ISREG(st.st_mode) || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0 ||
	    (st.st_uid != 0 && st.st_uid != geteuid())) {
		snprintf(err, errlen, "%s: not a regular file of ours that "
		    "only we may write", path);
		(void)close(fd);
		return -1;
	}
	pthread_mutex_lock(&t->mu);
	t->fd = fd;
	pthread_mutex_unlock(&t->mu);
	return 0;
}

static time_t
to_mono(int64_t wall, time_t off)
{
	return wall == 0 ? 0 : (time_t)wall - off;
}

static int64_t
to_wall(time_t mono, time_t off)
{
	return mono == 0 ? 0 : (int64_t)(mono + off);
}

/*
 * Replaces the table with the file's.  A file that is empty, of another
 * format or damaged counts as an empty table: 0.  -1 on a read error.
 */
static int
disk_load(struct throttle *t, time_t off)
{
	struct disk_head h;
	struct disk_rec r;
	struct tentry *x;
	ssize_t n;
	uint32_t k;

	throttle_table_reset(t);
	n = pread(t->fd, &h, sizeof(h), 0);
	if (n == -1)
		return -1;
	if ((size_t)n < sizeof(h) || memcmp(h.magic, DISK_MAGIC, 8) != 0 ||
	    h.recsize != sizeof(r) || h.n > t->size)
		return 0;
	for (k = 0; k < h.n; k++) {
		n = pread(t->fd, &r, sizeof(r), (off_t)(sizeof(h) +
		    (size_t)k * sizeof(r)));
		if (n == -1)
			return -1;
		if ((size_t)n < sizeof(r))
			break;
		/* Oldest first, so the LRU order comes back as it was. */
		x = E(t, throttle_touch(t, r.key));
		x->failures = r.failures;
		x->inflight = r.inflight;
		x->last = to_mono(r.last, off);
		x->blocked_until = to_mono(r.blocked_until, off);
		x->gseq = r.gseq;
	}
	t->gfailures = h.gfailures;
	t->gstart = to_mono(h.gstart, off);
	t->gblocked_until = to_mono(h.gblocked_until, off);
	t->gseq = h.gseq;
	return 0;
}

/* Writes the table, entries oldest first.  0 or -1. */
static int
disk_save(struct throttle *t, time_t off)
{
	struct disk_head h;
	struct disk_rec r;
	struct tentry *x;
	uint32_t i, k = 0;
	size_t at;

	memset(&h, 0, sizeof(h));
	memcpy(h.magic, DISK_MAGIC, 8);
	h.recsize = sizeof(r);
	for (i = t->oldest; i != 0; i = E(t, i)->newer) {
		x = E(t, i);
		memset(&r, 0, sizeof(r));
		memcpy(r.key, x->key, KEYLEN);
		r.failures = x->failures;
		r.inflight = x->inflight;
		r.last = to_wall(x->last, off);
		r.blocked_until = to_wall(x->blocked_until, off);
		r.gseq = x->gseq;
		at = sizeof(h) + (size_t)k * sizeof(r);
		if (pwrite(t->fd, &r, sizeof(r), (off_t)at) !=
		    (ssize_t)sizeof(r))
			return -1;
		k++;
	}
	h.n = k;
	h.gfailures = t->gfailures;
	h.gstart = to_wall(t->gstart, off);
	h.gblocked_until = to_wall(t->gblocked_until, off);
	h.gseq = t->gseq;
	if (pwrite(t->fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) ||
	    ftruncate(t->fd, (off_t)(sizeof(h) + (size_t)k * sizeof(r))) == -1)
		return -1;
	return 0;
}

int
throttle_file_lock(struct throttle *t, time_t *offp)
{
	struct flock fl;

	if (t->fd < 0)
		return -1;
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	while (fcntl(t->fd, F_SETLKW, &fl) == -1)
		if (errno != EINTR)
			return -1;
	*offp = clock_offset();
	if (disk_load(t, *offp) == 0)
		return 0;
	fl.l_type = F_UNLCK;
	(void)fcntl(t->fd, F_SETLK, &fl);
	return -1;
}

void
throttle_file_unlock(struct throttle *t, time_t off)
{
	struct flock fl;

	/* A failed write leaves the old state: fewer counts, no harm
	 * beyond that, and the next call tries again. */
	(void)disk_save(t, off);
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_UNLCK;
	fl.l_whence = SEEK_SET;
	(void)fcntl(t->fd, F_SETLK, &fl);
}
