#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
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
#include "auth/sasl.h"
#include "auth/senders.h"
#include "queue/queueconf.h"
#include "queue/recipients.h"
#include "delegate.h"
#include "dkimconf.h"
#include "milterconf.h"
#include "policy.h"

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
	"client_cert_trusted", "handshake_timeout", "listen", NULL
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
static const char *const limit_keys[] = {
	"message_size", "recipients", "sessions", "sessions_per_ip", "errors",
	"command_timeout", "data_timeout", "shutdown_timeout", "line_length",
	"header_size", "dump_size", "connections_per_minute",
	"messages_per_minute", "tarpit_after", "tarpit_delay",
	"sessions_per_net", "data_deadline", "data_rate", "data_rate_window",
	"dump_max_age", "dump_max_total", "user_messages", "user_recipients",
	"user_window", NULL
};
static const char *const grey_keys[] = {
	"enabled", "delay", "retry", "expire", "entries", "file", NULL
};
static const char *const rule_keys[] = {
	"helo", "sender", "rcpt", "header", "action", "code", "status",
	"text", "save", NULL
};

static pthread_mutex_t	 current_mu = PTHREAD_MUTEX_INITIALIZER;
static struct policy	*current;

static void	policy_defaults(struct policy *);
static int	default_hostname(char *, size_t);
static int	check_keys(const config_setting_t *, const char *const *,
		    const char *, char *, size_t);
static int	get_uint(const config_setting_t *, const char *, unsigned int,
		    unsigned int, unsigned int *, const char *, char *, size_t);
static int	get_string(const config_setting_t *, const char *,
		    const char **, const char *, char *, size_t);
static int	get_bool(const config_setting_t *, const char *, int *,
		    const char *, char *, size_t);
static int	seterr(char *, size_t, const char *, const config_setting_t *,
		    const char *, ...) __attribute__((format(printf, 5, 6)));
static void	policy_free(struct policy *);
static void	print_policy_modules(const struct policy *, FILE *);

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

/* The host's fully-qualified name; the short name if that is all there is. */
static int
default_hostname(char *buf, size_t len)
{
	struct addrinfo hints, *res = NULL;
	char host[256];

	if (gethostname(host, sizeof(host)) == -1)
		return -1;
	host[sizeof(host) - 1] = '\0';
	if (strchr(host, '.') == NULL) {
		memset(&hints, 0, sizeof(hints));
		hints.ai_flags = AI_CANONNAME;
		hints.ai_socktype = SOCK_STREAM;
		if (getaddrinfo(host, NULL, &hints, &res) == 0) {
			if (res->ai_canonname != NULL &&
			    strchr(res->ai_canonname, '.') != NULL)
				str_lcpy(host, res->ai_canonname, sizeof(host));
			freeaddrinfo(res);
		}
	}
	str_lcpy(buf, host, len);
	return 0;
}

/*
 * The line a setting is on.  libconfig gives the line it had read up to
 * when it finished a list element, which for the last element of a list
 * spread over lines is the line of the closing bracket: look back for the
 * element's string itself.
 */
static unsigned int
source_line(const char *file, const config_setting_t *s)
{
	unsigned int line = config_setting_source_line(s), n = 0, found = 0;
	char buf[2048], want[1100];
	FILE *f;

	if (config_setting_name(s) != NULL ||
	    config_setting_type(s) != CONFIG_TYPE_STRING || line < 2 ||
	    (size_t)snprintf(want, sizeof(want), "\"%s\"",
	    config_setting_get_string(s)) >= sizeof(want) ||
	    (f = fopen(file, "r")) == NULL)
		return line;
	while (n < line && fgets(buf, sizeof(buf), f) != NULL) {
		n++;
		if (n + 3 >= line && strstr(buf, want) != NULL)
			found = n;
	}
	fclose(f);
	return found ? found : line;
}

static int
seterr(char *err, size_t errlen, const char *file,
    const config_setting_t *s, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (s != NULL)
		snprintf(err, errlen, "%s:%u: %s", file, source_line(file, s),
		    msg);
	else
		snprintf(err, errlen, "%s: %s", file, msg);
	return -1;
}

static int
check_keys(const config_setting_t *group, const char *const *known,
    const char *file, char *err, size_t errlen)
{
	int i, j, n = config_setting_length(group);

	for (i = 0; i < n; i++) {
		config_setting_t *c = config_setting_get_elem(group, (unsigned)i);
		const char *name = config_setting_name(c);

		for (j = 0; known[j] != NULL; j++)
			if (strcmp(known[j], name) == 0)
				break;
		if (known[j] == NULL)
			return seterr(err, errlen, file, c,
			    "unknown setting \"%s\"", name);
	}
	return 0;
}

static int
get_uint(const config_setting_t *g, const char *name, unsigned int min,
    unsigned int max, unsigned int *out, const char *file, char *err,
    size_t errlen)
{
	config_setting_t *s = config_setting_get_member(g, name);
	long long v;

	if (s == NULL)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_INT &&
	    config_setting_type(s) != CONFIG_TYPE_INT64)
		return seterr(err, errlen, file, s, "%s must be a whole number",
		    name);
	v = config_setting_get_int64(s);
	if (v < (long long)min || v > (long long)max)
		return seterr(err, errlen, file, s,
		    "%s must be between %u and %u", name, min, max);
	*out = (unsigned int)v;
	return 0;
}

static int
get_string(const config_setting_t *g, const char *name, const char **out,
    const char *file, char *err, size_t errlen)
{
	config_setting_t *s = config_setting_get_member(g, name);

	if (s == NULL)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return seterr(err, errlen, file, s, "%s must be a string", name);
	*out = config_setting_get_string(s);
	return 0;
}

static int
get_bool(const config_setting_t *g, const char *name, int *out,
    const char *file, char *err, size_t errlen)
{
	config_setting_t *s = config_setting_get_member(g, name);

	if (s == NULL)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		return seterr(err, errlen, file, s,
		    "%s must be true or false", name);
	*out = config_setting_get_bool(s);
	return 0;
}

static int
add_listen(struct policy *p, const char *addr, const char *file,
    const config_setting_t *s, char *err, size_t errlen)
{
	char host[256], port[32];

	if (p->nlisten >= POLICY_LISTEN_MAX)
		return seterr(err, errlen, file, s,
		    "more than %d listen addresses", POLICY_LISTEN_MAX);
	if (net_split_hostport(addr, host, sizeof(host), port,
	    sizeof(port)) == -1)
		return seterr(err, errlen, file, s,
		    "bad listen address \"%.100s\" (want addr:port, [v6]:port "
		    "or :port)", addr);
	if ((p->listen[p->nlisten] = strdup(addr)) == NULL)
		return seterr(err, errlen, file, s, "out of memory");
	p->nlisten++;
	return 0;
}


/* Appends one more element to a growable array, bounded.  0 or -1. */
static int
grow(void **arr, size_t *n, size_t size)
{
	void *na;

	if (*n >= POLICY_LIST_MAX)
		return -1;
	if ((na = realloc(*arr, (*n + 1) * size)) == NULL)
		return -1;
	*arr = na;
	memset((char *)na + *n * size, 0, size);
	(*n)++;
	return 0;
}

/* Calls fn for each string of a list (or a lone string). */
static int
each_string(config_setting_t *s, const char *name, const char *file,
    int (*fn)(struct policy *, const char *, const config_setting_t *,
    const char *, char *, size_t), struct policy *p, char *err, size_t errlen)
{
	int i;

	if (config_setting_type(s) == CONFIG_TYPE_STRING)
		return fn(p, config_setting_get_string(s), s, file, err, errlen);
	if (!config_setting_is_aggregate(s))
		return seterr(err, errlen, file, s,
		    "%s must be a string or a list of strings", name);
	for (i = 0; i < config_setting_length(s); i++) {
		config_setting_t *e = config_setting_get_elem(s, (unsigned)i);

		if (config_setting_type(e) != CONFIG_TYPE_STRING)
			return seterr(err, errlen, file, e,
			    "%s entries must be strings", name);
		if (fn(p, config_setting_get_string(e), e, file, err,
		    errlen) == -1)
			return -1;
	}
	return 0;
}

static int
add_ournet(struct policy *p, const char *v, const config_setting_t *s,
    const char *file, char *err, size_t errlen)
{
	const char *why;

	if (grow((void **)&p->ournets, &p->nournets, sizeof(struct cidr)) == -1)
		return seterr(err, errlen, file, s, "too many ournets");
	if (cidr_parse(v, &p->ournets[p->nournets - 1], &why) == -1)
		return seterr(err, errlen, file, s, "ournets \"%.100s\": %s",
		    v, why);
	return 0;
}

static int
add_block(struct policy *p, const char *v, const config_setting_t *s,
    const char *file, char *err, size_t errlen)
{
	const char *why;

	if (grow((void **)&p->block, &p->nblock, sizeof(struct cidr)) == -1)
		return seterr(err, errlen, file, s, "too many block entries");
	if (cidr_parse(v, &p->block[p->nblock - 1], &why) == -1)
		return seterr(err, errlen, file, s, "block \"%.100s\": %s", v,
		    why);
	return 0;
}

static int
add_ourdomain(struct policy *p, const char *v, const config_setting_t *s,
    const char *file, char *err, size_t errlen)
{
	char buf[POLICY_HOST_MAX + 3], why[512], *d;
	size_t n, i;

	if (table_is_ref(v)) {
		/* Virtual domains: the keys of a file or CDB table. */
		if (strncmp(v, "file:", 5) != 0 && strncmp(v, "cdb:", 4) != 0)
			return seterr(err, errlen, file, s, "ourdomains tables "
			    "are file: or cdb: tables");
		if (p->ourdomains_table != NULL)
			return seterr(err, errlen, file, s, "ourdomains names "
			    "one table at most");
		if ((p->ourdomains_table = qc_table_open(file, v, why,
		    sizeof(why))) == NULL)
			return seterr(err, errlen, file, s, "ourdomains: %s",
			    why);
		return 0;
	}
	if (str_lcpy(buf, v, sizeof(buf)) >= sizeof(buf))
		return seterr(err, errlen, file, s, "ourdomains entry too long");
	n = strlen(buf);
	/* A trailing dot names the same domain. */
	if (n > 1 && buf[n - 1] == '.')
		buf[--n] = '\0';
	for (i = 0; i < n; i++)
		buf[i] = (char)tolower((unsigned char)buf[i]);
	d = buf[0] == '*' && buf[1] == '.' ? buf + 2 : buf;
	if (!(d[0] == '[' && buf[n - 1] == ']') &&
	    !addr_valid_domain(d, strlen(d), 1))
		return seterr(err, errlen, file, s,
		    "ourdomains \"%.100s\" is not a domain or *.domain", v);
	if (grow((void **)&p->ourdomains, &p->nourdomains, sizeof(char *)) == -1 ||
	    (p->ourdomains[p->nourdomains - 1] = strdup(buf)) == NULL)
		return seterr(err, errlen, file, s, "too many ourdomains");
	return 0;
}

static const struct {
	const char		*name;
	enum access_action	 action;
} access_names[] = {
	{ "allow", ACCESS_ALLOW }, { "accept", ACCESS_ALLOW },
	{ "block", ACCESS_BLOCK }, { "deny", ACCESS_DENY },
	{ "dial", ACCESS_DIAL }, { "delay", ACCESS_DELAY },
	{ NULL, ACCESS_NONE }
};

const char *
access_action_name(enum access_action a)
{
	int i;

	for (i = 0; access_names[i].name != NULL; i++)
		if (access_names[i].action == a)
			return access_names[i].name;
	return "none";
}

enum access_action
access_action_parse(const char *name)
{
	int i;

	for (i = 0; access_names[i].name != NULL; i++)
		if (strcasecmp(access_names[i].name, name) == 0)
			return access_names[i].action;
	return ACCESS_NONE;
}

/*
 * One access rule: "VERB PATTERN...".  A pattern is an address or CIDR
 * (client rules) or a sender pattern in Plan 9's bang form, "domain!user",
 * or as "user@domain"; "*" matches anything, "*.dom" the domains below
 * dom (not dom itself), "user*" a prefix.
 */
static int
add_access(struct policy *p, const char *line, const config_setting_t *s,
    const char *file, char *err, size_t errlen)
{
	char buf[1024], *verb, *pat, *save = NULL, *bang, *at;
	enum access_action act = ACCESS_NONE;
	struct access_rule *r;
	const char *why;
	int i, npat = 0;

	if (str_lcpy(buf, line, sizeof(buf)) >= sizeof(buf))
		return seterr(err, errlen, file, s, "access line too long");
	for (i = 0; buf[i] != '\0'; i++)
		buf[i] = (char)tolower((unsigned char)buf[i]);
	if ((verb = strtok_r(buf, " \t,", &save)) == NULL)
		return seterr(err, errlen, file, s, "empty access rule");
	for (i = 0; access_names[i].name != NULL; i++)
		if (strcmp(verb, access_names[i].name) == 0)
			act = access_names[i].action;
	if (act == ACCESS_NONE)
		return seterr(err, errlen, file, s,
		    "access verb \"%.40s\" is not allow, block, deny, dial or "
		    "delay", verb);
	while ((pat = strtok_r(NULL, " \t,", &save)) != NULL) {
		/* Plan 9 refuses these as too sweeping to mean anything. */
		if (strcmp(pat, "*") == 0 || strcmp(pat, "!") == 0 ||
		    strcmp(pat, "*!") == 0 || strcmp(pat, "!*") == 0 ||
		    strcmp(pat, "*!*") == 0)
			return seterr(err, errlen, file, s,
			    "access pattern \"%s\" would match everyone", pat);
		if (grow((void **)&p->access, &p->naccess,
		    sizeof(struct access_rule)) == -1)
			return seterr(err, errlen, file, s, "too many access rules");
		r = &p->access[p->naccess - 1];
		r->action = act;
		npat++;
		if ((bang = strrchr(pat, '!')) != NULL) {
			*bang = '\0';
			r->domain = strdup(pat);
			r->user = strdup(bang + 1);
		} else if ((at = strrchr(pat, '@')) != NULL) {
			*at = '\0';
			r->domain = strdup(at + 1);
			r->user = strdup(pat);
		} else {
			r->is_ip = 1;
			if (cidr_parse(pat, &r->net, &why) == -1)
				return seterr(err, errlen, file, s,
				    "access pattern \"%.100s\": %s (want an "
				    "address, a CIDR, domain!user or user@domain)",
				    pat, why);
			continue;
		}
		if (r->domain == NULL || r->user == NULL)
			return seterr(err, errlen, file, s, "out of memory");
		if (r->domain[0] == '\0' || r->user[0] == '\0')
			return seterr(err, errlen, file, s,
			    "access pattern needs a domain and a user part");
	}
	if (npat == 0)
		return seterr(err, errlen, file, s, "access rule without a pattern");
	return 0;
}

/* The access rules from a file: one rule a line, '#' comments. */
static int
load_access_file(struct policy *p, const char *path,
    const config_setting_t *s, const char *file, char *err, size_t errlen)
{
	char line[1100], where[PATH_MAX + 32];
	FILE *f;
	int lineno = 0, r = 0;
	size_t n;

	if ((f = fopen(path, "r")) == NULL)
		return seterr(err, errlen, file, s, "access_file %.200s: %s",
		    path, strerror(errno));
	while (r == 0 && fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		n = strlen(line);
		if (n == sizeof(line) - 1 && line[n - 1] != '\n') {
			snprintf(err, errlen, "%s:%d: line too long", path, lineno);
			r = -1;
			break;
		}
		line[strcspn(line, "#\r\n")] = '\0';
		if (line[strspn(line, " \t")] == '\0')
			continue;
		snprintf(where, sizeof(where), "%s:%d", path, lineno);
		if (add_access(p, line, NULL, where, err, errlen) == -1)
			r = -1;
	}
	fclose(f);
	return r;
}

static const struct {
	const char	*name;
	int		 action;
	int		 code;
	const char	*status;
	const char	*text;
} rule_actions[] = {
	{ "reject", VERDICT_REJECT, 550, "5.7.1", "Message refused by policy" },
	{ "defer", VERDICT_DEFER, 451, "4.7.1", "Try again later" },
	{ "accept", VERDICT_ACCEPT, 250, "2.0.0", "Ok" },
	{ "drop", VERDICT_DROP, 0, "", "" },
	{ "tag", VERDICT_TAG, 0, "", NULL },
	{ NULL, 0, 0, NULL, NULL }
};

/* rules = ( { sender = "regex"; action = "reject"; ... }, ... ); */
static int
add_rule(struct policy *p, config_setting_t *g, const char *file, char *err,
    size_t errlen)
{
	static const char *targets[] = { "helo", "sender", "rcpt", "header" };
	struct rule *r;
	const char *pat = NULL, *act = "reject", *text = NULL, *status = NULL;
	config_setting_t *s;
	PCRE2_SIZE eoff;
	int i, t = -1, ecode, code = 0, save = 0;
	char msg[256];

	if (!config_setting_is_group(g))
		return seterr(err, errlen, file, g,
		    "rules entries must be groups { ... }");
	if (check_keys(g, rule_keys, file, err, errlen) == -1)
		return -1;
	for (i = 0; i < 4; i++) {
		if ((s = config_setting_get_member(g, targets[i])) == NULL)
			continue;
		if (t != -1)
			return seterr(err, errlen, file, s,
			    "a rule matches one of helo, sender, rcpt, header");
		if (config_setting_type(s) != CONFIG_TYPE_STRING)
			return seterr(err, errlen, file, s,
			    "%s must be a regular expression string", targets[i]);
		t = i;
		pat = config_setting_get_string(s);
	}
	if (t == -1)
		return seterr(err, errlen, file, g,
		    "a rule needs helo, sender, rcpt or header");
	if (get_string(g, "action", &act, file, err, errlen) == -1 ||
	    get_string(g, "text", &text, file, err, errlen) == -1 ||
	    get_string(g, "status", &status, file, err, errlen) == -1 ||
	    get_bool(g, "save", &save, file, err, errlen) == -1)
		return -1;
	for (i = 0; rule_actions[i].name != NULL; i++)
		if (strcmp(rule_actions[i].name, act) == 0)
			break;
	if (rule_actions[i].name == NULL)
		return seterr(err, errlen, file, config_setting_get_member(g,
		    "action"), "action \"%.40s\" is not reject, defer, accept, "
		    "drop or tag", act);
	if (grow((void **)&p->rules, &p->nrules, sizeof(struct rule)) == -1)
		return seterr(err, errlen, file, g, "too many rules");
	r = &p->rules[p->nrules - 1];
	r->target = (enum rule_target)t;
	r->line = (int)config_setting_source_line(g);
	r->action = rule_actions[i].action;
	code = rule_actions[i].code;
	if ((s = config_setting_get_member(g, "code")) != NULL) {
		unsigned int u;

		if (get_uint(g, "code", 400, 599, &u, file, err, errlen) == -1)
			return -1;
		code = (int)u;
		if ((r->action == VERDICT_REJECT && code < 500) ||
		    (r->action == VERDICT_DEFER && code >= 500))
			return seterr(err, errlen, file, s,
			    "code %d does not fit action %s", code, act);
	}
	r->code = code;
	str_lcpy(r->status, status ? status : rule_actions[i].status,
	    sizeof(r->status));
	if (status != NULL && (strlen(status) < 5 || status[0] != '0' + code / 100 ||
	    status[1] != '.'))
		return seterr(err, errlen, file, g,
		    "status \"%.20s\" does not fit code %d", status, code);
	if (r->action == VERDICT_TAG) {
		if (t != RULE_HEADER)
			return seterr(err, errlen, file, g,
			    "only header rules can tag");
		if (text == NULL || strchr(text, ':') == NULL ||
		    strpbrk(text, "\r\n") != NULL)
			return seterr(err, errlen, file, g,
			    "a tag rule needs text = \"Header-Name: value\"");
	} else if (text == NULL)
		text = rule_actions[i].text;
	if (text != NULL && strpbrk(text, "\r\n") != NULL)
		return seterr(err, errlen, file, g, "text must be one line");
	(void)save;
	r->action |= save ? 0x100 : 0;
	if ((r->text = strdup(text ? text : "")) == NULL ||
	    (r->pattern = strdup(pat)) == NULL)
		return seterr(err, errlen, file, g, "out of memory");
	/* Case-insensitive: addresses, names and header fields mostly are. */
	r->re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED,
	    PCRE2_CASELESS | PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &ecode, &eoff,
	    NULL);
	if (r->re == NULL) {
		pcre2_get_error_message(ecode, (PCRE2_UCHAR *)msg, sizeof(msg));
		return seterr(err, errlen, file, config_setting_get_member(g,
		    targets[t]), "bad regular expression at offset %zu: %s",
		    (size_t)eoff, msg);
	}
	return 0;
}


/* A path setting: a non-empty string that fits. */
static int
get_path(const config_setting_t *g, const char *name, char *dst, size_t len,
    const char *file, char *err, size_t errlen)
{
	const char *v = NULL;

	if (get_string(g, name, &v, file, err, errlen) == -1)
		return -1;
	if (v == NULL)
		return 0;
	if (*v == '\0' || fs_conf_path(file, v, dst, len) == -1)
		return seterr(err, errlen, file, config_setting_get_member(g, name),
		    "%s must be a path (%s)", name, *v ? strerror(errno) :
		    "empty");
	return 0;
}

static int
add_tls_listen(struct policy *p, const char *addr, const config_setting_t *s,
    const char *file, char *err, size_t errlen)
{
	char host[256], port[32];

	if (p->ntls_listen >= POLICY_LISTEN_MAX)
		return seterr(err, errlen, file, s,
		    "more than %d tls.listen addresses", POLICY_LISTEN_MAX);
	if (net_split_hostport(addr, host, sizeof(host), port,
	    sizeof(port)) == -1)
		return seterr(err, errlen, file, s,
		    "bad listen address \"%.100s\" (want addr:port, [v6]:port "
		    "or :port)", addr);
	if ((p->tls_listen[p->ntls_listen] = strdup(addr)) == NULL)
		return seterr(err, errlen, file, s, "out of memory");
	p->ntls_listen++;
	return 0;
}

/* tls { ... } */
static int
load_tls(struct policy *p, config_setting_t *g, const char *path, char *err,
    size_t errlen)
{
	config_setting_t *s;
	const char *v = NULL;

	if (!config_setting_is_group(g))
		return seterr(err, errlen, path, g, "tls must be a group { ... }");
	if (check_keys(g, tls_keys, path, err, errlen) == -1 ||
	    get_path(g, "certificate", p->tls_certificate,
	    sizeof(p->tls_certificate), path, err, errlen) == -1 ||
	    get_path(g, "key", p->tls_key, sizeof(p->tls_key), path, err,
	    errlen) == -1 ||
	    get_path(g, "chain", p->tls_chain, sizeof(p->tls_chain), path, err,
	    errlen) == -1 ||
	    get_path(g, "client_ca", p->tls_client_ca, sizeof(p->tls_client_ca),
	    path, err, errlen) == -1 ||
	    get_bool(g, "tickets", &p->tls_tickets, path, err, errlen) == -1 ||
	    get_bool(g, "client_cert_trusted", &p->tls_client_cert_trusted,
	    path, err, errlen) == -1 ||
	    get_uint(g, "handshake_timeout", 1, 600, &p->tls_handshake_timeout,
	    path, err, errlen) == -1 ||
	    get_string(g, "priority", &v, path, err, errlen) == -1)
		return -1;
	if (v != NULL && str_lcpy(p->tls_priority, v, sizeof(p->tls_priority)) >=
	    sizeof(p->tls_priority))
		return seterr(err, errlen, path, g, "tls.priority is too long");
	if ((p->tls_certificate[0] != '\0') != (p->tls_key[0] != '\0'))
		return seterr(err, errlen, path, g,
		    "tls needs both certificate and key");
	if ((s = config_setting_get_member(g, "listen")) != NULL) {
		if (each_string(s, "tls.listen", path, add_tls_listen, p, err,
		    errlen) == -1)
			return -1;
		if (p->tls_certificate[0] == '\0')
			return seterr(err, errlen, path, s,
			    "tls.listen needs tls.certificate and tls.key");
	}
	return 0;
}

/* auth.backend: "file" (auth.secrets) or "dovecot" (its auth socket). */
static int
load_auth_backend(struct policy *p, config_setting_t *g, const char *path,
    char *err, size_t errlen)
{
	const char *v = NULL;

	if (get_string(g, "backend", &v, path, err, errlen) == -1 ||
	    get_path(g, "dovecot_socket", p->auth_dovecot,
	    sizeof(p->auth_dovecot), path, err, errlen) == -1)
		return -1;
	if (v == NULL || strcmp(v, "file") == 0) {
		if (p->auth_dovecot[0] != '\0')
			return seterr(err, errlen, path,
			    config_setting_get_member(g, "dovecot_socket"),
			    "auth.dovecot_socket needs auth.backend = "
			    "\"dovecot\"");
		return 0;
	}
	if (strcmp(v, "dovecot") != 0)
		return seterr(err, errlen, path,
		    config_setting_get_member(g, "backend"),
		    "auth.backend must be \"file\" or \"dovecot\"");
	if (p->auth_secrets[0] != '\0')
		return seterr(err, errlen, path, g, "auth.secrets and "
		    "auth.backend = \"dovecot\" exclude each other");
	if (p->auth_dovecot[0] == '\0')
		str_lcpy(p->auth_dovecot, DOVECOT_DEF_SOCKET,
		    sizeof(p->auth_dovecot));
	return 0;
}

/* auth { ... } */
static int
load_auth(struct policy *p, config_setting_t *g, const char *path, char *err,
    size_t errlen)
{
	config_setting_t *s, *t, *e;
	struct throttle_conf *tc = &p->auth_throttle;
	char msg[256];
	unsigned int bit;
	int i, j;

	if (!config_setting_is_group(g))
		return seterr(err, errlen, path, g, "auth must be a group { ... }");
	if (check_keys(g, auth_keys, path, err, errlen) == -1 ||
	    get_path(g, "secrets", p->auth_secrets, sizeof(p->auth_secrets),
	    path, err, errlen) == -1 ||
	    get_bool(g, "required", &p->auth_required, path, err, errlen) == -1 ||
	    get_bool(g, "cleartext", &p->auth_cleartext, path, err,
	    errlen) == -1 || load_auth_backend(p, g, path, err, errlen) == -1)
		return -1;
	if ((s = config_setting_get_member(g, "mechanisms")) != NULL) {
		if (!config_setting_is_aggregate(s))
			return seterr(err, errlen, path, s,
			    "auth.mechanisms must be a list of names");
		p->auth_mechs = 0;
		for (i = 0; i < config_setting_length(s); i++) {
			e = config_setting_get_elem(s, (unsigned)i);
			if (config_setting_type(e) != CONFIG_TYPE_STRING ||
			    (bit = sasl_mech_bit(config_setting_get_string(e))) == 0)
				return seterr(err, errlen, path, e,
				    "auth.mechanisms: PLAIN, LOGIN or CRAM-MD5");
			p->auth_mechs |= bit;
		}
		if (p->auth_mechs == 0)
			return seterr(err, errlen, path, s,
			    "auth.mechanisms: name at least one mechanism");
	}
	if ((s = config_setting_get_member(g, "senders")) != NULL &&
	    config_setting_type(s) == CONFIG_TYPE_STRING) {
		/* A table: login -> sender patterns. */
		struct table *tb;

		if ((tb = qc_table_open(path, config_setting_get_string(s),
		    msg, sizeof(msg))) == NULL)
			return seterr(err, errlen, path, s, "auth.senders: %s",
			    msg);
		if ((p->auth_senders = senders_new()) == NULL) {
			table_free(&tb);
			return seterr(err, errlen, path, s, "out of memory");
		}
		senders_use_table(p->auth_senders, tb);
	} else if (s != NULL) {
		if (!config_setting_is_list(s))
			return seterr(err, errlen, path, s,
			    "auth.senders must be a list ( { login = ...; "
			    "senders = [ ... ]; }, ... )");
		if ((p->auth_senders = senders_new()) == NULL)
			return seterr(err, errlen, path, s, "out of memory");
		for (i = 0; i < config_setting_length(s); i++) {
			const char *login = NULL;

			e = config_setting_get_elem(s, (unsigned)i);
			if (!config_setting_is_group(e) ||
			    get_string(e, "login", &login, path, err, errlen) == -1)
				return seterr(err, errlen, path, e,
				    "auth.senders entries are { login = \"user\"; "
				    "senders = [ ... ]; }");
			t = config_setting_get_member(e, "senders");
			if (login == NULL || t == NULL ||
			    !config_setting_is_aggregate(t))
				return seterr(err, errlen, path, e,
				    "auth.senders entries need login and senders");
			for (j = 0; j < config_setting_length(t); j++) {
				config_setting_t *pe =
				    config_setting_get_elem(t, (unsigned)j);

				if (config_setting_type(pe) != CONFIG_TYPE_STRING ||
				    senders_add(p->auth_senders, login,
				    config_setting_get_string(pe), msg,
				    sizeof(msg)) == -1)
					return seterr(err, errlen, path, pe,
					    "auth.senders: %s",
					    config_setting_type(pe) ==
					    CONFIG_TYPE_STRING ? msg :
					    "patterns are strings");
			}
		}
		if (senders_finish(p->auth_senders) == -1)
			return seterr(err, errlen, path, s, "auth.senders: out of memory");
	}
	if ((t = config_setting_get_member(g, "throttle")) != NULL) {
		if (!config_setting_is_group(t))
			return seterr(err, errlen, path, t,
			    "auth.throttle must be a group { ... }");
		if (check_keys(t, throttle_keys, path, err, errlen) == -1 ||
		    get_uint(t, "failures", 0, 1000000, &tc->max_failures, path,
		    err, errlen) == -1 ||
		    get_uint(t, "window", 1, 86400 * 30, &tc->window, path, err,
		    errlen) == -1 ||
		    get_uint(t, "block", 1, 86400 * 30, &tc->block, path, err,
		    errlen) == -1 ||
		    get_uint(t, "delay", 0, 60000, &tc->delay_ms, path, err,
		    errlen) == -1 ||
		    get_uint(t, "max_delay", 0, 60000, &tc->max_delay_ms, path,
		    err, errlen) == -1 ||
		    get_uint(t, "global_failures", 0, 100000000,
		    &tc->global_failures, path, err, errlen) == -1 ||
		    get_uint(t, "global_window", 1, 86400, &tc->global_window,
		    path, err, errlen) == -1 ||
		    get_uint(t, "global_block", 1, 86400, &tc->global_block, path,
		    err, errlen) == -1 ||
		    get_uint(t, "table_size", 16, 1000000, &tc->table_size, path,
		    err, errlen) == -1 ||
		    get_path(t, "file", p->auth_throttle_file,
		    sizeof(p->auth_throttle_file), path, err, errlen) == -1)
			return -1;
		if (throttle_conf_check(tc, msg, sizeof(msg)) == -1)
			return seterr(err, errlen, path, t, "auth.throttle: %s", msg);
	}
	return 0;
}

/* Everything beyond the basic settings: the policy modules' keys. */
static int
load_policy_keys(struct policy *p, config_setting_t *root, const char *path,
    char *err, size_t errlen)
{
	config_setting_t *s, *g;
	char afile[PATH_MAX] = "";
	int i, have_ournets = 0;

	if (get_bool(root, "norelay", &p->norelay, path, err, errlen) == -1 ||
	    get_bool(root, "verifysenderdom", &p->verifysenderdom, path, err,
	    errlen) == -1 ||
	    get_bool(root, "saveblockedmsg", &p->saveblockedmsg, path, err,
	    errlen) == -1 ||
	    get_bool(root, "helo_checks", &p->helo_checks, path, err,
	    errlen) == -1)
		return -1;
	if (get_path(root, "dump", p->dump, sizeof(p->dump), path, err,
	    errlen) == -1)
		return -1;
	if ((s = config_setting_get_member(root, "ournets")) != NULL) {
		have_ournets = 1;
		free(p->ournets);
		p->ournets = NULL;
		p->nournets = 0;
		if (each_string(s, "ournets", path, add_ournet, p, err,
		    errlen) == -1)
			return -1;
	}
	(void)have_ournets;
	if ((s = config_setting_get_member(root, "ourdomains")) != NULL &&
	    each_string(s, "ourdomains", path, add_ourdomain, p, err,
	    errlen) == -1)
		return -1;
	if ((s = config_setting_get_member(root, "block")) != NULL &&
	    each_string(s, "block", path, add_block, p, err, errlen) == -1)
		return -1;
	if ((s = config_setting_get_member(root, "access")) != NULL &&
	    each_string(s, "access", path, add_access, p, err, errlen) == -1)
		return -1;
	if (get_path(root, "access_file", afile, sizeof(afile), path, err,
	    errlen) == -1)
		return -1;
	if (afile[0] != '\0' && load_access_file(p, afile,
	    config_setting_get_member(root, "access_file"), path, err,
	    errlen) == -1)
		return -1;
	if ((s = config_setting_get_member(root, "access_table")) != NULL) {
		char why[512];

		if (config_setting_type(s) != CONFIG_TYPE_STRING)
			return seterr(err, errlen, path, s, "access_table must "
			    "be a table (\"file:/path\", \"cdb:/path\", "
			    "\"socketmap:...\")");
		if ((p->access_table = qc_table_open(path,
		    config_setting_get_string(s), why, sizeof(why))) == NULL)
			return seterr(err, errlen, path, s, "access_table: %s",
			    why);
	}
	if ((g = config_setting_get_member(root, "greylist")) != NULL) {
		if (!config_setting_is_group(g))
			return seterr(err, errlen, path, g,
			    "greylist must be a group { ... }");
		if (check_keys(g, grey_keys, path, err, errlen) == -1)
			return -1;
		p->greylist = 1;
		if (get_bool(g, "enabled", &p->greylist, path, err, errlen) == -1 ||
		    get_uint(g, "delay", 0, 86400, &p->grey_delay, path, err,
		    errlen) == -1 ||
		    get_uint(g, "retry", 60, 30 * 86400, &p->grey_retry, path,
		    err, errlen) == -1 ||
		    get_uint(g, "expire", 3600, 365 * 86400, &p->grey_expire,
		    path, err, errlen) == -1 ||
		    get_uint(g, "entries", 100, 10000000, &p->grey_entries, path,
		    err, errlen) == -1 ||
		    get_path(g, "file", p->grey_file, sizeof(p->grey_file), path,
		    err, errlen) == -1)
			return -1;
	}
	if ((g = config_setting_get_member(root, "tls")) != NULL &&
	    load_tls(p, g, path, err, errlen) == -1)
		return -1;
	if (p->front.nproxy_tls_listen > 0 && p->tls_certificate[0] == '\0')
		return seterr(err, errlen, path, config_setting_get_member(root,
		    "proxy"), "proxy.tls_listen needs tls.certificate and "
		    "tls.key");
	if ((g = config_setting_get_member(root, "auth")) != NULL &&
	    load_auth(p, g, path, err, errlen) == -1)
		return -1;
	if ((s = config_setting_get_member(root, "rules")) != NULL) {
		if (!config_setting_is_list(s) && !config_setting_is_array(s))
			return seterr(err, errlen, path, s,
			    "rules must be a list ( { ... }, ... )");
		for (i = 0; i < config_setting_length(s); i++)
			if (add_rule(p, config_setting_get_elem(s, (unsigned)i),
			    path, err, errlen) == -1)
				return -1;
	}
	return 0;
}

/*
 * tls.listen and the proxy listeners join the listener table after listen
 * (or -l), and the table is checked against the rest of the config.
 */
static int
add_other_listeners(struct policy *p, const char *path, char *err,
    size_t errlen)
{
	struct listen_defaults d;
	int i, r = 0;

	for (i = 0; r == 0 && i < p->ntls_listen; i++)
		r = listenconf_add(&p->listeners, p->tls_listen[i],
		    LTLS_IMPLICIT, 0, "tls.listen", path, 0, err, errlen);
	for (i = 0; r == 0 && i < p->front.nproxy_listen; i++)
		r = listenconf_add(&p->listeners, p->front.proxy_listen[i],
		    LTLS_STARTTLS, 1, "proxy.listen", path, 0, err, errlen);
	for (i = 0; r == 0 && i < p->front.nproxy_tls_listen; i++)
		r = listenconf_add(&p->listeners, p->front.proxy_tls_listen[i],
		    LTLS_IMPLICIT, 1, "proxy.tls_listen", path, 0, err,
		    errlen);
	if (r == -1)
		return -1;
	policy_listen_defaults(p, &d);
	return listenconf_check(&p->listeners, &d, path, err, errlen);
}

struct policy *
policy_load(const char *path, int missing_ok,
    const struct policy_overrides *ov, char *err, size_t errlen)
{
	struct policy *p;
	config_t cf;
	config_setting_t *root, *g, *s;
	const char *v;
	unsigned int u;
	int have_file = 1, i;

	if ((p = malloc(sizeof(*p))) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	policy_defaults(p);
	str_lcpy(p->conffile, path, sizeof(p->conffile));
	config_init(&cf);

	if (access(path, F_OK) == -1 && errno == ENOENT && missing_ok)
		have_file = 0;
	else if (config_read_file(&cf, path) != CONFIG_TRUE) {
		if (config_error_type(&cf) == CONFIG_ERR_FILE_IO)
			snprintf(err, errlen, "%s: cannot read: %s", path,
			    strerror(errno ? errno : EIO));
		else
			snprintf(err, errlen, "%s:%d: %s",
			    config_error_file(&cf) ? config_error_file(&cf) : path,
			    config_error_line(&cf), config_error_text(&cf));
		goto fail;
	}

	if (have_file) {
		root = config_root_setting(&cf);
		if (check_keys(root, top_keys, path, err, errlen) == -1)
			goto fail;
		v = NULL;
		if (get_string(root, "defaultdomain", &v, path, err, errlen) == -1 ||
		    get_string(root, "hostname", &v, path, err, errlen) == -1)
			goto fail;
		if (v != NULL) {
			s = config_setting_get_member(root, "hostname");
			if (s == NULL)
				s = config_setting_get_member(root, "defaultdomain");
			if (!addr_valid_domain(v, strlen(v), 0)) {
				seterr(err, errlen, path, s,
				    "hostname \"%.100s\" is not a valid domain", v);
				goto fail;
			}
			str_lcpy(p->hostname, v, sizeof(p->hostname));
		}
		if (get_path(root, "spool", p->spool, sizeof(p->spool), path,
		    err, errlen) == -1)
			goto fail;
		v = NULL;
		if (get_string(root, "spool_durability", &v, path, err,
		    errlen) == -1)
			goto fail;
		if (v != NULL && strcmp(v, "files") == 0)
			p->spool_files = 1;
		else if (v != NULL && strcmp(v, "journal") != 0) {
			seterr(err, errlen, path, config_setting_get_member(root,
			    "spool_durability"), "spool_durability must be "
			    "\"journal\" or \"files\"");
			goto fail;
		}
		if (get_bool(root, "reverse_lookup", &p->reverse_lookup, path,
		    err, errlen) == -1)
			goto fail;
		v = NULL;
		if (get_string(root, "user", &v, path, err, errlen) == -1)
			goto fail;
		if (v != NULL && (v[0] == '\0' ||
		    str_lcpy(p->user, v, sizeof(p->user)) >= sizeof(p->user))) {
			seterr(err, errlen, path, config_setting_get_member(root,
			    "user"), "user must be a user name");
			goto fail;
		}
		v = NULL;
		if (get_string(root, "log", &v, path, err, errlen) == -1)
			goto fail;
		if (v != NULL && strcmp(v, "stderr") == 0)
			p->log_stderr = 1;
		else if (v != NULL && strcmp(v, "syslog") != 0) {
			seterr(err, errlen, path, config_setting_get_member(root,
			    "log"), "log must be \"syslog\" or \"stderr\"");
			goto fail;
		}
		v = NULL;
		if (get_string(root, "bare_newline", &v, path, err,
		    errlen) == -1)
			goto fail;
		if (v != NULL && strcmp(v, "reject") == 0)
			p->bare_newline = BARE_NEWLINE_REJECT;
		else if (v != NULL && strcmp(v, "normalize") != 0) {
			seterr(err, errlen, path,
			    config_setting_get_member(root, "bare_newline"),
			    "bare_newline must be \"normalize\" or \"reject\"");
			goto fail;
		}
		if ((s = config_setting_get_member(root, "listen")) != NULL) {
			if (listenconf_load(&p->listeners, s, path, err,
			    errlen) == -1)
				goto fail;
			for (i = 0; i < p->listeners.n; i++)
				if (add_listen(p, p->listeners.l[i].address,
				    path, s, err, errlen) == -1)
					goto fail;
		}
		if (delegate_load(&p->delegate, root, path, err, errlen) == -1 ||
		    dkimconf_load(&p->dkim, root, path, err, errlen) == -1 ||
		    milterconf_load(&p->milters, root, path, err, errlen) == -1)
			goto fail;
		if (frontconf_load(&p->front, root, path, err, errlen) == -1)
			goto fail;
		if ((g = config_setting_get_member(root, "limits")) != NULL) {
			if (!config_setting_is_group(g)) {
				seterr(err, errlen, path, g,
				    "limits must be a group { ... }");
				goto fail;
			}
			if (check_keys(g, limit_keys, path, err, errlen) == -1)
				goto fail;
			u = (unsigned int)(p->message_size > 0xffffffffu ?
			    0xffffffffu : p->message_size);
			if (get_uint(g, "message_size", 0, 0x7fffffffu, &u, path,
			    err, errlen) == -1)
				goto fail;
			p->message_size = u;
			if (get_uint(g, "recipients", MIN_RECIPIENTS, 100000,
			    &p->recipients, path, err, errlen) == -1 ||
			    get_uint(g, "sessions", 1, 100000, &p->sessions,
			    path, err, errlen) == -1 ||
			    get_uint(g, "sessions_per_ip", 1, 100000,
			    &p->sessions_per_ip, path, err, errlen) == -1 ||
			    get_uint(g, "errors", 1, 1000, &p->errors, path, err,
			    errlen) == -1 ||
			    get_uint(g, "command_timeout", 1, 3600,
			    &p->command_timeout, path, err, errlen) == -1 ||
			    get_uint(g, "data_timeout", 1, 3600,
			    &p->data_timeout, path, err, errlen) == -1 ||
			    get_uint(g, "shutdown_timeout", 0, 3600,
			    &p->shutdown_timeout, path, err, errlen) == -1)
				goto fail;
			u = (unsigned int)p->line_length;
			if (get_uint(g, "line_length", 0, 1000000, &u, path, err,
			    errlen) == -1)
				goto fail;
			if (u != 0 && u < 998) {
				seterr(err, errlen, path,
				    config_setting_get_member(g, "line_length"),
				    "line_length must be 0 (any) or at least 998 "
				    "(RFC 5322 2.1.1)");
				goto fail;
			}
			p->line_length = u;
			u = (unsigned int)p->header_size;
			if (get_uint(g, "header_size", 1024, 64 * 1024 * 1024, &u,
			    path, err, errlen) == -1)
				goto fail;
			p->header_size = u;
			u = (unsigned int)p->dump_size;
			if (get_uint(g, "dump_size", 0, 0x7fffffffu, &u, path,
			    err, errlen) == -1)
				goto fail;
			p->dump_size = u;
			if (get_uint(g, "connections_per_minute", 0, 1000000,
			    &p->connections_per_minute, path, err, errlen) == -1 ||
			    get_uint(g, "messages_per_minute", 0, 1000000,
			    &p->messages_per_minute, path, err, errlen) == -1 ||
			    get_uint(g, "tarpit_after", 0, 1000, &p->tarpit_after,
			    path, err, errlen) == -1 ||
			    get_uint(g, "tarpit_delay", 0, 60000,
			    &p->tarpit_delay, path, err, errlen) == -1 ||
			    get_uint(g, "sessions_per_net", 1, 100000,
			    &p->sessions_per_net, path, err, errlen) == -1 ||
			    get_uint(g, "data_deadline", 1, 86400,
			    &p->data_deadline, path, err, errlen) == -1 ||
			    get_uint(g, "data_rate", 0, 100000000,
			    &p->data_rate, path, err, errlen) == -1 ||
			    get_uint(g, "data_rate_window", 1, 3600,
			    &p->data_rate_window, path, err, errlen) == -1 ||
			    get_uint(g, "dump_max_age", 0, 3650 * 86400,
			    &p->dump_max_age, path, err, errlen) == -1 ||
			    get_uint(g, "user_messages", 0, 100000000,
			    &p->user_messages, path, err, errlen) == -1 ||
			    get_uint(g, "user_recipients", 0, 100000000,
			    &p->user_recipients, path, err, errlen) == -1 ||
			    get_uint(g, "user_window", 1, 7 * 86400,
			    &p->user_window, path, err, errlen) == -1)
				goto fail;
			u = (unsigned int)p->dump_max_total;
			if (get_uint(g, "dump_max_total", 0, 0xffffffffu, &u,
			    path, err, errlen) == -1)
				goto fail;
			p->dump_max_total = u;
		}
		if (load_policy_keys(p, root, path, err, errlen) == -1)
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
			if (add_listen(p, ov->listen[i], "-l", NULL, err,
			    errlen) == -1 || listenconf_add(&p->listeners,
			    ov->listen[i], LTLS_STARTTLS, 0, "-l", "-l", 0, err,
			    errlen) == -1)
				goto fail;
	}
	if (ov != NULL) {
		p->norelay |= ov->norelay;
		p->verifysenderdom |= ov->verifysenderdom;
		p->saveblockedmsg |= ov->saveblockedmsg;
		p->auth_required |= ov->auth_required;
		p->auth_cleartext |= ov->auth_cleartext;
		for (i = 0; i < ov->nblock; i++)
			if (add_block(p, ov->block[i], NULL, "-k", err,
			    errlen) == -1)
				goto fail;
	}
	if (add_other_listeners(p, path, err, errlen) == -1)
		goto fail;
	if (p->hostname[0] == '\0' &&
	    default_hostname(p->hostname, sizeof(p->hostname)) == -1)
		str_lcpy(p->hostname, "localhost", sizeof(p->hostname));
	if (!have_file || config_lookup(&cf, "ournets") == NULL) {
		/* Safe default: only this host may relay. */
		if (add_ournet(p, "127.0.0.0/8", NULL, path, err, errlen) == -1 ||
		    add_ournet(p, "::1", NULL, path, err, errlen) == -1)
			goto fail;
	}
	if (p->nourdomains == 0 && p->ourdomains_table == NULL &&
	    add_ourdomain(p, p->hostname, NULL, path, err, errlen) == -1)
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

/* The policy part of smtpd -t. */
static void
print_policy_modules(const struct policy *p, FILE *f)
{
	static const char *targets[] = { "HELO name", "sender", "recipient",
	    "header line" };
	char buf[80];
	size_t i;

	if (p->nournets == 0)
		fprintf(f, "trusted networks (ournets): none\n");
	for (i = 0; i < p->nournets; i++) {
		cidr_format(&p->ournets[i], buf, sizeof(buf));
		fprintf(f, "trusted network (ournets): %s\n", buf);
	}
	for (i = 0; i < p->nourdomains; i++)
		fprintf(f, "our domain (ourdomains): %s\n", p->ourdomains[i]);
	if (p->ourdomains_table != NULL)
		fprintf(f, "our domains (ourdomains): the keys of %s\n",
		    table_ref(p->ourdomains_table));
	fprintf(f, "relaying: only from trusted networks or after AUTH\n");
	fprintf(f, "spoofed-domain tagging (norelay, -f): %s\n",
	    p->norelay ? "on" : "off");
	fprintf(f, "sender domain must exist (verifysenderdom, -r): %s\n",
	    p->verifysenderdom ? "on" : "off");
	fprintf(f, "refused messages saved (saveblockedmsg, -s): %s\n",
	    p->saveblockedmsg ? p->dump : "off");
	fprintf(f, "saved messages: %zu bytes of each, kept %u s, at most "
	    "%zu bytes in all (0: no bound)\n", p->dump_size, p->dump_max_age,
	    p->dump_max_total);
	for (i = 0; i < p->nblock; i++) {
		cidr_format(&p->block[i], buf, sizeof(buf));
		fprintf(f, "dropped at connect (block, -k): %s\n", buf);
	}
	for (i = 0; i < p->naccess; i++) {
		const struct access_rule *a = &p->access[i];

		if (a->is_ip) {
			cidr_format(&a->net, buf, sizeof(buf));
			fprintf(f, "access: %s client %s\n",
			    access_action_name(a->action), buf);
		} else
			fprintf(f, "access: %s sender %s!%s\n",
			    access_action_name(a->action), a->domain, a->user);
	}
	if (p->access_table != NULL)
		fprintf(f, "access: table %s\n", table_ref(p->access_table));
	if (p->tls_certificate[0] != '\0') {
		fprintf(f, "TLS: certificate %s, key %s%s%s\n",
		    p->tls_certificate, p->tls_key,
		    p->tls_chain[0] ? ", chain " : "", p->tls_chain);
		fprintf(f, "TLS priority: %s; session tickets %s; handshake "
		    "within %u s\n", p->tls_priority[0] ? p->tls_priority :
		    "default (TLS 1.2 and 1.3)", p->tls_tickets ? "on" : "off",
		    p->tls_handshake_timeout);
		if (p->tls_client_ca[0] != '\0')
			fprintf(f, "TLS client certificates checked against %s%s\n",
			    p->tls_client_ca, p->tls_client_cert_trusted ?
			    "; a verified one is trusted" : "");
	} else
		fprintf(f, "TLS: off (no certificate)\n");
	policy_print_auth(p, f);
	fprintf(f, "HELO checks: %s\n", p->helo_checks ? "on" : "off");
	if (p->greylist)
		fprintf(f, "greylisting: on, retry after %u s within %u s, "
		    "remembered %u s, at most %u entries, in %s\n",
		    p->grey_delay, p->grey_retry, p->grey_expire,
		    p->grey_entries, p->grey_file);
	else
		fprintf(f, "greylisting: off\n");
	for (i = 0; i < p->nrules; i++) {
		const struct rule *r = &p->rules[i];
		int act = r->action & 0xff;

		fprintf(f, "rule (line %d): %s matching /%s/: ", r->line,
		    targets[r->target], r->pattern);
		if (act == VERDICT_TAG)
			fprintf(f, "add \"%s\"\n", r->text);
		else if (act == VERDICT_DROP)
			fprintf(f, "drop the connection\n");
		else if (act == VERDICT_ACCEPT)
			fprintf(f, "accept, skip later rules\n");
		else
			fprintf(f, "%d %s %s%s\n", r->code, r->status, r->text,
			    r->action & 0x100 ? " (saved)" : "");
	}
}

void
policy_print(const struct policy *p, FILE *f)
{
	struct listen_defaults ld;

	if (p->have_file)
		fprintf(f, "config file: %s\n", p->conffile);
	else
		fprintf(f, "config file: none (%s does not exist); built-in "
		    "defaults\n", p->conffile);
	fprintf(f, "hostname: %s\n", p->hostname);
	policy_listen_defaults(p, &ld);
	listenconf_print(&p->listeners, &ld, f);
	frontconf_print(&p->front, f);
	delegate_print(p->delegate, f);
	dkimconf_print(p->dkim, f);
	milterconf_print(p->milters, f);
	fprintf(f, "spool: %s\n", p->spool);
	fprintf(f, "spool durability: %s\n", p->spool_files ?
	    "a file per message (files)" : "commit journal (journal)");
	fprintf(f, "user: %s (the SMTP front; queue runner: %s)\n", p->user,
	    p->queue->user[0] != '\0' ? p->queue->user : p->user);
	fprintf(f, "log: %s\n", p->log_stderr ? "standard error" :
	    "syslog (facility mail)");
	fprintf(f, "reverse DNS lookups of clients: %s\n",
	    p->reverse_lookup ? "on" : "off");
	fprintf(f, "lines ending in a bare LF: %s\n",
	    p->bare_newline == BARE_NEWLINE_REJECT ? "message refused (reject)" :
	    "taken as CRLF (normalize)");
	if (p->message_size)
		fprintf(f, "largest message: %zu bytes\n", p->message_size);
	else
		fprintf(f, "largest message: no limit\n");
	fprintf(f, "recipients per message: %u\n", p->recipients);
	fprintf(f, "sessions: %u at once, %u per client address (IPv6: per "
	    "/64), %u per client network (IPv4 /24, IPv6 /64)\n",
	    p->sessions, p->sessions_per_ip, p->sessions_per_net);
	fprintf(f, "errors before disconnect: %u\n", p->errors);
	fprintf(f, "timeouts: %u s per command, %u s for message data, "
	    "%u s to finish sessions at shutdown\n", p->command_timeout,
	    p->data_timeout, p->shutdown_timeout);
	fprintf(f, "deadlines: %u s for a whole command line, %u s for a "
	    "whole message transfer\n", p->command_timeout, p->data_deadline);
	if (p->data_rate)
		fprintf(f, "message data: at least %u bytes/s over each %u s\n",
		    p->data_rate, p->data_rate_window);
	else
		fprintf(f, "message data: no minimum rate\n");
	if (p->line_length)
		fprintf(f, "longest text line: %zu octets\n", p->line_length);
	else
		fprintf(f, "longest text line: any length accepted\n");
	fprintf(f, "header examined: up to %zu bytes\n", p->header_size);
	if (p->connections_per_minute)
		fprintf(f, "connections per client and minute: %u\n",
		    p->connections_per_minute);
	if (p->messages_per_minute)
		fprintf(f, "messages per client and minute: %u\n",
		    p->messages_per_minute);
	if (p->user_messages || p->user_recipients)
		fprintf(f, "per login (or trusted sender) and %u s: %u "
		    "messages, %u recipients (0: any)\n", p->user_window,
		    p->user_messages, p->user_recipients);
	if (p->tarpit_delay && p->tarpit_after)
		fprintf(f, "tarpit: %u ms more per error after %u errors\n",
		    p->tarpit_delay, p->tarpit_after);
	print_policy_modules(p, f);
	if (p->queue != NULL)
		queueconf_print(p->queue, f);
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

	if (p == NULL)
		return;
	*pp = NULL;
	if (__atomic_sub_fetch(&p->refs, 1, __ATOMIC_ACQ_REL) == 0)
		policy_free(p);
}

struct policy *
policy_current(void)
{
	struct policy *p;

	pthread_mutex_lock(&current_mu);
	p = current ? policy_ref(current) : NULL;
	pthread_mutex_unlock(&current_mu);
	return p;
}

void
policy_install(struct policy *p)
{
	struct policy *old;

	pthread_mutex_lock(&current_mu);
	old = current;
	current = p;
	pthread_mutex_unlock(&current_mu);
	policy_unref(&old);
}
