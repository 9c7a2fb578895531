/*
 * offline: sendmail's per-user queue for a smarthost that cannot be
 * reached, so that a laptop or a flaky link loses nothing.  One file per
 * message in a mode 700 directory: the queue-file envelope (plus the
 * account) and the message, written whole and renamed into place.
 */
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
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>

#include "lib/fsutil.h"
#include "sendmail/sendmail.h"

#define OFFLINE_FILE_MAX	(256ULL * 1024 * 1024)

static int	check_dir(const char *);
static int	name_cmp(const void *, const void *);
static int	load(const char *, const char *, struct offline_msg *,
		    char **);

int
offline_dir(const char *configured, char *buf, size_t len)
{
	const char *x = getenv("XDG_STATE_HOME");
	const char *home = getenv("HOME");
	int n;

	if (configured != NULL)
		n = snprintf(buf, len, "%s", configured);
	else if (x != NULL && *x == '/')
		n = snprintf(buf, len, "%s/smtp/queue", x);
	else if (home != NULL && *home == '/')
		n = snprintf(buf, len, "%s/.local/state/smtp/queue", home);
	else
		return -1;
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* Ours and private, made so if needed.  0 or -1 (errno). */
static int
check_dir(const char *dir)
{
	struct stat st;

	if (fs_mkdirs(dir, 0700) == -1 || lstat(dir, &st) == -1)
		return -1;
	if (!S_ISDIR(st.st_mode) || st.st_uid != getuid()) {
		errno = EPERM;
		return -1;
	}
	if ((st.st_mode & 077) != 0 && chmod(dir, 0700) == -1)
		return -1;
	return 0;
}

int
offline_put(const char *dir, unsigned max, const char *account,
    const struct sm_opts *o, const struct sm_msg *m,
    const struct env_rcpt *rcpts, size_t nrcpts)
{
	struct envelope e;
	struct dirent *de;
	struct str env;
	unsigned char rnd[6];
	char name[64], path[PATH_MAX], tmp[PATH_MAX], err[256];
	char envid[ENVELOPE_ENVID_MAX * 3 + 1];
	size_t i, count = 0;
	DIR *d;
	int fd, n, rc;

	if (check_dir(dir) == -1) {
		fprintf(stderr, "sendmail: offline queue %s: %s\n", dir,
		    strerror(errno));
		return EX_TEMPFAIL;
	}
	if ((d = opendir(dir)) == NULL) {
		fprintf(stderr, "sendmail: offline queue %s: %s\n", dir,
		    strerror(errno));
		return EX_TEMPFAIL;
	}
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.' && strcmp(de->d_name, "failed") != 0)
			count++;
	closedir(d);
	if (count >= max) {
		fprintf(stderr, "sendmail: offline queue %s is full (%u "
		    "messages, queue_max)\n", dir, max);
		return EX_TEMPFAIL;
	}
	if (gnutls_rnd(GNUTLS_RND_NONCE, rnd, sizeof(rnd)) < 0)
		return EX_OSERR;
	n = snprintf(name, sizeof(name), "%012lld-", (long long)time(NULL));
	for (i = 0; i < sizeof(rnd); i++)
		n += snprintf(name + n, sizeof(name) - (size_t)n, "%02x",
		    rnd[i]);
	memset(&e, 0, sizeof(e));
	str_lcpy(e.id, name, sizeof(e.id));
	e.sender = m->sender;
	e.rcpts = rcpts;
	e.nrcpts = nrcpts;
	e.ret = o->ret;
	if (o->envid != NULL && env_xtext_encode(o->envid, envid,
	    sizeof(envid)) >= 0)
		e.envid = envid;
	e.account = account;
	e.body = m->eightbit ? ENV_BODY_8BITMIME : ENV_BODY_UNSET;
	e.arrival = time(NULL);
	str_init(&env, ENVELOPE_MAX);
	if (envelope_format(&e, &env, err, sizeof(err)) == -1) {
		fprintf(stderr, "sendmail: offline queue: %s\n", err);
		str_free(&env);
		return EX_DATAERR;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s/.tmp-%s", dir, name);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd == -1 || fs_write_all(fd, env.s, env.len) == -1 ||
	    fs_write_all(fd, m->data.s, m->data.len) == -1 ||
	    fsync(fd) == -1 ||
	    /* A failed close has released the fd all the same. */
	    (rc = close(fd), fd = -1, rc == -1) ||
	    rename(tmp, path) == -1 || fs_sync_dir(dir) == -1) {
		int e2 = errno;

		if (fd != -1)
			close(fd);
		(void)unlink(tmp);
		str_free(&env);
		fprintf(stderr, "sendmail: offline queue %s: %s\n", dir,
		    strerror(e2));
		return EX_TEMPFAIL;
	}
	str_free(&env);
	return EX_OK;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads and parses one file.  0, or -1 (damaged: err on stderr). */
static int
load(const char *dir, const char *name, struct offline_msg *om, char **bufp)
{
	struct stat st;
	char path[PATH_MAX], err[256];
	const char *end;
	char *buf;
	size_t got = 0;
	ssize_t n;
	int fd;

	memset(om, 0, sizeof(*om));
	*bufp = NULL;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return -1;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    (unsigned long long)st.st_size > OFFLINE_FILE_MAX ||
	    (buf = malloc((size_t)st.st_size + 1)) == NULL) {
		close(fd);
		return -1;
	}
	while (got < (size_t)st.st_size &&
	    (n = read(fd, buf + got, (size_t)st.st_size - got)) > 0)
		got += (size_t)n;
	close(fd);
	buf[got] = '\0';
	if (envelope_parse(buf, got, &om->env, err, sizeof(err)) == -1) {
		fprintf(stderr, "sendmail: offline queue %s: %s\n", path, err);
		free(buf);
		return -1;
	}
	end = buf + om->env->body_off;
	if (om->env->account != NULL && str_lcpy(om->account,
	    om->env->account, sizeof(om->account)) >= sizeof(om->account)) {
		fprintf(stderr, "sendmail: offline queue %s: account name "
		    "longer than %zu bytes\n", path, sizeof(om->account) - 1);
		envelope_free(&om->env);
		free(buf);
		return -1;
	}
	str_lcpy(om->name, name, sizeof(om->name));
	om->data = end;
	om->datalen = got - (size_t)om->env->body_off;
	*bufp = buf;
	return 0;
}

int
offline_each(const char *dir, int (*fn)(struct offline_msg *, void *),
    void *arg, size_t *left)
{
	struct offline_msg om;
	struct dirent *de;
	char path[PATH_MAX], to[PATH_MAX], **names = NULL, *buf;
	size_t n = 0, cap = 0, i;
	DIR *d;
	int lockfd, r, status;

	*left = 0;
	if ((d = opendir(dir)) == NULL)
		return errno == ENOENT ? 0 : -1;
	snprintf(path, sizeof(path), "%s/.lock", dir);
	if ((lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1) {
		closedir(d);
		return -1;
	}
	if (flock(lockfd, LOCK_EX | LOCK_NB) == -1) {
		closedir(d);
		close(lockfd);
		return 1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || strcmp(de->d_name, "failed") == 0)
			continue;
		if (n == cap) {
			char **nn;

			cap = cap ? cap * 2 : 64;
			if ((nn = realloc(names, cap * sizeof(*nn))) == NULL)
				break;
			names = nn;
		}
		if ((names[n] = strdup(de->d_name)) == NULL)
			break;
		n++;
	}
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof(*names), name_cmp);
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (load(dir, names[i], &om, &buf) == -1)
			status = EX_DATAERR;
		else {
			status = fn(&om, arg);
			envelope_free(&om.env);
			free(buf);
		}
		if (status == EX_OK)
			r = unlink(path);
		else if (status == EX_TEMPFAIL) {
			(*left)++;
			r = 0;
		} else {
			snprintf(to, sizeof(to), "%s/failed", dir);
			(void)mkdir(to, 0700);
			snprintf(to, sizeof(to), "%s/failed/%s", dir,
			    names[i]);
			r = rename(path, to);
		}
		if (r == -1)
			fprintf(stderr, "sendmail: %s: %s\n", path,
			    strerror(errno));
	}
	if (n > 0)
		(void)fs_sync_dir(dir);
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	close(lockfd);
	return 0;
}
