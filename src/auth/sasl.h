/*
 * sasl: the server side of SMTP AUTH (RFC 4954) with PLAIN (RFC 4616),
 * LOGIN and CRAM-MD5 (RFC 2195), as a state machine that does no I/O.
 *
 * The session drives it:
 *
 *	if (sasl_split(arg, mech, sizeof(mech), &ir) == -1)
 *		reply with sasl_reply_for(SASL_SYNTAX)
 *	r = sasl_start(&sa, mech, ir, &conf, &rep);
 *	while (r == SASL_CONTINUE) {
 *		send "334 " rep.text (the space is sent even when text is "");
 *		read one line (at most SASL_LINE_MAX bytes; longer:
 *		    sasl_reply_for(SASL_TOO_LONG) and stop; EOF: stop);
 *		r = sasl_step(sa, line, len, &rep);
 *	}
 *	SASL_FAIL: count it (throttle), wait the delay, then reply;
 *	SASL_NO_SECRET: do not count it; wait as for a failure, reply;
 *	send rep (code 334, 235, 535, ...; status "" for 334);
 *	SASL_OK: the session is authenticated as sasl_user(sa);
 *	sasl_free(&sa);
 *
 * Neither the lines given to sasl_step() nor anything decoded from them
 * may be logged: they carry the password.  sasl_user() is the user name
 * the client claimed; it is untrusted (pass it through str_printable()).
 */
#ifndef SASL_H
#define SASL_H

#include <stddef.h>

#include "lib/reply.h"

struct secrets;

/* RFC 4954 section 4: a client response line may be 12288 octets. */
#define SASL_LINE_MAX		12288
#define SASL_MECH_MAX		20	/* RFC 4422 section 3.1 */
#define SASL_USER_MAX		255

/* Mechanisms (sasl_conf.mechs). */
#define SASL_M_PLAIN		0x01
#define SASL_M_LOGIN		0x02
#define SASL_M_CRAM_MD5		0x04
#define SASL_M_ALL		(SASL_M_PLAIN | SASL_M_LOGIN | SASL_M_CRAM_MD5)
/* Without auth.mechanisms: what works with every kind of secret. */
#define SASL_M_DEFAULT		(SASL_M_PLAIN | SASL_M_LOGIN)

/* Connection facts (sasl_conf.flags). */
#define SASL_F_TLS		0x01	/* the session is under TLS */
#define SASL_F_CLEARTEXT	0x02	/* PLAIN, LOGIN allowed in clear (-p) */

struct sasl_conf {
	unsigned int	 flags;		/* SASL_F_* */
	unsigned int	 mechs;		/* SASL_M_*: what the config enables */
	/* The secrets table (sasl takes its own reference); NULL when it
	 * could not be loaded: AUTH then answers 454 4.7.0. */
	struct secrets	*secrets;
	const char	*hostname;	/* for the CRAM-MD5 challenge */
	/* Dovecot's auth-client socket, or NULL: when set, PLAIN and LOGIN
	 * are checked by Dovecot (dovecot.h) instead of the secrets table,
	 * and CRAM-MD5 is not offered.  Must stay valid until sasl_free(). */
	const char	*dovecot;
};

/*
 * Every outcome, including those the session decides by itself, so that
 * all AUTH-related replies come from one table (sasl_reply_for()).
 */
enum sasl_result {
	SASL_CONTINUE = 0,	/* 334: send rep.text, then sasl_step() */
	SASL_OK,		/* 235 2.7.0 */
	SASL_FAIL,		/* 535 5.7.8 bad credentials: delay first */
	SASL_TEMPFAIL,		/* 454 4.7.0 secrets unreadable, ... */
	SASL_CANCELLED,		/* 501 5.0.0 the client sent "*" */
	SASL_BAD_BASE64,	/* 501 5.5.2 */
	SASL_MALFORMED,		/* 501 5.5.2 decoded, but not the format */
	SASL_SYNTAX,		/* 501 5.5.4 AUTH's own arguments */
	SASL_UNKNOWN_MECH,	/* 504 5.5.4 */
	SASL_TOO_WEAK,		/* 534 5.7.9 disabled by the config */
	SASL_ENCRYPT_REQUIRED,	/* 538 5.7.11 PLAIN/LOGIN without TLS */
	SASL_TOO_LONG,		/* 500 5.5.6 response line too long */
	SASL_NO_SECRET,		/* 535 5.7.8 like SASL_FAIL, but the account's
				 * secret cannot serve the mechanism (CRAM-MD5
				 * without {PLAIN}): not a wrong password */
	/* Decided by the session: */
	SASL_ALREADY,		/* 503 5.5.1 already authenticated */
	SASL_IN_TRANSACTION,	/* 503 5.5.1 AUTH during a transaction */
	SASL_AUTH_REQUIRED,	/* 530 5.7.0 MAIL before AUTH under -a */
	SASL_SENDER_DENIED,	/* 553 5.7.1 login may not use that sender */
	SASL_BLOCKED,		/* 421 4.7.0 too many failures: then close */
	SASL_NRESULTS
};

struct sasl;

/*
 * Splits AUTH's argument "mechanism [initial-response]" (RFC 4954
 * section 4).  mech gets the name; *ir points into arg at the initial
 * response, or is NULL.  0, or -1 on a syntax error (SASL_SYNTAX).
 */
int	sasl_split(const char *arg, char *mech, size_t mechlen,
	    const char **ir);
/*
 * Starts an exchange for mechanism mech (any case) with an optional
 * initial response ("=" is an empty one).  *sap is set even for a final
 * result, so that sasl_user() can name the user; it is NULL only when
 * memory ran out (SASL_TEMPFAIL).  rep gets the reply to send.
 */
enum sasl_result sasl_start(struct sasl **sap, const char *mech,
	    const char *ir, const struct sasl_conf *, struct reply *rep);
/*
 * Feeds one client line (len bytes, a trailing CRLF or LF is ignored).
 * "*" cancels.  Calling it after a final result gives SASL_TEMPFAIL.
 */
enum sasl_result sasl_step(struct sasl *, const char *line, size_t len,
	    struct reply *rep);
/* Wipes and frees; *sap = NULL. */
void	sasl_free(struct sasl **sap);

/* The user the client named ("" if none yet).  Untrusted bytes. */
const char *sasl_user(const struct sasl *);
/* The mechanism's canonical name ("PLAIN"), or "" before one is known. */
const char *sasl_mech(const struct sasl *);
/* A short reason for the last failure, for the log (never secrets). */
const char *sasl_why(const struct sasl *);

/* The reply for a result that carries no challenge. */
void	sasl_reply_for(enum sasl_result, struct reply *);

/*
 * The mechanisms to list after "250-AUTH " in the EHLO reply: the
 * enabled ones, minus PLAIN and LOGIN without TLS unless
 * SASL_F_CLEARTEXT, minus CRAM-MD5 when the table holds no clear secret.
 * Returns the length written; 0 means do not advertise AUTH.
 */
size_t	sasl_mechlist(const struct sasl_conf *, char *buf, size_t len);
/* SASL_M_* for a mechanism name (any case), 0 if unknown. */
unsigned int sasl_mech_bit(const char *name);

#endif
