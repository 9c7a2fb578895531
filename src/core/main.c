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

#include "auth/secrets.h"
#include "auth/throttle.h"
#include "lib/log.h"
#include "lib/net.h"
#include "lib/str.h"
#include "policy/policy.h"
#include "queue/runner.h"
#include "queue/spool.h"
#include "listeners.h"
#include "metricsd.h"
#include "sdnotify.h"
#include "server.h"
#include "session.h"
#include "tls.h"

#ifndef SMTPD_CONF
#define SMTPD_CONF "/etc/smtpd.conf"
#endif
#define SMTPD_OPTS	"C:adfh:ik:l:m:n:prst"
#define MAIN_MAX_LISTEN	LISTENERS_MAX

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
 * Loads the TLS credentials and the AUTH secrets the policy names and
 * makes them current.  At start-up (strict) a failure is fatal; on SIGHUP
 * it is logged and the running ones stay.  0 or -1.
 */
static int
load_credentials(const struct policy *p, int strict)
{
	struct tls_server *ts;
	struct tls_conf tc;
	char err[1024];

	if (p->tls_certificate[0] != '\0') {
		memset(&tc, 0, sizeof(tc));
		tc.certificate = p->tls_certificate;
		tc.key = p->tls_key;
		tc.chain = p->tls_chain[0] ? p->tls_chain : NULL;
		tc.priority = p->tls_priority[0] ? p->tls_priority : NULL;
		tc.tickets = p->tls_tickets;
		tc.client_ca = p->tls_client_ca[0] ? p->tls_client_ca : NULL;
		if ((ts = tls_server_new(&tc, err, sizeof(err))) == NULL) {
			if (strict) {
				fprintf(stderr, "smtpd: %s\n", err);
				return -1;
			}
			log_err("reload: TLS: %s; keeping the old certificate", err);
		} else {
			if (tls_server_describe(ts, err, sizeof(err)) == 1)
				log_warn("TLS certificate: %s", err);
			if (tls_server_warning(ts)[0] != '\0')
				log_warn("TLS: %s", tls_server_warning(ts));
			tls_server_install(ts);
		}
	} else
		tls_server_install(NULL);
	if (p->auth_secrets[0] != '\0' &&
	    secrets_refresh(p->auth_secrets, err, sizeof(err)) == -1) {
		if (strict) {
			fprintf(stderr, "smtpd: %s\n", err);
			return -1;
		}
		log_err("reload: AUTH secrets: %s; keeping the old ones", err);
	}
	return 0;
}

int
main(int argc, char *argv[])
{
	struct policy_overrides ov;
	struct policy *pol, *np;
	struct spool *sp;
	struct server *sv;
	struct policy_state *st;
	struct throttle *th;
	struct session_conf tmpl;
	int lflags[MAIN_MAX_LISTEN], nfds = 0;
	const char *conffile = SMTPD_CONF, *netdir = NULL, *mailer = NULL;
	struct runner *runner = NULL;
	struct metricsd *md = NULL;
	char err[1024];
	int ch, debug = 0, stdio_mode = 0, check_only = 0, conf_given = 0;
	int fds[MAIN_MAX_LISTEN], i, sig;
	sigset_t sigs, oldsigs;

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

	memset(&ov, 0, sizeof(ov));
	while ((ch = getopt(argc, argv, SMTPD_OPTS)) != -1) {
		switch (ch) {
		case 'C':
			conffile = optarg;
			conf_given = 1;
			break;
		case 'a':
			ov.auth_required = 1;
			break;
		case 'p':
			ov.auth_cleartext = 1;
			break;
		case 'd':
			debug = 1;
			break;
		case 'f':
			ov.norelay = 1;
			break;
		case 'h':
			ov.hostname = optarg;
			break;
		case 'k':
			if (ov.nblock >= POLICY_LISTEN_MAX) {
				fprintf(stderr, "smtpd: at most %d -k options\n",
				    POLICY_LISTEN_MAX);
				exit(EX_USAGE);
			}
			ov.block[ov.nblock++] = optarg;
			break;
		case 'r':
			ov.verifysenderdom = 1;
			break;
		case 's':
			ov.saveblockedmsg = 1;
			break;
		case 'i':
			stdio_mode = 1;
			break;
		case 'l':
			if (ov.nlisten >= POLICY_LISTEN_MAX) {
				fprintf(stderr, "smtpd: at most %d -l options\n",
				    POLICY_LISTEN_MAX);
				exit(EX_USAGE);
			}
			ov.listen[ov.nlisten++] = optarg;
			break;
		case 'm':
			mailer = optarg;
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

	log_init("smtpd", debug || check_only, debug);
	if (gnutls_global_init() < 0) {
		fprintf(stderr, "smtpd: cannot initialise GnuTLS\n");
		exit(EX_SOFTWARE);
	}
	pol = policy_load(conffile, !conf_given, &ov, err, sizeof(err));
	if (pol == NULL) {
		fprintf(stderr, "smtpd: %s\n", err);
		exit(EX_CONFIG);
	}
	if (check_only) {
		if (load_credentials(pol, 1) == -1)
			exit(EX_CONFIG);
		policy_print(pol, stdout);
		fflush(stdout);
		(void)policy_warnings(pol, stderr);
		policy_unref(&pol);
		exit(EX_OK);
	}
	if (load_credentials(pol, 1) == -1)
		exit(EX_CONFIG);
	if (!listeners_activated() && pol->listeners.n == 0)
		stdio_mode = 1;
	/*
	 * Said once, where someone may see it; not in stdio mode, whose
	 * standard error may be the client's connection.
	 */
	if (pol->log_stderr && !debug)
		log_init("smtpd", 1, 0);
	else if (!debug && !stdio_mode &&
	    log_syslog_check(err, sizeof(err)) == -1)
		fprintf(stderr, "smtpd: syslog is not reachable (%s): nothing "
		    "will be logged; log = \"stderr\" in the config or -d "
		    "logs to standard error\n", err);
	/* One session on stdin: a signal ends it, as for any inetd server. */
	if (stdio_mode)
		pthread_sigmask(SIG_SETMASK, &oldsigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	if ((sp = spool_open(pol->spool, stdio_mode ? 0 : SPOOL_JOURNAL, err,
	    sizeof(err))) == NULL) {
		log_err("%s", err);
		if (stdio_mode)
			printf("421 4.3.0 %s Service not available\r\n",
			    pol->hostname);
		exit(EX_CANTCREAT);
	}

	if ((st = policy_state_new()) == NULL ||
	    (th = throttle_new(&pol->auth_throttle, err, sizeof(err))) == NULL) {
		log_err("out of memory");
		exit(EX_OSERR);
	}
	/*
	 * Each stdio session is its own process: AUTH failures add up only
	 * in a file they share.  Without it AUTH is refused (454), never
	 * left unthrottled.
	 */
	if (stdio_mode && (pol->auth_secrets[0] != '\0' ||
	    pol->auth_dovecot[0] != '\0') &&
	    throttle_attach_file(th, pol->auth_throttle_file, err,
	    sizeof(err)) == -1)
		log_err("AUTH throttle state: %s; AUTH refused in this "
		    "session", err);
	if (stdio_mode) {
		struct session_conf sc;

		memset(&sc, 0, sizeof(sc));
		sc.rfd = 0;
		sc.wfd = 1;
		stdio_peer(netdir, &sc.peer);
		sc.policy = pol;
		sc.spool = sp;
		sc.state = st;
		sc.throttle = th;
		sc.mailer = mailer;
		sc.single = 1;
		(void)session_run(&sc);
		policy_state_flush(st, pol);
		policy_state_free(&st);
		throttle_free(&th);
		tls_server_install(NULL);
		secrets_install(NULL);
		policy_unref(&pol);
		spool_close(&sp);
		exit(EX_OK);
	}

	if ((nfds = listeners_open(pol, fds, lflags, MAIN_MAX_LISTEN, err,
	    sizeof(err))) == -1) {
		log_err("%s", err);
		exit(EX_OSERR);
	}
	policy_install(policy_ref(pol));
	/*
	 * The queue runner delivers what the sessions commit; with -m the
	 * mailer does, and a stdio-mode spool has `smtpq run`.
	 */
	if (mailer == NULL && pol->queue->runner) {
		if ((runner = runner_start(pol->spool, pol->queue, err,
		    sizeof(err))) == NULL)
			log_warn("no queue runner in smtpd: %s", err);
		else
			spool_set_hook(sp, runner_spool_hook, runner);
	}
	memset(&tmpl, 0, sizeof(tmpl));
	tmpl.spool = sp;
	tmpl.state = st;
	tmpl.throttle = th;
	tmpl.mailer = mailer;
	if ((sv = server_start(fds, lflags, nfds, &tmpl, err,
	    sizeof(err))) == NULL) {
		log_err("%s", err);
		exit(EX_OSERR);
	}
	if (pol->front.metrics_listen[0] != '\0') {
		if ((md = metricsd_start(pol->front.metrics_listen, pol->spool,
		    err, sizeof(err))) == NULL) {
			log_err("metrics: %s", err);
			exit(EX_OSERR);
		}
		log_info("metrics on http://%s/metrics",
		    pol->front.metrics_listen);
	}
	if (!pol->have_file)
		log_warn("%s does not exist: running on built-in defaults",
		    conffile);
	log_info("started: config=%s hostname=%s spool=%s", pol->have_file ?
	    conffile : "none", pol->hostname, pol->spool);
	(void)sdnotify("READY=1");
	for (;;) {
		if (sigwait(&sigs, &sig) != 0)
			continue;
		if (sig != SIGHUP)
			break;
		(void)sdnotify_reloading();
		np = policy_load(conffile, !conf_given, &ov, err, sizeof(err));
		if (np == NULL) {
			log_err("reload failed, keeping the running config: %s",
			    err);
			(void)sdnotify("READY=1");
			continue;
		}
		listeners_reload_check(pol, np);
		if (strcmp(np->spool, pol->spool) != 0)
			log_warn("reload: a new spool takes a restart");
		(void)load_credentials(np, 0);
		if (runner != NULL)
			runner_reconfigure(runner, np->queue);
		if (throttle_configure(th, &np->auth_throttle, err,
		    sizeof(err)) == -1)
			log_err("reload: auth.throttle: %s", err);
		policy_install(np);
		log_info("reloaded %s", conffile);
		(void)sdnotify("READY=1");
	}
	log_info("stopping on signal %d", sig);
	(void)sdnotify("STOPPING=1");
	policy_unref(&pol);
	pol = policy_current();
	i = server_stop(&sv, pol->shutdown_timeout);
	metricsd_stop(&md);
	spool_set_hook(sp, NULL, NULL);
	runner_stop(&runner);
	policy_state_flush(st, pol);
	policy_unref(&pol);
	policy_install(NULL);
	tls_server_install(NULL);
	secrets_install(NULL);
	if (i == 0) {
		spool_close(&sp);
		policy_state_free(&st);
		throttle_free(&th);
	}
	gnutls_global_deinit();
	log_info("stopped");
	return EX_OK;
}
