/*
 * front: the daemon's SMTP side -- listeners, acceptor and worker
 * threads, the spool -- and its SIGHUP/SIGTERM loop.  See daemon.h.
 */
#include "config.h"

#include <sys/socket.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

#include "auth/secrets.h"
#include "auth/throttle.h"
#include "confsnap.h"
#include "daemon.h"
#include "keyproc.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/net.h"
#include "listeners.h"
#include "metricsd.h"
#include "queue/runner.h"
#include "queue/spool.h"
#include "sdnotify.h"
#include "server.h"
#include "session.h"
#include "tls.h"
#include "tlscerts.h"

#define RUNNER_RETRY_SECS	5	/* when another runner holds the spool */

/* The TLS credentials p names; old's (or none) if they do not load. */
static int
load_tls(const struct policy *p, const struct config *old, int strict,
    int remote_key, struct tls_server **out)
{
	struct tls_named named[TLSCONF_CERTS_MAX];
	struct tls_server *ts;
	struct tls_conf tc;
	char err[1024];

	*out = NULL;
	if (p->tls_certificate[0] == '\0')
		return 0;
	memset(&tc, 0, sizeof(tc));
	tlscerts_conf(p, &tc, named);
	tc.priority = p->tls_priority[0] ? p->tls_priority : NULL;
	tc.tickets = p->tls_tickets;
	tc.client_ca = p->tls_client_ca[0] ? p->tls_client_ca : NULL;
	if (remote_key) {
		tc.fetch = keyproc_fetch_certs;
		tc.add_key = keyproc_add_key;
	}
	if ((ts = tls_server_new(&tc, err, sizeof(err))) == NULL) {
		if (strict) {
			fprintf(stderr, "smtpd: %s\n", err);
			return -1;
		}
		log_err("reload: TLS: %s; keeping the old certificate", err);
		if (old != NULL && old->tls != NULL)
			*out = tls_server_ref(old->tls);
		return 0;
	}
	if (tls_server_describe(ts, err, sizeof(err)) == 1)
		log_warn("TLS certificate: %s", err);
	if (tls_server_warning(ts)[0] != '\0')
		log_warn("TLS: %s", tls_server_warning(ts));
	*out = ts;
	return 0;
}

/* The AUTH secrets table ac names; old's if it is still right or broken. */
static int
load_secrets(const struct auth_conf *ac, const struct config *old, int strict,
    struct secrets **out)
{
	struct secrets *have = old != NULL ? old->secrets : NULL;
	char err[1024];

	*out = NULL;
	if (ac->secrets[0] == '\0')
		return 0;
	switch (secrets_reload(ac->secrets, have, out, err,
	    sizeof(err))) {
	case -1:
		if (strict) {
			fprintf(stderr, "smtpd: %s\n", err);
			return -1;
		}
		log_err("reload: AUTH secrets: %s; keeping the old ones", err);
		break;
	case 1:
		return 0;
	}
	/* Unchanged, or broken: the old table, if it is this file's. */
	if (have != NULL && strcmp(secrets_path(have), ac->secrets) == 0)
		*out = secrets_ref(have);
	return 0;
}

struct config *
load_config(struct conf_file *cf, const struct config *old, int strict,
    int remote_key)
{
	struct tls_server *ts;
	struct secrets *t = NULL;
	struct config *c;

	/* Split, the key process reads the secrets. */
	if (load_tls(cf->policy, old, strict, remote_key, &ts) == -1 ||
	    (!remote_key && load_secrets(&cf->auth, old, strict, &t) == -1)) {
		tls_server_unref(&ts);
		return NULL;
	}
	if ((c = config_new(conf_file_ref(cf), ts, t)) == NULL) {
		if (strict)
			fprintf(stderr, "smtpd: out of memory\n");
		else
			log_err("reload: out of memory");
	}
	return c;
}

/*
 * The queue runner in this process; a spool another runner works on
 * (smtpq run, a runner that is still finishing) leaves it to be tried
 * again every RUNNER_RETRY_SECS, said once.
 */
static void
start_runner(const struct config *cfg, struct spool *sp, struct runner **rp,
    int first)
{
	char err[512];

	if ((*rp = runner_start(cfg->policy->spool, cfg->queue, err,
	    sizeof(err))) == NULL) {
		if (first)
			log_warn("no queue runner in smtpd for now: %s; trying "
			    "again every %d s", err, RUNNER_RETRY_SECS);
		return;
	}
	if (!first)
		log_info("queue runner started after all");
	spool_set_hook(sp, runner_spool_hook, *rp);
}

void
notify_parent(int fd)
{
	if (fd != -1)
		while (write(fd, "", 1) == -1 && errno == EINTR)
			;
}

int
bind_listeners(const struct policy *pol, struct front_fds *f)
{
	char err[1024];
	int n;

	f->nlisten = 0;
	if ((n = listeners_open(pol, f->listen, f->lflags, LISTENERS_MAX, 0,
	    err, sizeof(err))) == -1) {
		log_err("%s", err);
		return -1;
	}
	f->nlisten = n;
	return 0;
}

int
front_main(const struct smtpd_args *a, struct conf_file *cf,
    struct front_fds *f)
{
	struct policy *pol = cf->policy, *np;
	struct conf_file *ncf;
	struct config *cfg, *ncfg;
	struct spool *sp;
	struct server *sv;
	struct policy_state *st;
	struct throttle *th;
	struct session_conf tmpl;
	struct runner *runner = NULL;
	struct timespec retry = { RUNNER_RETRY_SECS, 0 };
	int want_runner;
	struct metricsd *md = NULL;
	char err[1024];
	int i, sig, split = f->nkey > 0;
	const char *who = split ? "front: " : "";
	sigset_t sigs;

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	if (split && keyproc_client(f->key, f->nkey) == -1)
		return EX_CONFIG;
	/* Not split, smtpd -d installed it already. */
	if ((cfg = config_current()) == NULL) {
		if ((cfg = load_config(cf, NULL, 1, split)) == NULL)
			return EX_CONFIG;
		config_install(config_ref(cfg));
	}
	if ((sp = spool_open(pol->spool, pol->spool_files ? SPOOL_FILES :
	    SPOOL_JOURNAL, err, sizeof(err))) == NULL) {
		log_err("%s", err);
		return EX_CANTCREAT;
	}
	if ((st = policy_state_new()) == NULL ||
	    (th = throttle_new(&cf->auth.throttle, err, sizeof(err))) == NULL) {
		log_err("out of memory");
		return EX_OSERR;
	}
	/* The per-user counts, for smtpq stats (written by this process). */
	if (policy_state_user_file(st, pol->spool, err, sizeof(err)) == -1)
		log_warn("user limits are not shown by smtpq stats: %s", err);
	/*
	 * The queue runner delivers what the sessions commit; with -m the
	 * mailer does.  Split, the runner is a process of its own and
	 * learns of new messages from inotify.
	 */
	want_runner = !split && a->mailer == NULL && cf->queue->runner;
	if (want_runner)
		start_runner(cfg, sp, &runner, 1);
	config_unref(&cfg);
	/* Split, the runner is another process: its counts are not here. */
	if (split)
		metrics_no_deliveries();
	if (pol->front.metrics_listen[0] != '\0') {
		if ((md = metricsd_start(pol->front.metrics_listen, pol->spool,
		    err, sizeof(err))) == NULL) {
			log_err("metrics: %s", err);
			return EX_OSERR;
		}
		log_info("metrics on http://%s/metrics",
		    pol->front.metrics_listen);
	}
	/*
	 * Clients are let in once the spool (and its journal) and the
	 * metrics are ready.  A restarted front finds them listening
	 * already, with what came meanwhile waiting in the backlog.
	 */
	if (listeners_listen(f->listen, f->nlisten) == -1) {
		log_err("listen: %s", strerror(errno));
		return EX_OSERR;
	}
	memset(&tmpl, 0, sizeof(tmpl));
	tmpl.spool = sp;
	tmpl.state = st;
	tmpl.throttle = th;
	tmpl.mailer = a->mailer;
	if ((sv = server_start(f->listen, f->lflags, f->nlisten, &tmpl,
	    err, sizeof(err))) == NULL) {
		log_err("%s", err);
		return EX_OSERR;
	}
	if (!pol->have_file)
		log_warn("%s does not exist: running on built-in defaults",
		    a->conffile);
	log_info("%sstarted: config=%s hostname=%s spool=%s", who,
	    pol->have_file ? a->conffile : "none", pol->hostname, pol->spool);
	/* Split, the parent speaks to systemd for the daemon. */
	if (!split)
		(void)sdnotify("READY=1");
	notify_parent(f->notify);
	for (;;) {
		/* Without its runner (another held the spool): try again. */
		sig = sigtimedwait(&sigs, NULL, want_runner && runner == NULL ?
		    &retry : NULL);
		if (sig == -1) {
			if (errno == EAGAIN && want_runner && runner == NULL) {
				cfg = config_current();
				start_runner(cfg, sp, &runner, 0);
				config_unref(&cfg);
			}
			continue;
		}
		if (sig != SIGHUP)
			break;
		if (!split)
			(void)sdnotify_reloading();
		ncf = conf_file_load(a->conffile, a->missing_ok, &a->ov, err,
		    sizeof(err));
		if (ncf == NULL) {
			if (split)
				log_err("front: the config does not load, "
				    "keeping the running one: %s", err);
			else
				log_err("reload failed, keeping the running "
				    "config: %s", err);
			if (!split)
				(void)sdnotify("READY=1");
			notify_parent(f->notify);
			continue;
		}
		np = ncf->policy;
		if (!split)
			listeners_reload_check(pol, np);
		if (strcmp(np->spool, pol->spool) != 0)
			log_warn("reload: a new spool takes a restart");
		if (np->spool_files != pol->spool_files)
			log_warn("reload: a new spool_durability takes a "
			    "restart");
		cfg = config_current();
		ncfg = load_config(ncf, cfg, 0, split);
		config_unref(&cfg);
		if (ncfg == NULL) {
			conf_file_unref(&ncf);
			if (!split)
				(void)sdnotify("READY=1");
			notify_parent(f->notify);
			continue;
		}
		if (runner != NULL)
			runner_reconfigure(runner, ncf->queue);
		if (throttle_configure(th, &ncf->auth.throttle, err,
		    sizeof(err)) == -1)
			log_err("reload: auth.throttle: %s", err);
		conf_file_unref(&ncf);
		/* New sessions take it whole; running ones keep theirs. */
		config_install(ncfg);
		/* Split, the parent says "reloaded" once all are done. */
		if (split)
			log_info("front: reload done");
		else {
			log_info("reloaded %s", a->conffile);
			(void)sdnotify("READY=1");
		}
		notify_parent(f->notify);
	}
	log_info("%sstopping on signal %d", who, sig);
	if (!split)
		(void)sdnotify("STOPPING=1");
	cfg = config_current();
	i = server_stop(&sv, cfg->policy->shutdown_timeout);
	metricsd_stop(&md);
	spool_set_hook(sp, NULL, NULL);
	runner_stop(&runner);
	policy_state_flush(st, cfg->policy);
	config_unref(&cfg);
	config_install(NULL);
	if (i == 0) {
		spool_close(&sp);
		policy_state_free(&st);
		throttle_free(&th);
	}
	gnutls_global_deinit();
	log_info("%sstopped", who);
	conf_file_unref(&cf);
	return EX_OK;
}
