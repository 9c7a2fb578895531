#include "config.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libconfig.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "lib/addr.h"
#include "lib/fsutil.h"
#include "lib/net.h"
#include "lib/str.h"
#include "lib/table.h"
#include "auth/dovecot.h"
#include "conf/conf.h"
#include "auth/sasl.h"
#include "auth/senders.h"
#include "queue/maildrop.h"
#include "queue/queueconf.h"
#include "queue/recipients.h"
#include "delegate.h"
#include "dkimconf.h"
#include "milterconf.h"
#include "policy.h"
#include "policy_int.h"

_Static_assert((int)QV_OK == POLICY_RCPT_OK &&
    (int)QV_UNKNOWN == POLICY_RCPT_UNKNOWN &&
    (int)QV_TEMP == POLICY_RCPT_TEMP, "recipient verdicts differ");

#ifndef SMTPD_SPOOL
#define SMTPD_SPOOL	"/var/spool/smtpd"
#endif

/* Keys the file may hold at the top level and in limits { }. */
static const char *const top_keys[] = {
	"hostname", "defaultdomain", "listen", "spool", "spool_durability",
	"reverse_lookup",
	"limits", "norelay", "verifysenderdom", "saveblockedmsg", "dump",
	"ournets", "ourdomains", "block", "access", "access_file",
	"helo_checks", "greylist", "rules", "tls", "auth",
	"routes", "aliases", "queue", "log", "bare_newline", "sendmail",
	"proxy", "metrics", "users", "relay_recipients", "recipient_delimiter",
	"access_table", "policy_services", "dkim", "milters", "user", NULL
};
static const char *const tls_keys[] = {
	"certificate", "key", "chain", "priority", "tickets", "client_ca",
	"client_cert_trusted", "handshake_timeout", "listen", "certificates",
	NULL
};
static const char *const auth_keys[] = {
	"secrets", "mechanisms", "senders", "throttle", "required",
	"cleartext", "backend", "dovecot_socket", NULL
};
static const char *const throttle_keys[] = {
	"failures", "window", "block", "delay", "max_delay",
	"global_failures", "global_window", "global_block", "table_size",
	"file", NULL
};

static void	policy_defaults(struct policy *);
static int	check_sendmail(const config_setting_t *, const char *, char *,
		    size_t);
static void	policy_free(struct policy *);

static void
policy_defaults(struct policy *p)
{
	memset(p, 0, sizeof(*p));
	p->refs = 1;
	p->reverse_lookup = 1;
	p->message_size = DEF_MESSAGE_SIZE;
	p->recipients = DEF_RECIPIENTS;
	p->sessions = DEF_SESSIONS;
	p->sessions_per_ip = DEF_SESSIONS_PER_IP;
	p->sessions_per_net = DEF_SESSIONS_PER_NET;
	p->data_deadline = DEF_DATA_DEADLINE;
	p->data_rate = DEF_DATA_RATE;
	p->data_rate_window = DEF_DATA_RATE_WINDOW;
	p->dump_max_age = DEF_DUMP_MAX_AGE;
	p->dump_max_total = DEF_DUMP_MAX_TOTAL;
	p->errors = DEF_ERRORS;
	p->command_timeout = DEF_COMMAND_TIMEOUT;
	p->data_timeout = DEF_DATA_TIMEOUT;
	p->shutdown_timeout = DEF_SHUTDOWN_TIMEOUT;
	p->line_length = DEF_LINE_LENGTH;
	p->header_size = DEF_HEADER_SIZE;
	p->dump_size = DEF_DUMP_SIZE;
	p->tarpit_after = DEF_TARPIT_AFTER;
	p->tarpit_delay = DEF_TARPIT_DELAY;
	p->user_window = DEF_USER_WINDOW;
	p->grey_delay = DEF_GREY_DELAY;
	p->grey_retry = DEF_GREY_RETRY;
	p->grey_expire = DEF_GREY_EXPIRE;
	p->grey_entries = DEF_GREY_ENTRIES;
	p->tls_tickets = 1;
	p->tls_handshake_timeout = 30;
	p->auth_mechs = SASL_M_DEFAULT;
	throttle_conf_defaults(&p->auth_throttle);
	str_lcpy(p->spool, SMTPD_SPOOL, sizeof(p->spool));
	str_lcpy(p->user, SMTPD_USER, sizeof(p->user));
}

static int
add_listen(struct policy *p, const char *addr, const config_setting_t *s,
    const struct conf_ctx *cx)
{
	char host[256], port[32];

	if (p->nlisten >= POLICY_LISTEN_MAX)
		return conf_err(cx, s,
		    "more than %d listen addresses", POLICY_LISTEN_MAX);
	if (net_split_hostport(addr, host, sizeof(host), port,
	    sizeof(port)) == -1)
		return conf_err(cx, s,
		    "bad listen address \"%.100s\" (want addr:port, [v6]:port "
		    "or :port)", addr);
	if ((p->listen[p->nlisten] = strdup(addr)) == NULL)
		return conf_err(cx, s, "out of memory");
	p->nlisten++;
	return 0;
}




static int
add_tls_listen(struct policy *p, const char *addr, const config_setting_t *s,
    const struct conf_ctx *cx)
{
	char host[256], port[32];

	if (p->ntls_listen >= POLICY_LISTEN_MAX)
		return conf_err(cx, s,
		    "more than %d tls.listen addresses", POLICY_LISTEN_MAX);
	if (net_split_hostport(addr, host, sizeof(host), port,
	    sizeof(port)) == -1)
		return conf_err(cx, s,
		    "bad listen address \"%.100s\" (want addr:port, [v6]:port "
		    "or :port)", addr);
	if ((p->tls_listen[p->ntls_listen] = strdup(addr)) == NULL)
		return conf_err(cx, s, "out of memory");
	p->ntls_listen++;
	return 0;
}

/* tls { ... } */
int
policy_load_tls(struct policy *p, config_setting_t *g,
    const struct conf_ctx *cx)
{
	config_setting_t *s;
	const char *v = NULL;

	if (!config_setting_is_group(g))
		return conf_err(cx, g, "tls must be a group { ... }");
	if (conf_check_keys(cx, g, tls_keys, NULL) == -1 ||
	    conf_get_path(cx, g, "certificate", p->tls_certificate,
	    sizeof(p->tls_certificate)) == -1 ||
	    conf_get_path(cx, g, "key", p->tls_key, sizeof(p->tls_key)) == -1 ||
	    conf_get_path(cx, g, "chain", p->tls_chain,
	    sizeof(p->tls_chain)) == -1 ||
	    conf_get_path(cx, g, "client_ca", p->tls_client_ca,
	    sizeof(p->tls_client_ca)) == -1 ||
	    conf_get_bool(cx, g, "tickets", &p->tls_tickets) == -1 ||
	    conf_get_bool(cx, g, "client_cert_trusted",
	    &p->tls_client_cert_trusted) == -1 ||
	    conf_get_duration(cx, g, "handshake_timeout", 1, 600,
	    &p->tls_handshake_timeout) == -1 ||
	    conf_get_string(cx, g, "priority", &v) == -1)
		return -1;
	if (v != NULL && str_lcpy(p->tls_priority, v,
	    sizeof(p->tls_priority)) >=
	    sizeof(p->tls_priority))
		return conf_err(cx, g, "tls.priority is too long");
	if ((p->tls_certificate[0] != '\0') != (p->tls_key[0] != '\0'))
		return conf_err(cx, g,
		    "tls needs both certificate and key");
	if (tlsconf_load(&p->tls_sni, g, cx) == -1)
		return -1;
	if (p->tls_sni.ncerts > 0 && p->tls_certificate[0] == '\0')
		return conf_err(cx, g, "tls.certificates needs "
		    "tls.certificate and tls.key (the default certificate)");
	if ((s = config_setting_get_member(g, "listen")) != NULL) {
		if (policy_each_string(s, "tls.listen", add_tls_listen, p,
		    cx) == -1)
			return -1;
		if (p->tls_certificate[0] == '\0')
			return conf_err(cx, s,
			    "tls.listen needs tls.certificate and tls.key");
	}
	return 0;
}

/* auth.backend: "file" (auth.secrets) or "dovecot" (its auth socket). */
static int
load_auth_backend(struct policy *p, config_setting_t *g,
    const struct conf_ctx *cx)
{
	const char *v = NULL;

	if (conf_get_string(cx, g, "backend", &v) == -1 ||
	    conf_get_path(cx, g, "dovecot_socket", p->auth_dovecot,
	    sizeof(p->auth_dovecot)) == -1)
		return -1;
	if (v == NULL || strcmp(v, "file") == 0) {
		if (p->auth_dovecot[0] != '\0')
			return conf_err(cx, config_setting_get_member(g,
			    "dovecot_socket"),
			    "auth.dovecot_socket needs auth.backend = "
			    "\"dovecot\"");
		return 0;
	}
	if (strcmp(v, "dovecot") != 0)
		return conf_err(cx, config_setting_get_member(g, "backend"),
		    "auth.backend must be \"file\" or \"dovecot\"");
	if (p->auth_secrets[0] != '\0')
		return conf_err(cx, g, "auth.secrets and "
		    "auth.backend = \"dovecot\" exclude each other");
	if (p->auth_dovecot[0] == '\0')
		str_lcpy(p->auth_dovecot, DOVECOT_DEF_SOCKET,
		    sizeof(p->auth_dovecot));
	return 0;
}

/* auth { ... } */
int
policy_load_auth(struct policy *p, config_setting_t *g,
    const struct conf_ctx *cx)
{
	config_setting_t *s, *t, *e;
	struct throttle_conf *tc = &p->auth_throttle;
	char msg[256];
	unsigned int bit;
	int i, j;

	if (!config_setting_is_group(g))
		return conf_err(cx, g, "auth must be a group { ... }");
	if (conf_check_keys(cx, g, auth_keys, NULL) == -1 ||
	    conf_get_path(cx, g, "secrets", p->auth_secrets,
	    sizeof(p->auth_secrets)) == -1 ||
	    conf_get_bool(cx, g, "required", &p->auth_required) == -1 ||
	    conf_get_bool(cx, g, "cleartext", &p->auth_cleartext) == -1 ||
	    load_auth_backend(p, g, cx) == -1)
		return -1;
	if ((s = config_setting_get_member(g, "mechanisms")) != NULL) {
		if (!config_setting_is_aggregate(s))
			return conf_err(cx, s,
			    "auth.mechanisms must be a list of names");
		p->auth_mechs = 0;
		for (i = 0; i < config_setting_length(s); i++) {
			e = config_setting_get_elem(s, (unsigned)i);
			if (config_setting_type(e) != CONFIG_TYPE_STRING ||
			    (bit =
			    sasl_mech_bit(config_setting_get_string(e))) == 0)
				return conf_err(cx, e,
				    "auth.mechanisms: PLAIN, LOGIN or CRAM-MD5");
			p->auth_mechs |= bit;
		}
		if (p->auth_mechs == 0)
			return conf_err(cx, s,
			    "auth.mechanisms: name at least one mechanism");
	}
	if ((s = config_setting_get_member(g, "senders")) != NULL &&
	    config_setting_type(s) == CONFIG_TYPE_STRING) {
		/* A table: login -> sender patterns. */
		struct table *tb;

		if ((tb = conf_table_open(cx->file, config_setting_get_string(s),
		    msg, sizeof(msg))) == NULL)
			return conf_err(cx, s, "auth.senders: %s",
			    msg);
		if ((p->auth_senders = senders_new()) == NULL) {
			table_free(&tb);
			return conf_err(cx, s, "out of memory");
		}
		senders_use_table(p->auth_senders, tb);
	} else if (s != NULL) {
		if (!config_setting_is_list(s))
			return conf_err(cx, s,
			    "auth.senders must be a list ( { login = ...; "
			    "senders = [ ... ]; }, ... )");
		if ((p->auth_senders = senders_new()) == NULL)
			return conf_err(cx, s, "out of memory");
		for (i = 0; i < config_setting_length(s); i++) {
			const char *login = NULL;

			e = config_setting_get_elem(s, (unsigned)i);
			if (!config_setting_is_group(e) ||
			    conf_get_string(cx, e, "login", &login) == -1)
				return conf_err(cx, e,
				    "auth.senders entries are { login = \"user\"; "
				    "senders = [ ... ]; }");
			t = config_setting_get_member(e, "senders");
			if (login == NULL || t == NULL ||
			    !config_setting_is_aggregate(t))
				return conf_err(cx, e,
				    "auth.senders entries need login and senders");
			for (j = 0; j < config_setting_length(t); j++) {
				config_setting_t *pe =
				    config_setting_get_elem(t, (unsigned)j);

				if (config_setting_type(pe) != CONFIG_TYPE_STRING ||
				    senders_add(p->auth_senders, login,
				    config_setting_get_string(pe), msg,
				    sizeof(msg)) == -1)
					return conf_err(cx, pe,
					    "auth.senders: %s",
					    config_setting_type(pe) ==
					    CONFIG_TYPE_STRING ? msg :
					    "patterns are strings");
			}
		}
		if (senders_finish(p->auth_senders) == -1)
			return conf_err(cx, s, "auth.senders: out of memory");
	}
	if ((t = config_setting_get_member(g, "throttle")) != NULL) {
		if (!config_setting_is_group(t))
			return conf_err(cx, t,
			    "auth.throttle must be a group { ... }");
		if (conf_check_keys(cx, t, throttle_keys, NULL) == -1 ||
		    conf_get_uint(cx, t, "failures", 0, 1000000,
		    &tc->max_failures) == -1 ||
		    conf_get_duration(cx, t, "window", 1, 86400 * 30,
		    &tc->window) == -1 ||
		    conf_get_duration(cx, t, "block", 1, 86400 * 30,
		    &tc->block) == -1 ||
		    conf_get_uint(cx, t, "delay", 0, 60000,
		    &tc->delay_ms) == -1 ||
		    conf_get_uint(cx, t, "max_delay", 0, 60000,
		    &tc->max_delay_ms) == -1 ||
		    conf_get_uint(cx, t, "global_failures", 0, 100000000,
		    &tc->global_failures) == -1 ||
		    conf_get_duration(cx, t, "global_window", 1, 86400,
		    &tc->global_window) == -1 ||
		    conf_get_duration(cx, t, "global_block", 1, 86400,
		    &tc->global_block) == -1 ||
		    conf_get_uint(cx, t, "table_size", 16, 1000000,
		    &tc->table_size) == -1 ||
		    conf_get_path(cx, t, "file", p->auth_throttle_file,
		    sizeof(p->auth_throttle_file)) == -1)
			return -1;
		if (throttle_conf_check(tc, msg, sizeof(msg)) == -1)
			return conf_err(cx, t, "auth.throttle: %s", msg);
	}
	return 0;
}

/*
 * tls.listen and the proxy listeners join the listener table after listen
 * (or -l), and the table is checked against the rest of the config.
 */
static int
add_other_listeners(struct policy *p, const struct conf_ctx *cx)
{
	struct listen_defaults d;
	int i, r = 0;

	for (i = 0; r == 0 && i < p->ntls_listen; i++)
		r = listenconf_add(&p->listeners, p->tls_listen[i],
		    LTLS_IMPLICIT, 0, "tls.listen", cx, 0);
	for (i = 0; r == 0 && i < p->front.nproxy_listen; i++)
		r = listenconf_add(&p->listeners, p->front.proxy_listen[i],
		    LTLS_STARTTLS, 1, "proxy.listen", cx, 0);
	for (i = 0; r == 0 && i < p->front.nproxy_tls_listen; i++)
		r = listenconf_add(&p->listeners, p->front.proxy_tls_listen[i],
		    LTLS_IMPLICIT, 1, "proxy.tls_listen", cx, 0);
	if (r == -1 || listenconf_milters(&p->listeners, p->milters, cx) == -1)
		return -1;
	policy_listen_defaults(p, &d);
	return listenconf_check(&p->listeners, &d, cx);
}

/* The sendmail group is read by sendmail and the pickup; -t checks it too. */
static int
check_sendmail(const config_setting_t *root, const char *path, char *err,
    size_t errlen)
{
	struct maildrop_conf *mc;
	int r;

	if (config_setting_get_member(root, "sendmail") == NULL)
		return 0;
	if ((mc = calloc(1, sizeof(*mc))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	r = maildrop_conf_load(path, mc, err, errlen);
	free(mc);
	return r;
}

struct policy *
policy_load(const char *path, int missing_ok,
    const struct policy_overrides *ov, char *err, size_t errlen)
{
	struct conf_ctx cctx = { path, err, errlen }, *cx = &cctx;
	struct conf_ctx lcx = { "-l", err, errlen }, kcx = { "-k", err,
	    errlen };
	struct policy *p;
	config_t cf;
	config_setting_t *root, *g, *s;
	const char *v;
	int have_file = 0, i;

	if ((p = malloc(sizeof(*p))) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	policy_defaults(p);
	str_lcpy(p->conffile, path, sizeof(p->conffile));
	config_init(&cf);
	if (conf_read(&cf, path, missing_ok, &have_file, err, errlen) == -1)
		goto fail;

	if (have_file) {
		root = config_root_setting(&cf);
		if (conf_check_keys(cx, root, top_keys, NULL) == -1 ||
		    check_sendmail(root, path, err, errlen) == -1)
			goto fail;
		v = NULL;
		if (conf_get_string(cx, root, "defaultdomain", &v) == -1 ||
		    conf_get_string(cx, root, "hostname", &v) == -1)
			goto fail;
		if (v != NULL) {
			s = config_setting_get_member(root, "hostname");
			if (s == NULL)
				s = config_setting_get_member(root,
				    "defaultdomain");
			if (!addr_valid_domain(v, strlen(v), 0)) {
				conf_err(cx, s,
				    "hostname \"%.100s\" is not a valid domain",
				    v);
				goto fail;
			}
			str_lcpy(p->hostname, v, sizeof(p->hostname));
		}
		if (conf_get_path(cx, root, "spool", p->spool,
		    sizeof(p->spool)) == -1)
			goto fail;
		v = NULL;
		if (conf_get_string(cx, root, "spool_durability", &v) == -1)
			goto fail;
		if (v != NULL && strcmp(v, "files") == 0)
			p->spool_files = 1;
		else if (v != NULL && strcmp(v, "journal") != 0) {
			conf_err(cx, config_setting_get_member(root,
			    "spool_durability"), "spool_durability must be "
			    "\"journal\" or \"files\"");
			goto fail;
		}
		if (conf_get_bool(cx, root, "reverse_lookup",
		    &p->reverse_lookup) == -1)
			goto fail;
		v = NULL;
		if (conf_get_string(cx, root, "user", &v) == -1)
			goto fail;
		if (v != NULL && (v[0] == '\0' ||
		    str_lcpy(p->user, v, sizeof(p->user)) >= sizeof(p->user))) {
			conf_err(cx, config_setting_get_member(root,
			    "user"), "user must be a user name");
			goto fail;
		}
		v = NULL;
		if (conf_get_string(cx, root, "log", &v) == -1)
			goto fail;
		if (v != NULL && strcmp(v, "stderr") == 0)
			p->log_stderr = 1;
		else if (v != NULL && strcmp(v, "syslog") != 0) {
			conf_err(cx, config_setting_get_member(root,
			    "log"), "log must be \"syslog\" or \"stderr\"");
			goto fail;
		}
		v = NULL;
		if (conf_get_string(cx, root, "bare_newline", &v) == -1)
			goto fail;
		if (v != NULL && strcmp(v, "reject") == 0)
			p->bare_newline = BARE_NEWLINE_REJECT;
		else if (v != NULL && strcmp(v, "normalize") != 0) {
			conf_err(cx, config_setting_get_member(root,
			    "bare_newline"),
			    "bare_newline must be \"normalize\" or \"reject\"");
			goto fail;
		}
		if ((s = config_setting_get_member(root, "listen")) != NULL) {
			if (listenconf_load(&p->listeners, s, cx) == -1)
				goto fail;
			for (i = 0; i < p->listeners.n; i++)
				if (add_listen(p, p->listeners.l[i].address,
				    s, cx) == -1)
					goto fail;
		}
		if (delegate_load(&p->delegate, root, cx) == -1 ||
		    dkimconf_load(&p->dkim, root, cx) == -1 ||
		    milterconf_load(&p->milters, root, cx) == -1)
			goto fail;
		if (frontconf_load(&p->front, root, cx) == -1)
			goto fail;
		if ((g = config_setting_get_member(root, "limits")) != NULL &&
		    policy_load_limits(p, g, cx) == -1)
			goto fail;
		if (policy_load_lists(p, root, cx) == -1)
			goto fail;
	}

	if (ov != NULL && ov->hostname != NULL) {
		if (!addr_valid_domain(ov->hostname, strlen(ov->hostname), 0)) {
			snprintf(err, errlen, "-h %.100s: not a valid domain",
			    ov->hostname);
			goto fail;
		}
		str_lcpy(p->hostname, ov->hostname, sizeof(p->hostname));
	}
	if (ov != NULL && ov->nlisten > 0) {
		for (i = 0; i < p->nlisten; i++)
			free(p->listen[i]);
		p->nlisten = 0;
		p->listeners.n = 0;
		for (i = 0; i < ov->nlisten; i++)
			if (add_listen(p, ov->listen[i], NULL, &lcx) == -1 ||
			    listenconf_add(&p->listeners, ov->listen[i],
			    LTLS_STARTTLS, 0, "-l", &lcx, 0) == -1)
				goto fail;
	}
	if (ov != NULL) {
		p->norelay |= ov->norelay;
		p->verifysenderdom |= ov->verifysenderdom;
		p->saveblockedmsg |= ov->saveblockedmsg;
		p->auth_required |= ov->auth_required;
		p->auth_cleartext |= ov->auth_cleartext;
		for (i = 0; i < ov->nblock; i++)
			if (policy_add_block(p, ov->block[i], NULL, &kcx) == -1)
				goto fail;
	}
	if (add_other_listeners(p, cx) == -1)
		goto fail;
	if (p->hostname[0] == '\0')
		conf_default_hostname(p->hostname, sizeof(p->hostname));
	if (!have_file || config_lookup(&cf, "ournets") == NULL) {
		/* Safe default: only this host may relay. */
		if (policy_add_ournet(p, "127.0.0.0/8", NULL, cx) == -1 ||
		    policy_add_ournet(p, "::1", NULL, cx) == -1)
			goto fail;
	}
	if (p->nourdomains == 0 && p->ourdomains_table == NULL &&
	    policy_add_ourdomain(p, p->hostname, NULL, cx) == -1)
		goto fail;
	if (p->dump[0] == '\0' &&
	    (size_t)snprintf(p->dump, sizeof(p->dump), "%s/dump", p->spool) >=
	    sizeof(p->dump)) {
		snprintf(err, errlen, "%s: dump path too long", path);
		goto fail;
	}
	if (p->auth_throttle_file[0] == '\0' &&
	    (size_t)snprintf(p->auth_throttle_file,
	    sizeof(p->auth_throttle_file), "%s/auth-throttle", p->spool) >=
	    sizeof(p->auth_throttle_file)) {
		snprintf(err, errlen, "%s: auth-throttle path too long", path);
		goto fail;
	}
	if (p->grey_file[0] == '\0' &&
	    (size_t)snprintf(p->grey_file, sizeof(p->grey_file), "%s/greylist",
	    p->spool) >= sizeof(p->grey_file)) {
		snprintf(err, errlen, "%s: greylist path too long", path);
		goto fail;
	}
	p->queue = queueconf_parse(have_file ? config_root_setting(&cf) : NULL,
	    path, p->hostname, p->spool, err, errlen);
	if (p->queue == NULL)
		goto fail;
	/* RCPT verification asks the queue's tables, through a function. */
	p->rcpt_check = queueconf_verify_hook;
	p->rcpt_check_arg = p->queue;
	p->have_file = have_file;
	config_destroy(&cf);
	return p;
fail:
	config_destroy(&cf);
	policy_free(p);
	return NULL;
}

static void
policy_free(struct policy *p)
{
	size_t j;
	int i;

	for (i = 0; i < p->nlisten; i++)
		free(p->listen[i]);
	for (i = 0; i < p->ntls_listen; i++)
		free(p->tls_listen[i]);
	tlsconf_free(&p->tls_sni);
	frontconf_free(&p->front);
	delegate_free(&p->delegate);
	dkimconf_free(&p->dkim);
	milterconf_free(&p->milters);
	senders_free(&p->auth_senders);
	table_free(&p->access_table);
	table_free(&p->ourdomains_table);
	queueconf_unref(&p->queue);
	free(p->ournets);
	free(p->block);
	for (j = 0; j < p->nourdomains; j++)
		free(p->ourdomains[j]);
	free(p->ourdomains);
	for (j = 0; j < p->naccess; j++) {
		free(p->access[j].domain);
		free(p->access[j].user);
	}
	free(p->access);
	for (j = 0; j < p->nrules; j++) {
		pcre2_code_free(p->rules[j].re);
		free(p->rules[j].pattern);
		free(p->rules[j].text);
	}
	free(p->rules);
	free(p);
}

struct policy *
policy_ref(struct policy *p)
{
	__atomic_add_fetch(&p->refs, 1, __ATOMIC_RELAXED);
	return p;
}

void
policy_unref(struct policy **pp)
{
	struct policy *p = *pp;
	int left;

	if (p == NULL)
		return;
	*pp = NULL;
	left = __atomic_sub_fetch(&p->refs, 1, __ATOMIC_ACQ_REL);
	/* One unref too many frees what another still uses. */
	assert(left >= 0);
	if (left == 0)
		policy_free(p);
}
