/*
 * smtp: sends the message on standard input to destaddr, for sender and
 * the recipients, as Plan 9's upas/smtp does.
 *
 *   smtp [-adfst] [-b busted-mx]... [-C config] [-g gateway] [-h host]
 *        [-o key=value]... [-u user] [.domain] destaddr sender rcpt...
 *
 * The exit status follows sysexits(3); see smtp(1).
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>

#include <ctype.h>
#include <errno.h>
#include <libconfig.h>
#include <limits.h>
#include <netdb.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>

#include "auth/creds.h"
#include "client/client.h"
#include "client/convert.h"
#include "client/dial.h"
#include "client/pin.h"
#include "lib/addr.h"
#include "lib/str.h"

#define SMTP_OPTS		"ab:C:dfg:h:o:stu:"
#define SMTP_OVERRIDES_MAX	64
#define SMTP_RCPTS_MAX		10000
#define DEF_MAX_MESSAGE		(64ULL * 1024 * 1024)
#define DEF_PASSWORD_TIMEOUT	120
#define SMTP_ADDR_MAX		(ADDR_PATH_MAX + 1)

/* Settings from the config file and -o. */
struct smtp_conf {
	char			*keyfile, *netrc, *password_command;
	char			*tls_cafile, *tls_pin;
	int			 tls_verify;
	enum client_tls_policy	 tls_policy;
	char			*sts_cache;
	int			 auth_cleartext;
	enum client_auth_mech	 auth_mech;
	unsigned		 connect_timeout, command_timeout;
	unsigned		 data_timeout, password_timeout;
	unsigned long long	 max_message_size;
};

static void	usage(void) __attribute__((noreturn));
static void	die(int, const char *, ...)
		    __attribute__((format(printf, 2, 3), noreturn));
static int	conf_set(struct smtp_conf *, const char *, const char *,
		    char *, size_t);
static int	conf_apply_group(struct smtp_conf *, config_setting_t *,
		    const char *, const char *, char *, size_t);
static int	conf_load(struct smtp_conf *, const char *, int,
		    const char *, char *, size_t);
static void	my_host_name(char *, size_t);
static void	login_name(char *, size_t);
static int	read_all(int, struct str *);
static int	write_all(int, const char *, size_t);
static int	check_addr(const char *, int);
static void	conf_free(struct smtp_conf *);
static int	conf_host_matches(config_setting_t *, const char *);
static void	die_connect(const struct client_result *, int,
		    const struct dial *) __attribute__((noreturn));

static void
usage(void)
{
	fprintf(stderr, "usage: smtp [-adfst] [-b busted-mx]... [-C config] "
	    "[-g gateway] [-h host] [-o key=value]... [-u user] [.domain] "
	    "destaddr sender rcpt...\n");
	exit(EX_USAGE);
}

static void
die(int status, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(buf))
		n = sizeof(buf) - 1;
	fprintf(stderr, "smtp: %.*s\n", n, buf);
	exit(status);
}

/*
 * The one line for a failed connection, with what to try when the failure
 * suggests it (in smtp's options).
 */
static void
die_connect(const struct client_result *res, int tflag, const struct dial *d)
{
	char tip[256];
	size_t n = strlen(res->text);

	while (n > 0 && (isspace((unsigned char)res->text[n - 1]) ||
	    res->text[n - 1] == '.'))
		n--;
	tip[0] = '\0';
	switch (res->hint) {
	case CLIENT_HINT_IMPLICIT_TLS:
		if (d->kind == DIAL_HOST)
			snprintf(tip, sizeof(tip), "the server may expect "
			    "implicit TLS: try -t");
		break;
	case CLIENT_HINT_PLAIN_SMTP:
		snprintf(tip, sizeof(tip), "%s", tflag ?
		    "try without -t (with -s for STARTTLS)" :
		    "this port takes plain SMTP: try -s on it, or port 587");
		break;
	case CLIENT_HINT_UNKNOWN_CA:
		if (res->peer_pin[0] != '\0')
			snprintf(tip, sizeof(tip), "give its CA with -o "
			    "tls_cafile=FILE, or check the server's key and "
			    "pin it with -o tls_pin=%s", res->peer_pin);
		else
			snprintf(tip, sizeof(tip), "give its CA with -o "
			    "tls_cafile=FILE, or pin the server's key with -o "
			    "tls_pin=...");
		break;
	case CLIENT_HINT_NONE:
		break;
	}
	if (tip[0] != '\0')
		die(res->exit_status, "%s: %.*s; %s", res->host, (int)n,
		    res->text, tip);
	die(res->exit_status, "%s: %.*s", res->host, (int)n, res->text);
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

static void
conf_free(struct smtp_conf *cf)
{
	free(cf->keyfile);
	free(cf->netrc);
	free(cf->password_command);
	free(cf->tls_cafile);
	free(cf->tls_pin);
	free(cf->sts_cache);
	memset(cf, 0, sizeof(*cf));
}

/* One setting, from the file or -o.  0 or -1 with err. */
static int
conf_set(struct smtp_conf *cf, const char *key, const char *v, char *err,
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

/* Applies the scalar settings of a group ("hosts" entries skip "host"). */
static int
conf_apply_group(struct smtp_conf *cf, config_setting_t *g, const char *file,
    const char *skip, char *err, size_t errlen)
{
	config_setting_t *s;
	char val[64], e[256];
	const char *name, *v;
	int i, n = config_setting_length(g);

	for (i = 0; i < n; i++) {
		s = config_setting_get_elem(g, (unsigned)i);
		name = config_setting_name(s);
		if (name == NULL || (skip != NULL && strcmp(name, skip) == 0))
			continue;
		if (strcmp(name, "hosts") == 0 && skip == NULL)
			continue;	/* handled by the caller */
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
		if (conf_set(cf, name, v, e, sizeof(e)) == -1) {
			snprintf(err, errlen, "%s:%d: %s", file,
			    config_setting_source_line(s), e);
			return -1;
		}
	}
	return 0;
}

/* A hosts entry's host: a name or a list of names. */
static int
conf_host_matches(config_setting_t *hn, const char *dest_host)
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

/*
 * Reads the config file: global settings, then those of the "hosts"
 * entries whose host matches dest_host.  0, 1 if the file does not exist
 * (and !must), -1 with err.
 */
static int
conf_load(struct smtp_conf *cf, const char *path, int must,
    const char *dest_host, char *err, size_t errlen)
{
	config_t cfg;
	config_setting_t *hosts, *h, *hn;
	int i, n, r = -1;

	if (access(path, F_OK) == -1 && errno == ENOENT && !must)
		return 1;
	config_init(&cfg);
	if (config_read_file(&cfg, path) != CONFIG_TRUE) {
		if (config_error_type(&cfg) == CONFIG_ERR_FILE_IO)
			snprintf(err, errlen, "%s: cannot read it", path);
		else
			snprintf(err, errlen, "%s:%d: %s",
			    config_error_file(&cfg) ? config_error_file(&cfg) :
			    path, config_error_line(&cfg),
			    config_error_text(&cfg));
		goto out;
	}
	if (conf_apply_group(cf, config_root_setting(&cfg), path, NULL, err,
	    errlen) == -1)
		goto out;
	if ((hosts = config_lookup(&cfg, "hosts")) != NULL) {
		if (!config_setting_is_list(hosts)) {
			snprintf(err, errlen, "%s:%d: hosts: want a list ( { "
			    "host = \"...\"; ... } )", path,
			    config_setting_source_line(hosts));
			goto out;
		}
		n = config_setting_length(hosts);
		for (i = 0; i < n; i++) {
			h = config_setting_get_elem(hosts, (unsigned)i);
			hn = config_setting_is_group(h) ?
			    config_setting_get_member(h, "host") : NULL;
			if (hn == NULL) {
				snprintf(err, errlen, "%s:%d: hosts entries "
				    "need host = \"name\"", path,
				    config_setting_source_line(h));
				goto out;
			}
			if (conf_host_matches(hn, dest_host) &&
			    conf_apply_group(cf, h, path, "host", err,
			    errlen) == -1)
				goto out;
		}
	}
	r = 0;
out:
	config_destroy(&cfg);
	return r;
}

/* $site, else the fully qualified name of this host. */
static void
my_host_name(char *buf, size_t len)
{
	struct addrinfo hints, *ai = NULL;
	const char *site = getenv("site");
	char name[256];

	if (site != NULL && *site != '\0' && str_lcpy(buf, site, len) < len)
		return;
	if (gethostname(name, sizeof(name)) == -1)
		str_lcpy(name, "localhost", sizeof(name));
	name[sizeof(name) - 1] = '\0';
	if (strchr(name, '.') == NULL) {
		memset(&hints, 0, sizeof(hints));
		hints.ai_flags = AI_CANONNAME;
		hints.ai_socktype = SOCK_STREAM;
		if (getaddrinfo(name, NULL, &hints, &ai) == 0 &&
		    ai->ai_canonname != NULL && strchr(ai->ai_canonname, '.'))
			str_lcpy(name, ai->ai_canonname, sizeof(name));
		if (ai != NULL)
			freeaddrinfo(ai);
	}
	str_lcpy(buf, name, len);
}

static void
login_name(char *buf, size_t len)
{
	struct passwd *pw;
	const char *e;

	if ((pw = getpwuid(getuid())) != NULL)
		str_lcpy(buf, pw->pw_name, len);
	else if ((e = getenv("LOGNAME")) != NULL ||
	    (e = getenv("USER")) != NULL)
		str_lcpy(buf, e, len);
	else
		str_lcpy(buf, "unknown", len);
}

/* Reads fd to its end into s.  0, -1 read error, -2 over the limit. */
static int
read_all(int fd, struct str *s)
{
	char buf[65536];
	ssize_t n;

	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		if (n == 0)
			return 0;
		if (str_append(s, buf, (size_t)n) == -1)
			return -2;
	}
}

static int
write_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = write(fd, p, n);
		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* 0 if addr (without <>) is a valid RFC 5321 path; null_ok for MAIL. */
static int
check_addr(const char *addr, int null_ok)
{
	char path[SMTP_ADDR_MAX + 3];
	struct addr a;
	size_t used;
	int n;

	n = snprintf(path, sizeof(path), "<%s>", addr);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -1;
	if (addr_parse_path(path, (size_t)n, ADDR_UTF8_OK |
	    (null_ok ? ADDR_NULL_OK : ADDR_POSTMASTER_OK), &a, &used,
	    NULL) != ADDR_OK || used != (size_t)n)
		return -1;
	return 0;
}

static int
has_8bit(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return 1;
	return 0;
}

int
main(int argc, char **argv)
{
	struct smtp_conf cf;
	struct client_opts o;
	struct client_result res;
	struct client_msg msg;
	struct client_rcpt *rcpts;
	struct client_conn *conn;
	struct conv_opts co;
	struct conv_info ci;
	struct creds cr;
	struct creds_query cq;
	struct dial d, gd;
	struct str raw, out;
	const char *busted[CLIENT_BUSTED_MAX + 1];
	const char *overrides[SMTP_OVERRIDES_MAX];
	const char *conffile = NULL, *gateway = NULL, *hflag = NULL;
	const char *uflag = NULL, *domain = NULL, *dest, *eq, *from = NULL;
	char (*addrs)[SMTP_ADDR_MAX];
	char helo[256], user[256], sender[SMTP_ADDR_MAX], err[512];
	char path[PATH_MAX], keypath[PATH_MAX], netrcpath[PATH_MAX];
	char msgid[33], key[64];
	unsigned char rnd[16];
	int ch, aflag = 0, dflag = 0, fflag = 0, sflag = 0, tflag = 0;
	int nbusted = 0, nover = 0, i, r, nrcpt, status, smtputf8, same;

	(void)signal(SIGPIPE, SIG_IGN);
	memset(&cf, 0, sizeof(cf));
	cf.tls_verify = 1;
	cf.max_message_size = DEF_MAX_MESSAGE;
	cf.password_timeout = DEF_PASSWORD_TIMEOUT;

	while ((ch = getopt(argc, argv, SMTP_OPTS)) != -1) {
		switch (ch) {
		case 'a':
			aflag = 1;
			break;
		case 'b':
			if (nbusted == CLIENT_BUSTED_MAX)
				die(EX_USAGE, "too many -b (at most %d)",
				    CLIENT_BUSTED_MAX);
			busted[nbusted++] = optarg;
			break;
		case 'C':
			conffile = optarg;
			break;
		case 'd':
			dflag = 1;
			break;
		case 'f':
			fflag = 1;
			break;
		case 'g':
			gateway = optarg;
			break;
		case 'h':
			hflag = optarg;
			break;
		case 'o':
			if (nover == SMTP_OVERRIDES_MAX)
				die(EX_USAGE, "too many -o (at most %d)",
				    SMTP_OVERRIDES_MAX);
			overrides[nover++] = optarg;
			break;
		case 's':
			sflag = 1;
			break;
		case 't':
			tflag = 1;
			break;
		case 'u':
			uflag = optarg;
			break;
		default:
			usage();
		}
	}
	busted[nbusted] = NULL;
	argc -= optind;
	argv += optind;
	if (argc > 0 && argv[0][0] == '.') {
		domain = argv[0] + 1;
		if (*domain == '\0')
			usage();
		argc--;
		argv++;
	}
	if (argc < 3)
		usage();
	if (argc - 2 > SMTP_RCPTS_MAX)
		die(EX_USAGE, "too many recipients (at most %d)",
		    SMTP_RCPTS_MAX);
	dest = argv[0];
	if (dial_parse(dest, &d, err, sizeof(err)) == -1)
		die(EX_USAGE, "bad destination \"%.100s\": %s", dest, err);
	if (gateway != NULL && dial_parse(gateway, &gd, err, sizeof(err)) == -1)
		die(EX_USAGE, "bad gateway \"%.100s\": %s", gateway, err);

	/* Settings: the config file, then -o. */
	if (conffile != NULL)
		r = conf_load(&cf, conffile, 1, d.host, err, sizeof(err));
	else {
		const char *x = getenv("XDG_CONFIG_HOME");
		const char *home = getenv("HOME");

		r = 1;
		if (x != NULL && *x == '/')
			snprintf(path, sizeof(path), "%s/smtp/smtp.conf", x);
		else if (home != NULL && *home == '/')
			snprintf(path, sizeof(path),
			    "%s/.config/smtp/smtp.conf", home);
		else
			path[0] = '\0';
		if (path[0] != '\0')
			r = conf_load(&cf, path, 0, d.host, err, sizeof(err));
	}
	if (r == -1)
		die(EX_CONFIG, "%s", err);
	for (i = 0; i < nover; i++) {
		if ((eq = strchr(overrides[i], '=')) == NULL ||
		    (size_t)(eq - overrides[i]) >= sizeof(key)) {
			fprintf(stderr, "smtp: -o wants key=value\n");
			usage();
		}
		memcpy(key, overrides[i], (size_t)(eq - overrides[i]));
		key[eq - overrides[i]] = '\0';
		if (conf_set(&cf, key, eq + 1, err, sizeof(err)) == -1)
			die(EX_USAGE, "-o %s", err);
	}

	if (hflag != NULL)
		str_lcpy(helo, hflag, sizeof(helo));
	else
		my_host_name(helo, sizeof(helo));
	if (domain == NULL)
		domain = helo;
	/* The envelope, qualified as Plan 9 does. */
	nrcpt = argc - 2;
	if ((rcpts = calloc((size_t)nrcpt, sizeof(*rcpts))) == NULL ||
	    (addrs = calloc((size_t)nrcpt, sizeof(*addrs))) == NULL)
		die(EX_OSERR, "out of memory");
	if (conv_envelope_addr(argv[1], domain, sender, sizeof(sender)) == -1 ||
	    (sender[0] != '\0' && check_addr(sender, 1) == -1))
		die(EX_USAGE, "bad sender address \"%.100s\"", argv[1]);
	smtputf8 = has_8bit(sender);
	for (i = 0; i < nrcpt; i++) {
		if (conv_envelope_addr(argv[2 + i], domain, addrs[i],
		    sizeof(addrs[i])) == -1 || addrs[i][0] == '\0' ||
		    check_addr(addrs[i], 0) == -1)
			die(EX_USAGE, "bad recipient address \"%.100s\"",
			    argv[2 + i]);
		rcpts[i].addr = addrs[i];
		smtputf8 |= has_8bit(addrs[i]);
	}

	/* The message, converted. */
	str_init(&raw, (size_t)cf.max_message_size);
	if ((r = read_all(0, &raw)) == -1)
		die(EX_IOERR, "reading the message: %s", strerror(errno));
	if (r == -2)
		die(EX_DATAERR, "the message is larger than max_message_size "
		    "(%llu bytes)", cf.max_message_size);
	if (gnutls_rnd(GNUTLS_RND_NONCE, rnd, sizeof(rnd)) < 0)
		die(EX_OSERR, "no random numbers");
	for (i = 0; i < (int)sizeof(rnd); i++)
		snprintf(msgid + 2 * i, sizeof(msgid) - 2 * (size_t)i, "%02X",
		    rnd[i]);
	memset(&co, 0, sizeof(co));
	co.sender = sender;
	co.domain = domain;
	co.now = time(NULL);
	co.msgid_local = msgid;
	/* CRLF can double the size; the header grows a little. */
	str_init(&out, (size_t)cf.max_message_size * 2 + 65536);
	if (conv_message(str_cstr(&raw), raw.len, &co, &out, &ci) == -1)
		die(EX_DATAERR, "the message is too large to convert");
	str_free(&raw);
	if (fflag) {
		if (write_all(1, str_cstr(&out), out.len) == -1)
			die(EX_IOERR, "writing the message: %s",
			    strerror(errno));
		str_free(&out);
		free(rcpts);
		free(addrs);
		conf_free(&cf);
		return EX_OK;
	}

	memset(&o, 0, sizeof(o));
	o.helo = helo;
	o.tls = tflag ? CLIENT_TLS_IMPLICIT :
	    aflag ? (cf.auth_cleartext ? CLIENT_TLS_OPPORTUNISTIC :
	    CLIENT_TLS_REQUIRE) :
	    sflag ? CLIENT_TLS_OPPORTUNISTIC : CLIENT_TLS_NONE;
	o.tls_verify = cf.tls_verify;
	o.tls_cafile = cf.tls_cafile;
	o.tls_pin = cf.tls_pin;
	o.tls_policy = cf.tls_policy;
	o.sts_cache = cf.sts_cache;
	o.auth_cleartext_ok = cf.auth_cleartext;
	o.auth_mech = cf.auth_mech;
	o.connect_timeout = cf.connect_timeout;
	o.command_timeout = cf.command_timeout;
	o.data_timeout = cf.data_timeout;
	o.debug = dflag;
	o.busted_mx = busted;
	o.gateway = gateway;

	memset(&cr, 0, sizeof(cr));
	if (aflag) {
		memset(&cq, 0, sizeof(cq));
		cq.service = "smtp";
		cq.server = d.host;
		if (cf.keyfile != NULL)
			cq.keyfile = cf.keyfile;
		else if (creds_default_keyfile(keypath, sizeof(keypath)) == 0)
			cq.keyfile = keypath;
		if (cf.netrc != NULL)
			cq.netrc = cf.netrc;
		else if (creds_default_netrc(netrcpath, sizeof(netrcpath)) == 0)
			cq.netrc = netrcpath;
		/* Without -u, the user the stored credentials name. */
		from = "-u";
		if (uflag != NULL)
			str_lcpy(user, uflag, sizeof(user));
		else {
			switch (creds_find_user(&cq, user, sizeof(user),
			    &from, err, sizeof(err))) {
			case CREDS_OK:
				if (dflag)
					fprintf(stderr, "* user %s from the "
					    "%s\n", user, from);
				break;
			case CREDS_ERROR:
				die(EX_CONFIG, "credentials: %s", err);
			case CREDS_NOTFOUND:
				login_name(user, sizeof(user));
				from = NULL;
				break;
			}
		}
		cq.user = user;
		cq.command = cf.password_command;
		cq.command_token = cf.auth_mech == CLIENT_AUTH_XOAUTH2;
		cq.command_timeout = cf.password_timeout;
		switch (creds_lookup(&cq, &cr, err, sizeof(err))) {
		case CREDS_OK:
			break;
		case CREDS_ERROR:
			die(EX_CONFIG, "credentials: %s", err);
		case CREDS_NOTFOUND:
			die(EX_CONFIG, "no password for %s%s at %s: add a key "
			    "to %s, an entry to %s, or set password_command",
			    user, from == NULL ? " (the login name; -u names "
			    "another user)" : "", d.host,
			    cq.keyfile ? cq.keyfile : "the key file",
			    cq.netrc ? cq.netrc : "~/.netrc");
		}
		o.auth_user = user;
		o.auth_secret = cr.secret;
		o.auth_xoauth2 = cr.is_token;
		if (dflag)
			fprintf(stderr, "* secret for %s from the %s\n", user,
			    cr.source);
	}

	if ((conn = client_connect(dest, &o, &res)) == NULL) {
		creds_wipe(&cr);
		die_connect(&res, tflag, &d);
	}
	creds_wipe(&cr);

	memset(&msg, 0, sizeof(msg));
	msg.sender = sender;
	msg.rcpts = rcpts;
	msg.nrcpts = (size_t)nrcpt;
	msg.smtputf8 = smtputf8;
	msg.eightbit = ci.eightbit;
	msg.fd = -1;
	msg.data = str_cstr(&out);
	msg.datalen = out.len;
	status = client_send(conn, &msg, &res);
	client_quit(&conn);
	str_free(&out);

	if (status != EX_OK) {
		/* One line per refused recipient, unless all share one. */
		same = 1;
		for (i = 1; i < nrcpt; i++)
			if (rcpts[i].exit_status != rcpts[0].exit_status ||
			    strcmp(rcpts[i].text, rcpts[0].text) != 0)
				same = 0;
		if (same || nrcpt == 1)
			fprintf(stderr, "smtp: %s: %s\n", res.host, res.text);
		else
			for (i = 0; i < nrcpt; i++) {
				if (rcpts[i].exit_status == EX_OK)
					continue;
				if (rcpts[i].code != 0)
					fprintf(stderr, "smtp: %s: <%s>: %d "
					    "%s\n", res.host, rcpts[i].addr,
					    rcpts[i].code, rcpts[i].text);
				else
					fprintf(stderr, "smtp: %s: <%s>: %s\n",
					    res.host, rcpts[i].addr,
					    rcpts[i].text);
			}
	}
	free(rcpts);
	free(addrs);
	conf_free(&cf);
	return status;
}
