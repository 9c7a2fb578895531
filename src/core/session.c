#include "config.h"

#include <sys/socket.h>

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/crypto.h>

#include "auth/sasl.h"
#include "auth/secrets.h"
#include "auth/senders.h"
#include "auth/throttle.h"
#include "lib/addr.h"
#include "queue/dump.h"
#include "queue/mailer.h"
#include "queue/queueconf.h"
#include "lib/fsutil.h"
#include "lib/lineio.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/net.h"
#include "lib/str.h"
#include "cmdparse.h"
#include "data.h"
#include "guard.h"
#include "proxy.h"
#include "server.h"
#include "session.h"
#include "milter.h"
#include "signing.h"
#include "tls.h"

/* Input buffer: the longest command line (AUTH) and then some. */
#define SESSION_INBUF	(CMD_AUTH_LINE_MAX + 1024)
#define HELO_MAX	255

enum state {
	ST_GREET = 0x01,	/* no HELO/EHLO yet */
	ST_READY = 0x02,	/* may start a transaction */
	ST_MAIL	 = 0x04,	/* MAIL accepted, no recipient yet */
	ST_RCPT	 = 0x08,	/* at least one recipient */
	ST_BDAT	 = 0x10,	/* inside a BDAT transfer */
};
#define ST_ANY	(ST_GREET | ST_READY | ST_MAIL | ST_RCPT | ST_BDAT)

struct session {
	const struct session_conf *conf;
	struct policy	*pol;
	struct lineio	*io;
	char		 id[17];
	char		 peer_addr[NET_ADDRSTR_MAX];
	int		 peer_port;
	char		 peer_name[256];	/* verified reverse name, or "" */
	char		 local_addr[NET_ADDRSTR_MAX];	/* for describe() */
	enum state	 st;
	char		 helo[HELO_MAX + 1];
	int		 esmtp;
	int		 quit;
	enum session_end end;	/* who closed the connection, and why */
	unsigned int	 errors;

	/* The transaction. */
	struct addr	 sender;
	struct mail_params mparams;
	struct spool_rcpt *rcpts;	/* strings owned by the session */
	size_t		 nrcpts, rcptcap;
	struct spool_msg *msg;		/* open while BDAT chunks arrive */
	struct datain	 din;
	struct signing	*sign;		/* DKIM, for trusted senders */
	struct milter_session *milt;	/* content filters, or NULL */
	size_t		 added;		/* bytes of Received: and tags we add */
	int		 bdat_failed;	/* refuse the rest of this transfer */

	struct policy_session ps;
	struct verdict	 hv;		/* what the header checks said */

	struct tls_server *tlss;	/* NULL: no STARTTLS */
	gnutls_session_t tls;		/* once TLS is up */
	struct tls_info	 tlsinfo;
	int		 authenticated;
	char		 auth_user[SASL_USER_MAX + 1];
	/* The listener's settings, or the policy's (listen_flags). */
	int		 auth_offered, auth_required, auth_cleartext;
	char		 auth_mech[24];

	/* Counts for the disconnect line. */
	unsigned int	 n_msgs, n_rcpts, n_cmds;
	unsigned int	 v2_lines;	/* first lines like a PROXY v2 header */
};

struct command {
	enum cmd_verb	 verb;
	unsigned int	 states;	/* where it may be used */
	int		(*fn)(struct session *, struct cmd *);
};

static int	do_helo(struct session *, struct cmd *);
static int	do_ehlo(struct session *, struct cmd *);
static int	do_mail(struct session *, struct cmd *);
static int	do_rcpt(struct session *, struct cmd *);
static int	do_data(struct session *, struct cmd *);
static int	do_bdat(struct session *, struct cmd *);
static int	do_rset(struct session *, struct cmd *);
static int	do_noop(struct session *, struct cmd *);
static int	do_quit(struct session *, struct cmd *);
static int	do_vrfy(struct session *, struct cmd *);
static int	do_expn(struct session *, struct cmd *);
static int	do_help(struct session *, struct cmd *);
static int	do_starttls(struct session *, struct cmd *);
static int	do_auth(struct session *, struct cmd *);

/* The one table that drives the state machine. */
static const struct command commands[] = {
	{ CMD_HELO,	ST_ANY & ~ST_BDAT,	do_helo },
	{ CMD_EHLO,	ST_ANY & ~ST_BDAT,	do_ehlo },
	{ CMD_MAIL,	ST_READY,		do_mail },
	{ CMD_RCPT,	ST_MAIL | ST_RCPT,	do_rcpt },
	{ CMD_DATA,	ST_RCPT,		do_data },
	{ CMD_BDAT,	ST_ANY,			do_bdat },	/* checks itself */
	{ CMD_RSET,	ST_ANY,			do_rset },
	{ CMD_NOOP,	ST_ANY,			do_noop },
	{ CMD_QUIT,	ST_ANY,			do_quit },
	{ CMD_VRFY,	ST_ANY & ~ST_BDAT,	do_vrfy },
	{ CMD_EXPN,	ST_ANY & ~ST_BDAT,	do_expn },
	{ CMD_HELP,	ST_ANY & ~ST_BDAT,	do_help },
	{ CMD_STARTTLS,	ST_GREET | ST_READY,	do_starttls },
	{ CMD_AUTH,	ST_ANY & ~ST_BDAT,	do_auth },	/* checks itself */
	{ CMD_UNKNOWN,	0,			NULL },
};

static void	reply(struct session *, int code, const char *ecode,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void	session_enter(struct session *, enum state);
static void	session_close(struct session *, enum session_end);
static void	reset_transaction(struct session *);
static int	dispatch(struct session *, struct cmd *);
static void	bad_sequence(struct session *, enum cmd_verb);
static int	write_received(struct session *, struct spool_msg *);
static struct spool_msg *begin_message(struct session *);
static void	finish_message(struct session *, enum data_verdict);
static const char *protocol_name(const struct session *);
static void	describe(void *, struct policy_facts *);
static int	reply_verdict(struct session *, const struct verdict *);
static void	auth_reply(struct session *, enum sasl_result);
static void	auth_conf(struct session *, struct sasl_conf *);
static void	tarpit(struct session *);

void
session_new_id(char *buf, size_t len)
{
	static unsigned long long counter;
	unsigned long long r = 0;

	if (gnutls_rnd(GNUTLS_RND_NONCE, &r, sizeof(r)) != 0)
		r = (unsigned long long)time(NULL);
	r ^= __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
	snprintf(buf, len, "%016llx", r);
}

static void
reply(struct session *s, int code, const char *ecode, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (code >= 400) {
		s->errors++;
		metrics_reply_refused(code, ecode);
		log_info("%s smtp reply code=%d status=%s text=\"%s\"", s->id,
		    code, ecode ? ecode : "-", text);
		tarpit(s);
	}
	if (ecode != NULL)
		(void)lineio_printf(s->io, "%d %s %s\r\n", code, ecode, text);
	else
		(void)lineio_printf(s->io, "%d %s\r\n", code, text);
}

/*
 * Slows down a client that keeps making errors: each error past
 * limits.tarpit_after costs limits.tarpit_delay more, up to 10 s a reply.
 */
static void
tarpit(struct session *s)
{
	unsigned long ms;
	struct timespec ts;

	if (s->pol->tarpit_delay == 0 || s->errors <= s->pol->tarpit_after)
		return;
	ms = (unsigned long)s->pol->tarpit_delay * (s->errors - s->pol->tarpit_after);
	if (ms > 10000)
		ms = 10000;
	/* The client should hear what it has earned so far first. */
	(void)lineio_flush(s->io);
	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/*
 * Sends a policy module's answer, which may have several lines.  Returns
 * -1 when the session must end (DROP, or a 421).
 */
static int
reply_verdict(struct session *s, const struct verdict *v)
{
	const char *p, *nl;

	if (v->kind == VERDICT_DROP) {
		log_info("%s smtp dropped by policy", s->id);
		session_close(s, END_POLICY_DROP);
		return -1;
	}
	for (p = v->text; (nl = strchr(p, '\n')) != NULL; p = nl + 1)
		(void)lineio_printf(s->io, "%d-%s %.*s\r\n", v->code, v->status,
		    (int)(nl - p), p);
	reply(s, v->code, v->status[0] ? v->status : NULL, "%s", p);
	if (v->code == 421) {
		session_close(s, END_POLICY_REFUSED);
		return -1;
	}
	return 0;
}

static void
session_enter(struct session *s, enum state st)
{
	if (s->st != st)
		log_debug("%s smtp state %#x -> %#x", s->id, s->st, st);
	/* A BDAT transfer is one piece of message data, chunks and all. */
	if (st == ST_BDAT && s->st != ST_BDAT)
		guard_data_begin(s->io, s->pol);
	else if (st != ST_BDAT && s->st == ST_BDAT)
		guard_data_end(s->io, s->pol);
	s->st = st;
}

/* The session ends after the reply under way; the first reason stays. */
static void
session_close(struct session *s, enum session_end why)
{
	s->quit = 1;
	if (s->end == END_NONE)
		s->end = why;
}

static void
reset_transaction(struct session *s)
{
	size_t i;

	for (i = 0; i < s->nrcpts; i++) {
		free((char *)s->rcpts[i].addr);
		free((char *)s->rcpts[i].notify);
		free((char *)s->rcpts[i].orcpt);
	}
	s->nrcpts = 0;
	memset(&s->sender, 0, sizeof(s->sender));
	memset(&s->mparams, 0, sizeof(s->mparams));
	spool_abort(&s->msg);
	datain_free(&s->din);
	signing_free(&s->sign);
	milter_abort(s->milt);
	s->bdat_failed = 0;
	memset(&s->hv, 0, sizeof(s->hv));
	policy_reset(&s->ps);
	session_enter(s, s->st == ST_GREET ? ST_GREET : ST_READY);
}

/* RFC 3848 and RFC 6531 names for the Received: line. */
static const char *
protocol_name(const struct session *s)
{
	static const char *names[2][4] = {
		{ "ESMTP", "ESMTPS", "ESMTPA", "ESMTPSA" },
		{ "UTF8SMTP", "UTF8SMTPS", "UTF8SMTPA", "UTF8SMTPSA" },
	};

	if (!s->esmtp)
		return "SMTP";
	return names[s->mparams.smtputf8 != 0][(s->tls != NULL) +
	    2 * (s->authenticated != 0)];
}

/* What a policy service may ask about (policy_facts in policy.h). */
static void
describe(void *arg, struct policy_facts *f)
{
	struct session *s = arg;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	f->protocol = protocol_name(s);
	f->client_addr = s->peer_addr;
	f->client_name = f->reverse_name = s->peer_name;
	f->helo = s->helo;
	if (s->authenticated) {
		f->sasl_method = s->auth_mech;
		f->sasl_username = s->auth_user;
	}
	if (s->tls != NULL) {
		f->tls_version = s->tlsinfo.version;
		f->tls_cipher = s->tlsinfo.cipher;
		f->tls_bits = s->tlsinfo.bits;
		if (s->tlsinfo.client_cert) {
			f->ccert_subject = s->tlsinfo.client_subject;
			f->ccert_issuer = s->tlsinfo.client_issuer;
			f->ccert_fingerprint = s->tlsinfo.client_sha256;
		}
	}
	if (getsockname(s->conf->rfd, (struct sockaddr *)&ss, &sl) == 0 &&
	    net_ntop((struct sockaddr *)&ss, s->local_addr,
	    sizeof(s->local_addr), &f->server_port) == 0)
		f->server_addr = s->local_addr;
	f->size = s->msg != NULL ? (long long)(s->added + s->din.size) :
	    s->mparams.size;
	f->nrcpts = s->nrcpts;
	if (s->nrcpts == 1)
		f->rcpt = s->rcpts[0].addr;
	if (s->msg != NULL)
		f->queue_id = spool_msg_id(s->msg);
}

/* Takes the HELO/EHLO argument: one domain or address literal. */
static int
set_helo(struct session *s, struct cmd *c, const char *verb)
{
	char name[HELO_MAX + 1];
	const char *why = "";
	struct verdict v;

	switch (cmd_parse_helo(c->arg, c->arglen, name, sizeof(name), &why)) {
	case 0:
		break;
	case -2:
		reply(s, 501, "5.5.4", "%s name too long", verb);
		return -1;
	default:
		reply(s, 501, "5.5.4", "Syntax: %s hostname (%s)", verb, why);
		return -1;
	}
	if (policy_helo(&s->ps, name, &v) != VERDICT_CONTINUE ||
	    milter_helo(&s->milt, &s->ps, name, &v) != VERDICT_CONTINUE) {
		(void)reply_verdict(s, &v);
		return -1;
	}
	str_lcpy(s->helo, name, sizeof(s->helo));
	reset_transaction(s);
	session_enter(s, ST_READY);
	log_info("%s smtp %s name=%.100s", s->id, verb, s->helo);
	return 0;
}

static int
do_helo(struct session *s, struct cmd *c)
{
	if (set_helo(s, c, "helo") == -1)
		return 0;
	s->esmtp = 0;
	reply(s, 250, NULL, "%s", s->pol->hostname);
	return 0;
}

static int
do_ehlo(struct session *s, struct cmd *c)
{
	struct lineio *io = s->io;

	if (set_helo(s, c, "ehlo") == -1)
		return 0;
	s->esmtp = 1;
	(void)lineio_printf(io, "250-%s Hello %s [%s]\r\n", s->pol->hostname,
	    s->helo, s->peer_addr[0] ? s->peer_addr : "unknown");
	(void)lineio_printf(io, "250-PIPELINING\r\n");
	(void)lineio_printf(io, "250-SIZE %zu\r\n", s->pol->message_size);
	(void)lineio_printf(io, "250-8BITMIME\r\n");
	(void)lineio_printf(io, "250-ENHANCEDSTATUSCODES\r\n");
	(void)lineio_printf(io, "250-SMTPUTF8\r\n");
	(void)lineio_printf(io, "250-DSN\r\n");
	/* RFC 9422; there is no limit of messages a session: no MAILMAX. */
	if (s->pol->recipients > 0)
		(void)lineio_printf(io, "250-LIMITS RCPTMAX=%u\r\n",
		    s->pol->recipients);
	if (s->tlss != NULL && s->tls == NULL)
		(void)lineio_printf(io, "250-STARTTLS\r\n");
	/* RFC 8689 3: offered only once the session is encrypted. */
	if (s->tls != NULL)
		(void)lineio_printf(io, "250-REQUIRETLS\r\n");
	if (s->auth_offered && !s->authenticated) {
		struct sasl_conf sc;
		char mechs[128];

		auth_conf(s, &sc);
		/* No secrets could be loaded: AUTH would only say 454. */
		if ((sc.secrets != NULL || sc.dovecot != NULL) &&
		    sasl_mechlist(&sc, mechs, sizeof(mechs)) > 0)
			(void)lineio_printf(io, "250-AUTH %s\r\n", mechs);
		secrets_unref(&sc.secrets);
	}
	(void)lineio_printf(io, "250 CHUNKING\r\n");
	return 0;
}

/* Answers a MAIL or RCPT argument that did not parse; 1 if it did not. */
static int
path_refused(struct session *s, enum path_status st, const char *why,
    const char *what, const char *bad_addr_status)
{
	switch (st) {
	case PATH_OK:
		return 0;
	case PATH_UTF8:
		reply(s, 553, "5.6.7", "%s", why);
		break;
	case PATH_PARAM_UNKNOWN:
		reply(s, 555, "5.5.4", "%s", why);
		break;
	case PATH_PARAM_SYNTAX:
		reply(s, 501, "5.5.4", "%s", why);
		break;
	default:
		reply(s, 501, bad_addr_status, "Bad %s address syntax: %s", what,
		    why);
		break;
	}
	return 1;
}

static int
do_mail(struct session *s, struct cmd *c)
{
	const char *why = "syntax error";
	enum path_status st;
	struct verdict v;
	char declared[32] = "";
	int allowed;

	st = cmd_parse_mail(c->arg, &s->sender, &s->mparams, &why);
	if (path_refused(s, st, why, "sender", "5.1.7"))
		return 0;
	if (!s->esmtp && (s->mparams.size != -1 || s->mparams.body ||
	    s->mparams.smtputf8 || s->mparams.ret || s->mparams.envid[0] ||
	    s->mparams.auth[0] || s->mparams.requiretls)) {
		reply(s, 555, "5.5.4", "MAIL parameters need EHLO");
		return 0;
	}
	if (s->mparams.requiretls && s->tls == NULL) {
		/* RFC 8689 3: the promise means nothing in the clear. */
		reply(s, 530, "5.7.10", "REQUIRETLS needs an encrypted "
		    "session: STARTTLS first");
		return 0;
	}
	if (s->pol->message_size != 0 && s->mparams.size != -1 &&
	    (unsigned long long)s->mparams.size > s->pol->message_size) {
		reply(s, 552, "5.3.4",
		    "Message size exceeds fixed maximum message size (%zu)",
		    s->pol->message_size);
		return 0;
	}
	if (s->auth_required && !s->authenticated) {
		auth_reply(s, SASL_AUTH_REQUIRED);
		return 0;
	}
	if (s->authenticated && s->pol->auth_senders != NULL &&
	    (allowed = senders_allowed(s->pol->auth_senders, s->auth_user,
	    s->sender.mailbox)) != 1) {
		if (allowed == -1) {
			log_err("%s smtp auth.senders lookup failed for login "
			    "%.100s", s->id, s->auth_user);
			reply(s, 451, "4.3.0", "Sender lookup failed, try "
			    "again later");
			return 0;
		}
		log_info("%s smtp sender <%.256s> refused for login %.100s",
		    s->id, s->sender.mailbox, s->auth_user);
		auth_reply(s, SASL_SENDER_DENIED);
		return 0;
	}
	if (policy_mail(&s->ps, s->sender.mailbox, &v) != VERDICT_CONTINUE ||
	    milter_mail(s->milt, s->sender.mailbox, &v) != VERDICT_CONTINUE) {
		(void)reply_verdict(s, &v);
		policy_reset(&s->ps);
		return 0;
	}
	s->bdat_failed = 0;
	if (s->mparams.size != -1)
		snprintf(declared, sizeof(declared), " size=%lld",
		    s->mparams.size);
	log_info("%s smtp mail from=<%.256s>%s%s%s", s->id,
	    s->sender.mailbox, declared, s->mparams.smtputf8 ? " smtputf8" :
	    "", s->mparams.requiretls ? " requiretls" : "");
	session_enter(s, ST_MAIL);
	reply(s, 250, "2.1.0", "Ok");
	return 0;
}

static int
do_rcpt(struct session *s, struct cmd *c)
{
	const char *why = "syntax error";
	struct verdict v;
	struct addr a;
	struct rcpt_params rp;
	struct spool_rcpt *r;
	char notify[40];
	enum path_status st;

	st = cmd_parse_rcpt(c->arg, s->mparams.smtputf8, &a, &rp, &why);
	if (path_refused(s, st, why, "recipient", "5.1.3"))
		return 0;
	if (s->nrcpts >= s->pol->recipients) {
		reply(s, 452, "4.5.3", "Too many recipients");
		return 0;
	}
	if (policy_rcpt(&s->ps, a.mailbox, &v) != VERDICT_CONTINUE ||
	    milter_rcpt(s->milt, a.mailbox, &v) != VERDICT_CONTINUE) {
		(void)reply_verdict(s, &v);
		return 0;
	}
	/* The mailer gets recipients as arguments: none may look like an option. */
	if (s->conf->mailer != NULL && a.mailbox[0] == '-') {
		reply(s, 553, "5.1.3", "Recipient may not begin with '-'");
		return 0;
	}
	/* A bare <Postmaster> is queued as postmaster@hostname, routable. */
	if (strchr(a.mailbox, '@') == NULL &&
	    (size_t)snprintf(a.mailbox, sizeof(a.mailbox), "postmaster@%s",
	    s->pol->hostname) >= sizeof(a.mailbox)) {
		reply(s, 553, "5.1.3", "hostname too long to qualify "
		    "<Postmaster>, give a domain");
		return 0;
	}
	if (s->nrcpts == s->rcptcap) {
		size_t ncap = s->rcptcap ? s->rcptcap * 2 : 8;
		struct spool_rcpt *n;

		if (ncap > s->pol->recipients)
			ncap = s->pol->recipients;
		if ((n = realloc(s->rcpts, ncap * sizeof(*n))) == NULL) {
			reply(s, 452, "4.3.0", "Out of memory, try again later");
			return 0;
		}
		s->rcpts = n;
		s->rcptcap = ncap;
	}
	r = &s->rcpts[s->nrcpts];
	memset(r, 0, sizeof(*r));
	cmd_notify_string(rp.notify, notify, sizeof(notify));
	if ((r->addr = strdup(a.mailbox)) == NULL ||
	    (rp.notify && (r->notify = strdup(notify)) == NULL) ||
	    (rp.orcpt[0] && (r->orcpt = strdup(rp.orcpt)) == NULL)) {
		free((char *)r->addr);
		free((char *)r->notify);
		reply(s, 452, "4.3.0", "Out of memory, try again later");
		return 0;
	}
	s->nrcpts++;
	s->n_rcpts++;
	log_info("%s smtp rcpt to=<%.256s>", s->id, a.mailbox);
	session_enter(s, ST_RCPT);
	reply(s, 250, "2.1.5", "Ok");
	return 0;
}

/* RFC 5321 4.4 trace field. */
static int
write_received(struct session *s, struct spool_msg *m)
{
	char date[64], helo[HELO_MAX * 4 + 1];
	struct str r;
	int rc;

	fs_rfc5322_date(date, sizeof(date), time(NULL));
	str_printable(helo, sizeof(helo), s->helo, strlen(s->helo));
	str_init(&r, 4096);
	/* RFC 5321 4.1.3: an IPv6 address literal is tagged. */
	(void)str_appendf(&r, "Received: from %s (%s [%s%s])\r\n", helo,
	    s->peer_name[0] ? s->peer_name : "unknown",
	    strchr(s->peer_addr, ':') != NULL ? "IPv6:" : "",
	    s->peer_addr[0] ? s->peer_addr : "unknown");
	if (s->tls != NULL)
		(void)str_appendf(&r, "\t(using %s)\r\n", s->tlsinfo.desc);
	(void)str_appendf(&r, "\tby %s with %s id %s", s->pol->hostname,
	    protocol_name(s), spool_msg_id(m));
	if (s->nrcpts == 1)
		(void)str_appendf(&r, "\r\n\tfor <%s>", s->rcpts[0].addr);
	rc = str_appendf(&r, "; %s\r\n", date);
	if (rc == 0)
		rc = spool_write(m, r.s, r.len);
	s->added = r.len;
	str_free(&r);
	return rc;
}

/* The header is complete: the policy may tag or refuse the message. */
static void
header_checks(void *arg, const char *hdr, size_t len, struct str *tags)
{
	struct session *s = arg;
	size_t before = tags->len;

	(void)policy_headers(&s->ps, hdr, len, tags, &s->hv);
	s->added += tags->len - before;
}

static struct spool_msg *
begin_message(struct session *s)
{
	struct spool_envelope env;
	struct spool_msg *m;

	memset(&env, 0, sizeof(env));
	env.sender = s->sender.mailbox;
	env.rcpts = s->rcpts;
	env.nrcpts = s->nrcpts;
	env.ret = s->mparams.ret == RET_FULL ? "FULL" :
	    s->mparams.ret == RET_HDRS ? "HDRS" : NULL;
	env.envid = s->mparams.envid[0] ? s->mparams.envid : NULL;
	env.auth = s->authenticated ? s->auth_user : NULL;
	env.helo = s->helo;
	env.peer_addr = s->peer_addr[0] ? s->peer_addr : NULL;
	env.peer_name = s->peer_name[0] ? s->peer_name : NULL;
	env.protocol = protocol_name(s);
	env.body = s->mparams.body == BODY_8BITMIME ? "8BITMIME" :
	    s->mparams.body == BODY_7BIT ? "7BIT" : NULL;
	env.smtputf8 = s->mparams.smtputf8;
	env.requiretls = s->mparams.requiretls;
	env.arrival = time(NULL);
	if ((m = spool_begin(s->conf->spool, &env)) == NULL) {
		log_err("%s smtp spool: cannot start a message: %s", s->id,
		    strerror(errno));
		return NULL;
	}
	if (write_received(s, m) == -1) {
		log_err("%s smtp spool: write: %s", s->id, strerror(errno));
		spool_abort(&m);
		return NULL;
	}
	datain_init(&s->din, m, s->pol->message_size, s->pol->line_length,
	    s->pol->header_size, s->pol->bare_newline == BARE_NEWLINE_REJECT ?
	    DATA_LF_REJECT : DATA_LF_NORMALIZE, header_checks, s);
	signing_free(&s->sign);
	if ((s->sign = signing_start(s->pol, &s->ps, s->sender.mailbox,
	    s->id)) != NULL)
		datain_tap(&s->din, signing_feed, s->sign);
	milter_data(s->milt, &s->din, spool_msg_id(m));
	return m;
}

/*
 * -m: Plan 9's synchronous hand-off.  The mailer gets the message with a
 * Unix "From " line naming the sender and LF line ends, as upas/send
 * wants it, and its exit decides the reply.
 */
static void
hand_off(struct session *s)
{
	char reply_text[512], buf[16384], date[64], tmpl[] = "/tmp/smtpd-mXXXXXX";
	const struct qc_user *mu = &s->pol->queue->mailer_user;
	const char **rcpts;
	struct tm tm;
	time_t now = time(NULL);
	ssize_t n;
	size_t i;
	int in = -1, out = -1, code, cr = 0;
	FILE *f = NULL;

	if (mu->name[0] == '\0' && geteuid() == 0) {
		log_err("%s smtp mailer not run: queue.mailer_user does not "
		    "exist", s->id);
		reply(s, 451, "4.3.0", "Local delivery is not available, try "
		    "again later");
		return;
	}
	if ((rcpts = calloc(s->nrcpts, sizeof(*rcpts))) == NULL)
		goto fail;
	for (i = 0; i < s->nrcpts; i++)
		rcpts[i] = s->rcpts[i].addr;
	if ((in = spool_msg_read_fd(s->msg)) == -1 ||
	    (out = mkstemp(tmpl)) == -1)
		goto fail;
	(void)unlink(tmpl);
	if ((f = fdopen(out, "w+")) == NULL)
		goto fail;
	out = -1;
	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a %b %e %H:%M:%S %Y", &tm);
	fprintf(f, "From %s %s\n", s->sender.mailbox[0] ? s->sender.mailbox :
	    "MAILER-DAEMON", date);
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		for (i = 0; i < (size_t)n; i++) {
			/* CR LF becomes LF; nothing else changes. */
			if (cr && buf[i] != '\n')
				putc('\r', f);
			cr = buf[i] == '\r';
			if (!cr)
				putc(buf[i], f);
		}
	}
	if (n == -1 || fflush(f) == EOF || fseek(f, 0, SEEK_SET) == -1)
		goto fail;
	code = mailer_handoff(s->conf->mailer, rcpts, s->nrcpts, fileno(f),
	    mu->name[0] ? &mu->cred : NULL, s->pol->data_timeout, reply_text, sizeof(reply_text));
	log_info("%s smtp mailer %s answered: %s", s->id, s->conf->mailer,
	    reply_text);
	if (code == 250)
		s->n_msgs++;
	/* reply_text is "CODE STATUS text" */
	(void)lineio_printf(s->io, "%s\r\n", reply_text);
	if (code >= 400)
		s->errors++;
	goto out;
fail:
	log_err("%s smtp cannot hand the message to %s: %s", s->id,
	    s->conf->mailer, strerror(errno));
	reply(s, 451, "4.3.0", "We're busy right now, try later");
out:
	if (f != NULL)
		fclose(f);
	if (out != -1)
		close(out);
	if (in != -1)
		close(in);
	free(rcpts);
}

/* Policy said no after the data: keep a copy if asked to, and answer. */
static void
refuse_message(struct session *s, const struct verdict *v)
{
	char path[PATH_MAX];
	struct verdict copy = *v;

	/* Only refusals: a delayed (4xx) message will be sent again. */
	if (s->msg != NULL && copy.kind != VERDICT_DROP && copy.code >= 500 &&
	    (copy.save || s->pol->saveblockedmsg)) {
		if (spool_save(&s->msg, s->pol->dump, s->pol->dump_size, path,
		    sizeof(path)) == 0)
			log_info("%s smtp refused message saved in %s", s->id, path);
		else
			log_err("%s smtp cannot save refused message: %s", s->id,
			    strerror(errno));
		if (dump_prune(s->pol->dump, s->pol->dump_max_age,
		    s->pol->dump_max_total, 0) == -1)
			log_err("%s smtp cannot prune %s: %s", s->id,
			    s->pol->dump, strerror(errno));
	}
	spool_abort(&s->msg);
	(void)reply_verdict(s, &copy);
	reset_transaction(s);
}

/*
 * What policy services asked for once the data ended: header lines that
 * go in front, and the hold mark.  0 or -1 (the message cannot be kept).
 */
static int
seal_message(struct session *s)
{
	const char *late;
	size_t n;

	late = policy_late_headers(&s->ps, &n);
	if (n > 0) {
		if (spool_insert(s->msg, late, n) == -1)
			return -1;
		s->added += n;
	}
	/* Signed last, so the signature covers those lines too, on top. */
	if (s->sign != NULL && signing_finish(s->sign, s->msg, &s->added) == -1)
		return -1;
	if (s->ps.hold && spool_hold(s->msg) == -1)
		return -1;
	return 0;
}

/* Milters changed the message: the signature is made over the new one. */
static int
resign(struct session *s)
{
	if (!milter_rewrote(s->milt))
		return 0;
	signing_free(&s->sign);
	if ((s->sign = signing_start(s->pol, &s->ps, s->sender.mailbox,
	    s->id)) == NULL)
		return 0;
	return milter_retap(s->milt, s->msg, signing_feed, s->sign);
}

/* The reply to the end of a message; the transaction is over either way. */
static void
finish_message(struct session *s, enum data_verdict v)
{
	char id[SPOOL_ID_LEN + 1];
	struct timespec t0, t1;
	struct verdict mv;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (v == DATA_OK && s->hv.kind == VERDICT_CONTINUE)
		(void)policy_data_end(&s->ps, &s->hv);
	if (v == DATA_OK && (s->hv.kind == VERDICT_CONTINUE ||
	    s->hv.kind == VERDICT_TAG)) {
		if (milter_eom(s->milt, &s->msg, &s->added, &mv) == -1)
			v = DATA_WRITE_ERROR;
		else if (mv.kind != VERDICT_CONTINUE)
			s->hv = mv;
		else if (s->sign != NULL && resign(s) == -1)
			v = DATA_WRITE_ERROR;
	}
	if (v == DATA_OK && s->hv.kind != VERDICT_CONTINUE &&
	    s->hv.kind != VERDICT_ACCEPT && s->hv.kind != VERDICT_TAG) {
		refuse_message(s, &s->hv);
		return;
	}
	if (v == DATA_OK && s->conf->mailer != NULL) {
		hand_off(s);
		spool_abort(&s->msg);
		reset_transaction(s);
		return;
	}
	if (v == DATA_OK && s->ps.discard) {
		/* A policy service said so: the client hears it went well. */
		log_info("%s smtp discarded id=%s from=<%.256s> nrcpt=%zu",
		    s->id, spool_msg_id(s->msg), s->sender.mailbox, s->nrcpts);
		reply(s, 250, "2.0.0", "Ok: queued as %s", spool_msg_id(s->msg));
		spool_abort(&s->msg);
		reset_transaction(s);
		return;
	}
	if (v == DATA_OK && seal_message(s) == -1) {
		log_err("%s smtp spool: %s", s->id, strerror(errno));
		v = DATA_WRITE_ERROR;
	}
	switch (v) {
	case DATA_OK:
		str_lcpy(id, spool_msg_id(s->msg), sizeof(id));
		if (spool_commit(&s->msg) == -1) {
			int e = errno;

			log_err("%s smtp spool: commit failed: %s", s->id,
			    strerror(e));
			if (e == ENOSPC || e == EDQUOT || e == EFBIG)
				reply(s, 452, "4.3.1", "Insufficient system "
				    "storage, try again later");
			else
				reply(s, 451, "4.3.0", "Queue file write "
				    "error, try again later");
			break;
		}
		s->n_msgs++;
		metrics_message_accepted();
		clock_gettime(CLOCK_MONOTONIC, &t1);
		metrics_accept_latency((double)(t1.tv_sec - t0.tv_sec) +
		    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
		/* The size as stored (as smtpq list shows it). */
		log_info("%s smtp queued id=%s from=<%.256s> nrcpt=%zu "
		    "size=%zu%s", s->id, id, s->sender.mailbox, s->nrcpts, s->added +
		    s->din.size, s->ps.hold ? " hold" : "");
		reply(s, 250, "2.0.0", "Ok: queued as %s", id);
		break;
	case DATA_BARE_NEWLINE:
		reply(s, 550, "5.5.2", "Message refused: bare CR or LF in "
		    "data (lines must end with CRLF)");
		break;
	case DATA_SMUGGLING:
		reply(s, 550, "5.5.2", "Message refused: a \".\" line next to "
		    "a bare LF (SMTP smuggling)");
		break;
	case DATA_TOO_BIG:
		reply(s, 552, "5.3.4", "Message size exceeds fixed maximum "
		    "message size (%zu)", s->pol->message_size);
		break;
	case DATA_LOOP:
		reply(s, 554, "5.4.6", "Too many Received headers: mail loop");
		break;
	case DATA_LONG_LINE:
		reply(s, 550, "5.6.0", "Message refused: a line is longer "
		    "than %zu octets", s->pol->line_length);
		break;
	case DATA_WRITE_ERROR:
		log_err("%s smtp spool: write failed", s->id);
		reply(s, 452, "4.3.1", "Insufficient system storage, "
		    "try again later");
		break;
	}
	spool_abort(&s->msg);
	reset_transaction(s);
}

/* The client went away or went silent in the middle of a message. */
static void
data_lost(struct session *s, const char *what, int r)
{
	int timedout = r == -1 && errno == ETIMEDOUT;

	log_info("%s smtp lost connection in %s: %s", s->id, what,
	    r == 0 ? "eof" : strerror(errno));
	spool_abort(&s->msg);
	if (timedout)
		reply(s, 421, "4.4.2", "%s %s", s->pol->hostname,
		    guard_timeout_text(s->io));
}

static int
do_data(struct session *s, struct cmd *c)
{
	char *p;
	size_t len;
	int eol, r, end = 0;

	if (c->arglen != 0) {
		reply(s, 501, "5.5.4", "Syntax: DATA");
		return 0;
	}
	if ((s->msg = begin_message(s)) == NULL) {
		reply(s, 451, "4.3.0", "Cannot queue the message now, "
		    "try again later");
		return 0;
	}
	reply(s, 354, NULL, "End data with <CR><LF>.<CR><LF>");
	guard_data_begin(s->io, s->pol);
	while (!end) {
		r = lineio_getchunk(s->io, &p, &len, &eol);
		if (r <= 0) {
			data_lost(s, "DATA", r);
			return -1;
		}
		/* A chunk stops at its first LF: the end is its last byte. */
		(void)datain_data(&s->din, p, len, &end);
	}
	guard_data_end(s->io, s->pol);
	finish_message(s, datain_finish(&s->din));
	return 0;
}

/* Reads and throws away a chunk the client sends whatever we answer. */
static int
skip_chunk(struct session *s, unsigned long long n)
{
	char *p;
	size_t got;

	while (n > 0) {
		if (lineio_read(s->io, &p, &got, n > 65536 ? 65536 : (size_t)n) <= 0)
			return -1;
		n -= got;
	}
	return 0;
}

static int
do_bdat(struct session *s, struct cmd *c)
{
	unsigned long long size, left;
	char *p;
	size_t got;
	int last, r;

	if (cmd_parse_bdat(c->arg, &size, &last) == -1) {
		/* Without a size we cannot find the next command: give up. */
		reply(s, 501, "5.5.4", "Syntax: BDAT size [LAST]");
		session_close(s, END_BDAT_ERROR);
		return 0;
	}
	lineio_set_timeout(s->io, (int)s->pol->data_timeout * 1000);
	if (!(s->st & (ST_RCPT | ST_BDAT)) || s->bdat_failed) {
		if (skip_chunk(s, size) == -1)
			return -1;
		lineio_set_timeout(s->io, (int)s->pol->command_timeout * 1000);
		if (s->bdat_failed)
			reply(s, 503, "5.5.1", "Transfer already failed, send RSET");
		else
			bad_sequence(s, CMD_BDAT);
		return 0;
	}
	if (s->st == ST_RCPT) {
		if ((s->msg = begin_message(s)) == NULL) {
			if (skip_chunk(s, size) == -1)
				return -1;
			s->bdat_failed = 1;
			reply(s, 451, "4.3.0", "Cannot queue the message now, "
			    "try again later");
			return 0;
		}
		session_enter(s, ST_BDAT);
	}
	for (left = size; left > 0; left -= got) {
		if ((r = lineio_read(s->io, &p, &got,
		    left > 65536 ? 65536 : (size_t)left)) <= 0) {
			data_lost(s, "BDAT", r);
			return -1;
		}
		datain_bdat(&s->din, p, got);
	}
	lineio_set_timeout(s->io, (int)s->pol->command_timeout * 1000);
	if (last) {
		finish_message(s, datain_finish(&s->din));
		return 0;
	}
	if (s->din.verdict != DATA_OK) {
		/* RFC 3030 2: a failed chunk ends the transfer. */
		enum data_verdict v = s->din.verdict;

		finish_message(s, v);
		s->bdat_failed = 1;
		return 0;
	}
	reply(s, 250, "2.0.0", "%llu octets received", size);
	return 0;
}


/* The reply for an AUTH-related outcome, from the one table in sasl.c. */
static void
auth_reply(struct session *s, enum sasl_result r)
{
	struct sasl_reply rep;

	sasl_reply_for(r, &rep);
	reply(s, rep.code, rep.ecode, "%s", rep.text);
}

/* What AUTH may offer on this connection now.  Caller unrefs secrets. */
static void
auth_conf(struct session *s, struct sasl_conf *sc)
{
	char err[512];

	memset(sc, 0, sizeof(*sc));
	if (s->pol->auth_dovecot[0] != '\0')
		sc->dovecot = s->pol->auth_dovecot;
	/* Picks up a changed file; a broken one is reported once. */
	else if (secrets_refresh(s->pol->auth_secrets, err,
	    sizeof(err)) == -1)
		log_err("%s auth: %s", s->id, err);
	if (sc->dovecot == NULL)
		sc->secrets = secrets_current();
	sc->flags = (s->tls != NULL ? SASL_F_TLS : 0) |
	    (s->auth_cleartext ? SASL_F_CLEARTEXT : 0);
	sc->mechs = s->pol->auth_mechs;
	sc->hostname = s->pol->hostname;
}

/* Waits ms milliseconds (an AUTH failure's delay). */
static void
pause_ms(unsigned int ms)
{
	struct timespec ts;

	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* Logs the start and end of the global AUTH lock-out. */
static void
auth_news(struct session *s, struct throttle *th)
{
	const struct throttle_conf *tc = &s->pol->auth_throttle;
	unsigned int n;

	switch (throttle_news(th, &n)) {
	case THROTTLE_NEWS_GLOBAL_START:
		log_warn("%s auth global lock-out started: failures from %u "
		    "networks within %u s; AUTH refused to every client for "
		    "%u s", s->id, n, tc->global_window, tc->global_block);
		break;
	case THROTTLE_NEWS_GLOBAL_END:
		log_warn("%s auth global lock-out ended", s->id);
		break;
	default:
		break;
	}
}

static int
do_auth(struct session *s, struct cmd *c)
{
	const struct sockaddr *peer = (const struct sockaddr *)&s->conf->peer;
	struct throttle *th = s->conf->throttle;
	char mech[SASL_MECH_MAX + 1], user[SASL_USER_MAX * 4 + 1];
	struct sasl_conf sc;
	struct sasl_reply rep;
	struct sasl *sa = NULL;
	enum sasl_result r;
	enum throttle_state ts = THROTTLE_OK;
	const char *ir;
	unsigned int left, delay = 0;
	char *line;
	size_t len;
	int n, blocked = 0, late = 0;

	if (!s->auth_offered) {
		reply(s, 502, "5.5.1", "Error: authentication not enabled");
		return 0;
	}
	if (!s->esmtp) {
		reply(s, 503, "5.5.1", "Error: send EHLO first");
		return 0;
	}
	if (s->authenticated) {
		auth_reply(s, SASL_ALREADY);
		return 0;
	}
	if (s->st & (ST_MAIL | ST_RCPT | ST_BDAT)) {
		auth_reply(s, SASL_IN_TRANSACTION);
		return 0;
	}
	if (sasl_split(c->arg, mech, sizeof(mech), &ir) == -1) {
		auth_reply(s, SASL_SYNTAX);
		return 0;
	}
	/* The attempt counts before any password is checked. */
	if (th != NULL) {
		ts = throttle_reserve(th, peer, throttle_now(), &left);
		auth_news(s, th);
	}
	if (ts == THROTTLE_ERROR) {
		log_err("%s auth refused: the AUTH throttle state is unusable",
		    s->id);
		auth_reply(s, SASL_TEMPFAIL);
		return 0;
	}
	if (ts != THROTTLE_OK) {
		log_info("%s auth refused: too many failures from %s", s->id,
		    s->peer_addr);
		auth_reply(s, SASL_BLOCKED);
		session_close(s, END_AUTH_BLOCKED);
		return 0;
	}
	auth_conf(s, &sc);
	r = sasl_start(&sa, mech, ir, &sc, &rep);
	while (r == SASL_CONTINUE) {
		(void)lineio_printf(s->io, "334 %s\r\n", rep.text);
		n = lineio_getline(s->io, &line, &len);
		if (n == 0 || n == -1) {
			if (th != NULL)
				(void)throttle_release(th, peer,
				    throttle_now());
			sasl_free(&sa);
			secrets_unref(&sc.secrets);
			return -1;
		}
		if (n == -2) {
			r = SASL_TOO_LONG;
			sasl_reply_for(r, &rep);
			break;
		}
		r = sasl_step(sa, line, len, &rep);
		/* The line held a password: leave nothing of it behind. */
		str_wipe(line, len);
	}
	str_printable(user, sizeof(user), sa ? sasl_user(sa) : "",
	    sa ? strlen(sasl_user(sa)) : 0);
	/*
	 * Blocked while this exchange ran: a right guess is no way in, and
	 * its answer must not stand out from the failures around it.
	 */
	if (r == SASL_OK && th != NULL &&
	    throttle_success(th, peer, throttle_now())) {
		log_info("%s auth refused user=%.100s: too many failures from "
		    "%s (right password, answered as a failure)", s->id, user,
		    s->peer_addr);
		r = SASL_FAIL;
		late = 1;
	}
	if (r == SASL_FAIL) {
		delay = th != NULL ? throttle_fail(th, peer, throttle_now(),
		    &blocked) : 1000;
		metrics_auth(0);
		if (!late)
			log_info("%s auth failed user=%.100s mechanism=%s "
			    "address=%s reason=\"%s\"", s->id, user,
			    sa ? sasl_mech(sa) : mech, s->peer_addr,
			    sa ? sasl_why(sa) : "");
		sasl_reply_for(blocked ? SASL_BLOCKED : SASL_FAIL, &rep);
		if (blocked)
			session_close(s, END_AUTH_BLOCKED);
	} else if (r == SASL_NO_SECRET) {
		/* Not a wrong password, but it waits like one. */
		delay = th != NULL ? throttle_release(th, peer,
		    throttle_now()) : 1000;
		log_info("%s auth unusable user=%.100s mechanism=%s address=%s "
		    "reason=\"%s\"", s->id, user, sasl_mech(sa), s->peer_addr,
		    sasl_why(sa));
	} else if (r == SASL_OK) {
		str_lcpy(s->auth_user, sasl_user(sa), sizeof(s->auth_user));
		str_lcpy(s->auth_mech, sasl_mech(sa), sizeof(s->auth_mech));
		s->authenticated = 1;
		policy_session_trust(&s->ps, 1);
		metrics_auth(1);
		policy_session_login(&s->ps, s->auth_user);
		log_info("%s auth ok user=%.100s mechanism=%s", s->id, user,
		    sasl_mech(sa));
	} else if (th != NULL)
		(void)throttle_release(th, peer, throttle_now());
	if (th != NULL)
		auth_news(s, th);
	if (delay > 0) {
		(void)lineio_flush(s->io);
		pause_ms(delay);
	}
	reply(s, rep.code, rep.ecode, "%s", rep.text);
	sasl_free(&sa);
	secrets_unref(&sc.secrets);
	return 0;
}

/* Brings TLS up on the connection; -1 ends the session. */
static int
start_tls(struct session *s)
{
	char err[512];

	if (tls_handshake(s->tlss, s->conf->rfd, s->conf->wfd,
	    (int)s->pol->tls_handshake_timeout * 1000, &s->tls, err,
	    sizeof(err)) == -1) {
		log_info("%s smtp TLS handshake failed: %s", s->id, err);
		s->tls = NULL;
		s->end = END_TLS_FAILED;
		return -1;
	}
	lineio_set_tls(s->io, s->tls);
	if (tls_session_info(s->tls, &s->tlsinfo) == -1)
		str_lcpy(s->tlsinfo.desc, "TLS", sizeof(s->tlsinfo.desc));
	log_info("%s smtp tls %s%s%s%s", s->id, s->tlsinfo.desc,
	    s->tlsinfo.client_cert ? (s->tlsinfo.client_verified ?
	    " client certificate verified: " : " client certificate NOT "
	    "verified: ") : "", s->tlsinfo.client_subject,
	    s->tlsinfo.client_cert && !s->tlsinfo.client_verified ?
	    s->tlsinfo.client_error : "");
	if (s->tlsinfo.client_verified && s->pol->tls_client_cert_trusted)
		policy_session_trust(&s->ps, 0);
	return 0;
}

static int
do_starttls(struct session *s, struct cmd *c)
{
	if (c->arglen != 0) {
		reply(s, 501, "5.5.4", "Syntax: STARTTLS");
		return 0;
	}
	if (s->tls != NULL) {
		reply(s, 503, "5.5.1", "Error: TLS already active");
		return 0;
	}
	if (s->tlss == NULL) {
		if (s->pol->tls_certificate[0] != '\0' &&
		    !(s->conf->listen_flags & LISTEN_NO_STARTTLS))
			reply(s, 454, "4.7.0", "TLS not available due to "
			    "local problem");
		else
			reply(s, 502, "5.5.1", "Error: command not implemented");
		return 0;
	}
	/*
	 * Anything sent after STARTTLS but before the handshake would be
	 * taken as coming over TLS (CVE-2011-0411): refuse the connection.
	 */
	if (lineio_pending(s->io) > 0) {
		log_info("%s smtp commands pipelined after STARTTLS: "
		    "possible injection, closing", s->id);
		reply(s, 554, "5.5.1", "Error: commands sent after STARTTLS "
		    "before the handshake");
		session_close(s, END_STARTTLS_INJECTION);
		return 0;
	}
	reply(s, 220, "2.0.0", "Ready to start TLS");
	if (lineio_flush(s->io) == -1 || start_tls(s) == -1)
		return -1;
	/* RFC 3207 4.2: forget all that the client said before. */
	reset_transaction(s);
	s->helo[0] = '\0';
	s->esmtp = 0;
	s->authenticated = 0;
	s->auth_user[0] = '\0';
	s->ps.authenticated = 0;
	s->ps.trusted = s->ps.peer.ss_family != AF_UNSPEC &&
	    policy_trusted_peer(s->pol, (struct sockaddr *)&s->ps.peer);
	if (s->tlsinfo.client_verified && s->pol->tls_client_cert_trusted)
		policy_session_trust(&s->ps, 0);
	session_enter(s, ST_GREET);
	return 0;
}

static int
do_rset(struct session *s, struct cmd *c)
{
	reset_transaction(s);
	reply(s, 250, "2.0.0", "Ok");
	return 0;
}

static int
do_noop(struct session *s, struct cmd *c)
{
	reply(s, 250, "2.0.0", "Ok");
	return 0;
}

static int
do_quit(struct session *s, struct cmd *c)
{
	reply(s, 221, "2.0.0", "%s closing connection", s->pol->hostname);
	session_close(s, END_QUIT);
	return 0;
}

static int
do_vrfy(struct session *s, struct cmd *c)
{
	if (c->arglen == 0) {
		reply(s, 501, "5.5.4", "Syntax: VRFY address");
		return 0;
	}
	/* RFC 5321 3.5.3: no verification, but no refusal either. */
	reply(s, 252, "2.5.2", "Cannot VRFY user, but will accept message "
	    "and attempt delivery");
	return 0;
}

static int
do_expn(struct session *s, struct cmd *c)
{
	reply(s, 502, "5.5.1", "EXPN not available");
	return 0;
}

static int
do_help(struct session *s, struct cmd *c)
{
	(void)lineio_printf(s->io, "214-2.0.0 Commands:\r\n"
	    "214-2.0.0   HELO EHLO MAIL RCPT DATA BDAT\r\n"
	    "214-2.0.0   RSET NOOP QUIT HELP VRFY STARTTLS AUTH\r\n"
	    "214 2.0.0 End of HELP info\r\n");
	return 0;
}

static void
bad_sequence(struct session *s, enum cmd_verb v)
{
	switch (s->st) {
	case ST_GREET:
		reply(s, 503, "5.5.1", "Error: send HELO/EHLO first");
		return;
	case ST_BDAT:
		reply(s, 503, "5.5.1", "Error: %s not allowed during BDAT "
		    "transfer", cmd_name(v));
		return;
	default:
		break;
	}
	switch (v) {
	case CMD_MAIL:
		reply(s, 503, "5.5.1", "Error: nested MAIL command");
		break;
	case CMD_RCPT:
		reply(s, 503, "5.5.1", "Error: need MAIL command");
		break;
	case CMD_DATA:
	case CMD_BDAT:
		if (s->st == ST_MAIL)
			reply(s, 503, "5.5.1", "Error: no valid recipients");
		else
			reply(s, 503, "5.5.1", "Error: need MAIL command");
		break;
	default:
		reply(s, 503, "5.5.1", "Error: bad sequence of commands");
		break;
	}
}

static int
dispatch(struct session *s, struct cmd *c)
{
	const struct command *t;

	for (t = commands; t->fn != NULL; t++)
		if (t->verb == c->verb)
			break;
	/* Plan 9's dial verb: from a dial-up port, nothing but QUIT goes. */
	if (s->ps.hardreject && c->verb != CMD_QUIT) {
		reply(s, 554, "5.7.1", "We don't accept mail from dial-up ports.");
		return 0;
	}
	if (t->fn == NULL) {
		reply(s, 500, "5.5.2", "Error: command not recognized");
		return 0;
	}
	if (!(t->states & s->st)) {
		bad_sequence(s, c->verb);
		return 0;
	}
	return t->fn(s, c);
}

/* What AUTH does on this listener: its own settings, else the policy's. */
static void
listener_settings(struct session *s)
{
	int f = s->conf->listen_flags;

	s->auth_offered = (s->pol->auth_secrets[0] != '\0' ||
	    s->pol->auth_dovecot[0] != '\0') &&
	    !(f & LISTEN_AUTH_OFF);
	s->auth_required = f & LISTEN_AUTH_SET ?
	    (f & LISTEN_AUTH_REQUIRED) != 0 : s->pol->auth_required;
	s->auth_cleartext = f & LISTEN_CLEARTEXT_SET ?
	    (f & LISTEN_CLEARTEXT) != 0 : s->pol->auth_cleartext;
}

/* The client's address and, when wanted, its verified reverse name. */
static void
identify_peer(struct session *s)
{
	const struct sockaddr *sa = (const struct sockaddr *)&s->conf->peer;

	if (s->conf->peer.ss_family == AF_UNSPEC ||
	    net_ntop(sa, s->peer_addr, sizeof(s->peer_addr), &s->peer_port) == -1) {
		s->peer_addr[0] = '\0';
		return;
	}
	if (s->pol->reverse_lookup)
		(void)net_reverse_name(sa, s->peer_name, sizeof(s->peer_name));
}

int
session_run(const struct session_conf *conf)
{
	struct session s;
	struct verdict v;
	struct cmd c;
	char *line;
	size_t len, max;
	int r;

	memset(&s, 0, sizeof(s));
	s.conf = conf;
	s.pol = conf->policy;
	s.st = ST_GREET;
	session_new_id(s.id, sizeof(s.id));
	if ((s.io = lineio_new(conf->rfd, conf->wfd, SESSION_INBUF)) == NULL) {
		log_err("session: out of memory");
		return -1;
	}
	guard_commands(s.io, s.pol);
	/* -k: gone at once, no reply, nothing logged (as in Plan 9). */
	if (conf->peer.ss_family != AF_UNSPEC &&
	    policy_blocked_peer(s.pol, (const struct sockaddr *)&conf->peer)) {
		lineio_free(&s.io);
		return -1;
	}
	identify_peer(&s);
	if (s.pol->tls_certificate[0] != '\0' && (conf->implicit_tls ||
	    !(conf->listen_flags & LISTEN_NO_STARTTLS)))
		s.tlss = tls_server_current();
	listener_settings(&s);
	policy_session_init(&s.ps, s.pol, conf->state, &conf->peer, s.id);
	s.ps.describe = describe;
	s.ps.describe_arg = &s;
	s.ps.single = conf->single;
	metrics_session_open();
	log_info("%s smtp connect address=%s port=%d name=%s%s%s", s.id,
	    s.peer_addr[0] ? s.peer_addr : "unknown", s.peer_port,
	    s.peer_name[0] ? s.peer_name : "unknown",
	    s.ps.trusted ? " trusted" : "", conf->via ? conf->via : "");
	if (conf->implicit_tls && (s.tlss == NULL || start_tls(&s) == -1)) {
		if (s.tlss == NULL)
			log_err("%s smtp no TLS certificate for an implicit TLS "
			    "listener", s.id);
		s.end = END_TLS_FAILED;
		goto done;
	}
	if (policy_connect(&s.ps, &v) != VERDICT_CONTINUE) {
		(void)reply_verdict(&s, &v);
		session_close(&s, END_POLICY_REFUSED);
		goto done;
	}
	reply(&s, 220, NULL, "%s ESMTP", s.pol->hostname);

	while (!s.quit) {
		r = lineio_getline(s.io, &line, &len);
		if (r == 0 || r == -1) {
			s.end = guard_io_end(s.io);
			if (r == -1 && errno == ETIMEDOUT)
				reply(&s, 421, "4.4.2", "%s %s", s.pol->hostname,
				    guard_timeout_text(s.io));
			break;
		}
		s.n_cmds++;
		/*
		 * Shutting down: a transaction under way may finish; a
		 * session between transactions is told to come back later.
		 */
		if (conf->stopping != NULL && atomic_load(conf->stopping) &&
		    !(s.st & (ST_MAIL | ST_RCPT | ST_BDAT)) &&
		    !(len >= 4 && strncasecmp(line, "QUIT", 4) == 0)) {
			reply(&s, 421, "4.3.2", "%s Service shutting down",
			    s.pol->hostname);
			s.end = END_SHUTDOWN;
			break;
		}
		if (r == -2) {
			reply(&s, 500, "5.5.2", "Error: line too long");
			goto check_errors;
		}
		/* Drop the line ending: CRLF, or a lone LF from lax clients. */
		len--;
		if (len > 0 && line[len - 1] == '\r')
			len--;
		line[len] = '\0';
		/*
		 * A balancer's header sent here after the greeting: a v1
		 * line, or the three lines a v2 signature starts with.
		 */
		if (s.n_cmds == s.v2_lines + 1 &&
		    proxy_v2_line(s.n_cmds, line, len))
			s.v2_lines++;
		if ((s.n_cmds == 1 && len >= 6 &&
		    proxy_looks_like((const unsigned char *)line, len)) ||
		    s.v2_lines == 3) {
			log_info("%s smtp PROXY header on a listener not "
			    "configured for it", s.id);
			s.end = END_PROXY_HEADER;
			break;
		}
		if (cmd_split(line, len, &c) == -1) {
			reply(&s, 500, "5.5.2", "Error: bad character in command");
			goto check_errors;
		}
		max = c.verb == CMD_MAIL || c.verb == CMD_RCPT ?
		    CMD_PATH_LINE_MAX : c.verb == CMD_AUTH ?
		    CMD_AUTH_LINE_MAX : CMD_LINE_MAX;
		if (len + 2 > max) {
			reply(&s, 500, "5.5.2", "Error: line too long");
			goto check_errors;
		}
		if (c.verb == CMD_HTTP) {
			char shown[64];

			str_printable(shown, sizeof(shown), line, len);
			log_info("%s smtp web request: %s", s.id, shown);
			s.end = END_HTTP_REQUEST;
			break;
		}
		if (dispatch(&s, &c) == -1) {
			if (s.end == END_NONE)
				s.end = guard_io_end(s.io);
			break;
		}
check_errors:
		if (s.errors >= s.pol->errors && !s.quit) {
			reply(&s, 421, "4.7.0", "%s Error: too many errors",
			    s.pol->hostname);
			s.end = END_TOO_MANY_ERRORS;
			break;
		}
	}
done:
	if (conf->release != NULL)
		conf->release(conf->release_arg);
	(void)lineio_flush(s.io);
	reset_transaction(&s);
	milter_close(&s.milt);
	free(s.rcpts);
	metrics_session_close();
	log_info("%s smtp disconnect reason=%s commands=%u messages=%u "
	    "recipients=%u errors=%u", s.id, guard_end_name(s.end), s.n_cmds,
	    s.n_msgs, s.n_rcpts, s.errors);
	if (s.tls != NULL)
		tls_session_free(&s.tls, 1);
	tls_server_unref(&s.tlss);
	lineio_free(&s.io);
	return s.end == END_QUIT ? 0 : -1;
}
