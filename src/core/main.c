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

#include "lib/log.h"
#include "lib/net.h"
#include "lib/str.h"
#include "policy/policy.h"
#include "queue/spool.h"
#include "server.h"
#include "session.h"

#ifndef SMTPD_CONF
#define SMTPD_CONF "/etc/smtpd.conf"
#endif
#define SMTPD_OPTS	"C:dfh:ik:l:n:rst"
#define LISTEN_BACKLOG	1024

static void
usage(void)
{
	fprintf(stderr, "usage: smtpd [-dfirst] [-C conffile] [-h mydom] "
	    "[-k evilipaddr]... [-l [addr]:port]... [-n netdir]\n");
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

int
main(int argc, char *argv[])
{
	struct policy_overrides ov;
	struct policy *pol, *np;
	struct spool *sp;
	struct server *sv;
	struct policy_state *st;
	const char *conffile = SMTPD_CONF, *netdir = NULL;
	char err[1024];
	int ch, debug = 0, stdio_mode = 0, check_only = 0, conf_given = 0;
	int fds[POLICY_LISTEN_MAX], i, sig;
	sigset_t sigs;

	memset(&ov, 0, sizeof(ov));
	while ((ch = getopt(argc, argv, SMTPD_OPTS)) != -1) {
		switch (ch) {
		case 'C':
			conffile = optarg;
			conf_given = 1;
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
		policy_print(pol, stdout);
		policy_unref(&pol);
		exit(EX_OK);
	}
	if (pol->nlisten == 0)
		stdio_mode = 1;
	signal(SIGPIPE, SIG_IGN);

	if ((sp = spool_open(pol->spool, stdio_mode ? 0 : SPOOL_JOURNAL, err,
	    sizeof(err))) == NULL) {
		log_err("%s", err);
		if (stdio_mode)
			printf("421 4.3.0 %s Service not available\r\n",
			    pol->hostname);
		exit(EX_CANTCREAT);
	}

	if ((st = policy_state_new()) == NULL) {
		log_err("out of memory");
		exit(EX_OSERR);
	}
	if (stdio_mode) {
		struct session_conf sc;

		memset(&sc, 0, sizeof(sc));
		sc.rfd = 0;
		sc.wfd = 1;
		stdio_peer(netdir, &sc.peer);
		sc.policy = pol;
		sc.spool = sp;
		sc.state = st;
		sc.single = 1;
		i = session_run(&sc);
		policy_state_flush(st, pol);
		policy_state_free(&st);
		policy_unref(&pol);
		spool_close(&sp);
		exit(EX_OK);
	}

	for (i = 0; i < pol->nlisten; i++) {
		if ((fds[i] = net_listen(pol->listen[i], LISTEN_BACKLOG, err,
		    sizeof(err))) == -1) {
			log_err("%s", err);
			exit(EX_OSERR);
		}
		log_info("listening on %s", pol->listen[i]);
	}
	/* Signals go to this thread alone, through sigwait(). */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	policy_install(policy_ref(pol));
	if ((sv = server_start(fds, pol->nlisten, sp, st, err,
	    sizeof(err))) == NULL) {
		log_err("%s", err);
		exit(EX_OSERR);
	}
	log_info("started: hostname=%s spool=%s", pol->hostname, pol->spool);
	for (;;) {
		if (sigwait(&sigs, &sig) != 0)
			continue;
		if (sig != SIGHUP)
			break;
		np = policy_load(conffile, !conf_given, &ov, err, sizeof(err));
		if (np == NULL) {
			log_err("reload failed, keeping the running config: %s",
			    err);
			continue;
		}
		if (strcmp(np->spool, pol->spool) != 0)
			log_warn("reload: a new spool takes a restart");
		policy_install(np);
		log_info("reloaded %s", conffile);
	}
	log_info("stopping on signal %d", sig);
	policy_unref(&pol);
	pol = policy_current();
	i = server_stop(&sv, pol->shutdown_timeout);
	policy_state_flush(st, pol);
	policy_unref(&pol);
	policy_install(NULL);
	if (i == 0) {
		spool_close(&sp);
		policy_state_free(&st);
	}
	gnutls_global_deinit();
	log_info("stopped");
	return EX_OK;
}
