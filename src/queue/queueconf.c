#include "config.h"

#include <assert.h>
#include <sys/types.h>

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libconfig.h>

#include "client/pin.h"
#include "lib/addr.h"
#include "lib/log.h"
#include "lib/net.h"
#include "lib/refcnt.h"
#include "lib/str.h"
#include "lib/table.h"
#include "lib/conf.h"
#include "queueconf.h"
#include "queueconf_int.h"
#include "recipients.h"

static const char *const alias_keys[] = { "name", "to", NULL };
static const char *const queue_keys[] = {
	"retry_min", "retry_max", "lifetime", "delay_warning", "concurrency",
	"destination_concurrency", "session_messages", "scan_interval",
	"bounce_size", "pipe_timeout", "pipe_user", "mailer_user", "runner",
	    "relay_keys",
	"user", "tlsrpt", NULL
};

/* Used when no routes are configured: relay everything by MX. */
static char	*builtin_domains[] = { (char *)"*" };

static int	parse_alias(struct conf_ctx *, const config_setting_t *,
		    struct alias *);
static int	parse_queue(struct conf_ctx *, const config_setting_t *,
		    struct queue_conf *);
static int	parse_tlsrpt(struct conf_ctx *, const config_setting_t *,
		    struct queue_conf *);
static void	free_route(struct route *);
static void	queueconf_free(struct queue_conf *);
static int	alias_cmp(const void *, const void *);

int
queueconf_duration(const char *s, unsigned int *out)
{
	return conf_parse_duration(s, out);
}

void
queueconf_free_list(char ***list, size_t n)
{
	conf_free_strings(list, n);
}

void
qc_lower(char *s)
{
	for (; *s != '\0'; s++)
		*s = (char)tolower((unsigned char)*s);
}

int
queueconf_user(const char *name, struct qc_user *u, char *err, size_t errlen)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	int n, r;

	memset(u, 0, sizeof(*u));
	if (str_lcpy(u->name, name, sizeof(u->name)) >= sizeof(u->name)) {
		snprintf(err, errlen, "user name \"%.64s...\" is too long",
		    name);
		return -1;
	}
	r = getpwnam_r(name, &pw, buf, sizeof(buf), &res);
	if (r != 0 || res == NULL) {
		snprintf(err, errlen, "no such user \"%.64s\"%s%s", name,
		    r ? ": " : "", r ? strerror(r) : "");
		return -1;
	}
	u->cred.uid = pw.pw_uid;
	u->cred.gid = pw.pw_gid;
	n = SPAWN_GROUPS_MAX;
	if (getgrouplist(name, pw.pw_gid, u->cred.groups, &n) == -1) {
		/* More groups than we keep: the primary one is enough. */
		u->cred.groups[0] = pw.pw_gid;
		n = 1;
	}
	u->cred.ngroups = n;
	return 0;
}

const char *
queueconf_action_name(enum route_action a)
{
	switch (a) {
	case ROUTE_MAILDIR:
		return "maildir";
	case ROUTE_PIPE:
		return "pipe";
	case ROUTE_RELAY:
		return "relay";
	case ROUTE_LMTP:
		return "lmtp";
	}
	return "?";
}

static int
parse_alias(struct conf_ctx *pc, const config_setting_t *g, struct alias *a)
{
	struct addr ad;
	const char *v = NULL;
	char buf[ADDR_PATH_MAX + 32];
	size_t i, used;

	if (!config_setting_is_group(g))
		return conf_err(pc, g, "each alias must be a group "
		    "{ name = \"...\"; to = [ ... ]; }");
	if (conf_check_keys(pc, g, alias_keys, "an alias") == -1 ||
	    conf_get_string(pc, g, "name", &v) == -1)
		return -1;
	a->line = config_setting_source_line(g);
	if (v == NULL || *v == '\0')
		return conf_err(pc, g, "an alias needs a name");
	snprintf(buf, sizeof(buf), "<%s%s>", v,
	    strchr(v, '@') ? "" : "@alias.invalid");
	if (addr_parse_path(buf, strlen(buf), ADDR_UTF8_OK, &ad, &used,
	    NULL) != ADDR_OK || used != strlen(buf))
		return conf_err(pc, config_setting_get_member(g, "name"),
		    "alias name \"%.100s\" is not a local part or an address",
		    v);
	if ((a->name = strdup(v)) == NULL)
		return conf_err(pc, g, "out of memory");
	qc_lower(a->name);
	if (conf_get_strings(pc, g, "to", &a->to, &a->nto,
	    QC_MAX_TARGETS) == -1)
		return -1;
	if (a->nto == 0)
		return conf_err(pc, g, "alias \"%.100s\" needs to = [ ... ]",
		    v);
	for (i = 0; i < a->nto; i++) {
		snprintf(buf, sizeof(buf), "<%s%s>", a->to[i],
		    strchr(a->to[i], '@') ? "" : "@alias.invalid");
		if (addr_parse_path(buf, strlen(buf), ADDR_UTF8_OK, &ad, &used,
		    NULL) != ADDR_OK || used != strlen(buf))
			return conf_err(pc, config_setting_get_member(g, "to"),
			    "alias target \"%.100s\" is not a local part or an "
			    "address", a->to[i]);
	}
	return 0;
}

static int
parse_queue(struct conf_ctx *pc, const config_setting_t *g,
    struct queue_conf *qc)
{
	const config_setting_t *s;
	const char *v = NULL;
	char uerr[200];

	if (!config_setting_is_group(g))
		return conf_err(pc, g, "queue must be a group { ... }");
	if (conf_check_keys(pc, g, queue_keys, "queue") == -1 ||
	    conf_get_duration(pc, g, "retry_min", 1, 86400,
	    &qc->retry_min) == -1 ||
	    conf_get_duration(pc, g, "retry_max", 1, 7 * 86400,
	    &qc->retry_max) == -1 ||
	    conf_get_duration(pc, g, "lifetime", 1, 365 * 86400,
	    &qc->lifetime) == -1 ||
	    conf_get_duration(pc, g, "delay_warning", 0, 365 * 86400,
	    &qc->delay_warning) == -1 ||
	    conf_get_uint(pc, g, "concurrency", 1, QC_MAX_CONCURRENCY,
	    &qc->concurrency) == -1 ||
	    conf_get_uint(pc, g, "destination_concurrency", 1,
	    QC_MAX_CONCURRENCY,
	    &qc->dest_concurrency) == -1 ||
	    conf_get_uint(pc, g, "session_messages", 1, 100000,
	    &qc->session_messages) == -1 ||
	    conf_get_duration(pc, g, "scan_interval", 1, 3600,
	    &qc->scan_interval) == -1 ||
	    conf_get_duration(pc, g, "pipe_timeout", 1, 86400,
	    &qc->pipe_timeout) == -1 ||
	    conf_get_bool(pc, g, "runner", &qc->runner) == -1)
		return -1;
	if (conf_get_size(pc, g, "bounce_size", 0, 64 * 1024 * 1024,
	    &qc->bounce_size) == -1)
		return -1;
	if (qc->retry_max < qc->retry_min)
		return conf_err(pc, config_setting_get_member(g, "retry_max"),
		    "retry_max must not be less than retry_min");
	if (qc->delay_warning != 0 && qc->delay_warning >= qc->lifetime) {
		s = config_setting_get_member(g, "delay_warning");
		return conf_err(pc, s, "delay_warning must be shorter than the "
		    "lifetime (or 0 for none)");
	}
	if (conf_get_string(pc, g, "pipe_user", &v) == -1)
		return -1;
	if (v != NULL && queueconf_user(v, &qc->pipe_user, uerr,
	    sizeof(uerr)) == -1)
		return conf_err(pc, config_setting_get_member(g, "pipe_user"),
		    "pipe_user: %s", uerr);
	v = NULL;
	if (conf_get_string(pc, g, "mailer_user", &v) == -1)
		return -1;
	if (v != NULL && queueconf_user(v, &qc->mailer_user, uerr,
	    sizeof(uerr)) == -1)
		return conf_err(pc, config_setting_get_member(g, "mailer_user"),
		    "mailer_user: %s", uerr);
	v = NULL;
	if (conf_get_string(pc, g, "user", &v) == -1)
		return -1;
	if (v != NULL && (v[0] == '\0' ||
	    str_lcpy(qc->user, v, sizeof(qc->user)) >= sizeof(qc->user)))
		return conf_err(pc, config_setting_get_member(g, "user"),
		    "user must be a user name");
	v = NULL;
	if (conf_get_string(pc, g, "relay_keys", &v) == -1)
		return -1;
	if (v != NULL && (v[0] == '\0' || conf_path(pc->file, v,
	    qc->relay_keys, sizeof(qc->relay_keys)) == -1))
		return conf_err(pc, config_setting_get_member(g, "relay_keys"),
		    "relay_keys must be a path");
	if ((s = config_setting_get_member(g, "tlsrpt")) != NULL)
		return parse_tlsrpt(pc, s, qc);
	return 0;
}

/* queue.tlsrpt: who sends the TLS reports (RFC 8460). */
static int
parse_tlsrpt(struct conf_ctx *pc, const config_setting_t *g,
    struct queue_conf *qc)
{
	static const char *const keys[] = { "from", "organization", NULL };
	const char *from = NULL, *org = NULL, *why = NULL;
	struct addr a;
	size_t used, i;

	if (!config_setting_is_group(g))
		return conf_err(pc, g, "tlsrpt must be a group { from = ...; "
		    "organization = ...; }");
	if (conf_check_keys(pc, g, keys, "queue.tlsrpt") == -1 ||
	    conf_get_string(pc, g, "from", &from) == -1 ||
	    conf_get_string(pc, g, "organization", &org) == -1)
		return -1;
	if (from == NULL || org == NULL)
		return conf_err(pc, g, "tlsrpt needs from and organization");
	if (addr_parse_path(from, strlen(from), ADDR_NOBRACKETS_OK, &a, &used,
	    &why) !=
	    ADDR_OK || used != strlen(from) || a.is_null ||
	    a.local_len == 0 || a.literal || a.quoted)
		return conf_err(pc, config_setting_get_member(g, "from"),
		    "tlsrpt.from: not a plain mailbox (local@domain)");
	for (i = 0; org[i] != '\0'; i++)
		if ((unsigned char)org[i] < 0x20 || org[i] == 0x7f)
			break;
	if (org[0] == '\0' || org[i] != '\0' ||
	    strlen(org) >= sizeof(qc->tlsrpt_org))
		return conf_err(pc, config_setting_get_member(g,
		    "organization"),
		    "tlsrpt.organization: one line of 1 to %zu characters",
		    sizeof(qc->tlsrpt_org) - 1);
	str_lcpy(qc->tlsrpt_from, a.mailbox, sizeof(qc->tlsrpt_from));
	str_lcpy(qc->tlsrpt_org, org, sizeof(qc->tlsrpt_org));
	return 0;
}

static int
alias_cmp(const void *a, const void *b)
{
	return strcmp(((const struct alias *)a)->name,
	    ((const struct alias *)b)->name);
}

struct queue_conf *
queueconf_parse(const config_setting_t *root, const char *file,
    const char *hostname, const char *spool, char *err, size_t errlen)
{
	struct queue_conf *qc;
	struct conf_ctx pc = { file, err, errlen };
	config_setting_t *g;
	char uerr[200];
	size_t i, n;

	if ((qc = calloc(1, sizeof(*qc))) == NULL) {
		snprintf(err, errlen, "%s: out of memory", file);
		return NULL;
	}
	qc->refs = 1;
	qc->have_file = root != NULL;
	str_lcpy(qc->file, file, sizeof(qc->file));
	if (str_lcpy(qc->hostname, hostname, sizeof(qc->hostname)) >=
	    sizeof(qc->hostname) ||
	    str_lcpy(qc->spool, spool,
	    sizeof(qc->spool)) >= sizeof(qc->spool)) {
		conf_err(&pc, NULL, "hostname or spool too long");
		goto fail;
	}
	qc->retry_min = QC_DEF_RETRY_MIN;
	qc->retry_max = QC_DEF_RETRY_MAX;
	qc->lifetime = QC_DEF_LIFETIME;
	qc->delay_warning = QC_DEF_DELAY_WARNING;
	qc->concurrency = QC_DEF_CONCURRENCY;
	qc->dest_concurrency = QC_DEF_DEST_CONCURRENCY;
	qc->session_messages = QC_DEF_SESSION_MESSAGES;
	qc->runner = 1;
	qc->scan_interval = QC_DEF_SCAN_INTERVAL;
	qc->bounce_size = QC_DEF_BOUNCE_SIZE;
	qc->pipe_timeout = QC_DEF_PIPE_TIMEOUT;

	/* queue { } first: routes take their defaults from it. */
	if (root != NULL && (g = config_setting_get_member(root, "queue")) &&
	    parse_queue(&pc, g, qc) == -1)
		goto fail;
	if (qc->pipe_user.name[0] == '\0' &&
	    queueconf_user(QC_DEF_PIPE_USER, &qc->pipe_user, uerr,
	    sizeof(uerr)) == -1) {
		/* Only an error once a pipe route wants it. */
		qc->pipe_user.name[0] = '\0';
	}
	if (qc->mailer_user.name[0] == '\0' &&
	    queueconf_user(QC_DEF_MAILER_USER, &qc->mailer_user, uerr,
	    sizeof(uerr)) == -1) {
		/* smtpd -m as root then refuses to run the mailer. */
		qc->mailer_user.name[0] = '\0';
	}

	if (root != NULL && (g = config_setting_get_member(root, "routes"))) {
		if (!config_setting_is_list(g) && !config_setting_is_array(g)) {
			conf_err(&pc, g,
			    "routes must be a list ( { ... }, ... )");
			goto fail;
		}
		n = (size_t)config_setting_length(g);
		if (n > QC_MAX_ROUTES) {
			conf_err(&pc, g, "more than %d routes", QC_MAX_ROUTES);
			goto fail;
		}
		if (n > 0 && (qc->routes = calloc(n, sizeof(*qc->routes))) ==
		    NULL) {
			conf_err(&pc, g, "out of memory");
			goto fail;
		}
		for (i = 0; i < n; i++) {
			config_setting_t *e = config_setting_get_elem(g,
			    (unsigned)i);

			qc->routes[i].index = (unsigned)i;
			qc->nroutes = i + 1;
			if (qc_parse_route(&pc, e, &qc->routes[i], qc) == -1)
				goto fail;
			if (qc->routes[i].action == ROUTE_PIPE &&
			    qc->routes[i].user.name[0] == '\0') {
				conf_err(&pc, e, "pipe_user %s does not exist; "
				    "set queue.pipe_user or this route's user",
				    QC_DEF_PIPE_USER);
				goto fail;
			}
		}
	}
	if (qc->nroutes == 0) {
		if ((qc->routes = calloc(1, sizeof(*qc->routes))) == NULL) {
			conf_err(&pc, NULL, "out of memory");
			goto fail;
		}
		qc->nroutes = 1;
		qc->routes[0].domains = builtin_domains;
		qc->routes[0].ndomains = 1;
		qc->routes[0].action = ROUTE_RELAY;
		qc->routes[0].concurrency = qc->dest_concurrency;
	}

	if (root != NULL && (g = config_setting_get_member(root, "aliases")) &&
	    config_setting_type(g) != CONFIG_TYPE_STRING) {
		if (!config_setting_is_list(g) && !config_setting_is_array(g)) {
			conf_err(&pc, g,
			    "aliases must be a list ( { name = ...; "
			    "to = ...; }, ... )");
			goto fail;
		}
		n = (size_t)config_setting_length(g);
		if (n > QC_MAX_ALIASES) {
			conf_err(&pc, g, "more than %d aliases",
			    QC_MAX_ALIASES);
			goto fail;
		}
		if (n > 0 && (qc->aliases = calloc(n, sizeof(*qc->aliases))) ==
		    NULL) {
			conf_err(&pc, g, "out of memory");
			goto fail;
		}
		for (i = 0; i < n; i++) {
			qc->naliases = i + 1;
			if (parse_alias(&pc, config_setting_get_elem(g,
			    (unsigned)i), &qc->aliases[i]) == -1)
				goto fail;
		}
		/* "aliases = ()" leaves no table: qsort() wants one. */
		if (qc->naliases > 1)
			qsort(qc->aliases, qc->naliases, sizeof(*qc->aliases),
			    alias_cmp);
		for (i = 1; i < qc->naliases; i++)
			if (strcmp(qc->aliases[i - 1].name,
			    qc->aliases[i].name) == 0) {
				snprintf(err, errlen, "%s:%u: alias \"%.100s\" "
				    "is defined twice (also line %u)", file,
				    qc->aliases[i].line, qc->aliases[i].name,
				    qc->aliases[i - 1].line);
				goto fail;
			}
	}
	if (qc_tables_parse(root, qc, file, err, errlen) == -1)
		goto fail;
	return qc;
fail:
	queueconf_free(qc);
	return NULL;
}

struct queue_conf *
queueconf_load(const char *path, int missing_ok, char *err, size_t errlen)
{
	struct conf_ctx cx = { path, err, errlen };
	struct queue_conf *qc;
	config_setting_t *root = NULL;
	const char *spool = conf_default_spool(), *host = NULL;
	char hostbuf[256], spoolbuf[PATH_MAX];
	config_t cf;
	int have_file;

	config_init(&cf);
	if (conf_read(&cf, path, missing_ok, &have_file, err, errlen) == -1) {
		config_destroy(&cf);
		return NULL;
	}
	if (have_file) {
		root = config_root_setting(&cf);
		/* Resolved as smtpd does it, or the two see other spools. */
		spoolbuf[0] = '\0';
		if (conf_get_path(&cx, root, "spool", spoolbuf,
		    sizeof(spoolbuf)) == -1 ||
		    conf_get_string(&cx, root, "defaultdomain", &host) == -1 ||
		    conf_get_string(&cx, root, "hostname", &host) == -1) {
			config_destroy(&cf);
			return NULL;
		}
		if (spoolbuf[0] != '\0')
			spool = spoolbuf;
	}
	if (host == NULL) {
		/* The name smtpd takes, so that DSNs and EHLO agree. */
		net_host_name(hostbuf, sizeof(hostbuf));
		host = hostbuf;
	}
	qc = queueconf_parse(root, path, host, spool, err, errlen);
	config_destroy(&cf);
	return qc;
}

static void
free_route(struct route *r)
{
	if (r->domains != builtin_domains)
		queueconf_free_list(&r->domains, r->ndomains);
	free(r->local);
	table_free(&r->domain_table);
	free(r->sender);
	free(r->login);
	free(r->path);
	queueconf_free_list(&r->argv, r->argc);
	free(r->host);
	free(r->tls_cafile);
	free(r->tls_pin);
	free(r->lmtp);
	free(r->auth);
}

static void
queueconf_free(struct queue_conf *qc)
{
	size_t i;

	if (qc == NULL)
		return;
	for (i = 0; i < qc->nroutes; i++)
		free_route(&qc->routes[i]);
	free(qc->routes);
	for (i = 0; i < qc->naliases; i++) {
		free(qc->aliases[i].name);
		queueconf_free_list(&qc->aliases[i].to, qc->aliases[i].nto);
	}
	free(qc->aliases);
	qc_tables_free(qc);
	free(qc);
}

struct queue_conf *
queueconf_ref(struct queue_conf *qc)
{
	refcnt_take(&qc->refs);
	return qc;
}

void
queueconf_unref(struct queue_conf **qcp)
{
	struct queue_conf *qc = *qcp;

	if (qc == NULL)
		return;
	*qcp = NULL;
	if (refcnt_drop(&qc->refs))
		queueconf_free(qc);
}

int
queueconf_split_mailbox(const struct queue_conf *qc, const char *mailbox,
    char *local, size_t llen, char *domain, size_t dlen)
{
	const char *at = strrchr(mailbox, '@');
	size_t n = at != NULL ? (size_t)(at - mailbox) : strlen(mailbox);
	int rc = n == 0 || n >= llen ? -1 : 0;

	if (n >= llen)
		n = llen - 1;
	memcpy(local, mailbox, n);
	local[n] = '\0';
	if (str_lcpy(domain, at != NULL ? at + 1 : qc->hostname, dlen) >= dlen)
		rc = -1;
	qc_lower(local);
	qc_lower(domain);
	n = strlen(domain);
	if (n > 0 && domain[n - 1] == '.')
		domain[n - 1] = '\0';
	return rc;
}

const struct route *
queueconf_route(const struct queue_conf *qc, const char *mailbox)
{
	return queueconf_route_from(qc, mailbox, NULL, NULL);
}

/* A route's sender and login conditions (a NULL sender matches none). */
static int
route_from(const struct route *r, const char *sender, const char *login)
{
	char s[ADDR_PATH_MAX + 1];

	if (r->sender != NULL) {
		if (sender == NULL)
			return 0;
		str_lcpy(s, sender[0] ? sender : "<>", sizeof(s));
		qc_lower(s);
		if (fnmatch(r->sender, s, 0) != 0)
			return 0;
	}
	if (r->login != NULL && (login == NULL || login[0] == '\0' ||
	    fnmatch(r->login, login, 0) != 0))
		return 0;
	return 1;
}

/* 1 if domain is a key of the route's domain table. */
static int
in_domain_table(const struct route *r, const char *domain)
{
	char err[256];

	if (r->domain_table == NULL)
		return 0;
	switch (table_lookup(r->domain_table, domain, NULL, 0, err,
	    sizeof(err))) {
	case TABLE_FOUND:
		return 1;
	case TABLE_TEMP:
		log_err("route %u: %s", r->index + 1, err);
		return 0;
	default:
		return 0;
	}
}

const struct route *
queueconf_route_from(const struct queue_conf *qc, const char *mailbox,
    const char *sender, const char *login)
{
	char local[ADDR_PATH_MAX + 1], domain[ADDR_PATH_MAX + 1];
	const struct route *r;
	size_t i, j;

	(void)queueconf_split_mailbox(qc, mailbox, local, sizeof(local),
	    domain, sizeof(domain));
	for (i = 0; i < qc->nroutes; i++) {
		r = &qc->routes[i];
		for (j = 0; j < r->ndomains; j++)
			if (addr_domain_match(r->domains[j], domain))
				break;
		if (j == r->ndomains && !in_domain_table(r, domain))
			continue;
		if (r->local != NULL && fnmatch(r->local, local, 0) != 0)
			continue;
		if (!route_from(r, sender, login))
			continue;
		return r;
	}
	return NULL;
}

const struct alias *
queueconf_alias(const struct queue_conf *qc, const char *name)
{
	struct alias key;

	if (qc->naliases == 0)
		return NULL;
	memset(&key, 0, sizeof(key));
	key.name = (char *)name;
	return bsearch(&key, qc->aliases, qc->naliases, sizeof(key),
	    alias_cmp);
}
