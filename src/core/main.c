/*
 * smtpd: receives mail over SMTP and queues it.
 *
 * With listen addresses (-l or "listen" in the config) it runs as a daemon;
 * without, it runs one session on standard input and output, as Plan 9's
 * smtpd does under its listener (inetd, tcpserver, systemd Accept=yes).
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

#include <linux/capability.h>

#include "auth/secrets.h"
#include "auth/throttle.h"
#include "daemon.h"
#include "lib/log.h"
#include "lib/net.h"
#include "lib/privs.h"
#include "lib/str.h"
#include "policy/policy.h"
#include "confsnap.h"
#include "queue/spool.h"
#include "listeners.h"
#include "session.h"
#include "tls.h"

#ifndef SMTPD_CONF
#define SMTPD_CONF "/etc/smtpd.conf"
#endif
#define SMTPD_OPTS	"C:adfh:ik:l:m:n:prst"

static void
usage(void)
{
	fprintf(stderr, "usage: smtpd [-adfiprst] [-C conffile] [-h mydom] "
	    "[-k evilipaddr]... [-l [addr]:port]... [-m mailer] [-n netdir]\n");
	exit(EX_USAGE);
}

/* Plan 9's netdir/remote holds "addr!port". */
static int
peer_from_netdir(const char *netdir, struct sockaddr_storage *ss)
{
	char path[PATH_MAX], buf[256], *bang;
	ssize_t n;
	int fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/remote", netdir) >=
	    sizeof(path))
		return -1;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	if ((bang = strrchr(buf, '!')) != NULL)
		*bang = '\0';
	return net_pton(buf, ss);
}

/* Where the one stdio client is: -n netdir, the socket, or ucspi's env. */
static void
stdio_peer(const char *netdir, struct sockaddr_storage *ss)
{
	socklen_t len = sizeof(*ss);
	const char *env;

	memset(ss, 0, sizeof(*ss));
	if (netdir != NULL) {
		if (peer_from_netdir(netdir, ss) == 0)
			return;
		log_warn("-n %s: no readable remote address", netdir);
	}
	if (getpeername(0, (struct sockaddr *)ss, &len) == 0 &&
	    (ss->ss_family == AF_INET || ss->ss_family == AF_INET6)) {
		net_unmap(ss);
		return;
	}
	memset(ss, 0, sizeof(*ss));
	if ((env = getenv("TCPREMOTEIP")) != NULL && net_pton(env, ss) == 0)
		return;
	memset(ss, 0, sizeof(*ss));
	ss->ss_family = AF_UNSPEC;
}


/*
 * Stdio mode started as root: the session runs as the unprivileged user,
 * with what it needs loaded or opened before.  The spool is given to
 * that user the first time.  With -m the mailer's user must still be
 * reachable: CAP_SETUID and CAP_SETGID stay.  0 or -1.
 */
static int
stdio_drop(const struct policy *pol, int mailer)
{
	struct privs_user u;
	char err[1024];

	if (geteuid() != 0)
		return 0;
	if (privs_lookup(pol->user, &u, err, sizeof(err)) == -1 ||
	    u.uid == 0) {
		log_err("%s", u.uid == 0 ? "user: the session must not run as "
		    "root" : err);
		return -1;
	}
	if (privs_own_dir(pol->spool, &u, 0, err, sizeof(err)) == -1) {
		log_err("cannot give the spool to %s: %s", u.name, err);
		return -1;
	}
	if (privs_drop(&u, mailer ? PRIVS_CAP(CAP_SETUID) |
	    PRIVS_CAP(CAP_SETGID) : 0, err, sizeof(err)) == -1) {
		log_err("%s", err);
		return -1;
	}
	return 0;
}

int
main(int argc, char *argv[])
{
	struct smtpd_args a;
	struct policy_overrides *ovp = &a.ov.policy;
	struct front_fds ff;
	struct conf_file *cf;
	struct policy *pol;
	struct config *cfg;
	struct spool *sp = NULL;
	struct policy_state *st;
	struct throttle *th;
	const char *netdir = NULL;
	char err[1024];
	int ch, stdio_mode = 0, check_only = 0, conf_given = 0;
	sigset_t sigs, oldsigs;

	memset(&a, 0, sizeof(a));
	a.conffile = SMTPD_CONF;
	/*
	 * Signals are taken in one place, the sigwait() loop below.  Block
	 * them before anything starts a thread (the journal's start in
	 * spool_open()), so that no thread dies of one, and one sent during
	 * start-up waits for the loop.
	 */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, &oldsigs);

	while ((ch = getopt(argc, argv, SMTPD_OPTS)) != -1) {
		switch (ch) {
		case 'C':
			a.conffile = optarg;
			conf_given = 1;
			break;
		case 'a':
			a.ov.auth_required = 1;
			break;
		case 'p':
			a.ov.auth_cleartext = 1;
			break;
		case 'd':
			a.debug = 1;
			break;
		case 'f':
			ovp->norelay = 1;
			break;
		case 'h':
			ovp->hostname = optarg;
			break;
		case 'k':
			if (ovp->nblock >= POLICY_LISTEN_MAX) {
				fprintf(stderr, "smtpd: at most %d -k options\n",
				    POLICY_LISTEN_MAX);
				exit(EX_USAGE);
			}
			ovp->block[ovp->nblock++] = optarg;
			break;
		case 'r':
			ovp->verifysenderdom = 1;
			break;
		case 's':
			ovp->saveblockedmsg = 1;
			break;
		case 'i':
			stdio_mode = 1;
			break;
		case 'l':
			if (ovp->nlisten >= POLICY_LISTEN_MAX) {
				fprintf(stderr, "smtpd: at most %d -l options\n",
				    POLICY_LISTEN_MAX);
				exit(EX_USAGE);
			}
			ovp->listen[ovp->nlisten++] = optarg;
			break;
		case 'm':
			a.mailer = optarg;
			break;
		case 'n':
			netdir = optarg;
			break;
		case 't':
			check_only = 1;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();

	a.missing_ok = !conf_given;
	log_init("smtpd", a.debug || check_only, a.debug);
	if (gnutls_global_init() < 0) {
		fprintf(stderr, "smtpd: cannot initialise GnuTLS\n");
		exit(EX_SOFTWARE);
	}
	cf = conf_file_load(a.conffile, a.missing_ok, &a.ov, err, sizeof(err));
	if (cf == NULL) {
		fprintf(stderr, "smtpd: %s\n", err);
		exit(EX_CONFIG);
	}
	pol = cf->policy;
	/* Credentials that do not load stop smtpd -t and the start alike. */
	if ((cfg = load_config(cf, NULL, 1, 0)) == NULL)
		exit(EX_CONFIG);
	if (check_only) {
		conf_file_print(cf, stdout);
		fflush(stdout);
		(void)conf_file_warnings(cf, stderr);
		config_unref(&cfg);
		conf_file_unref(&cf);
		exit(EX_OK);
	}
	if (!listeners_activated() && pol->listeners.n == 0)
		stdio_mode = 1;
	/*
	 * Said once, where someone may see it; not in stdio mode, whose
	 * standard error may be the client's connection.
	 */
	if (pol->log_stderr && !a.debug)
		log_init("smtpd", 1, 0);
	else if (!a.debug && !stdio_mode &&
	    log_syslog_check(err, sizeof(err)) == -1)
		fprintf(stderr, "smtpd: syslog is not reachable (%s): nothing "
		    "will be logged; log = \"stderr\" in the config or -d "
		    "logs to standard error\n", err);
	/* One session on stdin: a signal ends it, as for any inetd server. */
	if (stdio_mode)
		pthread_sigmask(SIG_SETMASK, &oldsigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (!stdio_mode) {
		/* As root: a parent and its unprivileged children. */
		if (geteuid() == 0) {
			/* Each child loads what it may read itself. */
			config_unref(&cfg);
			exit(parent_main(&a, cf));
		}
		config_install(cfg);
		memset(&ff, 0, sizeof(ff));
		ff.notify = -1;
		if (bind_listeners(pol, &ff) == -1)
			exit(EX_OSERR);
		exit(front_main(&a, cf, &ff));
	}
	if ((st = policy_state_new()) == NULL ||
	    (th = throttle_new(&cf->auth.throttle, err, sizeof(err))) == NULL) {
		log_err("out of memory");
		exit(EX_OSERR);
	}
	if (stdio_drop(pol, a.mailer != NULL) == -1 ||
	    (sp = spool_open(pol->spool, 0, err, sizeof(err))) == NULL) {
		if (sp == NULL)
			log_err("%s", err);
		printf("421 4.3.0 %s Service not available\r\n",
		    pol->hostname);
		exit(EX_CANTCREAT);
	}
	/*
	 * Each stdio session is its own process: AUTH failures add up only
	 * in a file they share.  Without it AUTH is refused (454), never
	 * left unthrottled.
	 */
	if (authconf_enabled(&cf->auth) &&
	    throttle_attach_file(th, cf->auth.throttle_file, err,
	    sizeof(err)) == -1)
		log_err("AUTH throttle state: %s; AUTH refused in this "
		    "session", err);
	{
		struct session_conf sc;

		memset(&sc, 0, sizeof(sc));
		sc.rfd = 0;
		sc.wfd = 1;
		stdio_peer(netdir, &sc.peer);
		sc.config = cfg;
		sc.policy = pol;
		sc.spool = sp;
		sc.state = st;
		sc.throttle = th;
		sc.mailer = a.mailer;
		sc.single = 1;
		(void)session_run(&sc);
		policy_state_flush(st, pol);
		policy_state_free(&st);
		throttle_free(&th);
		config_unref(&cfg);
		conf_file_unref(&cf);
		spool_close(&sp);
		exit(EX_OK);
	}
}
