/*
 * One entry of smtpd.conf's routes: what it matches and how it delivers.
 * See queueconf_int.h.
 */
#include "config.h"

#include <sys/types.h>

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libconfig.h>

#include "client/pin.h"
#include "lib/conf.h"
#include "lib/addr.h"
#include "lib/str.h"
#include "lib/table.h"
#include "queueconf.h"
#include "queueconf_int.h"
#include "recipients.h"

static const char *const route_keys[] = {
	"domain", "local", "sender", "login", "catchall", "action",
	"concurrency",
	"path", "create", "user",			/* maildir */
	"command", "timeout", "batch", "from_line",	/* pipe (and user) */
	"host", "tls", "tls_verify", "tls_cafile", "tls_pin", "auth",
	    /* relay */
	"lmtp",
	NULL
};

/* Only the escapes in allowed (and %%) may follow a '%'. */
static int
check_template(const char *t, const char *allowed)
{
	const char *p;

	for (p = t; *p != '\0'; p++) {
		if (*p != '%')
			continue;
		p++;
		if (*p == '%')
			continue;
		if (*p == '\0' || strchr(allowed, *p) == NULL)
			return -1;
	}
	return 0;
}

/* "*", "*.example.com", "example.com" or an address literal. */
static int
valid_pattern(const char *p)
{
	if (strcmp(p, "*") == 0)
		return 1;
	if (p[0] == '[')
		return p[strlen(p) - 1] == ']';
	if (p[0] == '*' && p[1] == '.')
		p += 2;
	return addr_valid_domain(p, strlen(p), 1);
}

/* Settings that make sense only for some actions. */
static int
only_for(struct conf_ctx *pc, const config_setting_t *g, const char *key,
    int ok, const char *what)
{
	config_setting_t *s = config_setting_get_member(g, key);

	if (s != NULL && !ok)
		return conf_err(pc, s, "%s applies only to %s routes", key,
		    what);
	return 0;
}

/* Virtual domains: a route's domain may name a file or CDB table. */
static int
route_domain_table(struct conf_ctx *pc, const config_setting_t *g,
    struct route *r, const char *ref)
{
	char why[512];

	if (strncmp(ref, "file:", 5) != 0 && strncmp(ref, "cdb:", 4) != 0)
		return conf_err(pc, config_setting_get_member(g, "domain"),
		    "domain tables are file: or cdb: tables");
	if (r->domain_table != NULL)
		return conf_err(pc, config_setting_get_member(g, "domain"),
		    "a route names one domain table at most");
	if ((r->domain_table = conf_table_open(pc->file, ref, why,
	    sizeof(why))) == NULL)
		return conf_err(pc, config_setting_get_member(g, "domain"),
		    "domain: %s", why);
	return 0;
}

/* sender, login and catchall: who a route is for. */
static int
route_match_keys(struct conf_ctx *pc, const config_setting_t *g,
    struct route *r)
{
	const char *v;

	v = NULL;
	if (conf_get_string(pc, g, "sender", &v) == -1)
		return -1;
	if (v != NULL && (*v == '\0' || (r->sender = strdup(v)) == NULL))
		return conf_err(pc, config_setting_get_member(g, "sender"),
		    *v ? "out of memory" : "sender must not be empty (\"<>\" "
		    "is the null sender)");
	if (r->sender != NULL)
		qc_lower(r->sender);
	v = NULL;
	if (conf_get_string(pc, g, "login", &v) == -1)
		return -1;
	if (v != NULL && (*v == '\0' || (r->login = strdup(v)) == NULL))
		return conf_err(pc, config_setting_get_member(g, "login"),
		    *v ? "out of memory" : "login must not be empty");
	return conf_get_bool(pc, g, "catchall", &r->catchall);
}

int
qc_parse_route(struct conf_ctx *pc, const config_setting_t *g, struct route *r,
    const struct queue_conf *qc)
{
	const char *v;
	char uerr[200], abspath[PATH_MAX];
	size_t i;

	if (!config_setting_is_group(g))
		return conf_err(pc, g, "each route must be a group { ... }");
	if (conf_check_keys(pc, g, route_keys, "a route") == -1)
		return -1;
	r->line = config_setting_source_line(g);
	r->concurrency = qc->dest_concurrency;
	r->timeout = qc->pipe_timeout;
	r->user = qc->pipe_user;

	if (conf_get_strings(pc, g, "domain", &r->domains, &r->ndomains,
	    1000) == -1)
		return -1;
	if (r->ndomains == 0)
		return conf_err(pc, g,
		    "a route needs a domain (\"*\" for all)");
	for (i = 0; i < r->ndomains; i++) {
		if (table_is_ref(r->domains[i])) {
			if (route_domain_table(pc, g, r, r->domains[i]) == -1)
				return -1;
			continue;
		}
		qc_lower(r->domains[i]);
		if (!valid_pattern(r->domains[i]))
			return conf_err(pc, conf_entry(g, "domain", i),
			    "domain \"%.100s\" is not a domain, \"*.domain\" "
			    "or \"*\"", r->domains[i]);
	}
	v = NULL;
	if (conf_get_string(pc, g, "local", &v) == -1)
		return -1;
	if (v != NULL) {
		if (*v == '\0')
			return conf_err(pc, config_setting_get_member(g,
			    "local"),
			    "local must not be empty");
		if ((r->local = strdup(v)) == NULL)
			return conf_err(pc, g, "out of memory");
		qc_lower(r->local);
	}
	if (route_match_keys(pc, g, r) == -1)
		return -1;
	v = NULL;
	if (conf_get_string(pc, g, "action", &v) == -1)
		return -1;
	if (v == NULL)
		return conf_err(pc, g,
		    "a route needs an action (maildir, pipe, "
		    "relay or lmtp)");
	if (strcmp(v, "maildir") == 0)
		r->action = ROUTE_MAILDIR;
	else if (strcmp(v, "pipe") == 0)
		r->action = ROUTE_PIPE;
	else if (strcmp(v, "relay") == 0)
		r->action = ROUTE_RELAY;
	else if (strcmp(v, "lmtp") == 0)
		r->action = ROUTE_LMTP;
	else
		return conf_err(pc, config_setting_get_member(g, "action"),
		    "unknown action \"%.50s\" (want maildir, pipe, relay or "
		    "lmtp)", v);
	if (conf_get_uint(pc, g, "concurrency", 1, QC_MAX_CONCURRENCY,
	    &r->concurrency) == -1)
		return -1;

	if (only_for(pc, g, "path", r->action == ROUTE_MAILDIR, "maildir") ||
	    only_for(pc, g, "create", r->action == ROUTE_MAILDIR, "maildir") ||
	    only_for(pc, g, "user", r->action == ROUTE_MAILDIR ||
	    r->action == ROUTE_PIPE, "maildir and pipe") ||
	    only_for(pc, g, "command", r->action == ROUTE_PIPE, "pipe") ||
	    only_for(pc, g, "timeout", r->action == ROUTE_PIPE, "pipe") ||
	    only_for(pc, g, "batch", r->action == ROUTE_PIPE, "pipe") ||
	    only_for(pc, g, "from_line", r->action == ROUTE_PIPE, "pipe") ||
	    only_for(pc, g, "host", r->action == ROUTE_RELAY, "relay") ||
	    only_for(pc, g, "tls", r->action == ROUTE_RELAY, "relay") ||
	    only_for(pc, g, "tls_verify", r->action == ROUTE_RELAY, "relay") ||
	    only_for(pc, g, "tls_cafile", r->action == ROUTE_RELAY, "relay") ||
	    only_for(pc, g, "tls_pin", r->action == ROUTE_RELAY, "relay") ||
	    only_for(pc, g, "auth", r->action == ROUTE_RELAY, "relay") ||
	    only_for(pc, g, "catchall", r->action != ROUTE_RELAY,
	    "maildir and pipe") ||
	    only_for(pc, g, "lmtp", r->action == ROUTE_LMTP, "lmtp"))
		return -1;

	switch (r->action) {
	case ROUTE_MAILDIR:
		v = NULL;
		if (conf_get_string(pc, g, "path", &v) == -1)
			return -1;
		if (v == NULL || v[0] == '\0')
			return conf_err(pc, g, "a maildir route needs a path "
			    "(e.g. \"/var/mail/%%d/%%u\")");
		if (check_template(v, "ud") == -1)
			return conf_err(pc, config_setting_get_member(g,
			    "path"),
			    "path: only %%u (user), %%d (domain) and %%%% may "
			    "follow a %%");
		/* Relative paths are taken from the config file's directory. */
		if (conf_path(pc->file, v, abspath, sizeof(abspath)) == -1)
			return conf_err(pc, config_setting_get_member(g,
			    "path"),
			    "path: %s", strerror(errno));
		if ((r->path = strdup(abspath)) == NULL)
			return conf_err(pc, g, "out of memory");
		if (conf_get_bool(pc, g, "create", &r->create) == -1)
			return -1;
		v = NULL;
		if (conf_get_string(pc, g, "user", &v) == -1)
			return -1;
		if (v != NULL) {
			if (queueconf_user(v, &r->owner, uerr,
			    sizeof(uerr)) == -1)
				return conf_err(pc, config_setting_get_member(g,
				    "user"), "user: %s", uerr);
			r->has_owner = 1;
		}
		break;
	case ROUTE_PIPE:
		if (conf_get_strings(pc, g, "command", &r->argv, &r->argc,
		    QC_MAX_ARGS) == -1)
			return -1;
		if (r->argc == 0)
			return conf_err(pc, g, "a pipe route needs a command "
			    "[\"/path/to/program\", \"arg\", ...]");
		if (r->argv[0][0] != '/')
			return conf_err(pc, conf_entry(g, "command", 0),
			    "command: \"%.100s\" must be an "
			    "absolute path (no shell is involved)", r->argv[0]);
		for (i = 0; i < r->argc; i++)
			if (check_template(r->argv[i], "srutldi") == -1)
				return conf_err(pc, conf_entry(g, "command", i),
				    "command: only %%s %%r %%u %%t "
				    "%%l %%d %%i and %%%% may follow a %%");
		if (conf_get_duration(pc, g, "timeout", 1, 86400,
		    &r->timeout) == -1 ||
		    conf_get_bool(pc, g, "batch", &r->batch) == -1 ||
		    conf_get_bool(pc, g, "from_line", &r->from_line) == -1)
			return -1;
		v = NULL;
		if (conf_get_string(pc, g, "user", &v) == -1)
			return -1;
		if (v != NULL && queueconf_user(v, &r->user, uerr,
		    sizeof(uerr)) == -1)
			return conf_err(pc, config_setting_get_member(g,
			    "user"),
			    "user: %s", uerr);
		break;
	case ROUTE_RELAY:
		v = NULL;
		if (conf_get_string(pc, g, "host", &v) == -1)
			return -1;
		if (v != NULL) {
			if (*v == '\0' || strpbrk(v, " \t") != NULL)
				return conf_err(pc, config_setting_get_member(g,
				    "host"), "host must be a dial string such "
				    "as \"tcp!smarthost.example.net!587\"");
			if ((r->host = strdup(v)) == NULL)
				return conf_err(pc, g, "out of memory");
		}
		v = NULL;
		if (conf_get_string(pc, g, "tls", &v) == -1)
			return -1;
		r->tls_verify = 0;
		if (v == NULL)	/* by MX: what the domain publishes */
			r->tls = r->host == NULL ? ROUTE_TLS_AUTO :
			    ROUTE_TLS_OPPORTUNISTIC;
		else if (strcmp(v, "opportunistic") == 0 ||
		    strcmp(v, "may") == 0)
			r->tls = ROUTE_TLS_OPPORTUNISTIC;
		else if (strcmp(v, "require") == 0 ||
		    strcmp(v, "verify") == 0) {
			r->tls = ROUTE_TLS_REQUIRE;
			r->tls_verify = 1;
		} else if (strcmp(v, "encrypt") == 0)
			r->tls = ROUTE_TLS_REQUIRE;
		else if (strcmp(v, "none") == 0)
			r->tls = ROUTE_TLS_NONE;
		else if (strcmp(v, "dane") == 0)
			r->tls = ROUTE_TLS_DANE;
		else if (strcmp(v, "mta-sts") == 0)
			r->tls = ROUTE_TLS_MTA_STS;
		else if (strcmp(v, "auto") == 0)
			r->tls = ROUTE_TLS_AUTO;
		else
			return conf_err(pc, config_setting_get_member(g, "tls"),
			    "tls must be \"none\", \"may\", \"encrypt\", "
			    "\"verify\", \"dane\", \"mta-sts\" or \"auto\" "
			    "(or \"opportunistic\", \"require\")");
		/* Opportunistic TLS takes any certificate (RFC 7435). */
		if (conf_get_bool(pc, g, "tls_verify", &r->tls_verify) == -1)
			return -1;
		if (r->tls_verify && r->tls != ROUTE_TLS_REQUIRE)
			return conf_err(pc, config_setting_get_member(g,
			    "tls_verify"), "tls_verify needs tls = "
			    "\"require\" (opportunistic TLS falls back to "
			    "no TLS at all)");
		v = NULL;
		if (conf_get_string(pc, g, "tls_cafile", &v) == -1)
			return -1;
		if (v != NULL) {
			if (v[0] == '\0' || conf_path(pc->file, v, abspath,
			    sizeof(abspath)) == -1)
				return conf_err(pc, config_setting_get_member(g,
				    "tls_cafile"), "tls_cafile must be a path");
			if ((r->tls_cafile = strdup(abspath)) == NULL)
				return conf_err(pc, g, "out of memory");
		}
		v = NULL;
		if (conf_get_string(pc, g, "tls_pin", &v) == -1)
			return -1;
		if (v != NULL) {
			if (!pin_valid(v))
				return conf_err(pc, config_setting_get_member(g,
				    "tls_pin"), "tls_pin must be \"sha256:\" "
				    "and 64 hex digits (colons allowed) or "
				    "\"pin-sha256:\" and 44 base64 digits, "
				    "several separated by commas");
			if ((r->tls_pin = strdup(v)) == NULL)
				return conf_err(pc, g, "out of memory");
		}
		/* A CA file also serves the web PKI checks of MTA-STS. */
		if ((r->tls_cafile != NULL && !r->tls_verify &&
		    r->tls != ROUTE_TLS_MTA_STS && r->tls != ROUTE_TLS_AUTO) ||
		    (r->tls_pin != NULL && !r->tls_verify))
			return conf_err(pc, g, "tls_cafile and tls_pin need "
			    "tls = \"require\" with the certificate checked "
			    "(tls_cafile: or \"mta-sts\", \"auto\")");
		v = NULL;
		if (conf_get_string(pc, g, "auth", &v) == -1)
			return -1;
		if (v != NULL) {
			if (*v == '\0' || strpbrk(v, " \t") != NULL)
				return conf_err(pc, config_setting_get_member(g,
				    "auth"), "auth must be a credential label "
				    "from the secrets file");
			if (r->host == NULL)
				return conf_err(pc, config_setting_get_member(g,
				    "auth"), "auth needs a smarthost (host); "
				    "credentials are never sent to MX hosts");
			if (qc->relay_keys[0] == '\0')
				return conf_err(pc, config_setting_get_member(g,
				    "auth"), "auth needs queue.relay_keys, the "
				    "file that holds the credentials");
			if ((r->auth = strdup(v)) == NULL)
				return conf_err(pc, g, "out of memory");
		}
		break;
	case ROUTE_LMTP:
		v = NULL;
		if (conf_get_string(pc, g, "lmtp", &v) == -1)
			return -1;
		if (v == NULL)
			return conf_err(pc, g, "an lmtp route needs lmtp = "
			    "\"unix:/path\" or \"inet:host:port\"");
		if (!(strncmp(v, "unix:/", 6) == 0 || (strncmp(v, "inet:",
		    5) == 0 && strrchr(v + 5, ':') != NULL &&
		    strrchr(v + 5, ':') != v + 5)) ||
		    strpbrk(v, " \t") != NULL)
			return conf_err(pc, config_setting_get_member(g,
			    "lmtp"),
			    "lmtp must be \"unix:/path\" or "
			    "\"inet:host:port\"");
		if ((r->lmtp = strdup(v)) == NULL)
			return conf_err(pc, g, "out of memory");
		break;
	}
	return 0;
}
