#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cmdparse.h"

static const struct {
	const char	*name;
	enum cmd_verb	 verb;
} verbs[] = {
	{ "HELO", CMD_HELO }, { "EHLO", CMD_EHLO }, { "MAIL", CMD_MAIL },
	{ "RCPT", CMD_RCPT }, { "DATA", CMD_DATA }, { "BDAT", CMD_BDAT },
	{ "RSET", CMD_RSET }, { "NOOP", CMD_NOOP }, { "QUIT", CMD_QUIT },
	{ "VRFY", CMD_VRFY }, { "EXPN", CMD_EXPN }, { "HELP", CMD_HELP },
	{ "STARTTLS", CMD_STARTTLS }, { "AUTH", CMD_AUTH },
	/* Web verbs: someone is pointing a browser or proxy at us. */
	{ "GET", CMD_HTTP }, { "POST", CMD_HTTP }, { "HEAD", CMD_HTTP },
	{ "PUT", CMD_HTTP }, { "CONNECT", CMD_HTTP }, { "OPTIONS", CMD_HTTP },
	{ "DELETE", CMD_HTTP }, { "TRACE", CMD_HTTP }, { "PATCH", CMD_HTTP },
	{ NULL, CMD_UNKNOWN }
};

const char *
cmd_name(enum cmd_verb v)
{
	int i;

	for (i = 0; verbs[i].name != NULL; i++)
		if (verbs[i].verb == v)
			return verbs[i].name;
	return "UNKNOWN";
}

int
cmd_parse_helo(const char *arg, size_t len, char *name, size_t namelen,
    const char **why)
{
	size_t i, n;

	/* An escape or other control byte is no part of any host name. */
	for (i = 0; i < len; i++)
		if ((unsigned char)arg[i] < 0x20 || arg[i] == 0x7f) {
			*why = "control character in the name";
			return -1;
		}
	for (n = 0; n < len && arg[n] != ' '; n++)
		;
	if (n == 0) {
		*why = "no name";
		return -1;
	}
	if (n >= namelen) {
		*why = "name too long";
		return -2;
	}
	memcpy(name, arg, n);
	name[n] = '\0';
	return 0;
}

int
cmd_split(char *line, size_t len, struct cmd *c)
{
	size_t vlen, i;

	c->verb = CMD_UNKNOWN;
	c->arg = line + len;
	c->arglen = 0;
	for (i = 0; i < len; i++)
		if (line[i] == '\0' || line[i] == '\r')
			return -1;
	for (vlen = 0; vlen < len && line[vlen] != ' '; vlen++)
		;
	for (i = 0; verbs[i].name != NULL; i++) {
		if (strlen(verbs[i].name) == vlen &&
		    strncasecmp(line, verbs[i].name, vlen) == 0) {
			c->verb = verbs[i].verb;
			break;
		}
	}
	if (vlen < len) {
		/* Tolerate extra spaces between verb and argument and at the end. */
		size_t a = vlen, e = len;

		while (a < len && line[a] == ' ')
			a++;
		while (e > a && line[e - 1] == ' ')
			e--;
		line[e] = '\0';
		c->arg = line + a;
		c->arglen = e - a;
	}
	return 0;
}

/* esmtp-value: 1*(%d33-60 / %d62-126), and UTF-8 under RFC 6531. */
static int
valid_value(const char *v, size_t n)
{
	size_t i;

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c >= 0x80)
			continue;
		if (c < 33 || c > 126 || c == '=')
			return 0;
	}
	return 1;
}

/*
 * Walks "KEY[=VALUE] KEY[=VALUE] ..." calling fn for each.  fn returns a
 * path_status.  Keywords are case-insensitive.
 */
typedef enum path_status (*param_fn)(void *, const char *key, size_t klen,
    const char *val, size_t vlen, const char **why);

static enum path_status
walk_params(const char *p, param_fn fn, void *ctx, const char **why)
{
	enum path_status st;

	for (;;) {
		const char *k, *eq, *end;
		size_t klen, i;

		while (*p == ' ')
			p++;
		if (*p == '\0')
			return PATH_OK;
		k = p;
		while (*p != '\0' && *p != ' ')
			p++;
		end = p;
		eq = memchr(k, '=', (size_t)(end - k));
		klen = (size_t)((eq ? eq : end) - k);
		if (klen == 0 || !isalnum((unsigned char)k[0])) {
			*why = "bad parameter";
			return PATH_PARAM_SYNTAX;
		}
		for (i = 0; i < klen; i++)
			if (!isalnum((unsigned char)k[i]) && k[i] != '-') {
				*why = "bad parameter keyword";
				return PATH_PARAM_SYNTAX;
			}
		if (eq != NULL && !valid_value(eq + 1, (size_t)(end - eq - 1))) {
			*why = "bad parameter value";
			return PATH_PARAM_SYNTAX;
		}
		st = fn(ctx, k, klen, eq ? eq + 1 : NULL,
		    eq ? (size_t)(end - eq - 1) : 0, why);
		if (st != PATH_OK)
			return st;
	}
}

static int
keyis(const char *k, size_t klen, const char *name)
{
	return strlen(name) == klen && strncasecmp(k, name, klen) == 0;
}

static enum path_status
mail_param(void *ctx, const char *k, size_t klen, const char *v, size_t vlen,
    const char **why)
{
	struct mail_params *mp = ctx;
	size_t i;

	if (keyis(k, klen, "SIZE")) {
		long long n = 0;

		if (mp->size != -1 || v == NULL || vlen > 20) {
			*why = "bad SIZE parameter";
			return PATH_PARAM_SYNTAX;
		}
		for (i = 0; i < vlen; i++) {
			if (!isdigit((unsigned char)v[i])) {
				*why = "bad SIZE parameter";
				return PATH_PARAM_SYNTAX;
			}
			if (n > (0x7fffffffffffffffLL - 9) / 10)
				n = 0x7fffffffffffffffLL / 10 * 10; /* saturate */
			else
				n = n * 10 + (v[i] - '0');
		}
		mp->size = n;
		return PATH_OK;
	}
	if (keyis(k, klen, "BODY")) {
		if (mp->body != ENV_BODY_UNSET || v == NULL) {
			*why = "bad BODY parameter";
			return PATH_PARAM_SYNTAX;
		}
		if (keyis(v, vlen, "7BIT"))
			mp->body = ENV_BODY_7BIT;
		else if (keyis(v, vlen, "8BITMIME"))
			mp->body = ENV_BODY_8BITMIME;
		else {
			*why = "unsupported BODY type";
			return PATH_PARAM_UNKNOWN;
		}
		return PATH_OK;
	}
	if (keyis(k, klen, "SMTPUTF8")) {
		if (mp->smtputf8 || v != NULL) {
			*why = "bad SMTPUTF8 parameter";
			return PATH_PARAM_SYNTAX;
		}
		mp->smtputf8 = 1;
		return PATH_OK;
	}
	if (keyis(k, klen, "REQUIRETLS")) {
		if (mp->requiretls || v != NULL) {
			*why = "bad REQUIRETLS parameter";
			return PATH_PARAM_SYNTAX;
		}
		mp->requiretls = 1;
		return PATH_OK;
	}
	if (keyis(k, klen, "RET")) {
		if (mp->ret != ENV_RET_UNSET || v == NULL) {
			*why = "bad RET parameter";
			return PATH_PARAM_SYNTAX;
		}
		if (keyis(v, vlen, "FULL"))
			mp->ret = ENV_RET_FULL;
		else if (keyis(v, vlen, "HDRS"))
			mp->ret = ENV_RET_HDRS;
		else {
			*why = "RET must be FULL or HDRS";
			return PATH_PARAM_SYNTAX;
		}
		return PATH_OK;
	}
	if (keyis(k, klen, "ENVID")) {
		if (mp->envid[0] != '\0' || v == NULL || vlen > ENVID_MAX ||
		    !env_xtext_valid(v, vlen)) {
			*why = "bad ENVID parameter";
			return PATH_PARAM_SYNTAX;
		}
		memcpy(mp->envid, v, vlen);
		mp->envid[vlen] = '\0';
		return PATH_OK;
	}
	if (keyis(k, klen, "AUTH")) {
		/* RFC 4954 5: who submitted the message; "<>" when unknown. */
		if (mp->auth[0] != '\0' || v == NULL || vlen > AUTHPARAM_MAX ||
		    !env_xtext_valid(v, vlen)) {
			*why = "bad AUTH parameter";
			return PATH_PARAM_SYNTAX;
		}
		memcpy(mp->auth, v, vlen);
		mp->auth[vlen] = '\0';
		return PATH_OK;
	}
	*why = "unknown MAIL parameter";
	return PATH_PARAM_UNKNOWN;
}

static enum path_status
rcpt_param(void *ctx, const char *k, size_t klen, const char *v, size_t vlen,
    const char **why)
{
	struct rcpt_params *rp = ctx;
	const char *semi;
	size_t i, tl;

	if (keyis(k, klen, "NOTIFY")) {
		size_t start = 0;

		if (rp->notify != 0 || v == NULL) {
			*why = "bad NOTIFY parameter";
			return PATH_PARAM_SYNTAX;
		}
		/* NEVER alone, or a list of SUCCESS, FAILURE, DELAY. */
		for (i = 0; i <= vlen; i++) {
			int bit;

			if (i < vlen && v[i] != ',')
				continue;
			if (keyis(v + start, i - start, "NEVER"))
				bit = ENV_NOTIFY_NEVER;
			else if (keyis(v + start, i - start, "SUCCESS"))
				bit = ENV_NOTIFY_SUCCESS;
			else if (keyis(v + start, i - start, "FAILURE"))
				bit = ENV_NOTIFY_FAILURE;
			else if (keyis(v + start, i - start, "DELAY"))
				bit = ENV_NOTIFY_DELAY;
			else {
				*why = "bad NOTIFY value";
				return PATH_PARAM_SYNTAX;
			}
			if (rp->notify & bit) {
				*why = "NOTIFY value repeated";
				return PATH_PARAM_SYNTAX;
			}
			rp->notify |= bit;
			start = i + 1;
		}
		if ((rp->notify & ENV_NOTIFY_NEVER) && rp->notify != ENV_NOTIFY_NEVER) {
			*why = "NOTIFY=NEVER cannot be combined";
			return PATH_PARAM_SYNTAX;
		}
		return PATH_OK;
	}
	if (keyis(k, klen, "ORCPT")) {
		if (rp->orcpt[0] != '\0' || v == NULL || vlen > ORCPT_MAX ||
		    (semi = memchr(v, ';', vlen)) == NULL) {
			*why = "bad ORCPT parameter";
			return PATH_PARAM_SYNTAX;
		}
		tl = (size_t)(semi - v);
		for (i = 0; i < tl; i++)
			if (!isalnum((unsigned char)v[i]) && v[i] != '-')
				break;
		if (tl == 0 || i != tl || !env_xtext_valid(semi + 1, vlen - tl - 1) ||
		    vlen - tl - 1 == 0) {
			*why = "bad ORCPT parameter";
			return PATH_PARAM_SYNTAX;
		}
		memcpy(rp->orcpt, v, vlen);
		rp->orcpt[vlen] = '\0';
		return PATH_OK;
	}
	*why = "unknown RCPT parameter";
	return PATH_PARAM_UNKNOWN;
}

/* Matches "FROM:" / "TO:" and skips optional spaces before the path. */
static const char *
skip_prefix(const char *arg, const char *prefix)
{
	size_t n = strlen(prefix);

	if (strncasecmp(arg, prefix, n) != 0)
		return NULL;
	arg += n;
	while (*arg == ' ')
		arg++;
	return arg;
}

static enum path_status
addr_status(enum addr_error e)
{
	switch (e) {
	case ADDR_OK:
		return PATH_OK;
	case ADDR_EUTF8:
		return PATH_UTF8;
	case ADDR_ETOOLONG:
		return PATH_TOOLONG;
	default:
		return PATH_SYNTAX;
	}
}

enum path_status
cmd_parse_mail(const char *arg, struct addr *a, struct mail_params *mp,
    const char **why)
{
	const char *p, *params;
	enum path_status st;
	enum addr_error e;
	size_t used;

	memset(mp, 0, sizeof(*mp));
	mp->size = -1;
	mp->body = ENV_BODY_UNSET;
	if ((p = skip_prefix(arg, "FROM:")) == NULL) {
		*why = "Syntax: MAIL FROM:<address>";
		return PATH_SYNTAX;
	}
	/* Parameters first: SMTPUTF8 decides what the path may contain. */
	params = p;
	if (*params == '<') {
		/* The path ends at the first '>' outside a quoted string. */
		int inq = 0;

		for (params++; *params != '\0'; params++) {
			if (inq && *params == '\\' && params[1] != '\0')
				params++;
			else if (*params == '"')
				inq = !inq;
			else if (*params == '>' && !inq) {
				params++;
				break;
			}
		}
	}
	if (*params != '\0' && *params != ' ') {
		*why = "Syntax: MAIL FROM:<address> [parameters]";
		return PATH_SYNTAX;
	}
	if ((st = walk_params(params, mail_param, mp, why)) != PATH_OK)
		return st;
	e = addr_parse_path(p, (size_t)(params - p),
	    ADDR_NULL_OK | (mp->smtputf8 ? ADDR_UTF8_OK : 0), a, &used, why);
	if (e == ADDR_OK && used != (size_t)(params - p)) {
		*why = "junk after address";
		return PATH_SYNTAX;
	}
	return addr_status(e);
}

enum path_status
cmd_parse_rcpt(const char *arg, int utf8_ok, struct addr *a,
    struct rcpt_params *rp, const char **why)
{
	const char *p;
	enum addr_error e;
	size_t used;

	if ((p = skip_prefix(arg, "TO:")) == NULL) {
		*why = "Syntax: RCPT TO:<address>";
		return PATH_SYNTAX;
	}
	e = addr_parse_path(p, strlen(p),
	    ADDR_POSTMASTER_OK | (utf8_ok ? ADDR_UTF8_OK : 0), a, &used, why);
	if (e != ADDR_OK)
		return addr_status(e);
	p += used;
	if (*p != '\0' && *p != ' ') {
		*why = "junk after address";
		return PATH_SYNTAX;
	}
	memset(rp, 0, sizeof(*rp));
	return walk_params(p, rcpt_param, rp, why);
}

int
cmd_parse_bdat(const char *arg, unsigned long long *size, int *last)
{
	unsigned long long n = 0;
	const char *p = arg;

	if (!isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		if (n > (~0ULL - 9) / 10)
			return -1;
		n = n * 10 + (unsigned long long)(*p - '0');
	}
	*last = 0;
	while (*p == ' ')
		p++;
	if (*p != '\0') {
		if (strcasecmp(p, "LAST") != 0)
			return -1;
		*last = 1;
	}
	*size = n;
	return 0;
}
