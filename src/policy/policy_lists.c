/*
 * The lists of smtpd.conf's policy: trusted networks, our domains, blocked
 * clients, access rules and files, header and envelope rules.  See
 * policy_int.h.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libconfig.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "lib/conf.h"
#include "lib/addr.h"
#include "lib/reply.h"
#include "lib/str.h"
#include "lib/table.h"
#include "policy.h"
#include "policy_int.h"

static const char *const rule_keys[] = {
	"helo", "sender", "rcpt", "header", "action", "code", "status",
	"text", "save", NULL
};
static const char *const grey_keys[] = {
	"enabled", "delay", "retry", "expire", "entries", "file", NULL
};
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
int
policy_each_string(config_setting_t *s, const char *name,
    int (*fn)(struct policy *, const char *, const config_setting_t *,
    const struct conf_ctx *), struct policy *p, const struct conf_ctx *cx)
{
	int i;

	if (config_setting_type(s) == CONFIG_TYPE_STRING)
		return fn(p, config_setting_get_string(s), s, cx);
	if (!config_setting_is_aggregate(s))
		return conf_err(cx, s,
		    "%s must be a string or a list of strings", name);
	for (i = 0; i < config_setting_length(s); i++) {
		config_setting_t *e = config_setting_get_elem(s, (unsigned)i);

		if (config_setting_type(e) != CONFIG_TYPE_STRING)
			return conf_err(cx, e,
			    "%s entries must be strings", name);
		if (fn(p, config_setting_get_string(e), e, cx) == -1)
			return -1;
	}
	return 0;
}

int
policy_add_ournet(struct policy *p, const char *v, const config_setting_t *s,
    const struct conf_ctx *cx)
{
	const char *why;

	if (grow((void **)&p->ournets, &p->nournets, sizeof(struct cidr)) == -1)
		return conf_err(cx, s, "too many ournets");
	if (cidr_parse(v, &p->ournets[p->nournets - 1], &why) == -1)
		return conf_err(cx, s, "ournets \"%.100s\": %s",
		    v, why);
	return 0;
}

int
policy_add_block(struct policy *p, const char *v, const config_setting_t *s,
    const struct conf_ctx *cx)
{
	const char *why;

	if (grow((void **)&p->block, &p->nblock, sizeof(struct cidr)) == -1)
		return conf_err(cx, s, "too many block entries");
	if (cidr_parse(v, &p->block[p->nblock - 1], &why) == -1)
		return conf_err(cx, s, "block \"%.100s\": %s", v,
		    why);
	return 0;
}

int
policy_add_ourdomain(struct policy *p, const char *v, const config_setting_t *s,
    const struct conf_ctx *cx)
{
	char buf[POLICY_HOST_MAX + 3], why[512], *d;
	size_t n, i;

	if (table_is_ref(v)) {
		/* Virtual domains: the keys of a file or CDB table. */
		if (strncmp(v, "file:", 5) != 0 && strncmp(v, "cdb:", 4) != 0)
			return conf_err(cx, s, "ourdomains tables "
			    "are file: or cdb: tables");
		if (p->ourdomains_table != NULL)
			return conf_err(cx, s, "ourdomains names "
			    "one table at most");
		if ((p->ourdomains_table = conf_table_open(cx->file, v, why,
		    sizeof(why))) == NULL)
			return conf_err(cx, s, "ourdomains: %s",
			    why);
		return 0;
	}
	if (str_lcpy(buf, v, sizeof(buf)) >= sizeof(buf))
		return conf_err(cx, s, "ourdomains entry too long");
	n = strlen(buf);
	/* A trailing dot names the same domain. */
	if (n > 1 && buf[n - 1] == '.')
		buf[--n] = '\0';
	for (i = 0; i < n; i++)
		buf[i] = (char)tolower((unsigned char)buf[i]);
	d = buf[0] == '*' && buf[1] == '.' ? buf + 2 : buf;
	if (!(d[0] == '[' && buf[n - 1] == ']') &&
	    !addr_valid_domain(d, strlen(d), 1))
		return conf_err(cx, s,
		    "ourdomains \"%.100s\" is not a domain or *.domain", v);
	if (grow((void **)&p->ourdomains, &p->nourdomains,
	    sizeof(char *)) == -1 ||
	    (p->ourdomains[p->nourdomains - 1] = strdup(buf)) == NULL)
		return conf_err(cx, s, "too many ourdomains");
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
    const struct conf_ctx *cx)
{
	char buf[1024], *verb, *pat, *save = NULL, *bang, *at;
	enum access_action act = ACCESS_NONE;
	struct access_rule *r;
	const char *why;
	int i, npat = 0;

	if (str_lcpy(buf, line, sizeof(buf)) >= sizeof(buf))
		return conf_err(cx, s, "access line too long");
	for (i = 0; buf[i] != '\0'; i++)
		buf[i] = (char)tolower((unsigned char)buf[i]);
	if ((verb = strtok_r(buf, " \t,", &save)) == NULL)
		return conf_err(cx, s, "empty access rule");
	for (i = 0; access_names[i].name != NULL; i++)
		if (strcmp(verb, access_names[i].name) == 0)
			act = access_names[i].action;
	if (act == ACCESS_NONE)
		return conf_err(cx, s,
		    "access verb \"%.40s\" is not allow, block, deny, dial or "
		    "delay", verb);
	while ((pat = strtok_r(NULL, " \t,", &save)) != NULL) {
		/* Plan 9 refuses these as too sweeping to mean anything. */
		if (strcmp(pat, "*") == 0 || strcmp(pat, "!") == 0 ||
		    strcmp(pat, "*!") == 0 || strcmp(pat, "!*") == 0 ||
		    strcmp(pat, "*!*") == 0)
			return conf_err(cx, s,
			    "access pattern \"%s\" would match everyone", pat);
		if (grow((void **)&p->access, &p->naccess,
		    sizeof(struct access_rule)) == -1)
			return conf_err(cx, s, "too many access rules");
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
				return conf_err(cx, s,
				    "access pattern \"%.100s\": %s (want an "
				    "address, a CIDR, domain!user or user@domain)",
				    pat, why);
			continue;
		}
		if (r->domain == NULL || r->user == NULL)
			return conf_err(cx, s, "out of memory");
		if (r->domain[0] == '\0' || r->user[0] == '\0')
			return conf_err(cx, s,
			    "access pattern needs a domain and a user part");
	}
	if (npat == 0)
		return conf_err(cx, s, "access rule without a pattern");
	return 0;
}

/* The access rules from a file: one rule a line, '#' comments. */
static int
load_access_file(struct policy *p, const char *path,
    const config_setting_t *s, const struct conf_ctx *cx)
{
	char line[1100], where[PATH_MAX + 32];
	struct conf_ctx wcx = *cx;
	FILE *f;
	int lineno = 0, r = 0;
	size_t n;

	if ((f = fopen(path, "r")) == NULL)
		return conf_err(cx, s, "access_file %.200s: %s",
		    path, strerror(errno));
	while (r == 0 && fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		n = strlen(line);
		if (n == sizeof(line) - 1 && line[n - 1] != '\n') {
			snprintf(cx->err, cx->errlen, "%s:%d: line too long",
			    path, lineno);
			r = -1;
			break;
		}
		line[strcspn(line, "#\r\n")] = '\0';
		if (line[strspn(line, " \t")] == '\0')
			continue;
		snprintf(where, sizeof(where), "%s:%d", path, lineno);
		wcx.file = where;
		if (add_access(p, line, NULL, &wcx) == -1)
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
add_rule(struct policy *p, config_setting_t *g, const struct conf_ctx *cx)
{
	static const char *targets[] = { "helo", "sender", "rcpt", "header" };
	struct rule *r;
	const char *pat = NULL, *act = "reject", *text = NULL, *status = NULL;
	config_setting_t *s;
	PCRE2_SIZE eoff;
	int i, t = -1, ecode, code = 0, save = 0;
	char msg[256];

	if (!config_setting_is_group(g))
		return conf_err(cx, g,
		    "rules entries must be groups { ... }");
	if (conf_check_keys(cx, g, rule_keys, NULL) == -1)
		return -1;
	for (i = 0; i < 4; i++) {
		if ((s = config_setting_get_member(g, targets[i])) == NULL)
			continue;
		if (t != -1)
			return conf_err(cx, s,
			    "a rule matches one of helo, sender, rcpt, header");
		if (config_setting_type(s) != CONFIG_TYPE_STRING)
			return conf_err(cx, s,
			    "%s must be a regular expression string",
			    targets[i]);
		t = i;
		pat = config_setting_get_string(s);
	}
	if (t == -1)
		return conf_err(cx, g,
		    "a rule needs helo, sender, rcpt or header");
	if (conf_get_string(cx, g, "action", &act) == -1 ||
	    conf_get_string(cx, g, "text", &text) == -1 ||
	    conf_get_string(cx, g, "status", &status) == -1 ||
	    conf_get_bool(cx, g, "save", &save) == -1)
		return -1;
	for (i = 0; rule_actions[i].name != NULL; i++)
		if (strcmp(rule_actions[i].name, act) == 0)
			break;
	if (rule_actions[i].name == NULL)
		return conf_err(cx, config_setting_get_member(g,
		    "action"), "action \"%.40s\" is not reject, defer, accept, "
		    "drop or tag", act);
	if (grow((void **)&p->rules, &p->nrules, sizeof(struct rule)) == -1)
		return conf_err(cx, g, "too many rules");
	r = &p->rules[p->nrules - 1];
	r->target = (enum rule_target)t;
	r->line = (int)config_setting_source_line(g);
	r->action = rule_actions[i].action;
	code = rule_actions[i].code;
	if ((s = config_setting_get_member(g, "code")) != NULL) {
		unsigned int u;

		if (conf_get_uint(cx, g, "code", 400, 599, &u) == -1)
			return -1;
		code = (int)u;
		if ((r->action == VERDICT_REJECT && code < 500) ||
		    (r->action == VERDICT_DEFER && code >= 500))
			return conf_err(cx, s,
			    "code %d does not fit action %s", code, act);
	}
	r->code = code;
	/* Checked whole, never cut: a wrong status is the admin's to fix. */
	if (status != NULL && !reply_status_fits(status, code))
		return conf_err(cx, config_setting_get_member(g, "status"),
		    "status \"%.20s\" does not fit code %d (class.subject."
		    "detail, class %d, at most 3 digits each)", status, code,
		    code / 100);
	str_lcpy(r->status, status ? status : rule_actions[i].status,
	    sizeof(r->status));
	if (r->action == VERDICT_TAG) {
		if (t != RULE_HEADER)
			return conf_err(cx, g,
			    "only header rules can tag");
		if (text == NULL || strchr(text, ':') == NULL ||
		    strpbrk(text, "\r\n") != NULL)
			return conf_err(cx, g,
			    "a tag rule needs text = \"Header-Name: value\"");
	} else if (text == NULL)
		text = rule_actions[i].text;
	if (text != NULL && strpbrk(text, "\r\n") != NULL)
		return conf_err(cx, g, "text must be one line");
	(void)save;
	r->action |= save ? 0x100 : 0;
	if ((r->text = strdup(text ? text : "")) == NULL ||
	    (r->pattern = strdup(pat)) == NULL)
		return conf_err(cx, g, "out of memory");
	/* Case-insensitive: addresses, names and header fields mostly are. */
	r->re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED,
	    PCRE2_CASELESS | PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &ecode, &eoff,
	    NULL);
	if (r->re == NULL) {
		pcre2_get_error_message(ecode, (PCRE2_UCHAR *)msg, sizeof(msg));
		return conf_err(cx, config_setting_get_member(g,
		    targets[t]), "bad regular expression at offset %zu: %s",
		    (size_t)eoff, msg);
	}
	return 0;
}

/* Everything beyond the basic settings: the policy modules' keys. */
int
policy_load_lists(struct policy *p, config_setting_t *root,
    const struct conf_ctx *cx)
{
	config_setting_t *s, *g;
	char afile[PATH_MAX] = "";
	int i, have_ournets = 0;

	if (conf_get_bool(cx, root, "norelay", &p->norelay) == -1 ||
	    conf_get_bool(cx, root, "verifysenderdom",
	    &p->verifysenderdom) == -1 ||
	    conf_get_bool(cx, root, "saveblockedmsg",
	    &p->saveblockedmsg) == -1 ||
	    conf_get_bool(cx, root, "helo_checks", &p->helo_checks) == -1)
		return -1;
	if (conf_get_path(cx, root, "dump", p->dump, sizeof(p->dump)) == -1)
		return -1;
	if ((s = config_setting_get_member(root, "ournets")) != NULL) {
		have_ournets = 1;
		free(p->ournets);
		p->ournets = NULL;
		p->nournets = 0;
		if (policy_each_string(s, "ournets", policy_add_ournet, p,
		    cx) == -1)
			return -1;
	}
	(void)have_ournets;
	if ((s = config_setting_get_member(root, "ourdomains")) != NULL &&
	    policy_each_string(s, "ourdomains", policy_add_ourdomain, p,
	    cx) == -1)
		return -1;
	if ((s = config_setting_get_member(root, "block")) != NULL &&
	    policy_each_string(s, "block", policy_add_block, p, cx) == -1)
		return -1;
	if ((s = config_setting_get_member(root, "access")) != NULL &&
	    policy_each_string(s, "access", add_access, p, cx) == -1)
		return -1;
	if (conf_get_path(cx, root, "access_file", afile, sizeof(afile)) == -1)
		return -1;
	if (afile[0] != '\0' && load_access_file(p, afile,
	    config_setting_get_member(root, "access_file"), cx) == -1)
		return -1;
	if ((s = config_setting_get_member(root, "access_table")) != NULL) {
		char why[512];

		if (config_setting_type(s) != CONFIG_TYPE_STRING)
			return conf_err(cx, s, "access_table must "
			    "be a table (\"file:/path\", \"cdb:/path\", "
			    "\"socketmap:...\")");
		if ((p->access_table = conf_table_open(cx->file,
		    config_setting_get_string(s), why, sizeof(why))) == NULL)
			return conf_err(cx, s, "access_table: %s",
			    why);
	}
	if ((g = config_setting_get_member(root, "greylist")) != NULL) {
		if (!config_setting_is_group(g))
			return conf_err(cx, g,
			    "greylist must be a group { ... }");
		if (conf_check_keys(cx, g, grey_keys, NULL) == -1)
			return -1;
		p->greylist = 1;
		if (conf_get_bool(cx, g, "enabled", &p->greylist) == -1 ||
		    conf_get_duration(cx, g, "delay", 0, 86400,
		    &p->grey_delay) == -1 ||
		    conf_get_duration(cx, g, "retry", 60, 30 * 86400,
		    &p->grey_retry) == -1 ||
		    conf_get_duration(cx, g, "expire", 3600, 365 * 86400,
		    &p->grey_expire) == -1 ||
		    conf_get_uint(cx, g, "entries", 100, 10000000,
		    &p->grey_entries) == -1 ||
		    conf_get_path(cx, g, "file", p->grey_file,
		    sizeof(p->grey_file)) == -1)
			return -1;
	}
	if ((g = config_setting_get_member(root, "tls")) != NULL &&
	    policy_load_tls(p, g, cx) == -1)
		return -1;
	if (p->front.nproxy_tls_listen > 0 && p->tls_certificate[0] == '\0')
		return conf_err(cx, config_setting_get_member(root,
		    "proxy"), "proxy.tls_listen needs tls.certificate and "
		    "tls.key");
	if ((s = config_setting_get_member(root, "rules")) != NULL) {
		if (!config_setting_is_list(s) && !config_setting_is_array(s))
			return conf_err(cx, s,
			    "rules must be a list ( { ... }, ... )");
		for (i = 0; i < config_setting_length(s); i++)
			if (add_rule(p, config_setting_get_elem(s, (unsigned)i),
			    cx) == -1)
				return -1;
	}
	return 0;
}
