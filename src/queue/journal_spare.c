/*
 * Spare segments.  On a file system with a journal of its own (ext4,
 * XFS), flushing records appended at a file's end also commits that
 * journal, for the file's new size and blocks; flushing records written
 * over blocks the file has already is the data alone: 0.15 against 0.37
 * ms a flush on ext4 (bench/flushcost.c, bench/RESULTS.md).  So a
 * segment whose messages are all in queue/ is kept as a spare (up to
 * JOURNAL_SPARES) rather than deleted, and the next segment is made from
 * one.  A spare gets a new header (a new salt, no mark), flushed, when
 * it is put aside, so that making a segment of it is a rename.  The salt
 * is part of every record's check value, so that nothing a spare's
 * earlier use left in it is ever taken for a record.  Spares keep their
 * size, so once the journal has carried half a segment's worth, the
 * writer zero-fills one to a whole segment's size if none is that big
 * yet: from then on records always go in place.  Not on tmpfs, where a
 * flush costs nothing and a spare holds memory.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/uio.h>
#ifdef __linux__
#include <sys/random.h>
#include <sys/vfs.h>
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/net.h"
#include "journal_int.h"

#define ZERO_CHUNK	(64 * 1024)
#define ZERO_IOV	16		/* a write of 1 MiB */
#define SPARES_PAUSE_MS	60000	/* after zero-filling failed, a full disk */
/* Zero-fill only while this much of the file system stays free. */
#define FREE_KEEP_MIN	((unsigned long long)256 * 1024 * 1024)
#define FREE_KEEP_PART	10		/* or a tenth, if more */

#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC	0x01021994
#endif
#ifndef RAMFS_MAGIC
#define RAMFS_MAGIC	0x858458f6
#endif

static const char zeros[ZERO_CHUNK];

static int
spare_path(const struct journal *j, int k, char *buf, size_t len)
{
	return (size_t)snprintf(buf, len, "%s/spare.%d", j->dir, k) < len ?
	    0 : -1;
}

void
journal_segment_header(unsigned char *hdr, uint32_t salt)
{
	memset(hdr, 0, SEGMENT_HDR);
	/* A binary header: the magic has no NUL. */
	/* NOLINTNEXTLINE(bugprone-not-null-terminated-result) */
	memcpy(hdr, SEGMENT_MAGIC, 4);
	journal_put32(hdr + SEGMENT_SALT, salt);
}

/*
 * Gives the file a new header (a new salt, no mark) and flushes it: its
 * salt, or 0 (errno).
 */
static uint32_t
new_header(int fd)
{
	unsigned char hdr[SEGMENT_HDR];
	uint32_t salt = journal_salt();

	journal_segment_header(hdr, salt);
	if (pwrite(fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr) ||
	    journal_io->fdatasync(fd) == -1)
		return 0;
	return salt;
}

/* The salt of a spare's header if it is new (no mark), else 0. */
static uint32_t
header_salt(const char *path)
{
	unsigned char hdr[SEGMENT_HDR];
	uint32_t salt = 0;
	int fd, i;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return 0;
	if (pread(fd, hdr, sizeof(hdr), 0) == (ssize_t)sizeof(hdr) &&
	    memcmp(hdr, SEGMENT_MAGIC, 4) == 0) {
		salt = journal_get32(hdr + SEGMENT_SALT);
		for (i = SEGMENT_SALT + 4; i < SEGMENT_HDR && salt != 0; i++)
			if (hdr[i] != 0)
				salt = 0;
	}
	close(fd);
	return salt;
}

uint32_t
journal_salt(void)
{
	struct timespec ts;
	uint32_t s = 0;

#ifdef __linux__
	if (getrandom(&s, sizeof(s), GRND_NONBLOCK) == (ssize_t)sizeof(s) &&
	    s != 0)
		return s;
#endif
	/* Only unlike the salts the spares had before: the clock will do. */
	(void)clock_gettime(CLOCK_REALTIME, &ts);
	s = (uint32_t)ts.tv_nsec ^ (uint32_t)ts.tv_sec * 2654435761u ^
	    (uint32_t)getpid();
	return s != 0 ? s : 1;
}

void
journal_spares_load(struct journal *j, int keep)
{
	char path[PATH_MAX];
	struct stat st;
	int k;

	j->reuse = keep;
#ifdef __linux__
	{
		struct statfs fs;

		if (statfs(j->dir, &fs) == 0 &&
		    ((unsigned long)fs.f_type == TMPFS_MAGIC ||
		    (unsigned long)fs.f_type == RAMFS_MAGIC))
			j->reuse = 0;
	}
#endif
	for (k = 0; k < JOURNAL_SPARES; k++) {
		j->spares[k].present = 0;
		j->spares[k].busy = 0;
		if (spare_path(j, k, path, sizeof(path)) == -1 ||
		    lstat(path, &st) == -1)
			continue;
		if (!j->reuse || !S_ISREG(st.st_mode)) {
			(void)unlink(path);
			continue;
		}
		j->spares[k].present = 1;
		j->spares[k].size = st.st_size;
		j->spares[k].salt = header_salt(path);
	}
}

int
journal_spare_take(struct journal *j, const char *path, uint32_t *saltp)
{
	char from[PATH_MAX];
	uint32_t salt;
	int k, best = -1, fd = -1, ok = 0;

	pthread_mutex_lock(&j->mu);
	for (k = 0; k < JOURNAL_SPARES; k++)
		if (j->spares[k].present && !j->spares[k].busy &&
		    (best == -1 || j->spares[k].size > j->spares[best].size))
			best = k;
	if (best == -1) {
		pthread_mutex_unlock(&j->mu);
		return -1;
	}
	j->spares[best].busy = 1;
	salt = j->spares[best].salt;
	pthread_mutex_unlock(&j->mu);
	/* One found at start-up may have had no new header yet. */
	if (spare_path(j, best, from, sizeof(from)) == -1)
		errno = ENAMETOOLONG;
	else if ((fd = open(from, O_RDWR | O_NOFOLLOW | O_CLOEXEC)) != -1 &&
	    (salt != 0 || (salt = new_header(fd)) != 0) &&
	    rename(from, path) == 0)
		ok = 1;
	else {
		log_warn("spool journal: spare %s: %s", from, strerror(errno));
		(void)unlink(from);
	}
	if (!ok && fd != -1) {
		close(fd);
		fd = -1;
	}
	pthread_mutex_lock(&j->mu);
	j->spares[best].present = 0;
	j->spares[best].busy = 0;
	pthread_mutex_unlock(&j->mu);
	*saltp = salt;
	return fd;
}

void
journal_spares_drop(struct journal *j)
{
	char path[PATH_MAX];
	int k, drop;

	pthread_mutex_lock(&j->mu);
	j->spares_after = net_now_ms() + SPARES_PAUSE_MS;
	pthread_mutex_unlock(&j->mu);
	for (k = 0; k < JOURNAL_SPARES; k++) {
		pthread_mutex_lock(&j->mu);
		drop = j->spares[k].present && !j->spares[k].busy;
		if (drop)
			j->spares[k].busy = 1;
		pthread_mutex_unlock(&j->mu);
		if (!drop)
			continue;
		if (spare_path(j, k, path, sizeof(path)) == 0)
			(void)unlink(path);
		pthread_mutex_lock(&j->mu);
		j->spares[k].present = 0;
		j->spares[k].busy = 0;
		pthread_mutex_unlock(&j->mu);
	}
}

/*
 * No flush of the directory: after a crash the segment is either still
 * under its old name, with the new header (nothing to replay), or a
 * spare.
 */
void
journal_spare_put(struct journal *j, const char *path, int fd)
{
	char to[PATH_MAX];
	struct stat st;
	uint32_t salt;
	int k = -1, i;

	if (j->reuse && fstat(fd, &st) == 0) {
		pthread_mutex_lock(&j->mu);
		for (i = 0; i < JOURNAL_SPARES && k == -1 &&
		    net_now_ms() >= j->spares_after; i++)
			if (!j->spares[i].present && !j->spares[i].busy)
				k = i;
		if (k != -1)
			j->spares[k].busy = 1;
		pthread_mutex_unlock(&j->mu);
	}
	if (k == -1) {
		(void)unlink(path);
		return;
	}
	salt = new_header(fd);
	i = salt != 0 && spare_path(j, k, to, sizeof(to)) == 0 &&
	    rename(path, to) == 0;
	if (!i)
		(void)unlink(path);
	pthread_mutex_lock(&j->mu);
	j->spares[k].present = i;
	j->spares[k].size = st.st_size;
	j->spares[k].salt = salt;
	j->spares[k].busy = 0;
	pthread_mutex_unlock(&j->mu);
}

/* Would zero-filling len bytes leave the file system short?  1 if so. */
static int
space_short(const struct journal *j, off_t len)
{
	struct statvfs vfs;
	unsigned long long avail, keep;

	if (statvfs(j->dir, &vfs) == -1)
		return 1;
	avail = (unsigned long long)vfs.f_bavail * vfs.f_frsize;
	keep = (unsigned long long)vfs.f_blocks * vfs.f_frsize /
	    FREE_KEEP_PART;
	if (keep < FREE_KEEP_MIN)
		keep = FREE_KEEP_MIN;
	return avail < keep + (unsigned long long)len;
}

/* Writes zeros from off to JOURNAL_SPARE_SIZE(j); stops early if told to. */
static off_t
zero_fill(struct journal *j, int fd, off_t off)
{
	struct iovec iov[ZERO_IOV];
	ssize_t w;
	int i, n, stop;

	for (i = 0; i < ZERO_IOV; i++) {
		iov[i].iov_base = (void *)zeros;
		iov[i].iov_len = sizeof(zeros);
	}
	while (off < JOURNAL_SPARE_SIZE(j)) {
		pthread_mutex_lock(&j->mu);
		stop = j->wstop;
		pthread_mutex_unlock(&j->mu);
		if (stop)
			break;
		n = (int)((JOURNAL_SPARE_SIZE(j) - off + ZERO_CHUNK - 1) /
		    ZERO_CHUNK);
		if (n > ZERO_IOV)
			n = ZERO_IOV;
		if ((w = pwritev(fd, iov, n, off)) <= 0)
			return -1;
		off += w;
	}
	return off;
}

void
journal_spare_prepare(struct journal *j)
{
	char path[PATH_MAX];
	off_t old = 0, done;
	uint32_t salt = 0;
	int k, pick = -1, fd, e = 0;

	pthread_mutex_lock(&j->mu);
	if (!j->reuse || j->journaled < j->segmax / 2 ||
	    net_now_ms() < j->spares_after) {
		pthread_mutex_unlock(&j->mu);
		return;
	}
	for (k = 0; k < JOURNAL_SPARES; k++) {
		if (j->spares[k].busy)
			continue;
		if (j->spares[k].present &&
		    j->spares[k].size >= JOURNAL_SPARE_SIZE(j)) {
			pthread_mutex_unlock(&j->mu);
			return;		/* one is ready */
		}
		/* The biggest one there, else a new one. */
		if (pick == -1 || (j->spares[k].present &&
		    (!j->spares[pick].present ||
		    j->spares[k].size > j->spares[pick].size)))
			pick = k;
	}
	if (pick == -1) {
		pthread_mutex_unlock(&j->mu);
		return;
	}
	j->spares[pick].busy = 1;
	if (j->spares[pick].present)
		old = j->spares[pick].size;
	pthread_mutex_unlock(&j->mu);

	done = -1;
	if (spare_path(j, pick, path, sizeof(path)) == -1)
		e = ENAMETOOLONG;
	else if (space_short(j, JOURNAL_SPARE_SIZE(j) - old))
		e = ENOSPC;
	else if ((fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) == -1)
		e = errno;
	else {
		if ((done = zero_fill(j, fd, old)) == -1 ||
		    (salt = new_header(fd)) == 0) {
			e = errno;
			done = -1;
			/* Give the space back. */
			if (old > 0)
				(void)ftruncate(fd, old);
			else
				(void)unlink(path);
		}
		close(fd);
	}
	pthread_mutex_lock(&j->mu);
	if (done != -1) {
		j->spares[pick].present = 1;
		j->spares[pick].size = done;
		j->spares[pick].salt = salt;
	} else {
		if (old == 0)
			j->spares[pick].present = 0;
		j->spares[pick].salt = 0;	/* its header: rewrite at take */
		j->spares_after = net_now_ms() + SPARES_PAUSE_MS;
		log_debug("spool journal: no spare made: %s", strerror(e));
	}
	j->spares[pick].busy = 0;
	pthread_mutex_unlock(&j->mu);
}
