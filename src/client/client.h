/*
 * client: the SMTP client library, used by smtp(1) and by the queue's relay
 * delivery.
 *
 * client_connect() finds the server (a dial string, or a mail domain's MX
 * hosts tried in preference order and each host's addresses in turn),
 * reads the greeting, says EHLO, starts TLS and authenticates as the
 * options say.  client_send() runs one mail transaction on that connection
 * (pipelined when the server offers PIPELINING) and may be called again
 * for more messages.  client_quit() ends the session.
 *
 * A result is the server's reply (when there was one), the phase it came
 * in, whether it is temporary, and a cause for what the client found out
 * by itself.  Programs that exit with sysexits(3) statuses get theirs
 * from client_exit_status().  Callers should ignore SIGPIPE.
 */
#ifndef CLIENT_H
#define CLIENT_H

#include <sys/types.h>

#include <stddef.h>

#include <gnutls/gnutls.h>

#include "lib/reply.h"
#include "lib/str.h"

#define CLIENT_HOST_MAX		256
#define CLIENT_TEXT_MAX		512
#define CLIENT_BUSTED_MAX	100	/* -b entries, as in Plan 9 */

enum client_tls {
	CLIENT_TLS_NONE,		/* never */
	CLIENT_TLS_OPPORTUNISTIC,	/* STARTTLS when offered (smtp -s) */
	CLIENT_TLS_REQUIRE,		/* STARTTLS or fail */
	CLIENT_TLS_IMPLICIT,		/* TLS before the banner (smtps, port 465, smtp -t) */
};

/*
 * Which TLS a destination gets (smtp(1) -o tls_policy, the relay routes'
 * tls); CLIENT_TLSPOL_DEFAULT leaves tls and tls_verify as they are.
 */
enum client_tls_policy {
	CLIENT_TLSPOL_DEFAULT,
	CLIENT_TLSPOL_NONE,	/* no STARTTLS */
	CLIENT_TLSPOL_MAY,	/* STARTTLS when offered, any certificate */
	CLIENT_TLSPOL_ENCRYPT,	/* STARTTLS required, any certificate */
	CLIENT_TLSPOL_VERIFY,	/* STARTTLS, certificate and name checked */
	CLIENT_TLSPOL_DANE,	/* DANE (RFC 7672) where TLSA records are
				   validated, else as MAY */
	CLIENT_TLSPOL_MTA_STS,	/* MTA-STS (RFC 8461) where published,
				   else as MAY */
	CLIENT_TLSPOL_AUTO,	/* DANE, else MTA-STS, else MAY */
};

/* One TLS outcome, for TLS reporting (RFC 8460). */
struct client_tls_event {
	const char	*domain;	/* the policy domain */
	const char	*policy_type;	/* "tlsa", "sts", "no-policy-found" */
	const char	*policy;	/* the policy's strings, "\n" between
					   them; "" for no-policy-found */
	const char	*mx_host;	/* the host connected to */
	const char	*addr;		/* its address */
	const char	*failure;	/* NULL: success; else an RFC 8460
					   result type */
	const char	*detail;	/* what happened, or "" */
};

/* The AUTH mechanism to use; CLIENT_AUTH_AUTO picks the best offered. */
enum client_auth_mech {
	CLIENT_AUTH_AUTO,
	CLIENT_AUTH_PLAIN,
	CLIENT_AUTH_LOGIN,
	CLIENT_AUTH_CRAM_MD5,
	CLIENT_AUTH_XOAUTH2,
};

struct client_opts {
	const char	*helo;		/* EHLO name */
	enum client_tls	 tls;
	int		 tls_verify;	/* 1: verify cert against trust store + host name */
	const char	*tls_cafile;	/* extra CA file, or NULL */
	const char	*tls_pin;	/* pin list (pin.h), or NULL */
	const char	*auth_user;	/* NULL: no AUTH */
	const char	*auth_secret;	/* password or OAuth token */
	int		 auth_xoauth2;	/* the secret is a token */
	int		 auth_cleartext_ok;	/* PLAIN/LOGIN allowed without TLS */
	unsigned	 connect_timeout, command_timeout, data_timeout;	/* seconds */
	int		 debug;		/* transcript on stderr, secrets redacted */
	const char	**busted_mx;	/* MX hosts to skip (-b), NULL-terminated */
	const char	*gateway;	/* fallback dial string (-g), or NULL */
	/* Additions: */
	enum client_auth_mech auth_mech;	/* CLIENT_AUTH_AUTO unless forced */
	int		 tls_fallback;	/* opportunistic: when the TLS handshake
					   fails, try that address once more
					   in the clear (RFC 7435) */
	const char	*self;		/* our host name, or NULL: MX hosts as
					   preferred as it, or less, are not
					   tried (RFC 5321 5.1) */
	enum client_tls_policy tls_policy;
	const char	*sts_cache;	/* MTA-STS policy cache directory,
					   or NULL: fetched every time */
	unsigned	 sts_timeout;	/* policy fetch, seconds (0: 30) */
	/* Each TLS outcome under a policy, for TLS reports; NULL: none. */
	void		(*tls_event)(void *, const struct client_tls_event *);
	void		*tls_event_arg;
	int		 lmtp;		/* speak LMTP (RFC 2033): LHLO, and
					   a reply per recipient after the
					   data */
};

/* What a failure suggests trying, for the caller to put in its words. */
enum client_hint {
	CLIENT_HINT_NONE,
	CLIENT_HINT_IMPLICIT_TLS,	/* no greeting: the server may expect
					   TLS first (port 465) */
	CLIENT_HINT_PLAIN_SMTP,		/* TLS first, but the server greeted
					   in plain text */
	CLIENT_HINT_UNKNOWN_CA,		/* the certificate's issuer is not
					   trusted */
};

/* Where in the session an outcome happened. */
enum client_phase {
	CLIENT_PH_CONNECT, CLIENT_PH_GREETING, CLIENT_PH_EHLO,
	CLIENT_PH_STARTTLS, CLIENT_PH_AUTH, CLIENT_PH_MAIL, CLIENT_PH_RCPT,
	CLIENT_PH_DATA, CLIENT_PH_DOT,
	CLIENT_PH_LMTP,		/* a recipient's reply after LMTP's data */
};

/*
 * What the client found out without a reply deciding it; with
 * CLIENT_CAUSE_NONE the reply decides.  The enhanced status each stands
 * for is client_status()'s.
 */
enum client_cause {
	CLIENT_CAUSE_NONE,
	CLIENT_CAUSE_NETWORK,	/* no connection, lost, timed out */
	CLIENT_CAUSE_LOST,	/* the connection was gone before MAIL
				   (4.4.2) */
	CLIENT_CAUSE_BUSTED,	/* every MX host marked busted (4.4.1) */
	CLIENT_CAUSE_DNS,	/* a DNS lookup failed for now (4.4.3) */
	CLIENT_CAUSE_NO_HOST,	/* no such domain or host, no address (5.1.2) */
	CLIENT_CAUSE_NULL_MX,	/* the domain takes no mail (556 5.1.10) */
	CLIENT_CAUSE_MX_LOOP,	/* its best MX host is us (5.4.6) */
	CLIENT_CAUSE_PROTOCOL,	/* the server's words are not SMTP, or out
				   of turn */
	CLIENT_CAUSE_TLS_NOT_OFFERED,	/* TLS required, no STARTTLS (5.7.10) */
	CLIENT_CAUSE_TLS_REFUSED,	/* TLS required, STARTTLS refused */
	CLIENT_CAUSE_TLS_VERIFY,	/* certificate or pin refused (5.7.0) */
	CLIENT_CAUSE_TLS_POLICY,	/* DANE or MTA-STS not met (4.7.5) */
	CLIENT_CAUSE_AUTH,	/* AUTH wanted, none usable (5.7.0) */
	CLIENT_CAUSE_TOO_BIG,	/* over the server's SIZE (552 5.3.4) */
	CLIENT_CAUSE_SMTPUTF8,	/* SMTPUTF8 needed, not offered (5.6.7) */
	CLIENT_CAUSE_REQUIRETLS,	/* REQUIRETLS not met (5.7.30) */
	CLIENT_CAUSE_LIMITS,	/* LIMITS MAILMAX reached (4.5.3) */
	CLIENT_CAUSE_MESSAGE,	/* the message data could not be read */
	CLIENT_CAUSE_USAGE,	/* bad destination, no recipients */
	CLIENT_CAUSE_CONFIG,	/* our settings: a CA file, a secret */
	CLIENT_CAUSE_SOFTWARE,	/* the TLS library failed */
	CLIENT_CAUSE_NOMEM,	/* out of memory */
};

struct client_result {
	struct reply	 reply;	/* the deciding reply; code 0 if none */
	enum client_phase phase;
	enum client_cause cause;
	int		 temporary;	/* 1 if a later try may succeed */
	char	host[CLIENT_HOST_MAX];	/* the host that said it (name and [address]) */
	char	text[CLIENT_TEXT_MAX];	/* one line: what happened, quoting the server */
	/* Additions: */
	enum client_hint hint;
	char	peer_pin[64];	/* with CLIENT_HINT_UNKNOWN_CA: the server's
				   key as a pin ("pin-sha256:..."), or "" */
};

struct client_rcpt {
	const char	*addr;		/* mailbox without <> */
	const char	*notify;	/* RFC 3461 NOTIFY value or NULL */
	const char	*orcpt;		/* RFC 3461 ORCPT value (xtext, as sent) or NULL */
	/* filled in by client_send(): the reply for this recipient (code 0
	 * if never tried; its text says what happened then), as above. */
	struct reply	 reply;
	enum client_phase phase;
	enum client_cause cause;
	int		 temporary;
};

struct client_msg {
	const char	*sender;	/* "" for the null sender */
	struct client_rcpt *rcpts;
	size_t		 nrcpts;
	const char	*envid, *ret;	/* RFC 3461 (as sent), or NULL */
	int		 smtputf8;	/* needs SMTPUTF8 */
	int		 eightbit;	/* send BODY=8BITMIME */
	int		 fd;		/* message data: read from fd (CRLF or LF lines,
					   NOT dot-stuffed; the library dot-stuffs) ... */
	const char	*data;		/* ... or from this buffer when fd == -1 */
	size_t		 datalen;
	/* Addition: */
	int		 data_pread;	/* read fd with pread() from data_off,
					   leaving its offset alone (a file
					   that other threads read too) */
	off_t		 data_off;
	int		 requiretls;	/* RFC 8689: only over verified TLS
					   to a server offering REQUIRETLS;
					   else 5.7.30 for every recipient */
};

struct client_conn;

/*
 * Dials dest (dial string or domain for MX), greets, EHLO, STARTTLS, AUTH
 * as opts say.  opts and the strings it points to must stay valid until
 * client_quit().  NULL on failure with *res filled.
 */
struct client_conn *client_connect(const char *dest,
	    const struct client_opts *, struct client_result *res);
/*
 * As client_connect(), to a stream socket at path in the file system (an
 * LMTP server such as /run/dovecot/lmtp).  No TLS: it is a local peer.
 */
struct client_conn *client_connect_unix(const char *path,
	    const struct client_opts *, struct client_result *res);
/*
 * Sends one message on an open connection (RSET between messages is the
 * library's job); in several transactions when the server's LIMITS
 * RCPTMAX (RFC 9422) is smaller than the recipient list.  Returns the
 * severity of the worst outcome (client_result_severity(): 0 all went,
 * 1 temporary, 2 permanent); per-recipient results
 * in msg->rcpts.  When MAIL or the data is refused, every recipient gets
 * that reply.  res describes the deciding reply (the final 250 when all
 * went well).  Under LMTP each recipient accepted at RCPT gets its own
 * reply to the data (RFC 2033 4.2).
 */
int	client_send(struct client_conn *, struct client_msg *,
	    struct client_result *res);
/* QUIT and close; sets *cp to NULL. */
void	client_quit(struct client_conn **cp);

/* "name [address]" of the server we are talking to. */
const char *client_peer(const struct client_conn *);
/* The policy's name ("dane", ...), NULL if unknown; and the reverse. */
const char *client_tls_policy_name(enum client_tls_policy);
int	client_tls_policy_parse(const char *, enum client_tls_policy *);
/* What authenticated the session: "DANE", "MTA-STS", "verified",
 * "unverified", or "none" without TLS. */
const char *client_tls_auth(const struct client_conn *);

/* For smtp -p: the greeting's text; the last EHLO reply's lines without
 * their codes, each ended by "\n" ("" after HELO); the TLS session, or
 * NULL. */
const char *client_greeting(const struct client_conn *);
const char *client_ehlo_reply(const struct client_conn *);
gnutls_session_t client_tls_session(const struct client_conn *);

/* 1 if the session is encrypted. */
int	client_tls_active(const struct client_conn *);
/* 1 if the server's EHLO reply listed the extension ("DSN", "AUTH", ...). */
int	client_offers(const struct client_conn *, const char *ext);
/* 1 if another message may be sent on the connection (LIMITS MAILMAX
 * counted). */
int	client_usable(const struct client_conn *);
/*
 * 1 if a connection left unused for a while may still carry a message:
 * usable, and nothing has come from the server meanwhile (a 421 or its
 * closing end the session).  Does not wait.
 */
int	client_idle_ok(const struct client_conn *);

/*
 * Outcomes (client_exit.c).  0 for success (a 2xx reply, or 3xx to DATA,
 * with no cause), 1 for a temporary failure, 2 for a permanent one.
 */
int	client_result_severity(const struct client_result *);
int	client_rcpt_severity(const struct client_rcpt *);
/* The enhanced status and code: the reply's, else the cause's ("" / 0). */
const char *client_result_status(const struct client_result *);
const char *client_rcpt_status(const struct client_rcpt *);
int	client_result_code(const struct client_result *);
int	client_rcpt_code(const struct client_rcpt *);
/* 1 if the cause is the client's own final word on the destination or
 * the message (5.X.Y), so that retrying cannot help. */
int	client_cause_final(enum client_cause);

/*
 * For the programs: the sysexits(3) status of an outcome (smtp(1), EXIT
 * STATUS, gives the rules); EX_OK on success.
 */
int	client_exit_status(const struct client_result *);
int	client_rcpt_exit_status(const struct client_rcpt *);
/* The same from its parts; for an SMTP reply alone, cause NONE. */
int	client_exit_of(enum client_cause, int temporary, const struct reply *,
	    enum client_phase);
/* The sysexits status of an SMTP reply (code, enhanced status or "")
 * received in phase. */
int	client_classify(int code, const char *status, enum client_phase);
/* Ranks exit statuses: 0 for EX_OK, 1 for EX_TEMPFAIL, 2 for the rest. */
int	client_severity(int exit_status);

/* Dot-stuffing and line-ending normalisation of message data. */
struct client_stuffer {
	int	bol;	/* at the start of a line */
	int	cr;	/* the last byte seen was a CR */
};
void	client_stuff_init(struct client_stuffer *);
/* Appends the wire form of in (LF, CRLF or lone CR line ends; lone CR and
 * LF become CRLF, a leading dot is doubled) to out.  0, or -1 when out is
 * full. */
int	client_stuff(struct client_stuffer *, const char *in, size_t len,
	    struct str *out);
/* Ends the data: a CRLF if the last line lacked one, then ".\r\n". */
int	client_stuff_end(struct client_stuffer *, struct str *out);
/* Picks the AUTH mechanism from the server's list ("PLAIN LOGIN ...").
 * -1 if none fits. */
int	client_pick_mech(const char *offered, int tls, int cleartext_ok,
	    int xoauth2, enum client_auth_mech forced);

#endif
