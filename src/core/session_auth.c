/*
 * A session's AUTH (RFC 4954, through sasl.c and the secrets table or
 * Dovecot) and STARTTLS (RFC 3207).
 */
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
#include "milter.h"
#include "signing.h"
#include "tls.h"

/* The reply for an AUTH-related outcome, from the one table in sasl.c. */
void
auth_reply(struct session *s, enum sasl_result r)
{
	struct reply rep;

	sasl_reply_for(r, &rep);
	reply(s, rep.code, rep.status[0] ? rep.status : NULL, "%s",
	    rep.text);
}

/* What AUTH may offer on this connection now.  Caller unrefs secrets. */
void
auth_conf(struct session *s, struct sasl_conf *sc)
{
	memset(sc, 0, sizeof(*sc));
	if (s->auth->dovecot[0] != '\0')
		sc->dovecot = s->auth->dovecot;
	/* The snapshot's table; split, the key process's stand-in. */
	else if (s->conf->config != NULL && s->conf->config->secrets != NULL)
		sc->secrets = secrets_ref(s->conf->config->secrets);
	else
		sc->secrets = secrets_current();
	sc->flags = (s->tls != NULL ? SASL_F_TLS : 0) |
	    (s->auth_cleartext ? SASL_F_CLEARTEXT : 0);
	sc->mechs = s->auth->mechs;
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
	const struct throttle_conf *tc = &s->auth->throttle;
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

int
do_auth(struct session *s, struct cmd *c)
{
	const struct sockaddr *peer = (const struct sockaddr *)&s->conf->peer;
	struct throttle *th = s->conf->throttle;
	char mech[SASL_MECH_MAX + 1], user[SASL_USER_MAX * 4 + 1];
	struct sasl_conf sc;
	struct reply rep;
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
	if (s->st & ST_TRANSACTION) {
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
	reply(s, rep.code, rep.status[0] ? rep.status : NULL, "%s",
	    rep.text);
	sasl_free(&sa);
	secrets_unref(&sc.secrets);
	return 0;
}

/* Brings TLS up on the connection; -1 ends the session. */
int
start_tls(struct session *s)
{
	char err[512];

	/* Only TLS sessions carry this, and only from here on. */
	if (s->tlsinfo == NULL &&
	    (s->tlsinfo = calloc(1, sizeof(*s->tlsinfo))) == NULL) {
		log_err("%s smtp TLS: out of memory", s->id);
		s->end = END_TLS_FAILED;
		return -1;
	}
	if (tls_handshake(s->tlss, s->conf->rfd, s->conf->wfd,
	    (int)s->pol->tls_handshake_timeout * 1000, &s->tls, err,
	    sizeof(err)) == -1) {
		log_info("%s smtp TLS handshake failed: %s", s->id, err);
		s->tls = NULL;
		s->end = END_TLS_FAILED;
		return -1;
	}
	lineio_set_tls(s->io, s->tls);
	if (tls_session_info(s->tls, s->tlsinfo) == -1)
		str_lcpy(s->tlsinfo->desc, "TLS", sizeof(s->tlsinfo->desc));
	log_info("%s smtp tls %s%s%s%s", s->id, s->tlsinfo->desc,
	    s->tlsinfo->client_cert ? (s->tlsinfo->client_verified ?
	    " client certificate verified: " : " client certificate NOT "
	    "verified: ") : "", s->tlsinfo->client_subject,
	    s->tlsinfo->client_cert && !s->tlsinfo->client_verified ?
	    s->tlsinfo->client_error : "");
	if (s->tlsinfo->client_verified && s->pol->tls_client_cert_trusted)
		policy_session_trust(&s->ps, 0);
	return 0;
}

int
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
	if (s->tlsinfo != NULL && s->tlsinfo->client_verified &&
	    s->pol->tls_client_cert_trusted)
		policy_session_trust(&s->ps, 0);
	session_enter(s, ST_GREET);
	return 0;
}
