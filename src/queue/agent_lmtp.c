/*
 * The LMTP agent: final delivery through an LMTP server (RFC 2033) such
 * as Dovecot's, over a unix socket or TCP, with the SMTP client library
 * in its LMTP mode.
 *
 *	open()		client_connect_unix() or client_connect(): greeting
 *			and LHLO; no TLS and no AUTH (a local peer)
 *	deliver()	client_send(): one transaction, and after the data
 *			one reply per accepted recipient
 *	close()		client_quit()
 *
 * The server delivers, so a 2xx is a final delivery here: the runner owes
 * the success DSN when one was asked for, and the DSN parameters are not
 * passed on.  A recipient's 5xx bounces that recipient alone, a 4xx
 * defers it alone.  A server that cannot be reached defers everyone.
 */
#include "config.h"

#include <sys/types.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client/client.h"
#include "lib/log.h"
#include "lib/str.h"
#include "agent.h"

#define LMTP_DIAL_MAX	300

struct lmtp_sess {
	struct client_conn	*conn;
	struct client_opts	 opts;
	unsigned int		 route;		/* its number, for messages */
	int			 announced;	/* "connected" is logged */
	char			 dest[LMTP_DIAL_MAX];	/* as configured */
	char			 mta[AGENT_MTA_MAX];	/* "" for a socket */
	char			 helo[256];
};

static void	*lmtp_open(const struct route *, const char *, const char *,
		    const struct queue_conf *, struct agent_result *);
static int	 lmtp_deliver(void *, const struct route *,
		    const struct agent_msg *, struct agent_rcpt *, size_t);
static void	 lmtp_close(void **);
static int	 lmtp_idle_ok(void *);
static void	 lmtp_temp(struct agent_result *, int, const char *,
		    const char *, const char *);
static void	 lmtp_rcpt_result(const struct lmtp_sess *,
		    const struct client_rcpt *, struct agent_result *);

const struct agent_ops agent_lmtp_ops = {
	"lmtp", lmtp_open, lmtp_deliver, lmtp_close, lmtp_idle_ok
};

/*
 * A temporary result, keeping the detail of a reply that may say 5.X.Y
 * (a failure that is ours or the link's, not the recipient's).
 */
static void
lmtp_temp(struct agent_result *res, int code, const char *status,
    const char *mta, const char *text)
{
	char enh[REPLY_STATUS_LEN + 1];

	/* The detail of a failure's status, as a temporary one. */
	if (status != NULL && (reply_status_fits(status, 450) ||
	    reply_status_fits(status, 550))) {
		str_lcpy(enh, status, sizeof(enh));
		enh[0] = '4';
	} else
		str_lcpy(enh, "4.4.2", sizeof(enh));
	agent_set(res, AGENT_TEMP, code / 100 == 4 ? code : 451, enh, "%s",
	    text);
	str_lcpy(res->mta, mta, sizeof(res->mta));
}

static void *
lmtp_open(const struct route *r, const char *dest, const char *id,
    const struct queue_conf *qc, struct agent_result *res)
{
	struct lmtp_sess *s;
	struct client_result cr;
	int is_unix;

	(void)dest;
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		agent_set(res, AGENT_TEMP, 451, "4.3.0", "out of memory");
		return NULL;
	}
	s->route = r->index + 1;
	is_unix = strncmp(r->lmtp, "unix:", 5) == 0;
	/* The client's dial string: "host:port" or "[address]:port". */
	if (str_lcpy(s->dest, r->lmtp + 5, sizeof(s->dest)) >=
	    sizeof(s->dest)) {
		log_err("%s queue lmtp (route %u): the lmtp address is too "
		    "long", id, s->route);
		agent_set(res, AGENT_TEMP, 451, "4.3.5", "the route's lmtp "
		    "address is too long");
		free(s);
		return NULL;
	}
	str_lcpy(s->helo, qc->hostname, sizeof(s->helo));
	s->opts.helo = s->helo;
	s->opts.tls = CLIENT_TLS_NONE;
	s->opts.lmtp = 1;
	s->conn = is_unix ? client_connect_unix(s->dest, &s->opts, &cr) :
	    client_connect(s->dest, &s->opts, &cr);
	if (s->conn == NULL) {
		/*
		 * The delivery service down or misconfigured: the mail
		 * waits for it, whatever the reply said.
		 */
		log_err("%s queue lmtp to %.200s (route %u): %.300s", id,
		    r->lmtp, s->route, cr.text);
		lmtp_temp(res, client_result_code(&cr),
		    client_result_status(&cr), "", cr.text);
		free(s);
		return NULL;
	}
	if (!is_unix) {
		const char *peer = client_peer(s->conn);
		size_t n = peer[0] == '[' ? strlen(peer) : strcspn(peer, " ");

		if (n >= sizeof(s->mta))
			n = sizeof(s->mta) - 1;
		memcpy(s->mta, peer, n);
		s->mta[n] = '\0';
	}
	return s;
}

/* One recipient's outcome as the LMTP server gave it. */
static void
lmtp_rcpt_result(const struct lmtp_sess *s, const struct client_rcpt *cr,
    struct agent_result *res)
{
	const char *text = cr->reply.text;
	const char *status = client_rcpt_status(cr);
	int code = client_rcpt_code(cr);
	size_t sl = strlen(status);

	/* The client keeps the enhanced code in the text too. */
	if (sl > 0 && strncmp(text, status, sl) == 0 && text[sl] == ' ')
		text += sl + 1;
	if (client_rcpt_severity(cr) == 0) {
		agent_set(res, AGENT_DELIVERED, code, status[0] ? status :
		    "2.0.0", "%s", text);
		str_lcpy(res->mta, s->mta, sizeof(res->mta));
		return;
	}
	/* A 5xx, or a refusal of ours such as SMTPUTF8 not offered. */
	if (reply_permanent(&cr->reply) || (cr->reply.code == 0 &&
	    !cr->temporary && client_cause_final(cr->cause))) {
		agent_set(res, AGENT_PERM, code ? code : 550, status[0] ?
		    status : "5.0.0", "%s", text);
		str_lcpy(res->mta, s->mta, sizeof(res->mta));
		return;
	}
	/* 4xx, or no reply at all (the connection went): try again. */
	lmtp_temp(res, code, status, s->mta, text);
}

static int
lmtp_deliver(void *sess, const struct route *r, const struct agent_msg *m,
    struct agent_rcpt *rcpts, size_t n)
{
	struct lmtp_sess *s = sess;
	const struct envelope *env = m->env;
	struct client_rcpt *cr;
	struct client_result res;
	struct client_msg cm;
	size_t i;
	int usable;

	if (__atomic_load_n(m->cancel, __ATOMIC_RELAXED)) {
		for (i = 0; i < n; i++)
			agent_set(&rcpts[i].res, AGENT_TEMP, 451, "4.3.0",
			    "the queue runner is stopping");
		return -1;
	}
	if (!s->announced) {
		s->announced = 1;
		log_info("%s queue lmtp connected to %.200s (route %u)",
		    m->id, r->lmtp, s->route);
	}
	if ((cr = calloc(n, sizeof(*cr))) == NULL) {
		for (i = 0; i < n; i++)
			agent_set(&rcpts[i].res, AGENT_TEMP, 451, "4.3.0",
			    "out of memory");
		return 0;
	}
	for (i = 0; i < n; i++)
		cr[i].addr = rcpts[i].mailbox;
	memset(&cm, 0, sizeof(cm));
	cm.sender = env->sender;
	cm.rcpts = cr;
	cm.nrcpts = n;
	cm.smtputf8 = env->smtputf8;
	cm.eightbit = env->body == ENV_BODY_8BITMIME;
	cm.fd = m->fd;
	cm.data_pread = 1;
	cm.data_off = env->body_off;
	(void)client_send(s->conn, &cm, &res);
	for (i = 0; i < n; i++)
		lmtp_rcpt_result(s, &cr[i], &rcpts[i].res);
	free(cr);
	usable = client_usable(s->conn);
	if (!usable)
		log_debug("%s queue lmtp connection to %.200s closed: %.300s",
		    m->id, r->lmtp, res.text);
	return usable ? 0 : -1;
}

static void
lmtp_close(void **sessp)
{
	struct lmtp_sess *s = *sessp;

	*sessp = NULL;
	if (s == NULL)
		return;
	client_quit(&s->conn);
	free(s);
}

static int
lmtp_idle_ok(void *sess)
{
	const struct lmtp_sess *s = sess;

	return s->conn != NULL && client_idle_ok(s->conn);
}
