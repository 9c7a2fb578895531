/*
 * sendmail: the command programs call to send mail, as /usr/sbin/sendmail
 * (and mailq, newaliases).  The message goes into this host's queue
 * through the maildrop, or, on a host without smtpd, through a smarthost
 * account of smtp.conf.  See sendmail(8).
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>

#include "client/convert.h"
#include "lib/net.h"
#include "queue/envelope.h"
#include "queue/queueconf.h"
#include "sendmail/sendmail.h"

#ifndef SMTPD_CONF
#define SMTPD_CONF	"/etc/smtpd.conf"
#endif

static gid_t	priv_gid, real_gid;
static int	have_priv;

static int	trusted_conf(const char *);
static int	read_message(int, struct str *, int);
static void	build_message(const struct sm_opts *, const char *,
		    const char *, unsigned long long, int, struct sm_msg *);
static int	newaliases(const struct maildrop_conf *, int);

void
sm_die(int status, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "sendmail: %s\n", buf);
	exit(status);
}

void
sm_priv_on(void)
{
	if (have_priv && setegid(priv_gid) == -1)
		sm_die(EX_OSERR, "setegid: %s", strerror(errno));
}

void
sm_priv_off(void)
{
	if (have_priv && setegid(real_gid) == -1)
		sm_die(EX_OSERR, "setegid: %s", strerror(errno));
}

void
sm_priv_drop(void)
{
	if (have_priv && setgid(real_gid) == -1)
		sm_die(EX_OSERR, "setgid: %s", strerror(errno));
	have_priv = 0;
}

void
sm_login(char *buf, size_t len)
{
	struct passwd *pw;

	/* Never $USER: the login decides whose mail this is. */
	if ((pw = getpwuid(getuid())) == NULL)
		sm_die(EX_NOUSER, "uid %lu has no login name",
		    (unsigned long)getuid());
	if (str_lcpy(buf, pw->pw_name, len) >= len)
		sm_die(EX_NOUSER, "login name too long");
}

/*
 * A config named with -C keeps the maildrop group only when its owner is
 * root and nobody else may change it: a user's own file must not set the
 * rules the spool trusts.
 */
static int
trusted_conf(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && st.st_uid == 0 &&
	    (st.st_mode & (S_IWGRP | S_IWOTH)) == 0;
}

/*
 * Reads the message from fd into s: to the end, or, unless iflag, to a
 * line holding a lone dot.  0, -1 read error, -2 over the limit.
 */
static int
read_message(int fd, struct str *s, int iflag)
{
	char buf[65536];
	size_t scan = 0, i;
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
		if (iflag)
			continue;
		/* Look at each whole line once. */
		for (i = scan; i < s->len; i++) {
			if (s->s[i] != '\n')
				continue;
			if ((i - scan == 1 && s->s[scan] == '.') ||
			    (i - scan == 2 && s->s[scan] == '.' &&
			    s->s[scan + 1] == '\r')) {
				s->len = scan;
				s->s[scan] = '\0';
				return 0;
			}
			scan = i + 1;
		}
	}
}

/* Reads, addresses and converts the message on standard input. */
static void
build_message(const struct sm_opts *o, const char *login,
    const char *domain, unsigned long long max, int use_from,
    struct sm_msg *m)
{
	struct conv_opts co;
	struct conv_info ci;
	struct str raw;
	unsigned char rnd[16];
	char msgid[33];
	size_t i, n, cap;
	int r, got;

	memset(m, 0, sizeof(*m));
	str_init(&raw, (size_t)max);
	if ((r = read_message(0, &raw, o->iflag)) == -1)
		sm_die(EX_IOERR, "reading the message: %s", strerror(errno));
	if (r == -2)
		sm_die(EX_DATAERR, "the message is larger than %llu bytes",
		    max);
	sm_header_from(str_cstr(&raw), raw.len, m->from_hdr,
	    sizeof(m->from_hdr));

	/* The sender: -f, else the From: address for a smarthost account
	 * to match, else the user's own address. */
	if (o->sender != NULL) {
		if (conv_envelope_addr(o->sender, domain, m->sender,
		    sizeof(m->sender)) == -1 || (m->sender[0] != '\0' &&
		    !addr_valid_bare(m->sender, 1)))
			sm_die(EX_USAGE, "bad sender address \"%.100s\"",
			    o->sender);
	} else if (use_from && m->from_hdr[0] != '\0')
		str_lcpy(m->sender, m->from_hdr, sizeof(m->sender));
	else if ((size_t)snprintf(m->sender, sizeof(m->sender), "%.64s@%s",
	    login, domain) >= sizeof(m->sender))
		sm_die(EX_CONFIG, "%s@%s: too long an address", login, domain);

	cap = (size_t)o->nrcpts + (o->tflag ? SM_RCPTS_MAX : 0);
	if ((m->addrs = calloc(cap ? cap : 1, sizeof(*m->addrs))) == NULL)
		sm_die(EX_OSERR, "out of memory");
	n = 0;
	for (i = 0; i < (size_t)o->nrcpts; i++) {
		/* "a@b, c@d" as one argument, as mailx may pass. */
		char hdr[SM_ADDR_MAX * 2 + 8];
		int k;

		if ((size_t)snprintf(hdr, sizeof(hdr), "To: %s\n\n",
		    o->rcpts[i]) >= sizeof(hdr) ||
		    (k = sm_header_rcpts(hdr, strlen(hdr), domain,
		    m->addrs + n, cap - n)) <= 0)
			sm_die(EX_USAGE, "bad recipient address \"%.100s\"",
			    o->rcpts[i]);
		n += (size_t)k;
	}
	if (o->tflag) {
		if ((got = sm_header_rcpts(str_cstr(&raw), raw.len, domain,
		    m->addrs + n, cap - n)) == -1)
			sm_die(EX_DATAERR, "too many recipients in the header "
			    "(at most %d), or one too long", SM_RCPTS_MAX);
		n += (size_t)got;
	}
	if (n == 0)
		sm_die(EX_USAGE, "no recipients%s", o->tflag ? " in To:, Cc: "
		    "or Bcc:" : " (name them, or use -t)");
	if ((m->rcpts = calloc(n, sizeof(*m->rcpts))) == NULL)
		sm_die(EX_OSERR, "out of memory");
	m->smtputf8 = addr_has_8bit(m->sender);
	for (i = 0; i < n; i++) {
		if (!addr_valid_bare(m->addrs[i], 0))
			sm_die(EX_USAGE, "bad recipient address \"%.100s\"",
			    m->addrs[i]);
		m->rcpts[i].mailbox = m->addrs[i];
		m->rcpts[i].notify = o->notify;
		m->smtputf8 |= addr_has_8bit(m->addrs[i]);
	}
	m->nrcpts = n;

	if (gnutls_rnd(GNUTLS_RND_NONCE, rnd, sizeof(rnd)) < 0)
		sm_die(EX_OSERR, "no random numbers");
	for (i = 0; i < sizeof(rnd); i++)
		snprintf(msgid + 2 * i, sizeof(msgid) - 2 * i, "%02X", rnd[i]);
	memset(&co, 0, sizeof(co));
	co.sender = m->sender;
	co.domain = domain;
	co.now = time(NULL);
	co.msgid_local = msgid;
	co.fullname = o->fullname;
	str_init(&m->data, (size_t)max * 2 + 65536);
	if (conv_message(str_cstr(&raw), raw.len, &co, &m->data, &ci) == -1)
		sm_die(EX_DATAERR, "the message is too large to convert");
	m->eightbit = ci.eightbit;
	str_free(&raw);
}

/* newaliases: aliases live in smtpd.conf; check them, nothing to build. */
static int
newaliases(const struct maildrop_conf *mc, int smarthost)
{
	struct queue_conf *qc;
	char err[512];

	if (smarthost || !mc->have_file) {
		printf("newaliases: no local queue here; nothing to rebuild\n");
		return EX_OK;
	}
	if ((qc = queueconf_load(mc->file, 0, err, sizeof(err))) == NULL)
		sm_die(EX_CONFIG, "%s", err);
	printf("newaliases: %zu aliases in %s, read as they are; nothing "
	    "to rebuild\n", qc->naliases, mc->file);
	queueconf_unref(&qc);
	return EX_OK;
}

int
main(int argc, char **argv)
{
	struct maildrop_conf mc;
	struct sm_opts o;
	struct sm_msg m;
	char login[256], domain[256], err[512];
	const char *conffile;
	int smarthost, status;

	(void)signal(SIGPIPE, SIG_IGN);
	real_gid = getgid();
	priv_gid = getegid();
	have_priv = priv_gid != real_gid;
	sm_priv_off();

	sm_parse_args(argc, argv, &o);
	sm_login(login, sizeof(login));
	conffile = o.conffile != NULL ? o.conffile : SMTPD_CONF;
	if (o.conffile != NULL && getuid() != 0 && !trusted_conf(conffile))
		sm_priv_drop();
	if (maildrop_conf_load(conffile, &mc, err, sizeof(err)) == -1)
		sm_die(EX_CONFIG, "%s", err);
	smarthost = !mc.have_file || mc.mode == MAILDROP_SMARTHOST ||
	    o.account != NULL;
	if (smarthost)
		sm_priv_drop();
	if (gnutls_global_init() < 0)
		sm_die(EX_SOFTWARE, "cannot initialise GnuTLS");

	switch (o.action) {
	case SM_ALIASES:
		return newaliases(&mc, smarthost);
	case SM_LIST:
		return smarthost ? smarthost_list(login) :
		    local_list(&mc, login);
	case SM_FLUSH:
		return smarthost ? smarthost_flush(login, 0) :
		    local_flush(&mc, login);
	case SM_SMTP:
		if (smarthost)
			sm_die(EX_UNAVAILABLE, "-bs needs this host's queue "
			    "(%s); there is none", conffile);
		return local_smtp(&mc);
	case SM_DELIVER:
		break;
	}
	if (smarthost)
		net_host_name(domain, sizeof(domain));
	else
		str_lcpy(domain, mc.domain, sizeof(domain));
	build_message(&o, login, domain, mc.max_size, smarthost, &m);
	if (smarthost)
		status = smarthost_send(&o, &m, login);
	else
		status = local_submit(&mc, &o, &m, login);
	str_free(&m.data);
	free(m.addrs);
	free(m.rcpts);
	gnutls_global_deinit();
	return status;
}
