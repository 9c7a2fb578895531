/*
 * The relay agent: SMTP to the recipient domain's MX hosts or to the
 * route's smarthost, through the SMTP client library (src/client).
 *
 *	open()		client_connect(): MX hosts in preference order (RFC
 *			5321 5.1), each host's addresses in turn; STARTTLS
 *			and AUTH as the route says
 *	deliver()	client_send(): one transaction, pipelined when
 *			offered, DSN parameters passed on (RFC 3461)
 *	close()		client_quit()
 *
 * Every recipient gets a result: a reply of the next hop, or a temporary
 * failure saying what went wrong here.  Problems of our own making (no
 * credentials, a smarthost demanding AUTH of a route without them, TLS
 * that cannot be had) are temporary, so the mail waits for the fix
 * instead of bouncing, and they are logged as errors.
 */
#include "config.h"

#include <sys/types.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "client/creds.h"
#include "client/client.h"
#include "lib/log.h"
#include "lib/reply.h"
#include "lib/str.h"
#include "agent.h"
#include "tlsreq.h"
#include "tlsrpt.h"

#define RELAY_DIAL_MAX	300
#define RELAY_USER_MAX	256
#define RELAY_PIN_MAX	200
#define RELAY_ORCPT_MAX	1100	/* "rfc822;" and a mailbox as xtext */

struct relay_sess {
	struct client_conn	*conn;
	struct client_opts	 opts;
	int			 by_mx;
	int			 has_auth;	/* the route has credentials */
	unsigned int		 route;		/* its number, for messages */
	int			 announced;	/* "connected" is logged */
	/* The route's TLS could not be had; this connection is for
	 * messages marked "TLS-Required: No" only, the others get
	 * strict_res (RFC 8689 5). */
	int			 relaxed;
	struct agent_result	 strict_res;
	char			 dest[RELAY_DIAL_MAX];
	char			 mta[AGENT_MTA_MAX];
	/* What opts points to: the route may go with a reload. */
	char			 helo[256];
	char			 cafile[PATH_MAX];
	char			 sts_cache[PATH_MAX];
	char			 tlsrpt[PATH_MAX];	/* TLS report records */
	char			 pin[RELAY_PIN_MAX];
	char			 user[RELAY_USER_MAX];
	struct creds		 cred;
};

/* What one recipient's RCPT carries besides the address. */
struct relay_param {
	char	 notify[32];
	char	*orcpt;		/* malloc'd, when we make one up */
};

static void	*relay_open(const struct route *, const char *, const char *,
		    const struct queue_conf *, struct agent_result *);
static int	 relay_deliver(void *, const struct route *,
		    const struct agent_msg *, struct agent_rcpt *, size_t);
static void	 relay_close(void **);
static int	 relay_idle_ok(void *);
static int	 relay_dial(const struct route *, const char *, char *,
		    size_t);
static void	 relay_mta(const char *, char *, size_t);
static void	 relay_temp(struct agent_result *, int, const char *,
		    const char *, const char *, const char *);
static void	 relay_open_failed(const struct relay_sess *, const char *,
		    const struct client_result *, struct agent_result *);
static int	 relay_rcpt_result(const struct relay_sess *,
		    const struct client_rcpt *, struct agent_result *);
static int	 relay_ascii(const char *);
static int	 relay_needs_utf8(const struct agent_msg *,
		    const struct agent_rcpt *, size_t);
static void	 relay_free(struct relay_sess *);
static void	 relay_tls_event(void *, const struct client_tls_event *);
static int	 relay_relax(struct relay_sess *, const char *,
		    const struct client_result *);

const struct agent_ops agent_relay_ops = {
	"relay", relay_open, relay_deliver, relay_close, relay_idle_ok
};

/*
 * The client's dial string for dest: the smarthost as configured, or the
 * domain's MX ("mx!domain"), or an address literal as it is.  0 or -1.
 */
static int
relay_dial(const struct route *r, const char *dest, char *buf, size_t len)
{
	size_t n;

	if (r->host != NULL)
		n = str_lcpy(buf, r->host, len);
	else if (dest[0] == '\0')
		return -1;
	else if (dest[0] == '[')
		n = str_lcpy(buf, dest, len);	/* dial_parse knows IPv6: */
	else
		n = (size_t)snprintf(buf, len, "mx!%s", dest);
	return n < len ? 0 : -1;
}

/* The remote MTA's name for DSNs: "host" of "host [address]". */
static void
relay_mta(const char *peer, char *buf, size_t len)
{
	size_t n = strcspn(peer, " ");

	if (peer[0] == '[')
		n = strlen(peer);
	if (n >= len)
		n = len - 1;
	memcpy(buf, peer, n);
	buf[n] = '\0';
}

/*
 * A temporary result from a reply that may not be one: a 5xx or an
 * enhanced status of 5.X.Y becomes 451 and 4.X.Y, keeping the detail.
 */
static void
relay_temp(struct agent_result *res, int code, const char *status,
    const char *fallback, const char *mta, const char *text)
{
	char enh[REPLY_STATUS_LEN + 1];

	/*
	 * The client's statuses are "" or of the code's class (its own
	 * when code is 0, all 4.X.Y or 5.X.Y); a 2xx or 3xx out of turn
	 * keeps none.
	 */
	if (status != NULL && status[0] != '\0' && (code == 0 ||
	    reply_class(code) == REPLY_TEMPORARY ||
	    reply_class(code) == REPLY_PERMANENT)) {
		str_lcpy(enh, status, sizeof(enh));
		enh[0] = '4';
	} else
		str_lcpy(enh, fallback, sizeof(enh));
	agent_set(res, AGENT_TEMP, code / 100 == 4 ? code : 451, enh, "%s",
	    text);
	str_lcpy(res->mta, mta, sizeof(res->mta));
}

/* The destination itself takes no mail: none, null MX, or it is us. */
static int
relay_no_domain(const struct client_result *cr)
{
	return cr->cause == CLIENT_CAUSE_NO_HOST ||
	    cr->cause == CLIENT_CAUSE_NULL_MX ||
	    cr->cause == CLIENT_CAUSE_MX_LOOP;
}

/*
 * Our AUTH was refused, or none could be used: a failed AUTH, or RFC
 * 4954's replies for authentication needed (530), a mechanism too weak
 * (534), credentials refused (535) or encryption needed (538).
 */
static int
relay_auth_refused(const struct client_result *cr)
{
	const struct reply *r = &cr->reply;

	if (cr->cause == CLIENT_CAUSE_AUTH)
		return 1;
	return cr->cause == CLIENT_CAUSE_NONE && reply_permanent(r) &&
	    (cr->phase == CLIENT_PH_AUTH || r->code == 530 ||
	    r->code == 534 || r->code == 535 || r->code == 538);
}

/* TLS or the destination's TLS policy failed (not the handshake's
 * transport). */
static int
relay_tls_trouble(const struct client_result *cr)
{
	switch (cr->cause) {
	case CLIENT_CAUSE_TLS_NOT_OFFERED:
	case CLIENT_CAUSE_TLS_REFUSED:
	case CLIENT_CAUSE_TLS_VERIFY:
	case CLIENT_CAUSE_TLS_POLICY:
		return 1;
	case CLIENT_CAUSE_NONE:
		/* STARTTLS refused when TLS was required. */
		return cr->phase == CLIENT_PH_STARTTLS &&
		    (reply_temporary(&cr->reply) ||
		    reply_permanent(&cr->reply));
	default:
		return 0;
	}
}

/* The result for every recipient when no connection could be made. */
static void
relay_open_failed(const struct relay_sess *s, const char *id,
    const struct client_result *cr, struct agent_result *res)
{
	char mta[AGENT_MTA_MAX];

	const char *status = client_result_status(cr);
	int code = client_result_code(cr);

	relay_mta(cr->host, mta, sizeof(mta));
	/*
	 * Only the recipient domain itself can fail for good: it does not
	 * exist, has no mail host, says it takes no mail (null MX), or its
	 * best MX host is us.  Hosts that refuse, TLS and AUTH trouble may
	 * all be over by the next attempt.
	 */
	if (s->by_mx && !cr->temporary && relay_no_domain(cr)) {
		agent_set(res, AGENT_PERM, code ? code : 550, status, "%s",
		    cr->text);
		return;
	}
	if (relay_auth_refused(cr)) {
		log_err("%s queue relay to %.200s (route %u): authentication "
		    "failed: %.300s", id, s->dest, s->route, cr->text);
		relay_temp(res, code, status, "4.7.0", mta, cr->text);
		return;
	}
	/* Ours to fix: the configuration (a smarthost that does not
	 * resolve, too), and TLS. */
	if (cr->cause == CLIENT_CAUSE_CONFIG ||
	    cr->cause == CLIENT_CAUSE_USAGE ||
	    cr->cause == CLIENT_CAUSE_SOFTWARE ||
	    (!s->by_mx && relay_no_domain(cr)) || relay_tls_trouble(cr))
		log_err("%s queue relay to %.200s (route %u): %.300s", id,
		    s->dest, s->route, cr->text);
	relay_temp(res, code, status, "4.4.1", mta, cr->text);
}

static void *
relay_open(const struct route *r, const char *dest, const char *id,
    const struct queue_conf *qc, struct agent_result *res)
{
	struct relay_sess *s;
	struct client_result cr;
	enum creds_status cs;
	char err[512];

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		agent_set(res, AGENT_TEMP, 451, "4.3.0", "out of memory");
		return NULL;
	}
	s->by_mx = r->host == NULL;
	s->route = r->index + 1;
	if (relay_dial(r, dest, s->dest, sizeof(s->dest)) == -1) {
		if (s->by_mx)
			agent_set(res, AGENT_PERM, 550, "5.1.2", "no domain to "
			    "relay \"%.200s\" to", dest);
		else {
			log_err("%s queue relay (route %u): the host dial "
			    "string is too long", id, s->route);
			agent_set(res, AGENT_TEMP, 451, "4.3.5", "the route's "
			    "host dial string is too long");
		}
		free(s);
		return NULL;
	}
	str_lcpy(s->helo, qc->hostname, sizeof(s->helo));
	s->opts.helo = s->helo;
	s->opts.self = s->helo;
	/* RFC 7435: any TLS beats none, and none beats no delivery,
	 * unless the domain publishes better (DANE, MTA-STS). */
	switch (r->tls) {
	case ROUTE_TLS_REQUIRE:
		s->opts.tls_policy = r->tls_verify ? CLIENT_TLSPOL_VERIFY :
		    CLIENT_TLSPOL_ENCRYPT;
		break;
	case ROUTE_TLS_NONE:
		s->opts.tls_policy = CLIENT_TLSPOL_NONE;
		break;
	case ROUTE_TLS_DANE:
		s->opts.tls_policy = CLIENT_TLSPOL_DANE;
		break;
	case ROUTE_TLS_MTA_STS:
		s->opts.tls_policy = CLIENT_TLSPOL_MTA_STS;
		break;
	case ROUTE_TLS_AUTO:
		s->opts.tls_policy = CLIENT_TLSPOL_AUTO;
		break;
	default:
		s->opts.tls_policy = CLIENT_TLSPOL_MAY;
		break;
	}
	if ((size_t)snprintf(s->sts_cache, sizeof(s->sts_cache), "%s/mta-sts",
	    qc->spool) < sizeof(s->sts_cache))
		s->opts.sts_cache = s->sts_cache;
	if (s->by_mx && (size_t)snprintf(s->tlsrpt, sizeof(s->tlsrpt),
	    "%s/tlsrpt", qc->spool) < sizeof(s->tlsrpt)) {
		s->opts.tls_event = relay_tls_event;
		s->opts.tls_event_arg = s->tlsrpt;
	}
	if (r->tls_cafile != NULL) {
		str_lcpy(s->cafile, r->tls_cafile, sizeof(s->cafile));
		s->opts.tls_cafile = s->cafile;
	}
	if (r->tls_pin != NULL) {
		str_lcpy(s->pin, r->tls_pin, sizeof(s->pin));
		s->opts.tls_pin = s->pin;
	}
	if (r->auth != NULL) {
		s->has_auth = 1;
		cs = creds_label_lookup(qc->relay_keys, r->auth, s->user,
		    sizeof(s->user), &s->cred, err, sizeof(err));
		if (cs != CREDS_OK) {
			if (cs == CREDS_NOTFOUND)
				snprintf(err, sizeof(err), "no key labelled "
				    "\"%.100s\" in %.300s", r->auth,
				    qc->relay_keys);
			log_err("%s queue relay to %.200s (route %u): no "
			    "credentials: %s", id, s->dest, s->route, err);
			agent_set(res, AGENT_TEMP, 454, "4.7.0", "no "
			    "credentials for the smarthost: %s", err);
			relay_free(s);
			return NULL;
		}
		s->opts.auth_user = s->user;
		s->opts.auth_secret = s->cred.secret;
		s->opts.auth_xoauth2 = s->cred.is_token;
	}
	if ((s->conn = client_connect(s->dest, &s->opts, &cr)) == NULL &&
	    relay_relax(s, id, &cr) == -1) {
		relay_open_failed(s, id, &cr, res);
		relay_free(s);
		return NULL;
	}
	relay_mta(client_peer(s->conn), s->mta, sizeof(s->mta));
	return s;
}

/*
 * The route's TLS policy failed: a second connection with opportunistic
 * TLS, any certificate, carries the messages whose senders said
 * "TLS-Required: No" (RFC 8689 5).  0 when it is open, -1 when the
 * failure had nothing to do with TLS or the second try failed too.
 */
static int
relay_relax(struct relay_sess *s, const char *id,
    const struct client_result *strict)
{
	struct client_result cr;

	/* TLS, or a TLS policy; not AUTH. */
	if (!relay_tls_trouble(strict) ||
	    s->opts.tls_policy == CLIENT_TLSPOL_MAY ||
	    s->opts.tls_policy == CLIENT_TLSPOL_NONE)
		return -1;
	s->opts.tls_policy = CLIENT_TLSPOL_MAY;
	s->opts.tls_pin = NULL;
	s->opts.tls_event = NULL;	/* the failure is reported already */
	if ((s->conn = client_connect(s->dest, &s->opts, &cr)) == NULL)
		return -1;
	relay_open_failed(s, id, strict, &s->strict_res);
	s->relaxed = 1;
	log_info("%s queue relay to %.200s (route %u): connected without "
	    "the route's TLS for messages marked TLS-Required: No", id,
	    s->dest, s->route);
	return 0;
}

/* A TLS outcome under the destination's policy: logged when it failed,
 * counted for the daily TLS report. */
static void
relay_tls_event(void *arg, const struct client_tls_event *ev)
{
	if (ev->failure != NULL)
		log_warn("queue relay: TLS policy failure for %.200s (%s): "
		    "%s%s%.200s%s%s%s: %.300s", ev->domain, ev->policy_type,
		    ev->failure, ev->mx_host[0] != '\0' ? " at " : "",
		    ev->mx_host, ev->addr[0] != '\0' ? " [" : "", ev->addr,
		    ev->addr[0] != '\0' ? "]" : "", ev->detail);
	if (tlsrpt_record(arg, ev, time(NULL)) == -1)
		log_warn("queue relay: cannot record a TLS outcome for "
		    "%.200s: %s", ev->domain, strerror(errno));
}

static int
relay_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s > 0x7e)
			return 0;
	return 1;
}

/*
 * RFC 6531 3.4: a message that came with SMTPUTF8 needs it only when an
 * envelope address or the header is not ASCII; one that does not may go
 * to a next hop without SMTPUTF8 as it is.  When the header cannot be
 * read, it is taken to need it.
 */
static int
relay_needs_utf8(const struct agent_msg *m, const struct agent_rcpt *rcpts,
    size_t n)
{
	char buf[4096];
	size_t i, seen = 0;
	ssize_t got;
	int nl = 0;

	if (!m->env->smtputf8)
		return 0;
	if (!relay_ascii(m->env->sender))
		return 1;
	for (i = 0; i < n; i++)
		if (!relay_ascii(rcpts[i].mailbox))
			return 1;
	/* The header, up to the empty line that ends it. */
	while (seen < TLSREQ_HEADER_MAX) {
		got = pread(m->fd, buf, sizeof(buf), m->env->body_off +
		    (off_t)seen);
		if (got == -1 && errno == EINTR)
			continue;
		if (got == -1)
			return 1;
		if (got == 0)
			return 0;
		for (i = 0; i < (size_t)got; i++) {
			if ((unsigned char)buf[i] > 0x7f)
				return 1;
			if (buf[i] == '\n') {
				if (nl)
					return 0;
				nl = 1;
			} else if (buf[i] != '\r')
				nl = 0;
		}
		seen += (size_t)got;
	}
	return 1;
}

/*
 * One recipient's outcome as the next hop gave it.  1 when it is that the
 * next hop demands AUTH of a route without credentials, else 0.
 */
static int
relay_rcpt_result(const struct relay_sess *s, const struct client_rcpt *cr,
    struct agent_result *res)
{
	const char *text = cr->reply.text;
	const char *status = client_rcpt_status(cr);
	int code = client_rcpt_code(cr);
	size_t sl = strlen(status);
	int perm;

	/* The client keeps the enhanced code in the text too. */
	if (sl > 0 && strncmp(text, status, sl) == 0 && text[sl] == ' ')
		text += sl + 1;
	if (client_rcpt_severity(cr) == 0) {
		/*
		 * RFC 3461 5.2: a next hop that offers DSN got our NOTIFY,
		 * RET, ENVID and ORCPT and reports from now on; one that
		 * does not leaves a "relayed" DSN to us when SUCCESS was
		 * asked for.
		 */
		agent_set(res, client_offers(s->conn, "DSN") ? AGENT_PASSED :
		    AGENT_RELAYED, code, status[0] ? status : "2.0.0", "%s",
		    text);
		str_lcpy(res->mta, s->mta, sizeof(res->mta));
		return 0;
	}
	/* A 5xx, or a refusal of ours such as SMTPUTF8 not offered. */
	perm = reply_permanent(&cr->reply) || (cr->reply.code == 0 &&
	    !cr->temporary && client_cause_final(cr->cause));
	if (perm && code == 530 && !s->has_auth) {
		/* RFC 4954 6: a smarthost that wants AUTH we cannot give. */
		agent_set(res, AGENT_TEMP, 454, "4.7.0", "%.100s demands "
		    "authentication and the route has no credentials (auth): "
		    "530 %.200s", s->mta, text);
		str_lcpy(res->mta, s->mta, sizeof(res->mta));
		return 1;
	}
	if (perm) {
		agent_set(res, AGENT_PERM, code ? code : 550, status[0] ?
		    status : "5.0.0", "%s", text);
		str_lcpy(res->mta, s->mta, sizeof(res->mta));
		return 0;
	}
	relay_temp(res, code, status, "4.4.2", s->mta, text);
	return 0;
}

static int
relay_deliver(void *sess, const struct route *r, const struct agent_msg *m,
    struct agent_rcpt *rcpts, size_t n)
{
	struct relay_sess *s = sess;
	const struct envelope *env = m->env;
	const struct env_rcpt *o;
	struct client_rcpt *cr = NULL;
	struct relay_param *p = NULL;
	struct client_result res;
	struct client_msg cm;
	char orcpt[RELAY_ORCPT_MAX];
	size_t i;
	int usable, auth_wanted = 0;

	if (__atomic_load_n(m->cancel, __ATOMIC_RELAXED)) {
		for (i = 0; i < n; i++)
			agent_set(&rcpts[i].res, AGENT_TEMP, 451, "4.3.0",
			    "the queue runner is stopping");
		return -1;
	}
	/* Only "TLS-Required: No" lets a message go on lesser TLS; REQUIRETLS
	 * overrides it (RFC 8689 5). */
	if (s->relaxed && (env->requiretls ||
	    tlsreq_msg_no(m->fd, env->body_off) != 1)) {
		for (i = 0; i < n; i++)
			rcpts[i].res = s->strict_res;
		return 0;
	}
	/* Logged with the first message, so that the line names it. */
	if (!s->announced) {
		s->announced = 1;
		log_info("%s queue relay connected to %.200s for %.200s "
		    "(route %u): %s%s%s%s%s", m->id, client_peer(s->conn),
		    s->dest, s->route, client_tls_active(s->conn) ? "TLS" :
		    "no TLS", s->has_auth ? ", authenticated with key " : "",
		    s->has_auth && r->auth != NULL ? r->auth : "",
		    client_tls_active(s->conn) ? "; certificate " : "",
		    client_tls_active(s->conn) ? client_tls_auth(s->conn) :
		    "");
	}
	if ((cr = calloc(n, sizeof(*cr))) == NULL ||
	    (p = calloc(n, sizeof(*p))) == NULL) {
		free(cr);
		for (i = 0; i < n; i++)
			agent_set(&rcpts[i].res, AGENT_TEMP, 451, "4.3.0",
			    "out of memory");
		return 0;
	}
	for (i = 0; i < n; i++) {
		o = rcpts[i].orig;
		cr[i].addr = rcpts[i].mailbox;
		/* The envelope's parser let only valid NOTIFY bits in. */
		if (env_notify_format(o->notify, p[i].notify,
		    sizeof(p[i].notify)) == -1)
			p[i].notify[0] = '\0';
		cr[i].notify = p[i].notify[0] != '\0' ? p[i].notify : NULL;
		cr[i].orcpt = o->orcpt;
		/*
		 * An alias turned the recipient into this address: say
		 * what the sender wrote (RFC 3461 4.2), when it is ASCII.
		 */
		if (o->orcpt == NULL && strcasecmp(o->mailbox,
		    rcpts[i].mailbox) != 0 && relay_ascii(o->mailbox)) {
			memcpy(orcpt, "rfc822;", 8);
			/* Without memory it goes without: a nicety. */
			if (env_xtext_encode(o->mailbox, orcpt + 7,
			    sizeof(orcpt) - 7) != -1 &&
			    (p[i].orcpt = strdup(orcpt)) != NULL)
				cr[i].orcpt = p[i].orcpt;
		}
	}
	memset(&cm, 0, sizeof(cm));
	cm.sender = env->sender;
	cm.rcpts = cr;
	cm.nrcpts = n;
	cm.envid = env->envid;
	cm.ret = env_ret_name(env->ret);
	cm.smtputf8 = relay_needs_utf8(m, rcpts, n);
	cm.requiretls = env->requiretls;
	cm.eightbit = env->body == ENV_BODY_8BITMIME;
	cm.fd = m->fd;
	cm.data_pread = 1;
	cm.data_off = env->body_off;
	(void)client_send(s->conn, &cm, &res);
	for (i = 0; i < n; i++) {
		auth_wanted |= relay_rcpt_result(s, &cr[i], &rcpts[i].res);
		free(p[i].orcpt);
	}
	if (auth_wanted)
		log_err("%s queue relay to %.200s (route %u): %.200s demands "
		    "authentication (530), but the route has no auth label",
		    m->id, s->dest, s->route, s->mta);
	free(p);
	free(cr);
	usable = client_usable(s->conn);
	if (!usable)
		log_debug("%s queue relay connection to %.200s closed: %.300s",
		    m->id, s->mta, res.text);
	return usable ? 0 : -1;
}

static void
relay_free(struct relay_sess *s)
{
	client_quit(&s->conn);
	creds_wipe(&s->cred);
	str_wipe(s->user, sizeof(s->user));
	free(s);
}

static void
relay_close(void **sessp)
{
	struct relay_sess *s = *sessp;

	*sessp = NULL;
	if (s != NULL)
		relay_free(s);
}

static int
relay_idle_ok(void *sess)
{
	const struct relay_sess *s = sess;

	/*
	 * One that could not have the route's TLS serves only the messages
	 * waiting when it opened: a later one gets a new try at TLS.
	 */
	return s->conn != NULL && !s->relaxed && client_idle_ok(s->conn);
}
