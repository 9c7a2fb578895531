/*
 * A session's message: DATA and BDAT, the Received line, the checks at
 * the end of the data, and the hand-off to the spool (or the -m mailer).
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
#include "session.h"
#include "session_int.h"
#include "milter.h"
#include "signing.h"
#include "tls.h"

static int	write_received(struct session *, struct spool_msg *);
static struct spool_msg *begin_message(struct session *);
static void	finish_message(struct session *, enum data_verdict);

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
		(void)str_appendf(&r, "\t(using %s)\r\n", s->tlsinfo->desc);
	(void)str_appendf(&r, "\tby %s with %s id %s", s->pol->hostname,
	    protocol_name(s), spool_msg_id(m));
	if (s->nrcpts == 1)
		(void)str_appendf(&r, "\r\n\tfor <%s>", s->rcpts[0].mailbox);
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
	struct envelope env;
	struct spool_msg *m;

	/* The envelope borrows the session's strings. */
	memset(&env, 0, sizeof(env));
	env.sender = s->sender.mailbox;
	env.rcpts = s->rcpts;
	env.nrcpts = s->nrcpts;
	env.ret = s->mparams.ret;
	env.envid = s->mparams.envid[0] ? s->mparams.envid : NULL;
	env.auth = s->authenticated ? s->auth_user : NULL;
	env.helo = s->helo;
	env.peer = s->peer_addr[0] ? s->peer_addr : NULL;
	env.peer_name = s->peer_name[0] ? s->peer_name : NULL;
	env.protocol = protocol_name(s);
	env.body = s->mparams.body;
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
 * -m: Plan 9's synchronous hand-off.  The pipe agent runs the mailer with
 * the spooled message, and its exit decides the reply.
 */
static void
hand_off(struct session *s)
{
	const struct qc_user *mu = &s->queue->mailer_user;
	struct agent_handoff h;
	char reply_text[512];
	const char **rcpts;
	size_t i;
	int code, fd;

	if (mu->name[0] == '\0' && geteuid() == 0) {
		log_err("%s smtp mailer not run: queue.mailer_user does not "
		    "exist", s->id);
		reply(s, 451, "4.3.0", "Local delivery is not available, try "
		    "again later");
		return;
	}
	if ((rcpts = calloc(s->nrcpts, sizeof(*rcpts))) == NULL ||
	    (fd = spool_msg_read_fd(s->msg)) == -1) {
		log_err("%s smtp cannot hand the message to %s: %s", s->id,
		    s->conf->mailer, strerror(errno));
		reply(s, 451, "4.3.0", "We're busy right now, try later");
		free(rcpts);
		return;
	}
	for (i = 0; i < s->nrcpts; i++)
		rcpts[i] = s->rcpts[i].mailbox;
	memset(&h, 0, sizeof(h));
	h.mailer = s->conf->mailer;
	h.user = mu->name[0] ? mu : NULL;
	h.timeout = s->pol->data_timeout;
	h.qc = s->queue;
	h.id = spool_msg_id(s->msg);
	h.sender = s->sender.mailbox;
	h.rcpts = rcpts;
	h.nrcpts = s->nrcpts;
	h.fd = fd;
	code = agent_pipe_handoff(&h, reply_text, sizeof(reply_text));
	close(fd);
	free(rcpts);
	log_info("%s smtp mailer %s answered: %s", s->id, s->conf->mailer,
	    reply_text);
	if (code == 250)
		s->n_msgs++;
	/* reply_text is "CODE STATUS text" */
	(void)lineio_printf(s->io, "%s\r\n", reply_text);
	if (code >= 400)
		s->errors++;
}

/* Policy said no after the data: keep a copy if asked to, and answer. */
static void
refuse_message(struct session *s, const struct verdict *v)
{
	char path[PATH_MAX];
	struct verdict copy = *v;

	/* Only refusals: a delayed (4xx) message will be sent again. */
	if (s->msg != NULL && copy.kind != VERDICT_DROP &&
	    copy.reply.code >= 500 && (copy.save || s->pol->saveblockedmsg)) {
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

int
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

int
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

