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
#include "lib/conf.h"
#include "delegate.h"
#include "dkimconf.h"
#include "milterconf.h"
#include "policy.h"
#include "policy_int.h"

static const char *const tls_keys[] = {
	"certificate", "key", "chain", "priority", "tickets", "client_ca",
	"client_cert_trusted", "handshake_timeout", "listen", "certificates",
	NULL
};
static void	policy_defaults(struct policy *);

static void
policy_defaults(struct policy *p)
{
	memset(p, 0, sizeof(*p));
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
	str_lcpy(p->spool, conf_default_spool(), sizeof(p->spool));
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

/*
 * tls.listen and the proxy listeners join the listener table after listen
 * (or -l), and the table is checked against the rest of the config.
 */
static int
add_other_listeners(struct policy *p, const struct conf_ctx *cx)
{
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
	if (r == -1)
		return -1;
	return listenconf_milters(&p->listeners, p->milters, cx);
}

struct policy *
policy_compile(config_setting_t *root, const char *path,
    const struct policy_overrides *ov, char *err, size_t errlen)
{
	struct conf_ctx cctx = { path, err, errlen }, *cx = &cctx;
	struct conf_ctx lcx = { "-l", err, errlen }, kcx = { "-k", err,
	    errlen };
	struct policy *p;
	config_setting_t *g, *s;
	const char *v;
	int i;

	if ((p = malloc(sizeof(*p))) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	policy_defaults(p);
	str_lcpy(p->conffile, path, sizeof(p->conffile));
	if (root != NULL) {
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
		for (i = 0; i < ov->nblock; i++)
			if (policy_add_block(p, ov->block[i], NULL, &kcx) == -1)
				goto fail;
	}
	if (add_other_listeners(p, cx) == -1)
		goto fail;
	if (p->hostname[0] == '\0')
		net_host_name(p->hostname, sizeof(p->hostname));
	if (root == NULL || config_setting_get_member(root, "ournets") ==
	    NULL) {
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
	if (p->grey_file[0] == '\0' &&
	    (size_t)snprintf(p->grey_file, sizeof(p->grey_file), "%s/greylist",
	    p->spool) >= sizeof(p->grey_file)) {
		snprintf(err, errlen, "%s: greylist path too long", path);
		goto fail;
	}
	p->have_file = root != NULL;
	return p;
fail:
	policy_free(p);
	return NULL;
}

void
policy_set_rcpt_check(struct policy *p, int (*check)(const void *,
    const char *, const char *, const char *, int, char *, size_t),
    const void *arg)
{
	p->rcpt_check = check;
	p->rcpt_check_arg = arg;
}

void
policy_free(struct policy *p)
{
	size_t j;
	int i;

	if (p == NULL)
		return;
	for (i = 0; i < p->nlisten; i++)
		free(p->listen[i]);
	for (i = 0; i < p->ntls_listen; i++)
		free(p->tls_listen[i]);
	tlsconf_free(&p->tls_sni);
	frontconf_free(&p->front);
	delegate_free(&p->delegate);
	dkimconf_free(&p->dkim);
	milterconf_free(&p->milters);
	table_free(&p->access_table);
	table_free(&p->ourdomains_table);
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
