#include "config.h"

#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/fsutil.h"
#include "lib/str.h"
#include "qstore.h"
#include "spool.h"

#define STATE_VERSION	"smtpq-state 1"
#define STATE_MAX	(64 * 1024 * 1024)
#define STATE_RCPT_MAX	200000
#define RUNNER_LOCK_TRIES 50	/* 10 ms apart: a look at the lock is short */

struct qstore {
	char	dir[PATH_MAX];
	char	queuedir[PATH_MAX];
	char	statedir[PATH_MAX];
	char	holddir[PATH_MAX];
	char	corruptdir[PATH_MAX];
	char	lockpath[PATH_MAX];
	char	fifopath[PATH_MAX];
};

static int	path_in(char *, size_t, const char *, const char *,
		    const char *);
static int	read_file(const char *, struct str *, size_t);
static void	put_text(struct str *, const char *);
static void	set_reply(struct reply *, int, const char *, const char *);

static int
path_in(char *buf, size_t len, const char *dir, const char *name,
    const char *suffix)
{
	if ((size_t)snprintf(buf, len, "%s/%s%s", dir, name, suffix) >= len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

struct qstore *
qstore_open(const char *dir, enum qstore_mode mode, char *err,
    size_t errlen)
{
	struct qstore *qs;
	struct stat sb;
	const char *path;
	int e;

	if ((qs = calloc(1, sizeof(*qs))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (str_lcpy(qs->dir, dir, sizeof(qs->dir)) >= sizeof(qs->dir) ||
	    path_in(qs->queuedir, sizeof(qs->queuedir), dir, "queue", "") ||
	    path_in(qs->statedir, sizeof(qs->statedir), dir, "state", "") ||
	    path_in(qs->holddir, sizeof(qs->holddir), dir, "hold", "") ||
	    path_in(qs->corruptdir, sizeof(qs->corruptdir), dir, "corrupt",
	    "") ||
	    path_in(qs->lockpath, sizeof(qs->lockpath), dir, "runner.lock",
	    "") ||
	    path_in(qs->fifopath, sizeof(qs->fifopath), dir, "runner.fifo",
	    "")) {
		snprintf(err, errlen, "spool %.100s: path too long", dir);
		free(qs);
		errno = ENAMETOOLONG;
		return NULL;
	}
	/* Only the runner makes a spool: elsewhere a typo would pass. */
	if (mode != QSTORE_CREATE) {
		/* Name the spool itself when that is what is missing. */
		path = stat(dir, &sb) == -1 ? dir : qs->queuedir;
		e = stat(path, &sb) == -1 ? errno :
		    !S_ISDIR(sb.st_mode) ? ENOTDIR : 0;
		if (e != 0) {
			snprintf(err, errlen, "%.200s: %s", path, strerror(e));
			free(qs);
			errno = e;
			return NULL;
		}
	}
	if (mode == QSTORE_READ)
		return qs;
	if (fs_mkdirs(qs->queuedir, 0700) == -1 ||
	    fs_mkdirs(qs->statedir, 0700) == -1 ||
	    fs_mkdirs(qs->holddir, 0700) == -1 ||
	    fs_mkdirs(qs->corruptdir, 0700) == -1) {
		e = errno;
		snprintf(err, errlen, "spool %.200s: %s", dir, strerror(e));
		free(qs);
		errno = e;
		return NULL;
	}
	return qs;
}

void
qstore_close(struct qstore **qsp)
{
	free(*qsp);
	*qsp = NULL;
}

const char *
qstore_dir(const struct qstore *qs)
{
	return qs->dir;
}

int
qstore_valid_id(const char *id)
{
	static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
	size_t i;

	for (i = 0; i < SPOOL_ID_LEN; i++)
		if (id[i] == '\0' || strchr(alphabet, id[i]) == NULL)
			return 0;
	return id[SPOOL_ID_LEN] == '\0';
}

static int
id_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

int
qstore_list(struct qstore *qs, char (**idsp)[32], size_t *np)
{
	char (*ids)[32] = NULL, (*nids)[32];
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d;
	int e;

	*idsp = NULL;
	*np = 0;
	if ((d = opendir(qs->queuedir)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (!qstore_valid_id(de->d_name))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			if ((nids = realloc(ids, cap * sizeof(*ids))) == NULL) {
				e = errno;
				free(ids);
				closedir(d);
				errno = e;
				return -1;
			}
			ids = nids;
		}
		str_lcpy(ids[n++], de->d_name, sizeof(ids[0]));
	}
	closedir(d);
	if (n > 0)
		qsort(ids, n, sizeof(*ids), id_cmp);
	*idsp = ids;
	*np = n;
	return 0;
}

void
qstore_free_ids(char (**ids)[32])
{
	free(*ids);
	*ids = NULL;
}

int
qstore_open_msg(struct qstore *qs, const char *id)
{
	char path[PATH_MAX];

	if (!qstore_valid_id(id)) {
		errno = EINVAL;
		return -1;
	}
	if (path_in(path, sizeof(path), qs->queuedir, id, "") == -1)
		return -1;
	return open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
}

int
qstore_lock(int fd)
{
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	struct stat st;
	int i;

	for (i = 0; ; i++) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			break;
		if (errno != EWOULDBLOCK && errno != EINTR)
			return -1;
		if (i >= QSTORE_LOCK_WAIT * 100) {
			errno = ETIMEDOUT;
			return -1;
		}
		nanosleep(&ts, NULL);
	}
	if (fstat(fd, &st) == -1) {
		qstore_unlock(fd);
		return -1;
	}
	if (st.st_nlink == 0) {
		qstore_unlock(fd);
		return 1;
	}
	return 0;
}

void
qstore_unlock(int fd)
{
	(void)flock(fd, LOCK_UN);
}

/* Reads a whole small file into s.  0, or -1 (errno; EFBIG if too big). */
static int
read_file(const char *path, struct str *s, size_t max)
{
	int fd, e, rc;

	str_init(s, max);
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return -1;
	rc = str_read_fd(s, fd);
	e = errno;
	close(fd);
	if (rc != 0) {
		str_free(s);
		errno = e;
		return -1;
	}
	return 0;
}

struct qstore_state *
qstore_state_new(void)
{
	return calloc(1, sizeof(struct qstore_state));
}

int
qstore_state_add(struct qstore_state *st, const char *mailbox, size_t orig)
{
	struct qstore_rcpt *nr;

	if (st->n >= STATE_RCPT_MAX)
		return -1;
	if ((st->n & (st->n - 1)) == 0) {
		nr = realloc(st->r, (st->n ? st->n * 2 : 1) * sizeof(*nr));
		if (nr == NULL)
			return -1;
		st->r = nr;
	}
	memset(&st->r[st->n], 0, sizeof(st->r[0]));
	if ((st->r[st->n].mailbox = strdup(mailbox)) == NULL)
		return -1;
	st->r[st->n].orig = orig;
	st->n++;
	return 0;
}

void
qstore_state_free(struct qstore_state **stp)
{
	struct qstore_state *st = *stp;
	size_t i;

	if (st == NULL)
		return;
	*stp = NULL;
	for (i = 0; i < st->n; i++)
		free(st->r[i].mailbox);
	free(st->r);
	free(st);
}

const char *
qstore_rstate_name(enum qstore_rstate s)
{
	switch (s) {
	case QS_PENDING:
		return "pending";
	case QS_DELIVERED:
		return "delivered";
	case QS_RELAYED:
		return "relayed";
	case QS_FAILED:
		return "failed";
	}
	return "?";
}

static const char *dsn_names[] = { "-", "owed", "sent" };

/* Copies one line of text; the format is line based. */
static void
copy_field(char *dst, size_t size, const char *src, size_t len)
{
	size_t i;

	if (len >= size)
		len = size - 1;
	for (i = 0; i < len; i++)
		dst[i] = (unsigned char)src[i] < 0x20 ? '?' : src[i];
	dst[len] = '\0';
}

/*
 * A reply line's fields.  Older files may hold any status of up to 15
 * bytes and any code up to 999: what the reply type's rules refuse becomes
 * "no code" or the class's default status; the file still reads.
 */
static void
set_reply(struct reply *r, int code, const char *status, const char *text)
{
	size_t i;

	reply_clear(r);
	if (reply_class(code) != REPLY_NONE)
		r->code = code;
	(void)reply_set_status(r, strcmp(status, "-") == 0 ? "" : status);
	(void)reply_set_text(r, text, strlen(text));
	for (i = 0; r->text[i] != '\0'; i++)
		if ((unsigned char)r->text[i] < 0x20)
			r->text[i] = '?';
}

int
qstore_state_parse(const char *buf, size_t len, struct qstore_state **stp,
    char *err, size_t errlen)
{
	struct qstore_state *st;
	struct qstore_rcpt *r = NULL;
	const char *p = buf, *end = buf + len, *nl;
	char line[1024], word[7][32], status[16];
	size_t ll;
	int lineno = 0, n, off, i, code;
	long long v[4];

	*stp = NULL;
	if ((st = qstore_state_new()) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (; p < end; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL) {
			snprintf(err, errlen, "last line is not terminated");
			goto fail;
		}
		ll = (size_t)(nl - p);
		lineno++;
		if (ll >= sizeof(line)) {
			snprintf(err, errlen, "line %d too long", lineno);
			goto fail;
		}
		memcpy(line, p, ll);
		line[ll] = '\0';
		if (memchr(line, '\0', ll) != NULL) {
			snprintf(err, errlen, "line %d: NUL byte", lineno);
			goto fail;
		}
		if (lineno == 1) {
			if (strcmp(line, STATE_VERSION) != 0) {
				snprintf(err, errlen, "not a state file (want "
				    "\"%s\")", STATE_VERSION);
				goto fail;
			}
			continue;
		}
		if (strcmp(line, "warned") == 0) {
			st->warned = 1;
		} else if (strncmp(line, "rcpt ", 5) == 0) {
			off = 0;
			/* rcpt STATE DSN ATTEMPTS NEXT LAST ORIG MAILBOX */
			if (sscanf(line, "rcpt %31s %31s %31s %31s %31s %31s %n",
			    word[0], word[1], word[2], word[3], word[4],
			    word[5], &off) != 6 || off == 0 ||
			    line[off] == '\0') {
				snprintf(err, errlen, "line %d: bad rcpt line",
				    lineno);
				goto fail;
			}
			for (i = 0; i < 4; i++) {
				char *e;

				errno = 0;
				v[i] = strtoll(word[2 + i], &e, 10);
				if (errno || *e != '\0' || v[i] < 0) {
					snprintf(err, errlen, "line %d: bad "
					    "number", lineno);
					goto fail;
				}
			}
			if (qstore_state_add(st, line + off, (size_t)v[3]) ==
			    -1) {
				snprintf(err, errlen, "too many recipients or "
				    "out of memory");
				goto fail;
			}
			r = &st->r[st->n - 1];
			for (n = 0; n <= QS_FAILED; n++)
				if (strcmp(word[0],
				    qstore_rstate_name((enum qstore_rstate)n)) ==
				    0)
					break;
			if (n > QS_FAILED) {
				snprintf(err, errlen, "line %d: unknown state "
				    "\"%.20s\"", lineno, word[0]);
				goto fail;
			}
			r->state = (enum qstore_rstate)n;
			for (n = 0; n < 3; n++)
				if (strcmp(word[1], dsn_names[n]) == 0)
					break;
			if (n == 3) {
				snprintf(err, errlen, "line %d: bad dsn field",
				    lineno);
				goto fail;
			}
			r->dsn = (enum qstore_dsn)n;
			r->attempts = v[0] > 1000000 ? 1000000 :
			    (unsigned int)v[0];
			r->next = (time_t)v[1];
			r->last = (time_t)v[2];
		} else if (strncmp(line, "reply ", 6) == 0) {
			if (r == NULL) {
				snprintf(err, errlen, "line %d: reply before "
				    "any rcpt", lineno);
				goto fail;
			}
			off = 0;
			if (sscanf(line, "reply %d %15s %n", &code, status,
			    &off) != 2 || off == 0 || code < 0 || code > 999) {
				snprintf(err, errlen, "line %d: bad reply line",
				    lineno);
				goto fail;
			}
			set_reply(&r->reply, code, status, line + off);
		} else if (strncmp(line, "mta ", 4) == 0) {
			if (r == NULL) {
				snprintf(err, errlen, "line %d: mta before any "
				    "rcpt", lineno);
				goto fail;
			}
			copy_field(r->mta, sizeof(r->mta), line + 4,
			    strlen(line + 4));
		}
		/* Anything else: a later version's item, ignored. */
	}
	if (lineno == 0) {
		snprintf(err, errlen, "empty state file");
		goto fail;
	}
	*stp = st;
	return 0;
fail:
	qstore_state_free(&st);
	return -1;
}

/* One line of text: control characters become '?'. */
static void
put_text(struct str *s, const char *t)
{
	for (; *t != '\0'; t++)
		(void)str_appendc(s, (unsigned char)*t < 0x20 || *t == 0x7f ?
		    '?' : *t);
}

int
qstore_state_format(const struct qstore_state *st, char **out, size_t *len)
{
	const struct qstore_rcpt *r;
	struct str s;
	size_t i;

	str_init(&s, STATE_MAX);
	(void)str_appends(&s, STATE_VERSION "\n");
	if (st->warned)
		(void)str_appends(&s, "warned\n");
	for (i = 0; i < st->n; i++) {
		r = &st->r[i];
		(void)str_appendf(&s, "rcpt %s %s %u %lld %lld %zu ",
		    qstore_rstate_name(r->state), dsn_names[r->dsn],
		    r->attempts, (long long)r->next, (long long)r->last,
		    r->orig);
		put_text(&s, r->mailbox);
		(void)str_appendc(&s, '\n');
		if (r->reply.code != 0 || r->reply.text[0] != '\0') {
			(void)str_appendf(&s, "reply %d %s ", r->reply.code,
			    r->reply.status[0] ? r->reply.status : "-");
			put_text(&s, r->reply.text);
			(void)str_appendc(&s, '\n');
		}
		if (r->mta[0] != '\0') {
			(void)str_appends(&s, "mta ");
			put_text(&s, r->mta);
			if (str_appendc(&s, '\n') == -1)
				break;
		}
	}
	/* The last append failing means the string is incomplete. */
	if (str_appends(&s, "") == -1 || s.len == 0 ||
	    s.s[s.len - 1] != '\n') {
		str_free(&s);
		return -1;
	}
	*out = s.s;
	*len = s.len;
	return 0;
}

int
qstore_state_load(struct qstore *qs, const char *id,
    struct qstore_state **stp, char *err, size_t errlen)
{
	char path[PATH_MAX];
	struct str s;

	*stp = NULL;
	if (path_in(path, sizeof(path), qs->statedir, id, "") == -1) {
		snprintf(err, errlen, "path too long");
		return -1;
	}
	if (read_file(path, &s, STATE_MAX) == -1) {
		if (errno == ENOENT)
			return 1;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return errno == EFBIG ? -2 : -1;
	}
	if (qstore_state_parse(s.s ? s.s : "", s.len, stp, err, errlen) ==
	    -1) {
		str_free(&s);
		return -2;
	}
	str_free(&s);
	return 0;
}

int
qstore_state_save(struct qstore *qs, const char *id,
    const struct qstore_state *st, char *err, size_t errlen)
{
	char path[PATH_MAX], tmp[PATH_MAX], *buf;
	size_t len;
	int fd, e;

	if (path_in(path, sizeof(path), qs->statedir, id, "") == -1 ||
	    path_in(tmp, sizeof(tmp), qs->statedir, id, ".tmp") == -1) {
		snprintf(err, errlen, "path too long");
		return -1;
	}
	if (qstore_state_format(st, &buf, &len) == -1) {
		snprintf(err, errlen, "state too large or out of memory");
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd == -1) {
		e = errno;
		free(buf);
		snprintf(err, errlen, "%s: %s", tmp, strerror(e));
		return -1;
	}
	if (fs_write_all(fd, buf, len) == -1 || fsync(fd) == -1) {
		e = errno;
		close(fd);
		(void)unlink(tmp);
		free(buf);
		snprintf(err, errlen, "%s: %s", tmp, strerror(e));
		return -1;
	}
	free(buf);
	if (close(fd) == -1 || rename(tmp, path) == -1 ||
	    fs_sync_dir(qs->statedir) == -1) {
		e = errno;
		(void)unlink(tmp);
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -1;
	}
	return 0;
}

int
qstore_state_discard(struct qstore *qs, const char *id)
{
	char from[PATH_MAX], to[PATH_MAX];

	if (path_in(from, sizeof(from), qs->statedir, id, "") == -1 ||
	    path_in(to, sizeof(to), qs->corruptdir, id, ".state") == -1)
		return -1;
	if (rename(from, to) == -1)
		return -1;
	(void)fs_sync_dir(qs->corruptdir);
	return fs_sync_dir(qs->statedir);
}

int
qstore_remove(struct qstore *qs, const char *id)
{
	char path[PATH_MAX];

	if (path_in(path, sizeof(path), qs->queuedir, id, "") == -1)
		return -1;
	if (unlink(path) == -1 && errno != ENOENT)
		return -1;
	if (path_in(path, sizeof(path), qs->statedir, id, "") == 0)
		(void)unlink(path);
	if (path_in(path, sizeof(path), qs->holddir, id, "") == 0)
		(void)unlink(path);
	return 0;
}

int
qstore_quarantine(struct qstore *qs, const char *id)
{
	char from[PATH_MAX], to[PATH_MAX];

	if (path_in(from, sizeof(from), qs->queuedir, id, "") == -1 ||
	    path_in(to, sizeof(to), qs->corruptdir, id, "") == -1)
		return -1;
	if (rename(from, to) == -1)
		return -1;
	(void)fs_sync_dir(qs->corruptdir);
	(void)fs_sync_dir(qs->queuedir);
	if (path_in(from, sizeof(from), qs->statedir, id, "") == 0 &&
	    path_in(to, sizeof(to), qs->corruptdir, id, ".state") == 0)
		(void)rename(from, to);
	return 0;
}

int
qstore_held(struct qstore *qs, const char *id)
{
	char path[PATH_MAX];

	if (path_in(path, sizeof(path), qs->holddir, id, "") == -1)
		return 0;
	return access(path, F_OK) == 0;
}

int
qstore_set_hold(struct qstore *qs, const char *id, int on)
{
	char path[PATH_MAX];
	int fd;

	if (path_in(path, sizeof(path), qs->holddir, id, "") == -1)
		return -1;
	if (on) {
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, 0600);
		if (fd == -1 && errno == EEXIST)
			return 1;
		if (fd == -1 || close(fd) == -1)
			return -1;
	} else if (unlink(path) == -1)
		return errno == ENOENT ? 1 : -1;
	return fs_sync_dir(qs->holddir);
}

void
qstore_clean_orphans(struct qstore *qs)
{
	const char *dirs[2] = { qs->statedir, qs->holddir };
	char path[PATH_MAX], id[SPOOL_ID_LEN + 1];
	struct dirent *de;
	struct stat st;
	DIR *d;
	int i;

	for (i = 0; i < 2; i++) {
		if ((d = opendir(dirs[i])) == NULL)
			continue;
		while ((de = readdir(d)) != NULL) {
			if (strlen(de->d_name) < SPOOL_ID_LEN)
				continue;
			memcpy(id, de->d_name, SPOOL_ID_LEN);
			id[SPOOL_ID_LEN] = '\0';
			if (!qstore_valid_id(id))
				continue;
			if (path_in(path, sizeof(path), qs->queuedir, id,
			    "") == -1 || stat(path, &st) == 0)
				continue;
			if (path_in(path, sizeof(path), dirs[i], de->d_name,
			    "") == 0)
				(void)unlink(path);
		}
		closedir(d);
	}
}

int
qstore_runner_lock(struct qstore *qs, char *err, size_t errlen)
{
	struct timespec pause = { 0, 10 * 1000 * 1000 };
	char pid[32];
	long other;
	int fd, tries;

	fd = open(qs->lockpath, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd == -1) {
		snprintf(err, errlen, "%s: %s", qs->lockpath, strerror(errno));
		return -1;
	}
	/*
	 * smtpq stats and friends hold the lock shared for a moment to see
	 * whether a runner works: that is no runner, so try again briefly.
	 * A runner writes its pid at once; a lock without one is a look.
	 */
	for (tries = 0; flock(fd, LOCK_EX | LOCK_NB) == -1; tries++) {
		if (errno != EWOULDBLOCK || tries >= RUNNER_LOCK_TRIES ||
		    qstore_runner_pid(qs) > 1) {
			tries = -1;
			break;
		}
		(void)nanosleep(&pause, NULL);
	}
	if (tries == -1) {
		close(fd);
		other = qstore_runner_pid(qs);
		if (other > 0)
			snprintf(err, errlen, "another queue runner (pid %ld) "
			    "is working on %s", other, qs->dir);
		else
			snprintf(err, errlen, "another queue runner is working "
			    "on %s", qs->dir);
		return -1;
	}
	snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) == -1 ||
	    pwrite(fd, pid, strlen(pid), 0) != (ssize_t)strlen(pid)) {
		snprintf(err, errlen, "%s: %s", qs->lockpath, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

long
qstore_runner_pid(struct qstore *qs)
{
	char buf[32];
	ssize_t n;
	long pid;
	int fd;

	if ((fd = open(qs->lockpath, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) ==
	    -1)
		return errno == ENOENT ? 0 : -1;
	if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
		close(fd);
		return 0;
	}
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	if (n <= 0)
		return 1;	/* locked, pid not written yet */
	buf[n] = '\0';
	pid = strtol(buf, NULL, 10);
	return pid > 0 ? pid : 1;
}

const char *
qstore_fifo_path(const struct qstore *qs)
{
	return qs->fifopath;
}

int
qstore_wake(struct qstore *qs, const char *line)
{
	char buf[128];
	size_t n;
	ssize_t w;
	int fd;

	n = (size_t)snprintf(buf, sizeof(buf), "%s\n", line);
	if (n >= sizeof(buf)) {
		errno = EINVAL;
		return -1;
	}
	fd = open(qs->fifopath, O_WRONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1)
		return errno == ENXIO || errno == ENOENT ? 0 : -1;
	/* Short lines are written whole or not at all (PIPE_BUF). */
	w = write(fd, buf, n);
	close(fd);
	if (w != (ssize_t)n)
		return -1;
	return 1;
}
