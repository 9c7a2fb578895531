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
#include <limits.h>
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

#include "creds.h"
#include "client/cconf.h"
#include "client/client.h"
#include "client/convert.h"
#include "client/dial.h"
#include "client/pin.h"
#include "client/probe.h"
#include "lib/addr.h"
#include "lib/net.h"
#include "lib/str.h"

#define SMTP_OPTS		"ab:C:dfg:h:o:pstu:"
#define SMTP_OVERRIDES_MAX	64
#define SMTP_RCPTS_MAX		10000
#define SMTP_ADDR_MAX		(ADDR_PATH_MAX + 1)

static void	usage(void) __attribute__((noreturn));
static void	die(int, const char *, ...)
		    __attribute__((format(printf, 2, 3), noreturn));
static void	my_host_name(char *, size_t);
static void	login_name(char *, size_t);
static int	write_all(int, const char *, size_t);
static void	die_connect(const struct client_result *, int,
		    const struct dial *) __attribute__((noreturn));

static void
usage(void)
{
	fprintf(stderr, "usage: smtp [-adfst] [-b busted-mx]... [-C config] "
	    "[-g gateway] [-h host] [-o key=value]... [-u user] [.domain] "
	    "destaddr sender rcpt...\n"
	    "       smtp -p [-dt] [-C config] [-h host] [-o key=value]... "
	    "destaddr\n");
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
	probe_tip(res, tflag, d, tip, sizeof(tip));
	if (tip[0] != '\0')
		die(client_exit_status(res), "%s: %.*s; %s", res->host, (int)n,
		    res->text, tip);
	die(client_exit_status(res), "%s: %.*s", res->host, (int)n, res->text);
}

/* $site, else the fully qualified name of this host. */
static void
my_host_name(char *buf, size_t len)
{
	const char *site = getenv("site");

	if (site != NULL && *site != '\0' && str_lcpy(buf, site, len) < len)
		return;
	net_host_name(buf, len);
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

int
main(int argc, char **argv)
{
	struct cconf cf;
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
	int pflag = 0;
	int nbusted = 0, nover = 0, i, r, nrcpt, status, smtputf8, same;

	(void)signal(SIGPIPE, SIG_IGN);
	cconf_init(&cf);

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
		case 'p':
			pflag = 1;
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
	if ((pflag && (argc != 1 || aflag || fflag || domain != NULL)) ||
	    (!pflag && argc < 3))
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
		r = cconf_load(&cf, conffile, 1, d.host, err, sizeof(err));
	else if (cconf_user_path(path, sizeof(path)) == 0)
		r = cconf_load(&cf, path, 0, d.host, err, sizeof(err));
	else
		r = 1;
	if (r == -1)
		die(EX_CONFIG, "%s", err);
	for (i = 0; i < nover; i++) {
		if (overrides[i] == NULL ||
		    (eq = strchr(overrides[i], '=')) == NULL ||
		    (size_t)(eq - overrides[i]) >= sizeof(key)) {
			fprintf(stderr, "smtp: -o wants key=value\n");
			usage();
		}
		memcpy(key, overrides[i], (size_t)(eq - overrides[i]));
		key[eq - overrides[i]] = '\0';
		if (cconf_set(&cf, key, eq + 1, err, sizeof(err)) == -1)
			die(EX_USAGE, "-o %s", err);
	}

	if (hflag != NULL)
		str_lcpy(helo, hflag, sizeof(helo));
	else
		my_host_name(helo, sizeof(helo));
	if (domain == NULL)
		domain = helo;

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
	if (pflag) {
		status = probe_run(dest, &d, &o, tflag);
		cconf_free(&cf);
		return status;
	}
	/* The envelope, qualified as Plan 9 does. */
	nrcpt = argc - 2;
	if ((rcpts = calloc((size_t)nrcpt, sizeof(*rcpts))) == NULL ||
	    (addrs = calloc((size_t)nrcpt, sizeof(*addrs))) == NULL)
		die(EX_OSERR, "out of memory");
	if (conv_envelope_addr(argv[1], domain, sender, sizeof(sender)) == -1 ||
	    (sender[0] != '\0' && !addr_valid_bare(sender, 1)))
		die(EX_USAGE, "bad sender address \"%.100s\"", argv[1]);
	smtputf8 = addr_has_8bit(sender);
	for (i = 0; i < nrcpt; i++) {
		if (conv_envelope_addr(argv[2 + i], domain, addrs[i],
		    sizeof(addrs[i])) == -1 || addrs[i][0] == '\0' ||
		    !addr_valid_bare(addrs[i], 0))
			die(EX_USAGE, "bad recipient address \"%.100s\"",
			    argv[2 + i]);
		rcpts[i].addr = addrs[i];
		smtputf8 |= addr_has_8bit(addrs[i]);
	}

	/* The message, converted. */
	str_init(&raw, (size_t)cf.max_message_size);
	if ((r = str_read_fd(&raw, 0)) == -1)
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
		cconf_free(&cf);
		return EX_OK;
	}


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
		str_free(&out);
		free(rcpts);
		free(addrs);
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
	(void)client_send(conn, &msg, &res);
	status = client_exit_status(&res);
	client_quit(&conn);
	str_free(&out);

	if (status != EX_OK) {
		/* One line per refused recipient, unless all share one. */
		same = 1;
		for (i = 1; i < nrcpt; i++)
			if (client_rcpt_exit_status(&rcpts[i]) !=
			    client_rcpt_exit_status(&rcpts[0]) ||
			    strcmp(rcpts[i].reply.text,
			    rcpts[0].reply.text) != 0)
				same = 0;
		if (same || nrcpt == 1)
			fprintf(stderr, "smtp: %s: %s\n", res.host, res.text);
		else
			for (i = 0; i < nrcpt; i++) {
				if (client_rcpt_severity(&rcpts[i]) == 0)
					continue;
				if (rcpts[i].reply.code != 0)
					fprintf(stderr, "smtp: %s: <%s>: %d "
					    "%s\n", res.host, rcpts[i].addr,
					    rcpts[i].reply.code,
					    rcpts[i].reply.text);
				else
					fprintf(stderr, "smtp: %s: <%s>: %s\n",
					    res.host, rcpts[i].addr,
					    rcpts[i].reply.text);
			}
	}
	free(rcpts);
	free(addrs);
	cconf_free(&cf);
	return status;
}
