#include "config.h"

#include <sys/types.h>

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libconfig.h>

#include "client/pin.h"
#include "lib/addr.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/table.h"
#include "queueconf.h"
#include "recipients.h"

#ifndef SMTPD_SPOOL
#define SMTPD_SPOOL	"/var/spool/smtpd"
#endif
#define DEF_SPOOL	SMTPD_SPOOL

static const char *route_tls_name(const struct route *);
static const char *const route_keys[] = {
	"domain", "local", "sender", "login", "catchall", "action",
	"concurrency",
	"path", "create", "user",			/* maildir */
	"command", "timeout", "batch", "from_line",	/* pipe (and user) */
	"host", "tls", "tls_verify", "tls_cafile", "tls_pin", "auth", /* relay */
	"lmtp",
	NULL
};
static const char *const alias_keys[] = { "name", "to", NULL };
static const char *const queue_keys[] = {
	"retry_min", "retry_max", "lifetime", "delay_warning", "concurrency",
	"destination_concurrency", "session_messages", "scan_interval",
	"bounce_size", "pipe_timeout", "pipe_user", "mailer_user", "runner", "relay_keys",
	"user", "tlsrpt", NULL
};

/* Used when no routes are configured: relay everything by MX. */
static char	*builtin_domains[] = { (char *)"*" };

struct pctx {
	const char	*file;
	char		*err;
	size_t		 errlen;
};

static int	seterr(struct pctx *, const config_setting_t *, const char *,
		    ...) __attribute__((format(printf, 3, 4)));
static int	check_keys(struct pctx *, const config_setting_t *,
		    const char *const *, const char *);
static int	get_string(struct pctx *, const config_setting_t *,
		    const char *, const char **);
static int	get_bool(struct pctx *, const config_setting_t *, const char *,
		    int *);
static int	get_uint(struct pctx *, const config_setting_t *, const char *,
		    unsigned int, unsigned int, unsigned int *);
static int	get_duration(struct pctx *, const config_setting_t *,
		    const char *, unsigned int, unsigned int, unsigned int *);
static int	get_strings(struct pctx *, const config_setting_t *,
		    const char *, char ***, size_t *, size_t);
static int	parse_route(struct pctx *, const config_setting_t *,
		    struct route *, const struct queue_conf *);
static int	parse_alias(struct pctx *, const config_setting_t *,
		    struct alias *);
static int	parse_queue(struct pctx *, const config_setting_t *,
		    struct queue_conf *);
static int	parse_tlsrpt(struct pctx *, const config_setting_t *,
		    struct queue_conf *);
static int	check_template(const char *, const char *);
static int	valid_pattern(const char *);
static void	lower(char *);
static void	free_route(struct route *);
static void	queueconf_free(struct queue_conf *);
static int	alias_cmp(const void *, const void *);

static int
seterr(struct pctx *pc, const config_setting_t *s, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (s != NULL && config_setting_source_line(s) > 0)
		snprintf(pc->err, pc->errlen, "%s:%u: %s", pc->file,
		    config_setting_source_line(s), msg);
	else
		snprintf(pc->err, pc->errlen, "%s: %s", pc->file, msg);
	return -1;
}

static int
check_keys(struct pctx *pc, const config_setting_t *g,
    const char *const *known, const char *where)
{
	int i, j, n = config_setting_length(g);

	for (i = 0; i < n; i++) {
		config_setting_t *c = config_setting_get_elem(g, (unsigned)i);
		const char *name = config_setting_name(c);

		for (j = 0; known[j] != NULL; j++)
			if (name != NULL && strcmp(known[j], name) == 0)
				break;
		if (known[j] == NULL)
			return seterr(pc, c, "unknown setting \"%s\" in %s",
			    name ? name : "?", where);
	}
	return 0;
}

static int
get_string(struct pctx *pc, const config_setting_t *g, const char *name,
    const char **out)
{
	config_setting_t *s = config_setting_get_member(g, name);

	if (s == NULL)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return seterr(pc, s, "%s must be a string", name);
	*out = config_setting_get_string(s);
	return 0;
}

static int
get_bool(struct pctx *pc, const config_setting_t *g, const char *name,
    int *out)
{
	config_setting_t *s = config_setting_get_member(g, name);

	if (s == NULL)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		return seterr(pc, s, "%s must be true or false", name);
	*out = config_setting_get_bool(s);
	return 0;
}

static int
get_uint(struct pctx *pc, const config_setting_t *g, const char *name,
    unsigned int min, unsigned int max, unsigned int *out)
{
	config_setting_t *s = config_setting_get_member(g, name);
	long long v;

	if (s == NULL)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_INT &&
	    config_setting_type(s) != CONFIG_TYPE_INT64)
		return seterr(pc, s, "%s must be a whole number", name);
	v = config_setting_get_int64(s);
	if (v < (long long)min || v > (long long)max)
		return seterr(pc, s, "%s must be between %u and %u", name, min,
		    max);
	*out = (unsigned int)v;
	return 0;
}

int
queueconf_duration(const char *s, unsigned int *out)
{
	unsigned long long v = 0, mult = 1;
	const char *p = s;

	if (!isdigit((unsigned char)*p))
		return -1;
	while (isdigit((unsigned char)*p)) {
		v = v * 10 + (unsigned long long)(*p - '0');
		if (v > 0xffffffffULL)
			return -1;
		p++;
	}
	switch (*p) {
	case '\0':
	case 's':
		break;
	case 'm':
		mult = 60;
		break;
	case 'h':
		mult = 3600;
		break;
	case 'd':
		mult = 86400;
		break;
	case 'w':
		mult = 7 * 86400;
		break;
	default:
		return -1;
	}
	if (*p != '\0' && p[1] != '\0')
		return -1;
	v *= mult;
	if (v > 0x7fffffffULL)
		return -1;
	*out = (unsigned int)v;
	return 0;
}

/* A number of seconds, or a string such as "15m". */
static int
get_duration(struct pctx *pc, const config_setting_t *g, const char *name,
    unsigned int min, unsigned int max, unsigned int *out)
{
	config_setting_t *s = config_setting_get_member(g, name);
	unsigned int v;
	long long n;

	if (s == NULL)
		return 0;
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		n = config_setting_get_int64(s);
		if (n < 0 || n > 0x7fffffffLL)
			return seterr(pc, s, "%s is out of range", name);
		v = (unsigned int)n;
		break;
	case CONFIG_TYPE_STRING:
		if (queueconf_duration(config_setting_get_string(s), &v) == -1)
			return seterr(pc, s, "%s: \"%.50s\" is not a duration "
			    "(seconds, or a number with s, m, h, d or w)", name,
			    config_setting_get_string(s));
		break;
	default:
		return seterr(pc, s, "%s must be a duration such as 300 or "
		    "\"5m\"", name);
	}
	if (v < min || v > max)
		return seterr(pc, s, "%s must be between %u and %u seconds",
		    name, min, max);
	*out = v;
	return 0;
}

/* A string or a list of strings, into a NULL-terminated array. */
static int
get_strings(struct pctx *pc, const config_setting_t *g, const char *name,
    char ***out, size_t *n, size_t max)
{
	config_setting_t *s = config_setting_get_member(g, name), *e;
	char **v;
	size_t i, cnt;

	*out = NULL;
	*n = 0;
	if (s == NULL)
		return 0;
	if (config_setting_type(s) == CONFIG_TYPE_STRING)
		cnt = 1;
	else if (config_setting_is_array(s) || config_setting_is_list(s))
		cnt = (size_t)config_setting_length(s);
	else
		return seterr(pc, s, "%s must be a string or a list of strings",
		    name);
	if (cnt == 0)
		return seterr(pc, s, "%s must not be empty", name);
	if (cnt > max)
		return seterr(pc, s, "%s: more than %zu entries", name, max);
	if ((v = calloc(cnt + 1, sizeof(*v))) == NULL)
		return seterr(pc, s, "out of memory");
	for (i = 0; i < cnt; i++) {
		e = config_setting_type(s) == CONFIG_TYPE_STRING ? s :
		    config_setting_get_elem(s, (unsigned)i);
		if (config_setting_type(e) != CONFIG_TYPE_STRING) {
			queueconf_free_list(&v, i);
			return seterr(pc, e, "%s entries must be strings", name);
		}
		if ((v[i] = strdup(config_setting_get_string(e))) == NULL) {
			queueconf_free_list(&v, i);
			return seterr(pc, e, "out of memory");
		}
	}
	*out = v;
	*n = cnt;
	return 0;
}

void
queueconf_free_list(char ***list, size_t n)
{
	size_t i;

	if (*list == NULL)
		return;
	for (i = 0; i < n; i++)
		free((*list)[i]);
	free(*list);
	*list = NULL;
}

static void
lower(char *s)
{
	for (; *s != '\0'; s++)
		*s = (char)tolower((unsigned char)*s);
}

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

int
queueconf_user(const char *name, struct qc_user *u, char *err, size_t errlen)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	int n, r;

	memset(u, 0, sizeof(*u));
	if (str_lcpy(u->name, name, sizeof(u->name)) >= sizeof(u->name)) {
		snprintf(err, errlen, "user name \"%.64s...\" is too long", name);
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

/* Settings that make sense only for some actions. */
static int
only_for(struct pctx *pc, const config_setting_t *g, const char *key,
    int ok, const char *what)
{
	config_setting_t *s = config_setting_get_member(g, key);

	if (s != NULL && !ok)
		return seterr(pc, s, "%s applies only to %s routes", key, what);
	return 0;
}

/* Virtual domains: a route's domain may name a file or CDB table. */
static int
route_domain_table(struct pctx *pc, const config_setting_t *g,
    struct route *r, const char *ref)
{
	char why[512];

	if (strncmp(ref, "file:", 5) != 0 && strncmp(ref, "cdb:", 4) != 0)
		return seterr(pc, config_setting_get_member(g, "domain"),
		    "domain tables are file: or cdb: tables");
	if (r->domain_table != NULL)
		return seterr(pc, config_setting_get_member(g, "domain"),
		    "a route names one domain table at most");
	if ((r->domain_table = qc_table_open(pc->file, ref, why,
	    sizeof(why))) == NULL)
		return seterr(pc, config_setting_get_member(g, "domain"),
		    "domain: %s", why);
	return 0;
}

/* sender, login and catchall: who a route is for. */
static int
route_match_keys(struct pctx *pc, const config_setting_t *g, struct route *r)
{
	const char *v;

	v = NULL;
	if (get_string(pc, g, "sender", &v) == -1)
		return -1;
	if (v != NULL && (*v == '\0' || (r->sender = strdup(v)) == NULL))
		return seterr(pc, config_setting_get_member(g, "sender"),
		    *v ? "out of memory" : "sender must not be empty (\"<>\" "
		    "is the null sender)");
	if (r->sender != NULL)
		lower(r->sender);
	v = NULL;
	if (get_string(pc, g, "login", &v) == -1)
		return -1;
	if (v != NULL && (*v == '\0' || (r->login = strdup(v)) == NULL))
		return seterr(pc, config_setting_get_member(g, "login"),
		    *v ? "out of memory" : "login must not be empty");
	return get_bool(pc, g, "catchall", &r->catchall);
}

static int
parse_route(struct pctx *pc, const config_setting_t *g, struct route *r,
    const struct queue_conf *qc)
{
	const char *v;
	char uerr[200], abspath[PATH_MAX];
	size_t i;

	if (!config_setting_is_group(g))
		return seterr(pc, g, "each route must be a group { ... }");
	if (check_keys(pc, g, route_keys, "a route") == -1)
		return -1;
	r->line = config_setting_source_line(g);
	r->concurrency = qc->dest_concurrency;
	r->timeout = qc->pipe_timeout;
	r->user = qc->pipe_user;

	if (get_strings(pc, g, "domain", &r->domains, &r->ndomains, 1000) == -1)
		return -1;
	if (r->ndomains == 0)
		return seterr(pc, g, "a route needs a domain (\"*\" for all)");
	for (i = 0; i < r->ndomains; i++) {
		if (table_is_ref(r->domains[i])) {
			if (route_domain_table(pc, g, r, r->domains[i]) == -1)
				return -1;
			continue;
		}
		lower(r->domains[i]);
		if (!valid_pattern(r->domains[i]))
			return seterr(pc, config_setting_get_member(g, "domain"),
			    "domain \"%.100s\" is not a domain, \"*.domain\" "
			    "or \"*\"", r->domains[i]);
	}
	v = NULL;
	if (get_string(pc, g, "local", &v) == -1)
		return -1;
	if (v != NULL) {
		if (*v == '\0')
			return seterr(pc, config_setting_get_member(g, "local"),
			    "local must not be empty");
		if ((r->local = strdup(v)) == NULL)
			return seterr(pc, g, "out of memory");
		lower(r->local);
	}
	if (route_match_keys(pc, g, r) == -1)
		return -1;
	v = NULL;
	if (get_string(pc, g, "action", &v) == -1)
		return -1;
	if (v == NULL)
		return seterr(pc, g, "a route needs an action (maildir, pipe, "
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
		return seterr(pc, config_setting_get_member(g, "action"),
		    "unknown action \"%.50s\" (want maildir, pipe, relay or "
		    "lmtp)", v);
	if (get_uint(pc, g, "concurrency", 1, QC_MAX_CONCURRENCY,
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
		if (get_string(pc, g, "path", &v) == -1)
			return -1;
		if (v == NULL || v[0] == '\0')
			return seterr(pc, g, "a maildir route needs a path "
			    "(e.g. \"/var/mail/%%d/%%u\")");
		if (check_template(v, "ud") == -1)
			return seterr(pc, config_setting_get_member(g, "path"),
			    "path: only %%u (user), %%d (domain) and %%%% may "
			    "follow a %%");
		/* Relative paths are taken from the config file's directory. */
		if (fs_conf_path(pc->file, v, abspath, sizeof(abspath)) == -1)
			return seterr(pc, config_setting_get_member(g, "path"),
			    "path: %s", strerror(errno));
		if ((r->path = strdup(abspath)) == NULL)
			return seterr(pc, g, "out of memory");
		if (get_bool(pc, g, "create", &r->create) == -1)
			return -1;
		v = NULL;
		if (get_string(pc, g, "user", &v) == -1)
			return -1;
		if (v != NULL) {
			if (queueconf_user(v, &r->owner, uerr,
			    sizeof(uerr)) == -1)
				return seterr(pc, config_setting_get_member(g,
				    "user"), "user: %s", uerr);
			r->has_owner = 1;
		}
		break;
	case ROUTE_PIPE:
		if (get_strings(pc, g, "command", &r->argv, &r->argc,
		    QC_MAX_ARGS) == -1)
			return -1;
		if (r->argc == 0)
			return seterr(pc, g, "a pipe route needs a command "
			    "[\"/path/to/program\", \"arg\", ...]");
		if (r->argv[0][0] != '/')
			return seterr(pc, config_setting_get_member(g,
			    "command"), "command: \"%.100s\" must be an "
			    "absolute path (no shell is involved)", r->argv[0]);
		for (i = 0; i < r->argc; i++)
			if (check_template(r->argv[i], "srutldi") == -1)
				return seterr(pc, config_setting_get_member(g,
				    "command"), "command: only %%s %%r %%u %%t "
				    "%%l %%d %%i and %%%% may follow a %%");
		if (get_duration(pc, g, "timeout", 1, 86400, &r->timeout) == -1 ||
		    get_bool(pc, g, "batch", &r->batch) == -1 ||
		    get_bool(pc, g, "from_line", &r->from_line) == -1)
			return -1;
		v = NULL;
		if (get_string(pc, g, "user", &v) == -1)
			return -1;
		if (v != NULL && queueconf_user(v, &r->user, uerr,
		    sizeof(uerr)) == -1)
			return seterr(pc, config_setting_get_member(g, "user"),
			    "user: %s", uerr);
		break;
	case ROUTE_RELAY:
		v = NULL;
		if (get_string(pc, g, "host", &v) == -1)
			return -1;
		if (v != NULL) {
			if (*v == '\0' || strpbrk(v, " \t") != NULL)
				return seterr(pc, config_setting_get_member(g,
				    "host"), "host must be a dial string such "
				    "as \"tcp!smarthost.example.net!587\"");
			if ((r->host = strdup(v)) == NULL)
				return seterr(pc, g, "out of memory");
		}
		v = NULL;
		if (get_string(pc, g, "tls", &v) == -1)
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
			return seterr(pc, config_setting_get_member(g, "tls"),
			    "tls must be \"none\", \"may\", \"encrypt\", "
			    "\"verify\", \"dane\", \"mta-sts\" or \"auto\" "
			    "(or \"opportunistic\", \"require\")");
		/* Opportunistic TLS takes any certificate (RFC 7435). */
		if (get_bool(pc, g, "tls_verify", &r->tls_verify) == -1)
			return -1;
		if (r->tls_verify && r->tls != ROUTE_TLS_REQUIRE)
			return seterr(pc, config_setting_get_member(g,
			    "tls_verify"), "tls_verify needs tls = "
			    "\"require\" (opportunistic TLS falls back to "
			    "no TLS at all)");
		v = NULL;
		if (get_string(pc, g, "tls_cafile", &v) == -1)
			return -1;
		if (v != NULL) {
			if (v[0] == '\0' || fs_conf_path(pc->file, v, abspath,
			    sizeof(abspath)) == -1)
				return seterr(pc, config_setting_get_member(g,
				    "tls_cafile"), "tls_cafile must be a path");
			if ((r->tls_cafile = strdup(abspath)) == NULL)
				return seterr(pc, g, "out of memory");
		}
		v = NULL;
		if (get_string(pc, g, "tls_pin", &v) == -1)
			return -1;
		if (v != NULL) {
			if (!pin_valid(v))
				return seterr(pc, config_setting_get_member(g,
				    "tls_pin"), "tls_pin must be \"sha256:\" "
				    "and 64 hex digits (colons allowed) or "
				    "\"pin-sha256:\" and 44 base64 digits, "
				    "several separated by commas");
			if ((r->tls_pin = strdup(v)) == NULL)
				return seterr(pc, g, "out of memory");
		}
		/* A CA file also serves the web PKI checks of MTA-STS. */
		if ((r->tls_cafile != NULL && !r->tls_verify &&
		    r->tls != ROUTE_TLS_MTA_STS && r->tls != ROUTE_TLS_AUTO) ||
		    (r->tls_pin != NULL && !r->tls_verify))
			return seterr(pc, g, "tls_cafile and tls_pin need "
			    "tls = \"require\" with the certificate checked "
			    "(tls_cafile: or \"mta-sts\", \"auto\")");
		v = NULL;
		if (get_string(pc, g, "auth", &v) == -1)
			return -1;
		if (v != NULL) {
			if (*v == '\0' || strpbrk(v, " \t") != NULL)
				return seterr(pc, config_setting_get_member(g,
				    "auth"), "auth must be a credential label "
				    "from the secrets file");
			if (r->host == NULL)
				return seterr(pc, config_setting_get_member(g,
				    "auth"), "auth needs a smarthost (host); "
				    "credentials are never sent to MX hosts");
			if (qc->relay_keys[0] == '\0')
				return seterr(pc, config_setting_get_member(g,
				    "auth"), "auth needs queue.relay_keys, the "
				    "file that holds the credentials");
			if ((r->auth = strdup(v)) == NULL)
				return seterr(pc, g, "out of memory");
		}
		break;
	case ROUTE_LMTP:
		v = NULL;
		if (get_string(pc, g, "lmtp", &v) == -1)
			return -1;
		if (v == NULL)
			return seterr(pc, g, "an lmtp route needs lmtp = "
			    "\"unix:/path\" or \"inet:host:port\"");
		if (!(strncmp(v, "unix:/", 6) == 0 || (strncmp(v, "inet:",
		    5) == 0 && strrchr(v + 5, ':') != NULL &&
		    strrchr(v + 5, ':') != v + 5)) ||
		    strpbrk(v, " \t") != NULL)
			return seterr(pc, config_setting_get_member(g, "lmtp"),
			    "lmtp must be \"unix:/path\" or "
			    "\"inet:host:port\"");
		if ((r->lmtp = strdup(v)) == NULL)
			return seterr(pc, g, "out of memory");
		break;
	}
	return 0;
}

static int
parse_alias(struct pctx *pc, const config_setting_t *g, struct alias *a)
{
	struct addr ad;
	const char *v = NULL;
	char buf[ADDR_PATH_MAX + 32];
	size_t i, used;

	if (!config_setting_is_group(g))
		return seterr(pc, g, "each alias must be a group "
		    "{ name = \"...\"; to = [ ... ]; }");
	if (check_keys(pc, g, alias_keys, "an alias") == -1 ||
	    get_string(pc, g, "name", &v) == -1)
		return -1;
	a->line = config_setting_source_line(g);
	if (v == NULL || *v == '\0')
		return seterr(pc, g, "an alias needs a name");
	snprintf(buf, sizeof(buf), "<%s%s>", v,
	    strchr(v, '@') ? "" : "@alias.invalid");
	if (addr_parse_path(buf, strlen(buf), ADDR_UTF8_OK, &ad, &used,
	    NULL) != ADDR_OK || used != strlen(buf))
		return seterr(pc, config_setting_get_member(g, "name"),
		    "alias name \"%.100s\" is not a local part or an address",
		    v);
	if ((a->name = strdup(v)) == NULL)
		return seterr(pc, g, "out of memory");
	lower(a->name);
	if (get_strings(pc, g, "to", &a->to, &a->nto, QC_MAX_TARGETS) == -1)
		return -1;
	if (a->nto == 0)
		return seterr(pc, g, "alias \"%.100s\" needs to = [ ... ]", v);
	for (i = 0; i < a->nto; i++) {
		snprintf(buf, sizeof(buf), "<%s%s>", a->to[i],
		    strchr(a->to[i], '@') ? "" : "@alias.invalid");
		if (addr_parse_path(buf, strlen(buf), ADDR_UTF8_OK, &ad, &used,
		    NULL) != ADDR_OK || used != strlen(buf))
			return seterr(pc, config_setting_get_member(g, "to"),
			    "alias target \"%.100s\" is not a local part or an "
			    "address", a->to[i]);
	}
	return 0;
}

static int
parse_queue(struct pctx *pc, const config_setting_t *g, struct queue_conf *qc)
{
	const config_setting_t *s;
	const char *v = NULL;
	unsigned int u;
	char uerr[200];

	if (!config_setting_is_group(g))
		return seterr(pc, g, "queue must be a group { ... }");
	if (check_keys(pc, g, queue_keys, "queue") == -1 ||
	    get_duration(pc, g, "retry_min", 1, 86400, &qc->retry_min) == -1 ||
	    get_duration(pc, g, "retry_max", 1, 7 * 86400, &qc->retry_max) == -1 ||
	    get_duration(pc, g, "lifetime", 1, 365 * 86400, &qc->lifetime) == -1 ||
	    get_duration(pc, g, "delay_warning", 0, 365 * 86400,
	    &qc->delay_warning) == -1 ||
	    get_uint(pc, g, "concurrency", 1, QC_MAX_CONCURRENCY,
	    &qc->concurrency) == -1 ||
	    get_uint(pc, g, "destination_concurrency", 1, QC_MAX_CONCURRENCY,
	    &qc->dest_concurrency) == -1 ||
	    get_uint(pc, g, "session_messages", 1, 100000,
	    &qc->session_messages) == -1 ||
	    get_duration(pc, g, "scan_interval", 1, 3600,
	    &qc->scan_interval) == -1 ||
	    get_duration(pc, g, "pipe_timeout", 1, 86400,
	    &qc->pipe_timeout) == -1 ||
	    get_bool(pc, g, "runner", &qc->runner) == -1)
		return -1;
	u = (unsigned int)qc->bounce_size;
	if (get_uint(pc, g, "bounce_size", 0, 64 * 1024 * 1024, &u) == -1)
		return -1;
	qc->bounce_size = u;
	if (qc->retry_max < qc->retry_min)
		return seterr(pc, config_setting_get_member(g, "retry_max"),
		    "retry_max must not be less than retry_min");
	if (qc->delay_warning != 0 && qc->delay_warning >= qc->lifetime) {
		s = config_setting_get_member(g, "delay_warning");
		return seterr(pc, s, "delay_warning must be shorter than the "
		    "lifetime (or 0 for none)");
	}
	if (get_string(pc, g, "pipe_user", &v) == -1)
		return -1;
	if (v != NULL && queueconf_user(v, &qc->pipe_user, uerr,
	    sizeof(uerr)) == -1)
		return seterr(pc, config_setting_get_member(g, "pipe_user"),
		    "pipe_user: %s", uerr);
	v = NULL;
	if (get_string(pc, g, "mailer_user", &v) == -1)
		return -1;
	if (v != NULL && queueconf_user(v, &qc->mailer_user, uerr,
	    sizeof(uerr)) == -1)
		return seterr(pc, config_setting_get_member(g, "mailer_user"),
		    "mailer_user: %s", uerr);
	v = NULL;
	if (get_string(pc, g, "user", &v) == -1)
		return -1;
	if (v != NULL && (v[0] == '\0' ||
	    str_lcpy(qc->user, v, sizeof(qc->user)) >= sizeof(qc->user)))
		return seterr(pc, config_setting_get_member(g, "user"),
		    "user must be a user name");
	v = NULL;
	if (get_string(pc, g, "relay_keys", &v) == -1)
		return -1;
	if (v != NULL && (v[0] == '\0' || fs_conf_path(pc->file, v,
	    qc->relay_keys, sizeof(qc->relay_keys)) == -1))
		return seterr(pc, config_setting_get_member(g, "relay_keys"),
		    "relay_keys must be a path");
	if ((s = config_setting_get_member(g, "tlsrpt")) != NULL)
		return parse_tlsrpt(pc, s, qc);
	return 0;
}

/* queue.tlsrpt: who sends the TLS reports (RFC 8460). */
static int
parse_tlsrpt(struct pctx *pc, const config_setting_t *g,
    struct queue_conf *qc)
{
	static const char *const keys[] = { "from", "organization", NULL };
	const char *from = NULL, *org = NULL, *why = NULL;
	struct addr a;
	size_t used, i;

	if (!config_setting_is_group(g))
		return seterr(pc, g, "tlsrpt must be a group { from = ...; "
		    "organization = ...; }");
	if (check_keys(pc, g, keys, "queue.tlsrpt") == -1 ||
	    get_string(pc, g, "from", &from) == -1 ||
	    get_string(pc, g, "organization", &org) == -1)
		return -1;
	if (from == NULL || org == NULL)
		return seterr(pc, g, "tlsrpt needs from and organization");
	if (addr_parse_path(from, strlen(from), ADDR_NOBRACKETS_OK, &a, &used,
	    &why) !=
	    ADDR_OK || used != strlen(from) || a.is_null ||
	    a.local_len == 0 || a.literal || a.quoted)
		return seterr(pc, config_setting_get_member(g, "from"),
		    "tlsrpt.from: not a plain mailbox (local@domain)");
	for (i = 0; org[i] != '\0'; i++)
		if ((unsigned char)org[i] < 0x20 || org[i] == 0x7f)
			break;
	if (org[0] == '\0' || org[i] != '\0' ||
	    strlen(org) >= sizeof(qc->tlsrpt_org))
		return seterr(pc, config_setting_get_member(g, "organization"),
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
	struct pctx pc = { file, err, errlen };
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
	    str_lcpy(qc->spool, spool, sizeof(qc->spool)) >= sizeof(qc->spool)) {
		seterr(&pc, NULL, "hostname or spool too long");
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
			seterr(&pc, g, "routes must be a list ( { ... }, ... )");
			goto fail;
		}
		n = (size_t)config_setting_length(g);
		if (n > QC_MAX_ROUTES) {
			seterr(&pc, g, "more than %d routes", QC_MAX_ROUTES);
			goto fail;
		}
		if (n > 0 && (qc->routes = calloc(n, sizeof(*qc->routes))) ==
		    NULL) {
			seterr(&pc, g, "out of memory");
			goto fail;
		}
		for (i = 0; i < n; i++) {
			config_setting_t *e = config_setting_get_elem(g,
			    (unsigned)i);

			qc->routes[i].index = (unsigned)i;
			qc->nroutes = i + 1;
			if (parse_route(&pc, e, &qc->routes[i], qc) == -1)
				goto fail;
			if (qc->routes[i].action == ROUTE_PIPE &&
			    qc->routes[i].user.name[0] == '\0') {
				seterr(&pc, e, "pipe_user %s does not exist; "
				    "set queue.pipe_user or this route's user",
				    QC_DEF_PIPE_USER);
				goto fail;
			}
		}
	}
	if (qc->nroutes == 0) {
		if ((qc->routes = calloc(1, sizeof(*qc->routes))) == NULL) {
			seterr(&pc, NULL, "out of memory");
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
			seterr(&pc, g, "aliases must be a list ( { name = ...; "
			    "to = ...; }, ... )");
			goto fail;
		}
		n = (size_t)config_setting_length(g);
		if (n > QC_MAX_ALIASES) {
			seterr(&pc, g, "more than %d aliases", QC_MAX_ALIASES);
			goto fail;
		}
		if (n > 0 && (qc->aliases = calloc(n, sizeof(*qc->aliases))) ==
		    NULL) {
			seterr(&pc, g, "out of memory");
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
	struct queue_conf *qc;
	config_setting_t *root = NULL;
	const char *spool = DEF_SPOOL, *host = NULL, *v;
	char hostbuf[256], spoolbuf[PATH_MAX];
	config_t cf;
	int have_file = 1;

	config_init(&cf);
	if (access(path, F_OK) == -1 && errno == ENOENT && missing_ok)
		have_file = 0;
	else if (config_read_file(&cf, path) != CONFIG_TRUE) {
		if (config_error_type(&cf) == CONFIG_ERR_FILE_IO)
			snprintf(err, errlen, "%s: cannot read: %s", path,
			    strerror(errno ? errno : EIO));
		else
			snprintf(err, errlen, "%s:%d: %s",
			    config_error_file(&cf) ? config_error_file(&cf) :
			    path, config_error_line(&cf), config_error_text(&cf));
		config_destroy(&cf);
		return NULL;
	}
	if (have_file) {
		root = config_root_setting(&cf);
		/* Resolved as smtpd does it, or the two see other spools. */
		if (config_setting_lookup_string(root, "spool", &v) ==
		    CONFIG_TRUE) {
			if (v[0] == '\0' || fs_conf_path(path, v, spoolbuf,
			    sizeof(spoolbuf)) == -1) {
				snprintf(err, errlen, "%s: spool \"%.100s\": %s",
				    path, v, v[0] ? strerror(errno) : "empty");
				config_destroy(&cf);
				return NULL;
			}
			spool = spoolbuf;
		}
		if (config_setting_lookup_string(root, "hostname", &host) !=
		    CONFIG_TRUE)
			(void)config_setting_lookup_string(root,
			    "defaultdomain", &host);
	}
	if (host == NULL) {
		if (gethostname(hostbuf, sizeof(hostbuf)) == -1)
			str_lcpy(hostbuf, "localhost", sizeof(hostbuf));
		hostbuf[sizeof(hostbuf) - 1] = '\0';
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
	__atomic_add_fetch(&qc->refs, 1, __ATOMIC_RELAXED);
	return qc;
}

void
queueconf_unref(struct queue_conf **qcp)
{
	struct queue_conf *qc = *qcp;

	if (qc == NULL)
		return;
	*qcp = NULL;
	if (__atomic_sub_fetch(&qc->refs, 1, __ATOMIC_ACQ_REL) == 0)
		queueconf_free(qc);
}

void
queueconf_print(const struct queue_conf *qc, FILE *f)
{
	const struct route *r;
	size_t i, j;

	fprintf(f, "spool: %s\n", qc->spool);
	fprintf(f, "retry: from %u s, doubling up to %u s\n", qc->retry_min,
	    qc->retry_max);
	fprintf(f, "lifetime: %u s\n", qc->lifetime);
	if (qc->delay_warning)
		fprintf(f, "delay warning: after %u s\n", qc->delay_warning);
	else
		fprintf(f, "delay warning: none\n");
	fprintf(f, "deliveries at once: %u, %u per destination, %u messages "
	    "per connection\n", qc->concurrency, qc->dest_concurrency,
	    qc->session_messages);
	fprintf(f, "queue scan: every %u s\n", qc->scan_interval);
	fprintf(f, "bounces return messages up to %zu bytes whole\n",
	    qc->bounce_size);
	fprintf(f, "smtpd -m runs the mailer as: %s\n",
	    qc->mailer_user.name[0] ? qc->mailer_user.name : "(no such user)");
	if (qc->tlsrpt_from[0] != '\0')
		fprintf(f, "TLS reports: from %s, organization %s\n",
		    qc->tlsrpt_from, qc->tlsrpt_org);
	else
		fprintf(f, "TLS reports: off\n");
	for (i = 0; i < qc->nroutes; i++) {
		r = &qc->routes[i];
		if (r->line)
			fprintf(f, "route %zu (line %u):", i + 1, r->line);
		else
			fprintf(f, "route %zu (built in):", i + 1);
		for (j = 0; j < r->ndomains; j++)
			fprintf(f, " %s", r->domains[j]);
		if (r->local)
			fprintf(f, " local=%s", r->local);
		if (r->sender)
			fprintf(f, " sender=%s", r->sender);
		if (r->login)
			fprintf(f, " login=%s", r->login);
		if (r->catchall)
			fprintf(f, " catchall");
		fprintf(f, " -> %s", queueconf_action_name(r->action));
		switch (r->action) {
		case ROUTE_MAILDIR:
			fprintf(f, " %s%s", r->path, r->create ?
			    " (created as needed)" : "");
			break;
		case ROUTE_PIPE:
			for (j = 0; j < r->argc; j++)
				fprintf(f, " %s", r->argv[j]);
			fprintf(f, " (as %s, %u s)", r->user.name, r->timeout);
			break;
		case ROUTE_RELAY:
			fprintf(f, " %s tls=%s", r->host ? r->host : "by MX",
			    route_tls_name(r));
			if (r->tls_cafile != NULL)
				fprintf(f, " tls_cafile=%s", r->tls_cafile);
			if (r->tls_pin != NULL)
				fprintf(f, " tls_pin=%s", r->tls_pin);
			if (r->auth != NULL)
				fprintf(f, " auth=%s (from %s)", r->auth,
				    qc->relay_keys);
			break;
		case ROUTE_LMTP:
			fprintf(f, " %s", r->lmtp);
			break;
		}
		fprintf(f, "\n");
	}
	qc_tables_print(qc, f);
	for (i = 0; i < qc->naliases; i++) {
		fprintf(f, "alias %s ->", qc->aliases[i].name);
		for (j = 0; j < qc->aliases[i].nto; j++)
			fprintf(f, " %s", qc->aliases[i].to[j]);
		fprintf(f, "\n");
	}
}

void
queueconf_split_mailbox(const struct queue_conf *qc, const char *mailbox,
    char *local, size_t llen, char *domain, size_t dlen)
{
	const char *at = strrchr(mailbox, '@');
	size_t n;

	if (at == NULL) {
		str_lcpy(local, mailbox, llen);
		str_lcpy(domain, qc->hostname, dlen);
	} else {
		n = (size_t)(at - mailbox);
		if (n >= llen)
			n = llen - 1;
		memcpy(local, mailbox, n);
		local[n] = '\0';
		str_lcpy(domain, at + 1, dlen);
	}
	lower(local);
	lower(domain);
	n = strlen(domain);
	if (n > 0 && domain[n - 1] == '.')
		domain[n - 1] = '\0';
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
		lower(s);
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

	queueconf_split_mailbox(qc, mailbox, local, sizeof(local), domain,
	    sizeof(domain));
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

static const char *
route_tls_name(const struct route *r)
{
	switch (r->tls) {
	case ROUTE_TLS_OPPORTUNISTIC:
		return "opportunistic";
	case ROUTE_TLS_REQUIRE:
		return r->tls_verify ? "require (certificate checked)" :
		    "require (certificate not checked)";
	case ROUTE_TLS_NONE:
		return "none";
	case ROUTE_TLS_DANE:
		return "dane";
	case ROUTE_TLS_MTA_STS:
		return "mta-sts";
	case ROUTE_TLS_AUTO:
		return "auto";
	}
	return "?";
}
