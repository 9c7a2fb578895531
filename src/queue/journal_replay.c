/*
 * The journal's replay at start-up: every record a segment holds after
 * its mark becomes a queue file unless queue/ has it already; then the
 * segments go.  Format: doc/smtpd-spool.5.
 */
#include "config.h"

#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/fsutil.h"
#include "lib/log.h"
#include "journal_int.h"
#include "spool.h"

/* Where replay starts in a segment: after its last whole mark. */
static off_t
segment_start(const unsigned char *hdr, off_t size)
{
	const unsigned char *slot;
	uint32_t ctr, best = 0;
	off_t start = SEGMENT_HDR, off;
	int k;

	for (k = 0; k < 2; k++) {
		slot = hdr + MARK_SLOT0 + k * MARK_SLOT_LEN;
		ctr = journal_get32(slot);
		if (ctr == 0 || ctr <= best ||
		    journal_crc32(0, slot, 12) != journal_get32(slot + 12))
			continue;
		off = (off_t)((unsigned long long)journal_get32(slot + 4) |
		    (unsigned long long)journal_get32(slot + 8) << 32);
		if (off < SEGMENT_HDR || off > size)
			continue;
		best = ctr;
		start = off;
	}
	return start;
}

/* Is queue/id there already?  Then a replay need not write it again. */
static int
queued_already(struct journal *j, const char *id)
{
	struct stat st;

	return fstatat(j->queuefd, id, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/*
 * Writes every whole record after the segment's mark into journal/tmp.
 * Records before the mark were written out already, and may since have
 * been delivered and removed: they are skipped.
 */
static int
replay_segment(struct journal *j, const char *path, unsigned int *count,
    unsigned int *skipped)
{
	unsigned char hdr[SEGMENT_HDR];
	char id[SPOOL_ID_LEN + 1], *data = NULL;
	struct stat st;
	uint32_t len;
	off_t start = 0;
	ssize_t n;
	uint32_t salt = 0;
	int fd, r = 0, v1, v2;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	if (fstat(fd, &st) == -1) {
		close(fd);
		return -1;
	}
	n = pread(fd, hdr, sizeof(hdr), 0);
	/*
	 * A segment without a header (an older smtpd) has no mark, nor one
	 * with the first header (SJH1) a salt.
	 */
	v2 = n >= 4 && memcmp(hdr, SEGMENT_MAGIC, 4) == 0;
	v1 = n >= 4 && memcmp(hdr, SEGMENT_MAGIC_V1, 4) == 0;
	if (n == (ssize_t)sizeof(hdr) && (v1 || v2)) {
		start = segment_start(hdr, st.st_size);
		if (v2)
			salt = journal_get32(hdr + SEGMENT_SALT);
	} else if (v1 || v2)
		start = st.st_size;	/* a torn header: no records yet */
	if (lseek(fd, start, SEEK_SET) == -1) {
		close(fd);
		return -1;
	}
	for (;;) {
		n = read(fd, hdr, JOURNAL_HDR);
		if (n != JOURNAL_HDR || memcmp(hdr, JOURNAL_MAGIC, 4) != 0)
			break;	/* end, or a torn tail never acknowledged */
		len = journal_get32(hdr + 4);
		if (len > JOURNAL_RECORD_MAX ||
		    (data = malloc(len + 1)) == NULL)
			break;
		if (read(fd, data, len) != (ssize_t)len ||
		    (journal_crc32(0, (unsigned char *)data, len) ^ salt) !=
		    journal_get32(hdr + 8)) {
			free(data);
			break;
		}
		data[len] = '\0';
		/* The id is on the second line: "id XXXX\n". */
		if (len > sizeof(SPOOL_VERSION_ID) - 1 + SPOOL_ID_LEN &&
		    strncmp(data, SPOOL_VERSION_ID,
		    sizeof(SPOOL_VERSION_ID) - 1) == 0) {
			memcpy(id, data + sizeof(SPOOL_VERSION_ID) - 1,
			    SPOOL_ID_LEN);
			id[SPOOL_ID_LEN] = '\0';
			if (strchr(id, '/') != NULL || strchr(id, '\n') != NULL)
				;	/* not a queue id */
			else if (queued_already(j, id))
				(*skipped)++;
			else if (journal_write_file(j, id, data, len) == -1)
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

/* Moves everything replay wrote into journal/tmp on to queue/. */
static int
replay_publish(struct journal *j)
{
	struct dirent *de;
	DIR *d;
	int r = 0;

	if (journal_sync_all(j) == -1 || (d = opendir(j->tmpdir)) == NULL)
		return -1;
	while (r == 0 && (de = readdir(d)) != NULL)
		if (de->d_name[0] != '.' && journal_publish_file(j,
		    de->d_name) == -1)
			r = -1;
	closedir(d);
	if (r == 0 && fsync(j->queuefd) == -1)
		r = -1;
	return r;
}

/* Removes every file in dir (one only this process uses). */
static void
clean_dir(const char *dir)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d;

	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.' && (size_t)snprintf(path,
		    sizeof(path), "%s/%s", dir, de->d_name) < sizeof(path))
			(void)unlink(path);
	closedir(d);
}

/* Puts whatever the last run journaled into queue/, then empties it. */
int
journal_replay(struct journal *j, char *err, size_t errlen)
{
	char path[PATH_MAX];
	struct dirent *de;
	unsigned long long seq, maxseq = 0;
	unsigned int count = 0, skipped = 0;
	DIR *d;
	int r = 0;

	clean_dir(j->tmpdir);
	if ((d = opendir(j->dir)) == NULL) {
		snprintf(err, errlen, "spool %.200s: %s", j->dir,
		    strerror(errno));
		return -1;
	}
	/* Order does not matter: each record names its own queue file. */
	while ((de = readdir(d)) != NULL && r == 0) {
		if (sscanf(de->d_name, "%llu.j", &seq) != 1)
			continue;
		if (seq >= maxseq)
			maxseq = seq + 1;
		if (journal_segment_path(j, seq, path, sizeof(path)) == -1)
			continue;
		if (replay_segment(j, path, &count, &skipped) == -1) {
			snprintf(err, errlen, "spool journal %.200s: %s", path,
			    strerror(errno));
			r = -1;
		}
	}
	closedir(d);
	if (r == -1)
		return -1;
	if (replay_publish(j) == -1) {
		snprintf(err, errlen, "spool %.200s: %s", j->queuedir,
		    strerror(errno));
		return -1;
	}
	if ((d = opendir(j->dir)) != NULL) {
		while ((de = readdir(d)) != NULL)
			if (sscanf(de->d_name, "%llu.j", &seq) == 1 &&
			    journal_segment_path(j, seq, path,
			    sizeof(path)) == 0)
				(void)unlink(path);
		closedir(d);
		(void)fs_sync_dir(j->dir);
	}
	if (count > 0 || skipped > 0)
		log_info("spool: recovered %u messages from the journal "
		    "(%u already queued)", count, skipped);
	j->nextseq = maxseq;
	return 0;
}


/*
 * Takes the journal's lock.  A short, bounded wait: something that only
 * looks at the lock (a monitoring probe, a restarted daemon's
 * predecessor finishing its exit) must not make a start fail; another
 * daemon that holds it does.  0 or -1.
 */
static int
journal_lock(int fd)
{
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	int i;

	for (i = 0; i < 50; i++) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return 0;
		if (errno != EWOULDBLOCK && errno != EINTR)
			return -1;
		(void)nanosleep(&ts, NULL);
	}
	return -1;
}

int
journal_take(struct journal *j, const char *dir, char *err, size_t errlen)
{
	char path[PATH_MAX];

	if ((size_t)snprintf(j->dir, sizeof(j->dir), "%s/journal", dir) >=
	    sizeof(j->dir) ||
	    (size_t)snprintf(j->tmpdir, sizeof(j->tmpdir), "%s/journal/tmp",
	    dir) >= sizeof(j->tmpdir) ||
	    (size_t)snprintf(j->queuedir, sizeof(j->queuedir), "%s/queue",
	    dir) >= sizeof(j->queuedir) ||
	    (size_t)snprintf(path, sizeof(path), "%s/lock", j->dir) >=
	    sizeof(path)) {
		snprintf(err, errlen, "spool %.100s: path too long", dir);
		return -1;
	}
	if (fs_mkdirs(j->tmpdir, 0700) == -1 ||
	    (j->queuefd = open(j->queuedir, O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1 ||
	    (j->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) ==
	    -1) {
		snprintf(err, errlen, "spool %.200s: %s", dir, strerror(errno));
		return -1;
	}
	if (journal_lock(j->lockfd) == -1) {
		snprintf(err, errlen, "spool %.200s is in use by another smtpd",
		    dir);
		return -1;
	}
	return journal_replay(j, err, errlen);
}

int
journal_recover(const char *dir, char *err, size_t errlen)
{
	struct journal *j;
	int fd = -1;

	if ((j = calloc(1, sizeof(*j))) == NULL) {
		snprintf(err, errlen, "spool: out of memory");
		return -1;
	}
	j->queuefd = j->lockfd = j->segfd = -1;
	if (journal_take(j, dir, err, errlen) == -1)
		goto out;
	journal_spares_load(j, 0);	/* no use without the journal */
	fd = j->lockfd;
	j->lockfd = -1;
out:
	if (j->queuefd != -1)
		close(j->queuefd);
	if (j->lockfd != -1)
		close(j->lockfd);
	free(j);
	return fd;
}
