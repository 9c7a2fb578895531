/*
 * client_exit: what an outcome of the client library means -- success, a
 * temporary or a permanent failure -- and, for the programs that exit
 * with one (smtp, sendmail's smarthost, smtp -p), its sysexits(3) status.
 * The library itself never decides an exit status.
 */
#include "config.h"

#include <stdio.h>
#include <sysexits.h>

#include "client.h"
#include "lib/reply.h"


int
client_severity(int exit_status)
{
	if (exit_status == EX_OK)
		return 0;
	if (exit_status == EX_TEMPFAIL)
		return 1;
	return 2;
}

int
client_classify(int code, const char *status, enum client_phase ph)
{
	int subject = -1, detail = -1;

	if (code >= 200 && code < 300)
		return EX_OK;
	/* 354 answers DATA; any other 3xx is out of turn (AUTH's 334 is
	 * read by the AUTH code itself). */
	if (code >= 300 && code < 400)
		return ph == CLIENT_PH_DATA ? EX_OK : EX_PROTOCOL;
	if (code >= 400 && code < 500)
		return EX_TEMPFAIL;
	if (code < 500 || code > 599)
		return EX_PROTOCOL;
	/* RFC 4954's replies: authentication required (530), mechanism
	 * too weak (534), credentials refused (535), encryption needed
	 * (538). */
	if (ph == CLIENT_PH_AUTH || code == 530 || code == 534 ||
	    code == 535 || code == 538)
		return EX_NOPERM;
	if (status != NULL && status[0] == '5' &&
	    sscanf(status, "5.%d.%d", &subject, &detail) == 2) {
		/* The sender's address or mailbox refused: the message
		 * cannot go as it is, whoever it is for. */
		if (ph == CLIENT_PH_MAIL && (subject == 1 || subject == 2))
			return EX_DATAERR;
		switch (subject) {
		case 1:	/* addressing */
			if (detail == 1 || detail == 3 || detail == 6)
				return ph == CLIENT_PH_MAIL ? EX_DATAERR :
				    EX_NOUSER;
			if (detail == 2 || detail == 10)
				return EX_NOHOST;
			if (detail == 7 || detail == 8)
				return EX_DATAERR;
			break;
		case 2:	/* mailbox */
			if (detail == 1)
				return EX_NOUSER;
			if (detail == 3)
				return EX_DATAERR;
			break;
		case 3:	/* mail system */
			if (detail == 4)
				return EX_DATAERR;
			break;
		case 4:	/* network and routing */
			if (detail == 4)
				return EX_NOHOST;
			break;
		case 5:	/* protocol */
			return EX_PROTOCOL;
		case 6:	/* content */
			return EX_DATAERR;
		case 7:	/* security and policy */
			if (detail == 8)
				return EX_NOPERM;
			return EX_UNAVAILABLE;
		}
	}
	switch (ph) {
	case CLIENT_PH_RCPT:
		if (code == 550 || code == 551 || code == 553 || code == 501)
			return EX_NOUSER;
		break;
	case CLIENT_PH_MAIL:
		if (code == 552 || code == 553 || code == 501 || code == 555)
			return EX_DATAERR;
		break;
	case CLIENT_PH_DATA:
	case CLIENT_PH_DOT:
	case CLIENT_PH_LMTP:
		if (code == 552 || code == 554 || code == 550)
			return EX_DATAERR;
		break;
	default:
		break;
	}
	if (code == 500 || code == 501 || code == 502 || code == 503 ||
	    code == 504)
		return EX_PROTOCOL;
	return EX_UNAVAILABLE;
}

/* The enhanced status and the code a cause stands for. */
static const struct {
	const char	*status;
	int		 code;
} causes[] = {
	[CLIENT_CAUSE_NONE] = { "", 0 },
	[CLIENT_CAUSE_NETWORK] = { "", 0 },
	[CLIENT_CAUSE_LOST] = { "4.4.2", 0 },
	[CLIENT_CAUSE_BUSTED] = { "4.4.1", 0 },
	[CLIENT_CAUSE_DNS] = { "4.4.3", 0 },
	[CLIENT_CAUSE_NO_HOST] = { "5.1.2", 0 },
	[CLIENT_CAUSE_NULL_MX] = { "5.1.10", 556 },
	[CLIENT_CAUSE_MX_LOOP] = { "5.4.6", 0 },
	[CLIENT_CAUSE_PROTOCOL] = { "", 0 },
	[CLIENT_CAUSE_TLS_NOT_OFFERED] = { "5.7.10", 0 },
	[CLIENT_CAUSE_TLS_REFUSED] = { "", 0 },
	[CLIENT_CAUSE_TLS_VERIFY] = { "5.7.0", 0 },
	[CLIENT_CAUSE_TLS_POLICY] = { "4.7.5", 0 },
	[CLIENT_CAUSE_AUTH] = { "5.7.0", 0 },
	[CLIENT_CAUSE_TOO_BIG] = { "5.3.4", 552 },
	[CLIENT_CAUSE_SMTPUTF8] = { "5.6.7", 0 },
	[CLIENT_CAUSE_REQUIRETLS] = { "5.7.30", 0 },
	[CLIENT_CAUSE_LIMITS] = { "4.5.3", 0 },
	[CLIENT_CAUSE_MESSAGE] = { "", 0 },
	[CLIENT_CAUSE_USAGE] = { "", 0 },
	[CLIENT_CAUSE_CONFIG] = { "", 0 },
	[CLIENT_CAUSE_SOFTWARE] = { "", 0 },
	[CLIENT_CAUSE_NOMEM] = { "", 0 },
};

static int
cause_known(enum client_cause c)
{
	return (unsigned)c < sizeof(causes) / sizeof(causes[0]);
}

int
client_cause_final(enum client_cause c)
{
	return cause_known(c) && causes[c].status[0] == '5';
}

int
client_exit_of(enum client_cause cause, int temporary, const struct reply *r,
    enum client_phase ph)
{
	if (temporary)
		return EX_TEMPFAIL;
	switch (cause) {
	case CLIENT_CAUSE_NONE:
		return client_classify(r != NULL ? r->code : 0,
		    r != NULL ? r->status : "", ph);
	case CLIENT_CAUSE_NO_HOST:
	case CLIENT_CAUSE_NULL_MX:
		return EX_NOHOST;
	case CLIENT_CAUSE_MX_LOOP:
	case CLIENT_CAUSE_TLS_NOT_OFFERED:
	case CLIENT_CAUSE_TLS_REFUSED:
	case CLIENT_CAUSE_TLS_VERIFY:
	case CLIENT_CAUSE_REQUIRETLS:
		return EX_UNAVAILABLE;
	case CLIENT_CAUSE_AUTH:
		return EX_NOPERM;
	case CLIENT_CAUSE_TOO_BIG:
	case CLIENT_CAUSE_SMTPUTF8:
		return EX_DATAERR;
	case CLIENT_CAUSE_MESSAGE:
		return EX_IOERR;
	case CLIENT_CAUSE_USAGE:
		return EX_USAGE;
	case CLIENT_CAUSE_CONFIG:
		return EX_CONFIG;
	case CLIENT_CAUSE_SOFTWARE:
		return EX_SOFTWARE;
	case CLIENT_CAUSE_NOMEM:
		return EX_OSERR;
	case CLIENT_CAUSE_PROTOCOL:
	default:
		/* The temporary causes come here only when mislabelled. */
		return EX_PROTOCOL;
	}
}

int
client_exit_status(const struct client_result *res)
{
	return client_exit_of(res->cause, res->temporary, &res->reply,
	    res->phase);
}

int
client_rcpt_exit_status(const struct client_rcpt *rc)
{
	return client_exit_of(rc->cause, rc->temporary, &rc->reply, rc->phase);
}

/* 354 answers DATA; 2xx anything. */
static int
outcome_severity(enum client_cause cause, int temporary,
    const struct reply *r, enum client_phase ph)
{
	if (temporary)
		return 1;
	if (cause == CLIENT_CAUSE_NONE && (reply_class(r->code) ==
	    REPLY_POSITIVE || (reply_class(r->code) == REPLY_INTERMEDIATE &&
	    ph == CLIENT_PH_DATA)))
		return 0;
	return 2;
}

int
client_result_severity(const struct client_result *res)
{
	return outcome_severity(res->cause, res->temporary, &res->reply,
	    res->phase);
}

int
client_rcpt_severity(const struct client_rcpt *rc)
{
	return outcome_severity(rc->cause, rc->temporary, &rc->reply,
	    rc->phase);
}

static const char *
outcome_status(enum client_cause cause, const struct reply *r)
{
	if (r->code != 0 || !cause_known(cause))
		return r->status;
	return causes[cause].status;
}

static int
outcome_code(enum client_cause cause, const struct reply *r)
{
	if (r->code != 0 || !cause_known(cause))
		return r->code;
	return causes[cause].code;
}

const char *
client_result_status(const struct client_result *res)
{
	return outcome_status(res->cause, &res->reply);
}

const char *
client_rcpt_status(const struct client_rcpt *rc)
{
	return outcome_status(rc->cause, &rc->reply);
}

int
client_result_code(const struct client_result *res)
{
	return outcome_code(res->cause, &res->reply);
}

int
client_rcpt_code(const struct client_rcpt *rc)
{
	return outcome_code(rc->cause, &rc->reply);
}
