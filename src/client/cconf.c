/*
 * cconf: the SMTP client's settings, read from smtp.conf and -o, for
 * smtp(1) and sendmail(8).  See cconf.h.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "client/cconf.h"
#include "client/dial.h"
#include "client/pin.h"
#include "lib/str.h"

#define DEF_MAX_MESSAGE		(64ULL * 1024 * 1024)
#define DEF_PASSWORD_TIMEOUT	120
#define DEF_QUEUE_MAX		1000

static int	parse_bool(const char *, int *);
static int	parse_uint(const char *, unsigned long long,
		    unsigned long long *);
static int	set_str(char **, const char *);
static int	apply_group(struct cconf *, config_setting_t *, const char *,
		    const char *const *, char *, size_t);
static int	host_matches(config_setting_t *, const char *);
static int	read_file(config_t *, const char *, int, char *, size_t);
static int	apply_hosts(struct cconf *, config_t *, const char *,
		    const char *, char *, size_t);
static int	from_matches(config_setting_t *, const char *);
static config_setting_t *pick_account(config_t *, const char *, const char *,
		    const char *, const char *, char *, size_t);
static int	account_fields(config_setting_t *, const char *,
		    struct cconf_account *, char *, size_t);

/* Keys of the file's top level that are not settings. */
static const char *const top_skip[] = { "hosts", "accounts", "account",
	NULL };
static const char *const host_skip[] = { "host", NULL };
static const char *const account_skip[] = { "name", "from", "host", "tls",
	"auth", "user", NULL };

void
cconf_init(struct cconf *cf)
{
	memset(cf, 0, sizeof(*cf));
	cf->tls_verify = 1;
	cf->max_message_size = DEF_MAX_MESSAGE;
	cf->password_timeout = DEF_PASSWORD_TIMEOUT;
	cf->queue_max = DEF_QUEUE_MAX;
}

void
cconf_free(struct cconf *cf)
{
	free(cf->keyfile);
	free(cf->netrc);
	free(cf->password_command);
	free(cf->tls_cafile);
	free(cf->tls_pin);
	free(cf->sts_cache);
	free(cf->queue_dir);
	memset(cf, 0, sizeof(*cf));
}

static int
parse_bool(const char *v, int *out)
{
	if (strcasecmp(v, "yes") == 0 || strcasecmp(v, "true") == 0 ||
	    strcasecmp(v, "on") == 0 || strcmp(v, "1") == 0)
		*out = 1;
	else if (strcasecmp(v, "no") == 0 || strcasecmp(v, "false") == 0 ||
	    strcasecmp(v, "off") == 0 || strcmp(v, "0") == 0)
		*out = 0;
	else
		return -1;
	return 0;
}

static int
parse_uint(const char *v, unsigned long long max, unsigned long long *out)
{
	unsigned long long n, mult = 1;
	char *end;

	if (!isdigit((unsigned char)*v))
		return -1;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno != 0)
		return -1;
	if (*end == 'k' || *end == 'K')
		mult = 1024;
	else if (*end == 'm' || *end == 'M')
		mult = 1024 * 1024;
	else if (*end == 'g' || *end == 'G')
		mult = 1024ULL * 1024 * 1024;
	if (mult != 1)
		end++;
	if (*end != '\0' || n == 0 || n > max / mult)
		return -1;
	*out = n * mult;
	return 0;
}

static int
set_str(char **dst, const char *v)
{
	char *p = NULL;

	if (*v != '\0' && (p = strdup(v)) == NULL)
		return -1;
	free(*dst);
	*dst = p;
	return 0;
}

int
cconf_set(struct cconf *cf, const char *key, const char *v, char *err,
    size_t errlen)
{
	static const struct {
		const char		*name;
		enum client_auth_mech	 mech;
	} mechs[] = {
		{ "auto", CLIENT_AUTH_AUTO }, { "plain", CLIENT_AUTH_PLAIN },
		{ "login", CLIENT_AUTH_LOGIN },
		{ "cram-md5", CLIENT_AUTH_CRAM_MD5 },
		{ "xoauth2", CLIENT_AUTH_XOAUTH2 },
	};
	unsigned long long n;
	unsigned *tp = NULL;
	size_t i;

	if (strcmp(key, "keyfile") == 0)
		return set_str(&cf->keyfile, v);
	if (strcmp(key, "netrc") == 0)
		return set_str(&cf->netrc, v);
	if (strcmp(key, "password_command") == 0)
		return set_str(&cf->password_command, v);
	if (strcmp(key, "tls_cafile") == 0)
		return set_str(&cf->tls_cafile, v);
	if (strcmp(key, "tls_policy") == 0) {
		if (client_tls_policy_parse(v, &cf->tls_policy) == -1) {
			snprintf(err, errlen, "tls_policy: want none, may, "
			    "encrypt, verify, dane, mta-sts or auto");
			return -1;
		}
		return 0;
	}
	if (strcmp(key, "mta_sts_cache") == 0)
		return set_str(&cf->sts_cache, v);
	if (strcmp(key, "queue_dir") == 0) {
		if (*v != '\0' && *v != '/') {
			snprintf(err, errlen, "queue_dir: want an absolute "
			    "path");
			return -1;
		}
		return set_str(&cf->queue_dir, v);
	}
	if (strcmp(key, "tls_pin") == 0) {
		if (*v != '\0' && !pin_valid(v)) {
			snprintf(err, errlen, "tls_pin: want sha256: and 64 "
			    "hex digits (colons allowed) or pin-sha256: and 44 "
			    "base64 digits, several separated by commas");
			return -1;
		}
		return set_str(&cf->tls_pin, v);
	}
	if (strcmp(key, "tls_verify") == 0 ||
	    strcmp(key, "auth_cleartext") == 0) {
		int b;

		if (parse_bool(v, &b) == -1) {
			snprintf(err, errlen, "%s: want yes or no", key);
			return -1;
		}
		if (key[0] == 't')
			cf->tls_verify = b;
		else
			cf->auth_cleartext = b;
		return 0;
	}
	if (strcmp(key, "auth_mechanism") == 0) {
		for (i = 0; i < sizeof(mechs) / sizeof(mechs[0]); i++)
			if (strcasecmp(v, mechs[i].name) == 0) {
				cf->auth_mech = mechs[i].mech;
				return 0;
			}
		snprintf(err, errlen, "auth_mechanism: want auto, plain, "
		    "login, cram-md5 or xoauth2");
		return -1;
	}
	if (strcmp(key, "max_message_size") == 0) {
		if (parse_uint(v, 1ULL << 40, &n) == -1) {
			snprintf(err, errlen, "max_message_size: want a size "
			    "in bytes (k, m, g suffixes)");
			return -1;
		}
		cf->max_message_size = n;
		return 0;
	}
	if (strcmp(key, "queue_max") == 0) {
		if (parse_uint(v, 100000, &n) == -1) {
			snprintf(err, errlen, "queue_max: want a number of "
			    "messages (1 to 100000)");
			return -1;
		}
		cf->queue_max = (unsigned)n;
		return 0;
	}
	if (strcmp(key, "connect_timeout") == 0)
		tp = &cf->connect_timeout;
	else if (strcmp(key, "command_timeout") == 0)
		tp = &cf->command_timeout;
	else if (strcmp(key, "data_timeout") == 0)
		tp = &cf->data_timeout;
	else if (strcmp(key, "password_timeout") == 0)
		tp = &cf->password_timeout;
	if (tp != NULL) {
		if (parse_uint(v, 86400, &n) == -1) {
			snprintf(err, errlen, "%s: want seconds (1 to 86400)",
			    key);
			return -1;
		}
		*tp = (unsigned)n;
		return 0;
	}
	snprintf(err, errlen, "unknown setting \"%.64s\"", key);
	return -1;
}

static int
skipped(const char *name, const char *const *skip)
{
	for (; *skip != NULL; skip++)
		if (strcmp(name, *skip) == 0)
			return 1;
	return 0;
}

/* Applies the scalar settings of a group, but for the names in skip. */
static int
apply_group(struct cconf *cf, config_setting_t *g, const char *file,
    const char *const *skip, char *err, size_t errlen)
{
	config_setting_t *s;
	char val[64], e[256];
	const char *name, *v;
	int i, n = config_setting_length(g);

	for (i = 0; i < n; i++) {
		s = config_setting_get_elem(g, (unsigned)i);
		name = config_setting_name(s);
		if (name == NULL || skipped(name, skip))
			continue;
		switch (config_setting_type(s)) {
		case CONFIG_TYPE_STRING:
			v = config_setting_get_string(s);
			break;
		case CONFIG_TYPE_INT:
		case CONFIG_TYPE_INT64:
			snprintf(val, sizeof(val), "%lld",
			    config_setting_get_int64(s));
			v = val;
			break;
		case CONFIG_TYPE_BOOL:
			v = config_setting_get_bool(s) ? "yes" : "no";
			break;
		default:
			snprintf(err, errlen, "%s:%d: %s: want a string, "
			    "number or boolean", file,
			    config_setting_source_line(s), name);
			return -1;
		}
		if (cconf_set(cf, name, v, e, sizeof(e)) == -1) {
			snprintf(err, errlen, "%s:%d: %s", file,
			    config_setting_source_line(s), e);
			return -1;
		}
	}
	return 0;
}

/* A hosts entry's host: a name or a list of names. */
static int
host_matches(config_setting_t *hn, const char *dest_host)
{
	const char *s;
	int j;

	if (config_setting_type(hn) == CONFIG_TYPE_STRING)
		return strcasecmp(config_setting_get_string(hn),
		    dest_host) == 0;
	if (!config_setting_is_aggregate(hn))
		return 0;
	for (j = 0; j < config_setting_length(hn); j++) {
		s = config_setting_get_string_elem(hn, j);
		if (s != NULL && strcasecmp(s, dest_host) == 0)
			return 1;
	}
	return 0;
}

/* 0, 1 if missing and !must, -1 with err (cfg destroyed then). */
static int
read_file(config_t *cfg, const char *path, int must, char *err,
    size_t errlen)
{
	if (access(path, F_OK) == -1 && errno == ENOENT && !must)
		return 1;
	config_init(cfg);
	if (config_read_file(cfg, path) == CONFIG_TRUE)
		return 0;
	if (config_error_type(cfg) == CONFIG_ERR_FILE_IO)
		snprintf(err, errlen, "%s: cannot read it", path);
	else
		snprintf(err, errlen, "%s:%d: %s", config_error_file(cfg) ?
		    config_error_file(cfg) : path, config_error_line(cfg),
		    config_error_text(cfg));
	config_destroy(cfg);
	return -1;
}

/* The global settings, then the hosts entries for dest_host. */
static int
apply_hosts(struct cconf *cf, config_t *cfg, const char *path,
    const char *dest_host, char *err, size_t errlen)
{
	config_setting_t *hosts, *h, *hn;
	int i, n;

	if (apply_group(cf, config_root_setting(cfg), path, top_skip, err,
	    errlen) == -1)
		return -1;
	if ((hosts = config_lookup(cfg, "hosts")) == NULL)
		return 0;
	if (!config_setting_is_list(hosts)) {
		snprintf(err, errlen, "%s:%d: hosts: want a list ( { "
		    "host = \"...\"; ... } )", path,
		    config_setting_source_line(hosts));
		return -1;
	}
	n = config_setting_length(hosts);
	for (i = 0; i < n; i++) {
		h = config_setting_get_elem(hosts, (unsigned)i);
		hn = config_setting_is_group(h) ?
		    config_setting_get_member(h, "host") : NULL;
		if (hn == NULL) {
			snprintf(err, errlen, "%s:%d: hosts entries need host "
			    "= \"name\"", path, config_setting_source_line(h));
			return -1;
		}
		if (host_matches(hn, dest_host) &&
		    apply_group(cf, h, path, host_skip, err, errlen) == -1)
			return -1;
	}
	return 0;
}

int
cconf_load(struct cconf *cf, const char *path, int must,
    const char *dest_host, char *err, size_t errlen)
{
	config_t cfg;
	int r;

	if ((r = read_file(&cfg, path, must, err, errlen)) != 0)
		return r;
	r = apply_hosts(cf, &cfg, path, dest_host, err, errlen);
	config_destroy(&cfg);
	return r;
}

int
cconf_user_path(char *buf, size_t len)
{
	const char *x = getenv("XDG_CONFIG_HOME");
	const char *home = getenv("HOME");
	int n;

	if (x != NULL && *x == '/')
		n = snprintf(buf, len, "%s/smtp/smtp.conf", x);
	else if (home != NULL && *home == '/')
		n = snprintf(buf, len, "%s/.config/smtp/smtp.conf", home);
	else
		return -1;
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* 1 if addr matches one of the account's "from" patterns. */
static int
from_matches(config_setting_t *acct, const char *addr)
{
	config_setting_t *f;
	const char *pat;
	int i, n;

	if (addr == NULL || *addr == '\0' ||
	    (f = config_setting_get_member(acct, "from")) == NULL)
		return 0;
	if (config_setting_type(f) == CONFIG_TYPE_STRING)
		return fnmatch(config_setting_get_string(f), addr,
		    FNM_CASEFOLD) == 0;
	n = config_setting_is_aggregate(f) ? config_setting_length(f) : 0;
	for (i = 0; i < n; i++) {
		pat = config_setting_get_string_elem(f, i);
		if (pat != NULL && fnmatch(pat, addr, FNM_CASEFOLD) == 0)
			return 1;
	}
	return 0;
}

static const char *
account_name(config_setting_t *a)
{
	const char *s = NULL;

	if (!config_setting_is_group(a) ||
	    config_setting_lookup_string(a, "name", &s) != CONFIG_TRUE)
		return NULL;
	return s;
}

static config_setting_t *
pick_account(config_t *cfg, const char *path, const char *name,
    const char *sender, const char *from_hdr, char *err, size_t errlen)
{
	config_setting_t *list, *a;
	const char *def = NULL;
	int i, n, pass;

	list = config_lookup(cfg, "accounts");
	if (list == NULL || !config_setting_is_list(list) ||
	    (n = config_setting_length(list)) == 0) {
		snprintf(err, errlen, "%s: no accounts ( { name = ...; host = "
		    "...; } )", path);
		return NULL;
	}
	for (i = 0; i < n; i++) {
		a = config_setting_get_elem(list, (unsigned)i);
		if (account_name(a) == NULL) {
			snprintf(err, errlen, "%s:%d: accounts entries need "
			    "name = \"...\"", path,
			    config_setting_source_line(a));
			return NULL;
		}
	}
	if (name == NULL) {
		for (pass = 0; pass < 2; pass++)
			for (i = 0; i < n; i++) {
				a = config_setting_get_elem(list, (unsigned)i);
				if (from_matches(a, pass == 0 ? sender :
				    from_hdr))
					return a;
			}
		(void)config_lookup_string(cfg, "account", &def);
		if (def == NULL && n == 1)
			return config_setting_get_elem(list, 0);
		if (def == NULL) {
			snprintf(err, errlen, "%s: no account's from matches "
			    "<%.200s> and no default account = \"...\"", path,
			    sender);
			return NULL;
		}
		name = def;
	}
	for (i = 0; i < n; i++) {
		a = config_setting_get_elem(list, (unsigned)i);
		if (strcmp(account_name(a), name) == 0)
			return a;
	}
	snprintf(err, errlen, "%s: no account named \"%.64s\"", path, name);
	return NULL;
}

/* The account's own keys: host, tls, auth, user. */
static int
account_fields(config_setting_t *a, const char *path,
    struct cconf_account *acct, char *err, size_t errlen)
{
	const char *s;
	int b;

	memset(acct, 0, sizeof(*acct));
	str_lcpy(acct->name, account_name(a), sizeof(acct->name));
	if (config_setting_lookup_string(a, "host", &s) != CONFIG_TRUE ||
	    *s == '\0' || str_lcpy(acct->host, s, sizeof(acct->host)) >=
	    sizeof(acct->host)) {
		snprintf(err, errlen, "%s:%d: account %s: want host = "
		    "\"dial string\"", path, config_setting_source_line(a),
		    acct->name);
		return -1;
	}
	acct->tls = CLIENT_TLS_REQUIRE;
	if (config_setting_lookup_string(a, "tls", &s) == CONFIG_TRUE) {
		if (strcmp(s, "none") == 0)
			acct->tls = CLIENT_TLS_NONE;
		else if (strcmp(s, "opportunistic") == 0)
			acct->tls = CLIENT_TLS_OPPORTUNISTIC;
		else if (strcmp(s, "starttls") == 0)
			acct->tls = CLIENT_TLS_REQUIRE;
		else if (strcmp(s, "implicit") == 0)
			acct->tls = CLIENT_TLS_IMPLICIT;
		else {
			snprintf(err, errlen, "%s:%d: account %s: tls: want "
			    "none, opportunistic, starttls or implicit", path,
			    config_setting_source_line(a), acct->name);
			return -1;
		}
	}
	if (config_setting_lookup_bool(a, "auth", &b) == CONFIG_TRUE)
		acct->auth = b;
	if (config_setting_lookup_string(a, "user", &s) == CONFIG_TRUE) {
		if (str_lcpy(acct->user, s, sizeof(acct->user)) >=
		    sizeof(acct->user)) {
			snprintf(err, errlen, "%s: account %s: user too long",
			    path, acct->name);
			return -1;
		}
		acct->auth = 1;
		if (config_setting_lookup_bool(a, "auth", &b) == CONFIG_TRUE)
			acct->auth = b;
	}
	return 0;
}

int
cconf_load_account(struct cconf *cf, const char *path, const char *name,
    const char *sender, const char *from_hdr, struct cconf_account *acct,
    char *err, size_t errlen)
{
	config_setting_t *a;
	struct dial d;
	config_t cfg;
	char e[256];
	int r;

	if ((r = read_file(&cfg, path, 0, err, errlen)) != 0)
		return r;
	r = -1;
	if ((a = pick_account(&cfg, path, name, sender, from_hdr, err,
	    errlen)) == NULL || account_fields(a, path, acct, err,
	    errlen) == -1)
		goto out;
	if (dial_parse(acct->host, &d, e, sizeof(e)) == -1) {
		snprintf(err, errlen, "%s: account %s: host \"%.100s\": %s",
		    path, acct->name, acct->host, e);
		goto out;
	}
	if (d.implicit_tls)
		acct->tls = CLIENT_TLS_IMPLICIT;
	str_lcpy(acct->server, d.host, sizeof(acct->server));
	if (apply_hosts(cf, &cfg, path, d.host, err, errlen) == -1 ||
	    apply_group(cf, a, path, account_skip, err, errlen) == -1)
		goto out;
	r = 0;
out:
	config_destroy(&cfg);
	return r;
}
