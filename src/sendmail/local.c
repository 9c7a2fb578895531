/*
 * local: sendmail on a host that runs smtpd -- submission through the
 * spool's maildrop (smtpd-spool(5), MAILDROP), mailq over the queue,
 * -q and -bs by way of smtpq and smtpd.
 */
#include "config.h"

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

#include "lib/conf.h"
#include "lib/fsutil.h"
#include "queue/envelope.h"
#include "queue/qstore.h"
#include "sendmail/sendmail.h"

#ifndef SBINDIR
#define SBINDIR	"/usr/sbin"
#endif

static int	is_admin(const struct maildrop_conf *, const char *);
static int	errno_status(int);
static void	run_sibling(const char *, char *const []) __attribute__((noreturn));

static int
is_admin(const struct maildrop_conf *mc, const char *login)
{
	return getuid() == 0 || maildrop_listed((char (*)[64])mc->admins,
	    mc->nadmins, login);
}

/* What a failed write into the spool means to the caller. */
static int
errno_status(int e)
{
	switch (e) {
	case ENOENT:
	case ENOTDIR:
		return EX_CONFIG;
	case EACCES:
	case EPERM:
		return EX_NOPERM;
	default:
		return EX_TEMPFAIL;	/* full disk, I/O error: retry */
	}
}

int
sm_sibling(const char *name, char *buf, size_t len)
{
	char self[PATH_MAX], *slash;
	ssize_t n;
	int r;

	/* Installed together, or side by side in a build directory. */
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		if ((slash = strrchr(self, '/')) != NULL) {
			*slash = '\0';
			r = snprintf(buf, len, "%s/%s", self, name);
			if (r > 0 && (size_t)r < len && access(buf, X_OK) == 0)
				return 0;
		}
	}
	r = snprintf(buf, len, "%s/%s", SBINDIR, name);
	return r > 0 && (size_t)r < len ? 0 : -1;
}

/* Runs a sibling program in place of this one, without the group. */
static void
run_sibling(const char *name, char *const args[])
{
	char path[PATH_MAX];

	sm_priv_drop();
	if (sm_sibling(name, path, sizeof(path)) == -1)
		sm_die(EX_SOFTWARE, "cannot name %s", name);
	execv(path, args);
	sm_die(EX_UNAVAILABLE, "cannot run %s: %s", path, strerror(errno));
}

int
local_submit(const struct maildrop_conf *mc, const struct sm_opts *o,
    struct sm_msg *m, const char *login)
{
	struct envelope e;
	struct str env;
	unsigned char rnd[8];
	char name[32], path[PATH_MAX + 64], err[256];
	char envid[ENVELOPE_ENVID_MAX * 3 + 1];
	size_t i;
	int fd, saved;

	if (getuid() != 0 && !maildrop_listed((char (*)[64])mc->trusted,
	    mc->ntrusted, login) && m->sender[0] != '\0' &&
	    !maildrop_own_sender(mc, login, m->sender)) {
		if (!mc->rewrite)
			sm_die(EX_NOPERM, "%s may not send as <%s> (only as "
			    "<%s@%s>; see sendmail.trusted in %s)", login,
			    m->sender, login, mc->domain, mc->file);
		snprintf(m->sender, sizeof(m->sender), "%s@%s", login,
		    mc->domain);
	}
	if (gnutls_rnd(GNUTLS_RND_NONCE, rnd, sizeof(rnd)) < 0)
		sm_die(EX_OSERR, "no random numbers");
	for (i = 0; i < sizeof(rnd); i++)
		snprintf(name + 2 * i, sizeof(name) - 2 * i, "%02x", rnd[i]);
	memset(&e, 0, sizeof(e));
	str_lcpy(e.id, name, sizeof(e.id));
	e.sender = m->sender;
	e.rcpts = m->rcpts;
	e.nrcpts = m->nrcpts;
	e.ret = o->ret;
	if (o->envid != NULL) {
		if (env_xtext_encode(o->envid, envid, sizeof(envid)) == -1)
			sm_die(EX_USAGE, "-V: envid too long");
		e.envid = envid;
	}
	e.body = m->eightbit ? ENV_BODY_8BITMIME : ENV_BODY_UNSET;
	e.arrival = time(NULL);
	str_init(&env, ENVELOPE_MAX);
	if (envelope_format(&e, &env, err, sizeof(err)) == -1)
		sm_die(EX_DATAERR, "the envelope: %s", err);
	snprintf(path, sizeof(path), "%s/%s/%s", mc->spool, MAILDROP_DIR,
	    name);

	/* No permissions until it is whole: the pickup leaves it alone. */
	sm_priv_on();
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0);
	saved = errno;
	sm_priv_off();
	if (fd == -1)
		sm_die(errno_status(saved), "cannot queue the message in "
		    "%s/%s: %s", mc->spool, MAILDROP_DIR, strerror(saved));
	if (fs_write_all(fd, env.s, env.len) == -1 ||
	    fs_write_all(fd, m->data.s, m->data.len) == -1 ||
	    fsync(fd) == -1 || fchmod(fd, 0640) == -1 || fsync(fd) == -1 ||
	    syncfs(fd) == -1) {
		saved = errno;
		sm_priv_on();
		(void)unlink(path);
		sm_priv_off();
		close(fd);
		sm_die(errno_status(saved), "cannot queue the message: %s",
		    strerror(saved));
	}
	close(fd);
	str_free(&env);
	if (getuid() == 0) {
		/* A running queue runner looks at once (it also watches). */
		snprintf(path, sizeof(path), "%s/runner.fifo", mc->spool);
		if ((fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC)) !=
		    -1) {
			(void)fs_write_all(fd, "scan\n", 5);
			close(fd);
		}
	}
	if (o->verbose)
		fprintf(stderr, "sendmail: queued as %s/%s for %zu "
		    "recipient%s\n", MAILDROP_DIR, name, m->nrcpts,
		    m->nrcpts == 1 ? "" : "s");
	return EX_OK;
}

/*
 * mailq: root and the admins get smtpq list; a user sees the messages
 * they submitted (the envelope's "user"), read with the maildrop group.
 */
int
local_list(const struct maildrop_conf *mc, const char *login)
{
	struct envelope *env;
	struct dirent *de;
	char path[PATH_MAX + 64], err[256], age[32];
	char *args[] = { "smtpq", "-C", (char *)mc->file, "list", NULL };
	unsigned long long bytes = 0;
	time_t now = time(NULL);
	size_t count = 0, i;
	DIR *d;
	int fd;

	if (is_admin(mc, login))
		run_sibling("smtpq", args);
	snprintf(path, sizeof(path), "%s/queue", mc->spool);
	sm_priv_on();
	if ((d = opendir(path)) == NULL)
		sm_die(errno == EACCES ? EX_NOPERM : EX_UNAVAILABLE, "cannot "
		    "read the queue %s: %s", path, strerror(errno));
	while ((de = readdir(d)) != NULL) {
		if (!qstore_valid_id(de->d_name))
			continue;
		if ((fd = openat(dirfd(d), de->d_name, O_RDONLY | O_NOFOLLOW |
		    O_CLOEXEC)) == -1)
			continue;	/* delivered since */
		if (envelope_read(fd, &env, err, sizeof(err)) != 0) {
			close(fd);
			continue;
		}
		close(fd);
		if (env->user != NULL && strcmp(env->user, login) == 0) {
			count++;
			bytes += (unsigned long long)env->size;
			conf_format_age(age, sizeof(age), (long long)(now -
			    env->arrival));
			printf("%s %8lld %5s %-8s <%s>\n", env->id,
			    (long long)env->size, age, "queued", env->sender);
			for (i = 0; i < env->nrcpts; i++)
				printf("    <%s>\n", env->rcpts[i].mailbox);
		}
		envelope_free(&env);
	}
	closedir(d);
	sm_priv_off();
	if (count == 0)
		printf("no messages of %s in the queue\n", login);
	else
		printf("-- %zu message%s, %llu bytes\n", count,
		    count == 1 ? "" : "s", bytes);
	return EX_OK;
}

/* -q: smtpq flush, for root and the admins. */
int
local_flush(const struct maildrop_conf *mc, const char *login)
{
	char *args[] = { "smtpq", "-C", (char *)mc->file, "flush", NULL };

	if (!is_admin(mc, login))
		sm_die(EX_NOPERM, "only root and sendmail.admins may flush the "
		    "queue");
	run_sibling("smtpq", args);
}

/* -bs: one smtpd session on standard input and output, from this host. */
int
local_smtp(const struct maildrop_conf *mc)
{
	char *args[] = { "smtpd", "-i", "-C", (char *)mc->file, NULL };
	char path[PATH_MAX + 64];

	/* smtpd -i writes into the spool itself. */
	snprintf(path, sizeof(path), "%s/queue", mc->spool);
	if (access(path, W_OK) == -1)
		sm_die(EX_NOPERM, "-bs writes into %s itself; only the spool's "
		    "owner may use it", mc->spool);
	if (setenv("TCPREMOTEIP", "127.0.0.1", 1) == -1)
		sm_die(EX_OSERR, "setenv: %s", strerror(errno));
	run_sibling("smtpd", args);
}
