/*
 * The journal's file work shared by its writer thread (journal.c) and the
 * replay at start-up (journal_replay.c): checksums, segment names, and
 * queue files written into journal/tmp, flushed and moved into queue/.
 */
#include "config.h"

#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>

#include "lib/fsutil.h"
#include "journal_int.h"

/*
 * CRC-32 (IEEE 802.3), to spot a torn record or mark after a crash:
 * zlib's, which does several bytes a step (every message goes through it).
 */
uint32_t
journal_crc32(uint32_t crc, const unsigned char *p, size_t n)
{
	return (uint32_t)crc32_z(crc, p, n);
}

/* Writes a queue file into the journal's own temporary directory. */
int
journal_write_file(struct journal *j, const char *id, const char *data,
    size_t len)
{
	char tmp[PATH_MAX];
	int fd, e;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s/%s", j->tmpdir, id) >=
	    sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd == -1)
		return -1;
	/* A failed close has released the fd all the same: never twice. */
	if (fs_write_all(fd, data, len) == -1) {
		e = errno;
		(void)close(fd);
	} else if (close(fd) == -1)
		e = errno;
	else
		return 0;
	(void)unlink(tmp);
	errno = e;
	return -1;
}

/* Moves a written queue file from journal/tmp into queue/. */
int
journal_publish_file(struct journal *j, const char *id)
{
	char tmp[PATH_MAX], path[PATH_MAX];

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s/%s", j->tmpdir, id) >=
	    sizeof(tmp) ||
	    (size_t)snprintf(path, sizeof(path), "%s/%s", j->queuedir, id) >=
	    sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return journal_io->rename(tmp, path);
}

/* Flushes every file written on the spool's filesystem. */
int
journal_sync_all(struct journal *j)
{
#ifdef HAVE_SYNCFS
	return syncfs(j->queuefd);
#else
	(void)j;
	sync();
	return 0;
#endif
}

int
journal_segment_path(const struct journal *j, unsigned long long seq,
    char *buf, size_t len)
{
	return (size_t)snprintf(buf, len, "%s/%012llu.j", j->dir, seq) >= len ?
	    -1 : 0;
}
