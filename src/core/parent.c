/*
 * parent: smtpd started as root.  Binds the listeners, gives the spool
 * to the unprivileged user, then starts and watches three children:
 *
 *	key process	uid 0, no capabilities: the TLS private key and the
 *			AUTH secrets, which only root may read
 *	queue runner	queue.user (default: user) with the capabilities
 *			local delivery needs, or root
 *	front		user (_smtpd), no capabilities: every byte from
 *			the network is parsed here
 *
 * A child that ends is started again after a pause that doubles from
 * 1 s to 60 s while it keeps dying (reset once it has run for a minute).
 * SIGHUP is passed to every child, each of which reloads the config
 * itself; SIGTERM stops the front and the runner (the front drains its
 * sessions), then the key process, and the parent exits 0.
 */
#include "config.h"

#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "auth/secrets.h"
#include "daemon.h"
#include "keyproc.h"
#include "lib/log.h"
#include "lib/privs.h"
#include "lib/str.h"
#include "listeners.h"
#include "queue/queueconf.h"
#include "queue/runner.h"
#include "sdnotify.h"
#include "tls.h"

#define BACKOFF_MIN	1	/* seconds before a restart */
#define BACKOFF_MAX	60
#define STABLE_AFTER	60	/* seconds up: the back-off starts over */
#define KILL_GRACE	10	/* seconds past shutdown_timeout */
#define READY_WAIT	15000	/* ms for a child to start or reload */

/*
 * What a runner that is not root keeps: becoming a mailbox's owner
 * (SETUID, SETGID), giving it a new Maildir (CHOWN, FOWNER), reaching
 * Maildirs and relay_keys it does not own (DAC_*), stopping delivery
 * programs that run as other users (KILL).
 */
#define RUNNER_CAPS	(PRIVS_CAP(CAP_SETUID) | PRIVS_CAP(CAP_SETGID) | \
	PRIVS_CAP(CAP_CHOWN) | PRIVS_CAP(CAP_FOWNER) | \
	PRIVS_CAP(CAP_DAC_OVERRIDE) | PRIVS_CAP(CAP_DAC_READ_SEARCH) | \
	PRIVS_CAP(CAP_KILL))
/* With -m the front runs the mailer as queue.mailer_user. */
#define MAILER_CAPS	(PRIVS_CAP(CAP_SETUID) | PRIVS_CAP(CAP_SETGID))

enum role { R_KEY, R_RUNNER, R_FRONT, R_COUNT };

static const char *const role_name[R_COUNT] = {
	"key process", "queue runner", "front"
};

struct child {
	pid_t		 pid;		/* 0: not running */
	int		 wanted;
	time_t		 started;
	time_t		 next_start;
	unsigned int	 backoff;
};

struct parent {
	const struct smtpd_args	*args;
	struct conf_file	*cf;
	struct privs_user	 user, quser;
	struct front_fds	 front;
	int			 keyfds[KEYPROC_CHANNELS]; /* its ends */
	struct child		 ch[R_COUNT];
	int			 notify[R_COUNT][2];	/* child -> us */
	pid_t			 self;
};

static time_t
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* Makes the spool (and dump directory) the front's.  0 or -1. */
static int
prepare_dirs(const struct policy *pol, const struct privs_user *u)
{
	char err[1024];

	if (privs_own_dir(pol->spool, u, 1, err, sizeof(err)) == -1) {
		log_err("cannot give the spool to %s: %s", u->name, err);
		return -1;
	}
	if (pol->saveblockedmsg && strncmp(pol->dump, pol->spool,
	    strlen(pol->spool)) != 0 && privs_own_dir(pol->dump, u, 1, err,
	    sizeof(err)) == -1) {
		log_err("cannot give the dump directory to %s: %s", u->name,
		    err);
		return -1;
	}
	return 0;
}

static void
close_all(const int *fds, int n)
{
	int i;

	for (i = 0; i < n; i++)
		(void)close(fds[i]);
}

static int
runner_proc(const struct smtpd_args *a, struct conf_file *cf, int nfd)
{
	struct runner *r;
	struct conf_file *ncf;
	sigset_t sigs;
	char err[1024];
	int sig;

	if ((r = runner_start(cf->policy->spool, cf->queue, err,
	    sizeof(err))) == NULL) {
		log_err("queue runner: %s", err);
		return EX_TEMPFAIL;
	}
	log_info("queue runner: started");
	notify_parent(nfd);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	for (;;) {
		if (sigwait(&sigs, &sig) != 0)
			continue;
		if (sig != SIGHUP)
			break;
		if ((ncf = conf_file_load(a->conffile, a->missing_ok, &a->ov,
		    err, sizeof(err))) == NULL) {
			log_err("queue runner: the config does not load, "
			    "keeping the running one: %s", err);
			notify_parent(nfd);
			continue;
		}
		runner_reconfigure(r, ncf->queue);
		conf_file_unref(&cf);
		cf = ncf;
		log_info("queue runner: reload done");
		notify_parent(nfd);
	}
	runner_stop(&r);
	conf_file_unref(&cf);
	log_info("queue runner: stopped");
	return EX_OK;
}

/* In the child: gives up what role does not need, then runs it. */
static void
child_main(struct parent *pp, enum role role)
{
	struct privs_user root;
	sigset_t chld;
	char err[512];
	uint64_t keep = 0;
	int rc = EX_OK, r, nfd = pp->notify[role][1];

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	pthread_sigmask(SIG_UNBLOCK, &chld, NULL);
	/* A Ctrl-C at smtpd -d's terminal reaches the parent alone. */
	(void)setpgid(0, 0);
	if (role != R_FRONT) {
		close_all(pp->front.listen, pp->front.nlisten);
		close_all(pp->front.key, pp->front.nkey);
	}
	if (role != R_KEY)
		close_all(pp->keyfds, KEYPROC_CHANNELS);
	for (r = 0; r < R_COUNT; r++) {
		(void)close(pp->notify[r][0]);
		if (r != (int)role)
			(void)close(pp->notify[r][1]);
	}
	switch (role) {
	case R_KEY:
		memset(&root, 0, sizeof(root));
		str_lcpy(root.name, "root", sizeof(root.name));
		rc = privs_drop(&root, 0, err, sizeof(err));
		break;
	case R_RUNNER:
		if (pp->quser.uid != 0)
			rc = privs_drop(&pp->quser, RUNNER_CAPS, err,
			    sizeof(err));
		break;
	case R_FRONT:
		if (pp->args->mailer != NULL)
			keep = MAILER_CAPS;
		rc = privs_drop(&pp->user, keep, err, sizeof(err));
		break;
	default:
		break;
	}
	if (rc != 0) {
		log_err("%s: %s", role_name[role], err);
		_exit(EX_OSERR);
	}
	/*
	 * A parent that is killed takes every child along at once, as a
	 * crash of one process would (what was acknowledged is on disk),
	 * so that a new daemon finds the listeners and the spool free.
	 * Set after the switch, which clears it.
	 */
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (getppid() != pp->self)
		_exit(EX_OK);
	switch (role) {
	case R_KEY:
		keyproc_main(pp->keyfds, KEYPROC_CHANNELS, pp->args->conffile,
		    pp->args->missing_ok, &pp->args->ov, nfd);
		break;
	case R_RUNNER:
		rc = runner_proc(pp->args, conf_file_ref(pp->cf), nfd);
		break;
	case R_FRONT:
		pp->front.notify = nfd;
		rc = front_main(pp->args, conf_file_ref(pp->cf), &pp->front);
		break;
	default:
		break;
	}
	exit(rc);
}

static void
start(struct parent *pp, enum role role)
{
	struct child *c = &pp->ch[role];
	pid_t pid;

	if ((pid = fork()) == -1) {
		log_err("cannot start the %s: %s", role_name[role],
		    strerror(errno));
		c->next_start = now() + c->backoff;
		return;
	}
	if (pid == 0)
		child_main(pp, role);
	c->pid = pid;
	c->started = now();
	log_info("started the %s, pid %ld", role_name[role], (long)pid);
}

/* Notes the end of pid; schedules a restart unless stopping. */
static void
reaped(struct parent *pp, pid_t pid, int status, int stopping)
{
	struct child *c;
	char how[64];
	int r;

	for (r = 0; r < R_COUNT; r++)
		if (pp->ch[r].pid == pid)
			break;
	if (r == R_COUNT)
		return;
	c = &pp->ch[r];
	c->pid = 0;
	if (WIFSIGNALED(status))
		snprintf(how, sizeof(how), "killed by signal %d",
		    WTERMSIG(status));
	else
		snprintf(how, sizeof(how), "exited with status %d",
		    WEXITSTATUS(status));
	if (stopping) {
		log_info("the %s (pid %ld) %s", role_name[r], (long)pid, how);
		return;
	}
	if (now() - c->started >= STABLE_AFTER)
		c->backoff = BACKOFF_MIN;
	c->next_start = now() + c->backoff;
	log_err("the %s (pid %ld) %s; starting it again in %u s",
	    role_name[r], (long)pid, how, c->backoff);
	c->backoff = c->backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX :
	    c->backoff * 2;
}

static void
reap_all(struct parent *pp, int stopping)
{
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		reaped(pp, pid, status, stopping);
}

static int
running(const struct parent *pp, int from, int to)
{
	int r;

	for (r = from; r < to; r++)
		if (pp->ch[r].pid != 0)
			return 1;
	return 0;
}

/* Stops the children in [from, to) and waits for them, bounded. */
static void
stop_children(struct parent *pp, int from, int to, unsigned int grace)
{
	struct timespec ts = { 1, 0 };
	sigset_t chld;
	time_t deadline = now() + grace;
	int r, sig;

	for (r = from; r < to; r++)
		if (pp->ch[r].pid != 0)
			(void)kill(pp->ch[r].pid, SIGTERM);
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	while (running(pp, from, to)) {
		if (now() >= deadline) {
			for (r = from; r < to; r++)
				if (pp->ch[r].pid != 0) {
					log_err("the %s did not stop: killed",
					    role_name[r]);
					(void)kill(pp->ch[r].pid, SIGKILL);
				}
			deadline = now() + grace;
		}
		sig = sigtimedwait(&chld, NULL, &ts);
		(void)sig;
		reap_all(pp, 1);
	}
}

/* Throws away what a child said before (a restart's "ready"). */
static void
drain(struct parent *pp, enum role role)
{
	char buf[64];

	while (read(pp->notify[role][0], buf, sizeof(buf)) > 0)
		;
}

/*
 * Waits, bounded, for role's byte: started or reloaded.  So that the key
 * process has the new key before the front asks for it, and a daemon
 * whose start-up was reported has every process working.  -1 when it
 * said so (or did not in time); the exit status when it ended first.
 */
static int
wait_ready(struct parent *pp, enum role role)
{
	struct pollfd pfd;
	int i, r, status;
	char c;

	if (pp->ch[role].pid == 0)
		return -1;
	pfd.fd = pp->notify[role][0];
	pfd.events = POLLIN;
	for (i = 0; i < READY_WAIT / 100; i++) {
		r = poll(&pfd, 1, 100);
		if (r == 1 && read(pfd.fd, &c, 1) == 1)
			return -1;
		if (waitpid(pp->ch[role].pid, &status, WNOHANG) ==
		    pp->ch[role].pid) {
			reaped(pp, pp->ch[role].pid, status, 1);
			return WIFEXITED(status) ? WEXITSTATUS(status) :
			    EX_SOFTWARE;
		}
	}
	log_warn("the %s has not said it is ready", role_name[role]);
	return -1;
}

static void
reload(struct parent *pp)
{
	struct conf_file *ncf;
	char err[1024];
	int r;

	(void)sdnotify_reloading();
	ncf = conf_file_load(pp->args->conffile, pp->args->missing_ok,
	    &pp->args->ov, err, sizeof(err));
	if (ncf == NULL)
		log_err("reload failed, keeping the running config: %s", err);
	else {
		if (strcmp(ncf->policy->user, pp->cf->policy->user) != 0 ||
		    strcmp(ncf->queue->user, pp->cf->queue->user) != 0)
			log_warn("reload: new users take a restart");
		listeners_reload_check(pp->cf->policy, ncf->policy);
		/* Children started from now on start with it. */
		conf_file_unref(&pp->cf);
		pp->cf = ncf;
	}
	/*
	 * One after the other, the key process first: the front's new
	 * certificate wants its key.  "reloaded" once all are done.
	 */
	for (r = 0; r < R_COUNT; r++) {
		if (pp->ch[r].pid == 0)
			continue;
		drain(pp, (enum role)r);
		(void)kill(pp->ch[r].pid, SIGHUP);
		/* One that died meanwhile is started again by the loop. */
		if (wait_ready(pp, (enum role)r) >= 0)
			pp->ch[r].next_start = now() + pp->ch[r].backoff;
	}
	if (ncf != NULL)
		log_info("reloaded %s", pp->args->conffile);
	(void)sdnotify("READY=1");
}

int
parent_main(const struct smtpd_args *a, struct conf_file *cf)
{
	const struct policy *pol = cf->policy;
	struct parent pp;
	struct timespec ts = { 1, 0 };
	const char *qname;
	sigset_t sigs;
	char err[1024];
	int sv[2], i, r, sig;

	/*
	 * main() checked the credentials and dropped them: the key stays
	 * with the key process only.
	 */
	memset(&pp, 0, sizeof(pp));
	pp.args = a;
	pp.cf = cf;
	pp.self = getpid();
	qname = cf->queue->user[0] != '\0' ? cf->queue->user : pol->user;
	if (privs_lookup(pol->user, &pp.user, err, sizeof(err)) == -1 ||
	    privs_lookup(qname, &pp.quser, err, sizeof(err)) == -1) {
		log_err("%s (config \"user\"; create it, e.g. useradd "
		    "--system %s)", err, pol->user);
		return EX_NOUSER;
	}
	if (pp.user.uid == 0) {
		log_err("user: the front must not run as root");
		return EX_CONFIG;
	}
	if (prepare_dirs(pol, &pp.user) == -1)
		return EX_CANTCREAT;
	for (r = 0; r < R_COUNT; r++)
		if (pipe2(pp.notify[r], O_CLOEXEC) == -1 ||
		    fcntl(pp.notify[r][0], F_SETFL, O_NONBLOCK) == -1) {
			log_err("pipe: %s", strerror(errno));
			return EX_OSERR;
		}
	for (i = 0; i < KEYPROC_CHANNELS; i++) {
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
		    sv) == -1) {
			log_err("socketpair: %s", strerror(errno));
			return EX_OSERR;
		}
		pp.front.key[i] = sv[0];
		pp.keyfds[i] = sv[1];
	}
	pp.front.nkey = KEYPROC_CHANNELS;
	for (r = 0; r < R_COUNT; r++) {
		pp.ch[r].wanted = 1;
		pp.ch[r].backoff = BACKOFF_MIN;
	}
	pp.ch[R_RUNNER].wanted = a->mailer == NULL && cf->queue->runner;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGCHLD);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	/*
	 * The key process and the runner need no listener: they start
	 * first, the front once they are ready.
	 */
	for (r = 0; r < R_COUNT; r++) {
		if (!pp.ch[r].wanted)
			continue;
		if (r == R_FRONT && bind_listeners(pol, &pp.front) == -1) {
			stop_children(&pp, R_KEY, R_COUNT, KILL_GRACE);
			return EX_OSERR;
		}
		start(&pp, (enum role)r);
		/*
		 * A front that cannot start stops the daemon (a second
		 * one on the same spool, say); the others are tried again.
		 */
		if ((i = wait_ready(&pp, (enum role)r)) >= 0 && r != R_FRONT) {
			pp.ch[r].next_start = now() + pp.ch[r].backoff;
			log_warn("the %s could not start (status %d); trying "
			    "again in %u s", role_name[r], i,
			    pp.ch[r].backoff);
		} else if (i >= 0) {
			log_err("the %s could not start", role_name[r]);
			stop_children(&pp, R_KEY, R_COUNT, KILL_GRACE);
			return i == 0 ? EX_SOFTWARE : i;
		}
	}
	log_info("started: user=%s queue.user=%s", pp.user.name,
	    pp.quser.name);
	/* systemd knows the parent's pid: it speaks for every process. */
	(void)sdnotify("READY=1");
	for (;;) {
		for (r = 0; r < R_COUNT; r++)
			if (pp.ch[r].wanted && pp.ch[r].pid == 0 &&
			    now() >= pp.ch[r].next_start)
				start(&pp, (enum role)r);
		sig = sigtimedwait(&sigs, NULL, &ts);
		if (sig == SIGCHLD || sig == -1) {
			reap_all(&pp, 0);
			continue;
		}
		if (sig == SIGHUP) {
			reload(&pp);
			continue;
		}
		break;
	}
	log_info("stopping on signal %d", sig);
	(void)sdnotify("STOPPING=1");
	/* New clients are refused once the front has let go too. */
	close_all(pp.front.listen, pp.front.nlisten);
	pp.front.nlisten = 0;
	/* The front drains its sessions; the key process serves them. */
	stop_children(&pp, R_RUNNER, R_COUNT,
	    pp.cf->policy->shutdown_timeout + KILL_GRACE);
	stop_children(&pp, R_KEY, R_RUNNER, KILL_GRACE);
	conf_file_unref(&pp.cf);
	log_info("stopped");
	return EX_OK;
}
