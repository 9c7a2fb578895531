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
#include "queue/agent.h"
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
#include "confsnap.h"
#include "session.h"
#include "session_int.h"
#include "listeners.h"
#include "milter.h"
#include "signing.h"
#include "tls.h"


struct command {
	enum cmd_verb	 verb;
	unsigned int	 states;	/* where it may be used */
	int		(*fn)(struct session *, struct cmd *);
};

static int	do_helo(struct session *, struct cmd *);
static int	do_ehlo(struct session *, struct cmd *);
static int	do_mail(struct session *, struct cmd *);
static int	do_rcpt(struct session *, struct cmd *);
static int	do_rset(struct session *, struct cmd *);
static int	do_noop(struct session *, struct cmd *);
static int	do_quit(struct session *, struct cmd *);
static int	do_vrfy(struct session *, struct cmd *);
static int	do_expn(struct session *, struct cmd *);
static int	do_help(struct session *, struct cmd *);


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

static int	dispatch(struct session *, struct cmd *);
static void	describe(void *, struct policy_facts *);
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

void
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
int
reply_verdict(struct session *s, const struct verdict *v)
{
	const struct reply *r = &v->reply;
	const char *p, *nl;

	if (v->kind == VERDICT_DROP) {
		log_info("%s smtp dropped by policy", s->id);
		session_close(s, END_POLICY_DROP);
		return -1;
	}
	for (p = r->text; (nl = strchr(p, '\n')) != NULL; p = nl + 1)
		(void)lineio_printf(s->io, "%d-%s %.*s\r\n", r->code, r->status,
		    (int)(nl - p), p);
	reply(s, r->code, r->status[0] ? r->status : NULL, "%s", p);
	if (r->code == 421) {
		session_close(s, END_POLICY_REFUSED);
		return -1;
	}
	return 0;
}

void
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
void
session_close(struct session *s, enum session_end why)
{
	s->quit = 1;
	if (s->end == END_NONE)
		s->end = why;
}

void
reset_transaction(struct session *s)
{
	size_t i;

	for (i = 0; i < s->nrcpts; i++) {
		free((char *)s->rcpts[i].mailbox);
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
const char *
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
		f->tls_version = s->tlsinfo->version;
		f->tls_cipher = s->tlsinfo->cipher;
		f->tls_bits = s->tlsinfo->bits;
		if (s->tlsinfo->client_cert) {
			f->ccert_subject = s->tlsinfo->client_subject;
			f->ccert_issuer = s->tlsinfo->client_issuer;
			f->ccert_fingerprint = s->tlsinfo->client_sha256;
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
		f->rcpt = s->rcpts[0].mailbox;
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
	    milter_helo(&s->milt, &s->ps, s->listener, name, &v) !=
	    VERDICT_CONTINUE) {
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
	if (s->authenticated && s->auth->senders != NULL &&
	    (allowed = senders_allowed(s->auth->senders, s->auth_user,
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
	struct env_rcpt *r;
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
		struct env_rcpt *n;

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
	r->notify = rp.notify;
	if ((r->mailbox = strdup(a.mailbox)) == NULL ||
	    (rp.orcpt[0] && (r->orcpt = strdup(rp.orcpt)) == NULL)) {
		free((char *)r->mailbox);
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

void
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

/*
 * What AUTH does on this listener: its own settings, else the policy's;
 * and the listener in the policy's table, for its milters.
 */
static void
listener_settings(struct session *s)
{
	int f = s->conf->listen_flags;

	s->listener = listeners_conf(s->pol, f);
	s->auth_offered = authconf_enabled(s->auth) &&
	    !(f & LISTEN_AUTH_OFF);
	s->auth_required = f & LISTEN_AUTH_SET ?
	    (f & LISTEN_AUTH_REQUIRED) != 0 : s->auth->required;
	s->auth_cleartext = f & LISTEN_CLEARTEXT_SET ?
	    (f & LISTEN_CLEARTEXT) != 0 : s->auth->cleartext;
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

/*
 * Opens a session: the connect checks and the greeting.  NULL when there
 * is nothing more to do (out of memory; a -k peer, gone at once, no reply,
 * nothing logged, as in Plan 9).  A session refused here is returned
 * already over: session_continue() ends it at once.
 */
struct session *
session_open(const struct session_conf *conf)
{
	struct session *s;
	struct verdict v;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		log_err("session: out of memory");
		return NULL;
	}
	s->conf = conf;
	s->pol = conf->policy;
	s->auth = conf->config->auth;
	s->queue = conf->config->queue;
	s->st = ST_GREET;
	session_new_id(s->id, sizeof(s->id));
	if ((s->io = lineio_new(conf->rfd, conf->wfd, SESSION_INBUF)) == NULL) {
		log_err("session: out of memory");
		free(s);
		return NULL;
	}
	/* Before the timeouts: it sets the socket's receive timeout. */
	lineio_set_park(s->io, conf->park_ms);
	guard_commands(s->io, s->pol);
	if (conf->peer.ss_family != AF_UNSPEC &&
	    policy_blocked_peer(s->pol, (const struct sockaddr *)&conf->peer)) {
		lineio_free(&s->io);
		free(s);
		return NULL;
	}
	identify_peer(s);
	if (s->pol->tls_certificate[0] != '\0' && (conf->implicit_tls ||
	    !(conf->listen_flags & LISTEN_NO_STARTTLS)))
		s->tlss = conf->config != NULL && conf->config->tls != NULL ?
		    tls_server_ref(conf->config->tls) : NULL;
	listener_settings(s);
	policy_session_init(&s->ps, s->pol, conf->state, &conf->peer, s->id);
	s->ps.describe = describe;
	s->ps.describe_arg = s;
	s->ps.single = conf->single;
	metrics_session_open();
	log_info("%s smtp connect address=%s port=%d name=%s%s%s", s->id,
	    s->peer_addr[0] ? s->peer_addr : "unknown", s->peer_port,
	    s->peer_name[0] ? s->peer_name : "unknown",
	    s->ps.trusted ? " trusted" : "", conf->via ? conf->via : "");
	if (conf->implicit_tls && (s->tlss == NULL || start_tls(s) == -1)) {
		if (s->tlss == NULL)
			log_err("%s smtp no TLS certificate for an implicit TLS "
			    "listener", s->id);
		s->end = END_TLS_FAILED;
		s->quit = 1;
		return s;
	}
	if (policy_connect(&s->ps, &v) != VERDICT_CONTINUE) {
		(void)reply_verdict(s, &v);
		session_close(s, END_POLICY_REFUSED);
		return s;
	}
	reply(s, 220, NULL, "%s ESMTP", s->pol->hostname);
	return s;
}

/*
 * Reads and runs one command.  -1 when the session is to end, 1 when no
 * command came within the park time (conf->park_ms), else 0.
 */
static int
session_command(struct session *s)
{
	const struct session_conf *conf = s->conf;
	struct cmd c;
	char *line;
	size_t len, max;
	int r, at_once;

	/*
	 * With many workers busy, a session with nothing to read is set
	 * aside at once: a flood of clients that connect and say nothing
	 * must not hold a thread each for the park time.
	 */
	at_once = conf->busy != NULL &&
	    atomic_load_explicit(conf->busy, memory_order_relaxed) >=
	    conf->park_busy;
	r = lineio_getline_parkable(s->io, at_once, &line, &len);
	if (r == LINEIO_PARKED) {
		s->waited_ms = at_once ? 0 : conf->park_ms;
		return 1;
	}
	if (r == 0 || r == -1) {
		s->end = guard_io_end(s->io);
		if (r == -1 && errno == ETIMEDOUT)
			reply(s, 421, "4.4.2", "%s %s", s->pol->hostname,
			    guard_timeout_text(s->io));
		return -1;
	}
	s->n_cmds++;
	/*
	 * Shutting down: a transaction under way may finish; a session
	 * between transactions is told to come back later.
	 */
	if (conf->stopping != NULL && atomic_load(conf->stopping) &&
	    !(s->st & ST_TRANSACTION) &&
	    !(len >= 4 && strncasecmp(line, "QUIT", 4) == 0)) {
		reply(s, 421, "4.3.2", "%s Service shutting down",
		    s->pol->hostname);
		s->end = END_SHUTDOWN;
		return -1;
	}
	if (r == -2) {
		reply(s, 500, "5.5.2", "Error: line too long");
		goto check_errors;
	}
	/* Drop the line ending: CRLF, or a lone LF from lax clients. */
	len--;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	line[len] = '\0';
	/*
	 * A balancer's header sent here after the greeting: a v1 line, or
	 * the three lines a v2 signature starts with.
	 */
	if (s->n_cmds == s->v2_lines + 1 && proxy_v2_line(s->n_cmds, line, len))
		s->v2_lines++;
	if ((s->n_cmds == 1 && len >= 6 &&
	    proxy_looks_like((const unsigned char *)line, len)) ||
	    s->v2_lines == 3) {
		log_info("%s smtp PROXY header on a listener not configured "
		    "for it", s->id);
		s->end = END_PROXY_HEADER;
		return -1;
	}
	if (cmd_split(line, len, &c) == -1) {
		reply(s, 500, "5.5.2", "Error: bad character in command");
		goto check_errors;
	}
	max = c.verb == CMD_MAIL || c.verb == CMD_RCPT ? CMD_PATH_LINE_MAX :
	    c.verb == CMD_AUTH ? CMD_AUTH_LINE_MAX : CMD_LINE_MAX;
	if (len + 2 > max) {
		reply(s, 500, "5.5.2", "Error: line too long");
		goto check_errors;
	}
	if (c.verb == CMD_HTTP) {
		char shown[64];

		str_printable(shown, sizeof(shown), line, len);
		log_info("%s smtp web request: %s", s->id, shown);
		s->end = END_HTTP_REQUEST;
		return -1;
	}
	if (dispatch(s, &c) == -1) {
		if (s->end == END_NONE)
			s->end = guard_io_end(s->io);
		return -1;
	}
check_errors:
	if (s->errors >= s->pol->errors && !s->quit) {
		reply(s, 421, "4.7.0", "%s Error: too many errors",
		    s->pol->hostname);
		s->end = END_TOO_MANY_ERRORS;
		return -1;
	}
	return 0;
}

enum session_next
session_continue(struct session *s, int wait, struct session_park *park)
{
	int r;

	if (s->parked_at != 0) {
		/* The command's deadline counts from when it was awaited. */
		lineio_line_begun(s->io, s->parked_at);
		s->parked_at = 0;
	}
	if (wait)
		lineio_set_park(s->io, 0);
	while (!s->quit) {
		if ((r = session_command(s)) == -1)
			s->quit = 1;
		else if (r == 1 && park != NULL) {
			/* Idle for the park time: the server waits for it. */
			s->parked_at = net_now_ms() - s->waited_ms;
			park->deadline = s->parked_at +
			    1000LL * s->pol->command_timeout;
			park->between = !(s->st & ST_TRANSACTION);
			lineio_shrink(s->io);
			return SESSION_PARK;
		}
	}
	return SESSION_OVER;
}

void
session_interrupt(struct session *s, enum session_end why)
{
	s->parked_at = 0;
	if (why == END_TIMEOUT)
		reply(s, 421, "4.4.2", "%s %s", s->pol->hostname,
		    guard_end_text(why));
	else if (why == END_SHUTDOWN && !(s->st & ST_TRANSACTION))
		reply(s, 421, "4.3.2", "%s Service shutting down",
		    s->pol->hostname);
	session_close(s, why);
}

int
session_finish(struct session **sp)
{
	struct session *s = *sp;
	const struct session_conf *conf;
	int quit;

	if (s == NULL)
		return -1;
	*sp = NULL;
	conf = s->conf;
	if (conf->release != NULL)
		conf->release(conf->release_arg);
	(void)lineio_flush(s->io);
	reset_transaction(s);
	milter_close(&s->milt);
	free(s->rcpts);
	policy_session_end(&s->ps);
	metrics_session_close();
	log_info("%s smtp disconnect reason=%s commands=%u messages=%u "
	    "recipients=%u errors=%u", s->id, guard_end_name(s->end), s->n_cmds,
	    s->n_msgs, s->n_rcpts, s->errors);
	if (s->tls != NULL)
		tls_session_free(&s->tls, 1);
	tls_server_unref(&s->tlss);
	free(s->tlsinfo);
	lineio_free(&s->io);
	quit = s->end == END_QUIT;
	free(s);
	return quit ? 0 : -1;
}

int
session_run(const struct session_conf *conf)
{
	struct session *s;

	if ((s = session_open(conf)) == NULL)
		return -1;
	(void)session_continue(s, 1, NULL);
	return session_finish(&s);
}
