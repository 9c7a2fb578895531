#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/str.h"
#include "queue/journal_int.h"
#include "tests.h"
#include "testutil.h"

#define ID_A	"0123456789ABCDEF"
#define ID_B	"0123456789ABCDEG"
#define ID_C	"0123456789ABCDEH"

static const struct journal_io	*saved_io;
static int			 fail_errno;	/* what the faults fail with */

static ssize_t
failing_pwritev(int fd, const struct iovec *v, int n, off_t off)
{
	(void)fd;
	(void)v;
	(void)n;
	(void)off;
	errno = fail_errno;
	return -1;
}

/* Writes the first half only, then fails: a torn record on disk. */
static ssize_t
torn_pwritev(int fd, const struct iovec *v, int n, off_t off)
{
	size_t len = 0;
	int i;

	for (i = 0; i < n; i++)
		len += v[i].iov_len;
	if (len > 1 && saved_io->pwritev(fd, v, n, off) != -1)
		(void)ftruncate(fd, off + (off_t)(len / 2));
	errno = fail_errno;
	return -1;
}

static int
failing_fdatasync(int fd)
{
	(void)fd;
	errno = fail_errno;
	return -1;
}

/* A crash while the queue file is made: this thread stops for good. */
static int __attribute__((noreturn))
hanging_rename(const char *from, const char *to)
{
	(void)from;
	(void)to;
	for (;;)
		pause();
}

/* A crash just after the queue file appeared, before the journal knew. */
static int __attribute__((noreturn))
rename_then_hang(const char *from, const char *to)
{
	(void)rename(from, to);
	for (;;)
		pause();
}

static ssize_t
real_pwritev(int fd, const struct iovec *v, int n, off_t off)
{
	return saved_io->pwritev(fd, v, n, off);
}

static int
real_fdatasync(int fd)
{
	return saved_io->fdatasync(fd);
}

/* Queue files wait while the gate is 1, and never come once it is 2. */
static atomic_int	 rename_gate;

static int
gated_rename(const char *from, const char *to)
{
	while (atomic_load(&rename_gate) == 1)
		usleep(1000);
	while (atomic_load(&rename_gate) == 2)
		pause();
	return rename(from, to);
}

/* The first queue file finds the disk full. */
static atomic_int	 renames_full;

static int
full_once_rename(const char *from, const char *to)
{
	if (atomic_fetch_add(&renames_full, 1) == 0) {
		errno = ENOSPC;
		return -1;
	}
	return rename(from, to);
}

static const struct journal_io write_fails = {
	failing_pwritev, real_fdatasync, rename
};
static const struct journal_io write_tears = {
	torn_pwritev, real_fdatasync, rename
};
static const struct journal_io sync_fails = {
	real_pwritev, failing_fdatasync, rename
};
static const struct journal_io rename_hangs = {
	real_pwritev, real_fdatasync, hanging_rename
};
static const struct journal_io renamed_then_hangs = {
	real_pwritev, real_fdatasync, rename_then_hang
};
static const struct journal_io gated_renames = {
	real_pwritev, real_fdatasync, gated_rename
};
static const struct journal_io disk_full_once = {
	real_pwritev, real_fdatasync, full_once_rename
};

/*
 * Commits from many threads at once, each flush slowed down so that
 * commits queue behind it: who flushes, how often, and (fail_flush) a
 * flush that fails.
 */
#define GROUP_THREADS	12
#define GROUP_COMMITS	15
static _Thread_local int	 committing;	/* a thread of the test's */
static atomic_int		 flushes, foreign_flushes;
static int			 fail_flush;	/* this one fails (1 first) */
/* The committers start together, so that commits queue behind a flush. */
static pthread_barrier_t	 start_line;

static ssize_t
slow_pwritev(int fd, const struct iovec *v, int n, off_t off)
{
	struct timespec ts = { 0, 2 * 1000 * 1000 };

	int nth = atomic_fetch_add(&flushes, 1) + 1;

	if (!committing)
		atomic_fetch_add(&foreign_flushes, 1);
	/* The first long enough for every other committer to queue. */
	if (nth == 1)
		ts.tv_nsec = 50 * 1000 * 1000;
	(void)nanosleep(&ts, NULL);
	if (nth == fail_flush) {
		errno = EIO;
		return -1;
	}
	return saved_io->pwritev(fd, v, n, off);
}

static const struct journal_io slow_writes = {
	slow_pwritev, real_fdatasync, rename
};

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(path);
}

static void
spool_dir(char *dir, size_t len)
{
	char q[PATH_MAX];

	CU_ASSERT_EQUAL_FATAL(tu_mkdtemp(dir, len), 0);
	CU_ASSERT_EQUAL_FATAL(mkdir(tu_path(q, sizeof(q), dir, "queue"),
	    0700), 0);
}

static void
spool_rm(const char *dir)
{
	(void)nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A queue file as the spool makes it: its id on the second line. */
static int
commit(struct journal *j, const char *id, const char *body)
{
	struct str s;

	str_init(&s, JOURNAL_INLINE);
	if (str_appendf(&s, "smtpd-spool 1\nid %s\n\n%s", id, body) == -1)
		return -2;
	return journal_commit(j, id, &s);
}

static int
queued(const char *dir, const char *id)
{
	char q[PATH_MAX], path[PATH_MAX];
	struct stat st;

	tu_path(q, sizeof(q), dir, "queue");
	return stat(tu_path(path, sizeof(path), q, id), &st) == 0;
}

/* Queue files in dir/queue. */
static int
count_queued(const char *dir)
{
	char q[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int n = 0;

	if ((d = opendir(tu_path(q, sizeof(q), dir, "queue"))) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* The last segment of dir's journal, into path.  0 or -1. */
static int
last_segment(const char *dir, char *path, size_t len)
{
	char jd[PATH_MAX], name[256];
	struct dirent *de;
	unsigned long long seq, best = 0;
	int found = 0;
	DIR *d;

	if ((d = opendir(tu_path(jd, sizeof(jd), dir, "journal"))) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (sscanf(de->d_name, "%llu.j", &seq) == 1 &&
		    (!found || seq > best)) {
			best = seq;
			found = 1;
			snprintf(name, sizeof(name), "%s", de->d_name);
		}
	closedir(d);
	if (!found)
		return -1;
	tu_path(path, len, jd, name);
	return 0;
}

/* Opens the journal with io in force, on the system's I/O otherwise. */
static struct journal *
open_with(const char *dir, const struct journal_io *io)
{
	char err[256];
	struct journal *j;

	journal_io = io != NULL ? io : saved_io;
	j = journal_open(dir, NULL, NULL, err, sizeof(err));
	TU_CHECK(j != NULL, "journal_open: %s", err);
	return j;
}

static void
check_refused(const struct journal_io *io, int e)
{
	char dir[PATH_MAX];
	struct journal *j;

	spool_dir(dir, sizeof(dir));
	fail_errno = e;
	if ((j = open_with(dir, io)) != NULL) {
		errno = 0;
		/* The commit says so: the client hears 4xx, not 250. */
		CU_ASSERT_EQUAL(commit(j, ID_A, "lost?\n"), -1);
		CU_ASSERT_EQUAL(errno, e);
		journal_close(&j);
	}
	journal_io = saved_io;
	/* Not acknowledged, so not queued: not now, not after a restart. */
	CU_ASSERT_FALSE(queued(dir, ID_A));
	if ((j = open_with(dir, NULL)) != NULL) {
		CU_ASSERT_FALSE(queued(dir, ID_A));
		/* And the journal works again once the disk does. */
		CU_ASSERT_EQUAL(commit(j, ID_B, "fine\n"), 0);
		journal_close(&j);
	}
	CU_ASSERT_TRUE(queued(dir, ID_B));
	spool_rm(dir);
}

static void
test_write_fails(void)
{
	check_refused(&write_fails, ENOSPC);
	check_refused(&write_fails, EIO);
}

static void
test_torn_write_fails(void)
{
	check_refused(&write_tears, EIO);
}

static void
test_sync_fails(void)
{
	check_refused(&sync_fails, EIO);
}

/*
 * In a child, which stands for smtpd: commits A and B (acknowledged) and
 * dies before the queue files are made.
 */
static void
crash_after_commits(const char *dir, int a_queued)
{
	struct journal *j;
	pid_t pid;
	int i, st;

	if ((pid = fork()) == 0) {
		if ((j = open_with(dir, a_queued ? &renamed_then_hangs :
		    &rename_hangs)) == NULL)
			_exit(2);
		if (commit(j, ID_A, "first\n") != 0)
			_exit(3);
		/* Optionally until queue/A is there, ten seconds at most. */
		for (i = 0; a_queued && !queued(dir, ID_A) && i < 1000; i++)
			usleep(10000);
		if (a_queued && !queued(dir, ID_A))
			_exit(4);
		if (commit(j, ID_B, "second\n") != 0)
			_exit(3);
		_exit(0);	/* the crash: no close, threads and all */
	}
	CU_ASSERT_FATAL(pid != -1);
	CU_ASSERT_EQUAL(waitpid(pid, &st, 0), pid);
	CU_ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void
test_crash_replay(void)
{
	char dir[PATH_MAX], path[PATH_MAX];
	struct journal *j;
	int fd;
	char buf[64];
	ssize_t n;

	spool_dir(dir, sizeof(dir));
	crash_after_commits(dir, 0);
	CU_ASSERT_FALSE(queued(dir, ID_A));
	CU_ASSERT_FALSE(queued(dir, ID_B));
	/* The restart puts each acknowledged message in queue/ once. */
	if ((j = open_with(dir, NULL)) != NULL)
		journal_close(&j);
	CU_ASSERT_TRUE(queued(dir, ID_A));
	CU_ASSERT_TRUE(queued(dir, ID_B));
	CU_ASSERT_EQUAL(count_queued(dir), 2);
	/* Whole, as committed. */
	tu_path(path, sizeof(path), dir, "queue/" ID_B);
	if ((fd = open(path, O_RDONLY)) != -1) {
		n = read(fd, buf, sizeof(buf) - 1);
		buf[n > 0 ? n : 0] = '\0';
		CU_ASSERT_STRING_EQUAL(buf, "smtpd-spool 1\nid " ID_B
		    "\n\nsecond\n");
		close(fd);
	} else
		CU_FAIL("no queue file");
	/* A second restart replays nothing again. */
	CU_ASSERT_EQUAL(unlink(path), 0);
	if ((j = open_with(dir, NULL)) != NULL)
		journal_close(&j);
	CU_ASSERT_FALSE(queued(dir, ID_B));
	CU_ASSERT_EQUAL(count_queued(dir), 1);
	CU_ASSERT_EQUAL(last_segment(dir, path, sizeof(path)), -1);
	spool_rm(dir);
}

/* queue/A made, but the journal not told: A is not queued twice. */
static void
test_crash_after_rename(void)
{
	char dir[PATH_MAX], path[PATH_MAX];
	struct stat before, after;
	struct journal *j;

	spool_dir(dir, sizeof(dir));
	crash_after_commits(dir, 1);
	CU_ASSERT_TRUE(queued(dir, ID_A));
	CU_ASSERT_FALSE(queued(dir, ID_B));
	tu_path(path, sizeof(path), dir, "queue/" ID_A);
	CU_ASSERT_EQUAL_FATAL(stat(path, &before), 0);
	if ((j = open_with(dir, NULL)) != NULL)
		journal_close(&j);
	/* The very same file: not written a second time. */
	CU_ASSERT_EQUAL_FATAL(stat(path, &after), 0);
	CU_ASSERT_EQUAL(before.st_ino, after.st_ino);
	CU_ASSERT_TRUE(queued(dir, ID_B));
	CU_ASSERT_EQUAL(count_queued(dir), 2);
	spool_rm(dir);
}

static void
test_torn_tail_ignored(void)
{
	char dir[PATH_MAX], path[PATH_MAX];
	struct journal *j;
	struct stat st;

	spool_dir(dir, sizeof(dir));
	crash_after_commits(dir, 0);
	/* The crash tore the last record: its last bytes never arrived. */
	CU_ASSERT_EQUAL_FATAL(last_segment(dir, path, sizeof(path)), 0);
	CU_ASSERT_EQUAL_FATAL(stat(path, &st), 0);
	CU_ASSERT_EQUAL(truncate(path, st.st_size - 3), 0);
	if ((j = open_with(dir, NULL)) != NULL)
		journal_close(&j);
	CU_ASSERT_TRUE(queued(dir, ID_A));
	CU_ASSERT_FALSE(queued(dir, ID_B));
	CU_ASSERT_EQUAL(count_queued(dir), 1);
	spool_rm(dir);

	/* A torn record with a wrong checksum is no better. */
	spool_dir(dir, sizeof(dir));
	crash_after_commits(dir, 0);
	CU_ASSERT_EQUAL_FATAL(last_segment(dir, path, sizeof(path)), 0);
	CU_ASSERT_EQUAL_FATAL(stat(path, &st), 0);
	{
		int fd = open(path, O_WRONLY);

		CU_ASSERT(fd != -1 && pwrite(fd, "X", 1, st.st_size - 2) == 1);
		if (fd != -1)
			close(fd);
	}
	if ((j = open_with(dir, NULL)) != NULL)
		journal_close(&j);
	CU_ASSERT_TRUE(queued(dir, ID_A));
	CU_ASSERT_FALSE(queued(dir, ID_B));
	spool_rm(dir);
}

/* Waits until every record j took is in queue/ and counted so. */
static int
written_out(struct journal *j)
{
	struct segment *s;
	unsigned int n = 1;
	int i;

	for (i = 0; i < 1000 && n > 0; i++) {
		pthread_mutex_lock(&j->mu);
		for (n = 0, s = j->segs; s != NULL; s = s->next)
			n += s->outstanding;
		pthread_mutex_unlock(&j->mu);
		if (n > 0)
			usleep(10000);
	}
	return n == 0;
}

/* A new segment for j past max bytes. */
static void
set_segmax(struct journal *j, off_t max)
{
	pthread_mutex_lock(&j->mu);
	j->segmax = max;
	pthread_mutex_unlock(&j->mu);
}

static int
spare_size(const char *dir, int k, off_t *size)
{
	char path[PATH_MAX], name[32];
	struct stat st;

	snprintf(name, sizeof(name), "journal/spare.%d", k);
	if (stat(tu_path(path, sizeof(path), dir, name), &st) == -1)
		return -1;
	*size = st.st_size;
	return 0;
}

/*
 * A spare filled to its full size and no longer being written, which
 * only a take makes busy again; its index, or -1.  The file's size on
 * disk passes the segment's size while it is still being filled.
 */
static int
ready_spare(struct journal *j)
{
	int k, found = -1;

	pthread_mutex_lock(&j->mu);
	for (k = 0; k < JOURNAL_SPARES && found == -1; k++)
		if (j->spares[k].present && !j->spares[k].busy &&
		    j->spares[k].size >= JOURNAL_SPARE_SIZE(j))
			found = k;
	pthread_mutex_unlock(&j->mu);
	return found;
}

/* Waits for spare.0, ten seconds at most. */
static int
spare_appears(const char *dir)
{
	off_t size;
	int i;

	for (i = 0; i < 1000 && spare_size(dir, 0, &size) == -1; i++)
		usleep(10000);
	return spare_size(dir, 0, &size) == 0;
}

/*
 * A spent segment comes back, what it held still in it.  In a child: A
 * and B into one segment, written out; all quiet, the segment becomes a
 * spare; C, as long as A, starts the next segment from it, over A and
 * just before what is left of B; then the crash.  The replay recovers C
 * and must not take B's leftover for a record: A and B were delivered
 * long ago.
 */
static void
test_spare_leftovers_not_replayed(void)
{
	char dir[PATH_MAX], path[PATH_MAX];
	struct journal *j;
	struct stat sb;
	pid_t pid;
	int st;

	spool_dir(dir, sizeof(dir));
	if ((pid = fork()) == 0) {
		atomic_store(&rename_gate, 1);
		if ((j = open_with(dir, &gated_renames)) == NULL)
			_exit(2);
		if (!j->reuse)
			_exit(5);	/* tmpfs: nothing is kept */
		if (commit(j, ID_A, "delivered\n") != 0 ||
		    commit(j, ID_B, "delivered\n") != 0)
			_exit(3);
		atomic_store(&rename_gate, 0);
		if (!written_out(j) || !spare_appears(dir))
			_exit(4);
		atomic_store(&rename_gate, 2);
		if (commit(j, ID_C, "recovered\n") != 0)
			_exit(3);
		/* C's segment is A's: B's record is still there after C. */
		if (last_segment(dir, path, sizeof(path)) != 0 ||
		    stat(path, &sb) != 0 || sb.st_size < SEGMENT_HDR + 2 *
		    (JOURNAL_HDR + (off_t)strlen("smtpd-spool 1\nid " ID_A
		    "\n\ndelivered\n")))
			_exit(6);
		_exit(0);	/* the crash */
	}
	CU_ASSERT_FATAL(pid != -1);
	CU_ASSERT_EQUAL(waitpid(pid, &st, 0), pid);
	CU_ASSERT_FATAL(WIFEXITED(st));
	if (WEXITSTATUS(st) == 5) {
		spool_rm(dir);
		return;
	}
	CU_ASSERT_EQUAL_FATAL(WEXITSTATUS(st), 0);
	CU_ASSERT_EQUAL(unlink(tu_path(path, sizeof(path), dir,
	    "queue/" ID_A)), 0);
	CU_ASSERT_EQUAL(unlink(tu_path(path, sizeof(path), dir,
	    "queue/" ID_B)), 0);
	if ((j = open_with(dir, NULL)) != NULL)
		journal_close(&j);
	CU_ASSERT_TRUE(queued(dir, ID_C));
	CU_ASSERT_FALSE(queued(dir, ID_B));
	CU_ASSERT_FALSE(queued(dir, ID_A));
	CU_ASSERT_EQUAL(count_queued(dir), 1);
	spool_rm(dir);
}

/*
 * Once half a segment's worth (2 MiB here) is journaled, the writer
 * zero-fills a spare to a segment's size, which the next segment is then
 * made from; in files mode the spares go.
 */
#define SEGMAX_TEST	(2 * 1024 * 1024)

static void
test_spare_made_ahead(void)
{
	char dir[PATH_MAX], id[32], path[PATH_MAX];
	struct journal *j;
	struct stat st;
	char *body;
	off_t size = 0;
	int i, k, n, fd;

	spool_dir(dir, sizeof(dir));
	body = malloc(JOURNAL_INLINE - 1024);
	CU_ASSERT_FATAL(body != NULL);
	memset(body, 'x', JOURNAL_INLINE - 1025);
	body[JOURNAL_INLINE - 1025] = '\0';
	if ((j = open_with(dir, NULL)) == NULL) {
		free(body);
		spool_rm(dir);
		return;
	}
	if (!j->reuse) {
		journal_close(&j);
		free(body);
		spool_rm(dir);
		return;
	}
	set_segmax(j, SEGMAX_TEST);
	n = SEGMAX_TEST / 2 / (JOURNAL_INLINE - 1024) + 2;
	for (i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "0123456789AB%04d", i);
		CU_ASSERT_EQUAL_FATAL(commit(j, id, body), 0);
	}
	free(body);
	CU_ASSERT_TRUE(written_out(j));
	/*
	 * Until that spare is there: a segment may be using it, which the
	 * next commit (all being written out) gives back.
	 */
	for (i = 0, k = -1; i < 1000 && k == -1; i++) {
		if ((k = ready_spare(j)) != -1)
			break;
		if (i % 100 == 99) {
			snprintf(id, sizeof(id), "0123456789AB%04d", n++);
			CU_ASSERT_EQUAL(commit(j, id, "filler\n"), 0);
			CU_ASSERT_TRUE(written_out(j));
		} else
			usleep(10000);
	}
	TU_CHECK(k != -1, "no spare of %d bytes made", SEGMAX_TEST);
	/* All is written out: the next commit starts a segment, from it. */
	CU_ASSERT_EQUAL(commit(j, ID_A, "next\n"), 0);
	CU_ASSERT_EQUAL(last_segment(dir, path, sizeof(path)), 0);
	CU_ASSERT(stat(path, &st) == 0 && st.st_size > SEGMAX_TEST);
	journal_close(&j);
	CU_ASSERT_EQUAL(count_queued(dir), n + 1);
	if ((fd = journal_recover(dir, path, sizeof(path))) != -1)
		close(fd);
	CU_ASSERT(fd != -1);
	CU_ASSERT_EQUAL(spare_size(dir, 0, &size), -1);
	CU_ASSERT_EQUAL(spare_size(dir, 1, &size), -1);
	CU_ASSERT_EQUAL(count_queued(dir), n + 1);
	spool_rm(dir);
}

/* A segment an older smtpd left (header SJH1, no salt) still replays. */
static void
test_older_segment_replayed(void)
{
	static const char payload[] = "smtpd-spool 1\nid " ID_A "\n\nold\n";
	unsigned char hdr[SEGMENT_HDR], rec[JOURNAL_HDR];
	char dir[PATH_MAX], path[PATH_MAX];
	struct journal *j;
	int fd;

	spool_dir(dir, sizeof(dir));
	CU_ASSERT_EQUAL_FATAL(mkdir(tu_path(path, sizeof(path), dir,
	    "journal"), 0700), 0);
	memset(hdr, 0, sizeof(hdr));
	memcpy(hdr, SEGMENT_MAGIC_V1, 4);
	memcpy(rec, JOURNAL_MAGIC, 4);
	journal_put32(rec + 4, sizeof(payload) - 1);
	journal_put32(rec + 8, journal_crc32(0, (const unsigned char *)payload,
	    sizeof(payload) - 1));
	fd = open(tu_path(path, sizeof(path), dir, "journal/000000000005.j"),
	    O_WRONLY | O_CREAT, 0600);
	CU_ASSERT_FATAL(fd != -1);
	CU_ASSERT(write(fd, hdr, sizeof(hdr)) == (ssize_t)sizeof(hdr));
	CU_ASSERT(write(fd, rec, sizeof(rec)) == (ssize_t)sizeof(rec));
	CU_ASSERT(write(fd, payload, sizeof(payload) - 1) ==
	    (ssize_t)sizeof(payload) - 1);
	close(fd);
	if ((j = open_with(dir, NULL)) != NULL)
		journal_close(&j);
	CU_ASSERT_TRUE(queued(dir, ID_A));
	CU_ASSERT_EQUAL(count_queued(dir), 1);
	CU_ASSERT_EQUAL(access(path, F_OK), -1);
	spool_rm(dir);
}

/* A full disk: the spares give their space back, none is kept again. */
static void
test_spares_dropped_when_full(void)
{
	char dir[PATH_MAX], path[PATH_MAX], name[32];
	struct journal *j;
	off_t size;
	int k, fd, i;

	spool_dir(dir, sizeof(dir));
	CU_ASSERT_EQUAL_FATAL(mkdir(tu_path(path, sizeof(path), dir,
	    "journal"), 0700), 0);
	for (k = 0; k < JOURNAL_SPARES; k++) {
		snprintf(name, sizeof(name), "journal/spare.%d", k);
		fd = open(tu_path(path, sizeof(path), dir, name),
		    O_WRONLY | O_CREAT, 0600);
		CU_ASSERT(fd != -1 && ftruncate(fd, 65536) == 0);
		if (fd != -1)
			close(fd);
	}
	atomic_store(&renames_full, 0);
	if ((j = open_with(dir, &disk_full_once)) == NULL) {
		spool_rm(dir);
		return;
	}
	set_segmax(j, 100);
	CU_ASSERT_EQUAL(commit(j, ID_A, "first\n"), 0);
	for (i = 0; i < 1000 && !queued(dir, ID_A); i++)
		usleep(10000);
	CU_ASSERT_TRUE(queued(dir, ID_A));
	CU_ASSERT_EQUAL(spare_size(dir, 0, &size), -1);
	CU_ASSERT_EQUAL(spare_size(dir, 1, &size), -1);
	/* A's segment is done with, and deleted rather than kept. */
	CU_ASSERT_TRUE(written_out(j));
	CU_ASSERT_EQUAL(commit(j, ID_B, "second\n"), 0);
	CU_ASSERT_TRUE(written_out(j));
	CU_ASSERT_EQUAL(spare_size(dir, 0, &size), -1);
	journal_close(&j);
	CU_ASSERT_EQUAL(count_queued(dir), 2);
	spool_rm(dir);
}

struct committer {
	pthread_t	 t;
	struct journal	*j;
	int		 n;		/* which thread */
	int		 rc[GROUP_COMMITS];
	int		 err[GROUP_COMMITS];
};

static void
group_id(char *id, size_t len, int thread, int i)
{
	snprintf(id, len, "0123456789AB%02u%02u", (unsigned int)thread % 100,
	    (unsigned int)i % 100);
}

static void *
commit_many(void *arg)
{
	struct committer *c = arg;
	char id[32];
	int i;

	committing = 1;
	(void)pthread_barrier_wait(&start_line);
	for (i = 0; i < GROUP_COMMITS; i++) {
		group_id(id, sizeof(id), c->n, i);
		errno = 0;
		c->rc[i] = commit(c->j, id, "concurrent\n");
		c->err[i] = errno;
	}
	return NULL;
}

/*
 * Runs GROUP_THREADS committing threads on a fresh journal; checks that
 * each acknowledged message is queued once the journal is closed, each
 * refused one not; flush number fail fails (0: none).  The number
 * refused.
 */
static int
run_group(int fail)
{
	struct committer c[GROUP_THREADS];
	char dir[PATH_MAX], id[32];
	struct journal *j;
	int i, k, acked = 0, refused = 0;

	spool_dir(dir, sizeof(dir));
	atomic_store(&flushes, 0);
	atomic_store(&foreign_flushes, 0);
	fail_flush = fail;
	if ((j = open_with(dir, &slow_writes)) == NULL) {
		spool_rm(dir);
		return -1;
	}
	CU_ASSERT_EQUAL_FATAL(pthread_barrier_init(&start_line, NULL,
	    GROUP_THREADS), 0);
	for (i = 0; i < GROUP_THREADS; i++) {
		c[i].j = j;
		c[i].n = i;
		CU_ASSERT_EQUAL_FATAL(pthread_create(&c[i].t, NULL,
		    commit_many, &c[i]), 0);
	}
	for (i = 0; i < GROUP_THREADS; i++)
		pthread_join(c[i].t, NULL);
	pthread_barrier_destroy(&start_line);
	journal_close(&j);
	journal_io = saved_io;
	for (i = 0; i < GROUP_THREADS; i++)
		for (k = 0; k < GROUP_COMMITS; k++) {
			group_id(id, sizeof(id), i, k);
			if (c[i].rc[k] == 0) {
				acked++;
				TU_CHECK(queued(dir, id), "%s acknowledged, "
				    "not queued", id);
			} else {
				refused++;
				CU_ASSERT_EQUAL(c[i].err[k], EIO);
				TU_CHECK(!queued(dir, id), "%s refused, "
				    "queued", id);
			}
		}
	CU_ASSERT_EQUAL(count_queued(dir), acked);
	CU_ASSERT_EQUAL(acked + refused, GROUP_THREADS * GROUP_COMMITS);
	spool_rm(dir);
	return refused;
}

/*
 * Concurrent commits share flushes, and a session that finds no flush
 * under way does it itself rather than wake a thread and sleep: every
 * flush runs on a committing thread.
 */
static void
test_group_commit(void)
{
	CU_ASSERT_EQUAL(run_group(0), 0);
	TU_CHECK(atomic_load(&flushes) < GROUP_THREADS * GROUP_COMMITS,
	    "%d flushes for %d commits", atomic_load(&flushes),
	    GROUP_THREADS * GROUP_COMMITS);
	TU_CHECK(atomic_load(&foreign_flushes) == 0,
	    "%d of %d flushes on another thread",
	    atomic_load(&foreign_flushes), atomic_load(&flushes));
}

/*
 * A failed flush refuses its batch only, its leader's commit and those
 * that queued behind the flush before it; the commits queued behind it
 * are flushed by one of theirs, and acknowledged.
 */
static void
test_group_commit_failure(void)
{
	/* The second: it carries what queued behind the (long) first. */
	int refused = run_group(2);

	TU_CHECK(refused >= 2, "%d refused", refused);
	CU_ASSERT(refused < GROUP_THREADS * GROUP_COMMITS);
}

static int
init(void)
{
	saved_io = journal_io;
	return 0;
}

static int
clean(void)
{
	journal_io = saved_io;
	return 0;
}

int
suite_journal(void)
{
	CU_pSuite s = CU_add_suite("journal", init, clean);

	if (s == NULL ||
	    CU_add_test(s, "a failed write acknowledges nothing",
	    test_write_fails) == NULL ||
	    CU_add_test(s, "a torn failed write acknowledges nothing",
	    test_torn_write_fails) == NULL ||
	    CU_add_test(s, "a failed fdatasync acknowledges nothing",
	    test_sync_fails) == NULL ||
	    CU_add_test(s, "crash before the queue files: each once",
	    test_crash_replay) == NULL ||
	    CU_add_test(s, "crash after a queue file: still once",
	    test_crash_after_rename) == NULL ||
	    CU_add_test(s, "a torn last record is ignored",
	    test_torn_tail_ignored) == NULL ||
	    CU_add_test(s, "a spare's leftovers are never replayed",
	    test_spare_leftovers_not_replayed) == NULL ||
	    CU_add_test(s, "a spare is made ahead under load, and used",
	    test_spare_made_ahead) == NULL ||
	    CU_add_test(s, "an older smtpd's segment (no salt) replays",
	    test_older_segment_replayed) == NULL ||
	    CU_add_test(s, "a full disk takes the spares' space back",
	    test_spares_dropped_when_full) == NULL ||
	    CU_add_test(s, "concurrent commits share flushes, done by them",
	    test_group_commit) == NULL ||
	    CU_add_test(s, "a failed group flush refuses its batch only",
	    test_group_commit_failure) == NULL)
		return -1;
	return 0;
}
