/*
 * The mail transaction (MAIL, RCPT, DATA or BDAT, pipelined when offered;
 * LMTP's per-recipient replies) and the results.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#include "client.h"
#include "client_int.h"
#include "clientext.h"
#include "dial.h"
#include "pin.h"
#include "reply.h"
#include "tlspolicy.h"
#include "lib/dns.h"
#include "lib/lineio.h"
#include "lib/net.h"

static int	client_send_data(struct client_conn *, struct client_msg *,
		    char *, size_t);
static int	client_lmtp_replies(struct client_conn *,
		    struct client_msg *, struct client_result *);

/* ---------------------------------------------------------------- */
/* Results and the transcript */

/* Sets a result the client determined itself (cause), with no reply. */
void
client_set(struct client_result *res, enum client_phase ph,
    enum client_cause cause, int temporary, const char *host,
    const char *fmt, ...)
{
	char text[CLIENT_TEXT_MAX];
	va_list ap;

	/* Formatted apart: the text may quote the result's own. */
	va_start(ap, fmt);
	(void)vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	reply_clear(&res->reply);
	res->phase = ph;
	res->cause = cause;
	res->temporary = temporary;
	res->hint = CLIENT_HINT_NONE;
	res->peer_pin[0] = '\0';
	if (host != NULL)
		str_lcpy(res->host, host, sizeof(res->host));
	str_lcpy(res->text, text, sizeof(res->text));
}

/* "what: 550 5.1.1 text" from a reply received in phase ph. */
void
client_set_reply(struct client_result *res, const char *host,
    enum client_phase ph, const struct reply *r, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	client_set(res, ph, CLIENT_CAUSE_NONE, reply_temporary(r), host,
	    "%s: %d %s", what, r->code, r->text);
	res->reply = *r;
}

/*
 * Keeps in *acc the result that should be reported after several
 * attempts: any temporary failure makes the whole temporary (another try
 * later may reach that host); otherwise the latest.
 */
void
client_merge(struct client_result *acc, const struct client_result *r)
{
	if (acc->temporary && !r->temporary)
		return;
	*acc = *r;
}

/* ---------------------------------------------------------------- */
/* Sending */

void
client_stuff_init(struct client_stuffer *st)
{
	st->bol = 1;
	st->cr = 0;
}

int
client_stuff(struct client_stuffer *st, const char *in, size_t len,
    struct str *out)
{
	size_t i = 0, run;

	while (i < len) {
		if (st->cr) {
			/* The CR before was a line end; LF completes it. */
			st->cr = 0;
			if (in[i] == '\n') {
				i++;
				continue;
			}
		}
		if (st->bol && in[i] == '.' && str_appendc(out, '.') == -1)
			return -1;
		st->bol = 0;
		for (run = i; run < len && in[run] != '\r' && in[run] != '\n';
		    run++)
			;
		if (str_append(out, in + i, run - i) == -1)
			return -1;
		i = run;
		if (i < len) {
			if (str_append(out, "\r\n", 2) == -1)
				return -1;
			st->cr = in[i] == '\r';
			st->bol = 1;
			i++;
		}
	}
	return 0;
}

int
client_stuff_end(struct client_stuffer *st, struct str *out)
{
	if (!st->bol && str_append(out, "\r\n", 2) == -1)
		return -1;
	st->bol = 1;
	return str_append(out, ".\r\n", 3);
}

/* Sends the message and the final dot.  0, -1 I/O error, -2 local read
 * error (err says which). */
static int
client_send_data(struct client_conn *c, struct client_msg *m, char *err,
    size_t errlen)
{
	struct client_stuffer st;
	struct str out;
	char *buf = NULL, note[64];
	unsigned long long total = 0;
	size_t off = 0, n;
	ssize_t rd;
	int r = 0, k;

	str_init(&out, 2 * CLIENT_CHUNK + 8);
	client_stuff_init(&st);
	lineio_set_timeout(c->io, (int)c->opts.command_timeout * 1000);
	if (m->fd != -1 && (buf = malloc(CLIENT_CHUNK)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -2;
	}
	for (;;) {
		if (m->fd != -1) {
			if (m->data_pread) {
				rd = pread(m->fd, buf, CLIENT_CHUNK,
				    m->data_off + (off_t)total);
			} else
				rd = read(m->fd, buf, CLIENT_CHUNK);
			if (rd == -1 && errno == EINTR)
				continue;
			if (rd == -1) {
				snprintf(err, errlen, "reading the message: %s",
				    strerror(errno));
				r = -2;
				break;
			}
			if (rd == 0)
				break;
			r = client_stuff(&st, buf, (size_t)rd, &out);
			total += (unsigned long long)rd;
		} else {
			if (off == m->datalen)
				break;
			n = m->datalen - off < CLIENT_CHUNK ?
			    m->datalen - off : CLIENT_CHUNK;
			r = client_stuff(&st, m->data + off, n, &out);
			off += n;
			total += n;
		}
		if (r == -1 || (out.len >= CLIENT_CHUNK &&
		    (r = lineio_write(c->io, out.s, out.len)) == -1))
			break;
		if (out.len >= CLIENT_CHUNK)
			str_clear(&out);
	}
	/* The last block carries the final dot: one write, no stall. */
	if (r == 0 && (client_stuff_end(&st, &out) == -1 ||
	    lineio_write(c->io, out.s, out.len) == -1 ||
	    lineio_flush(c->io) == -1))
		r = -1;
	free(buf);
	str_free(&out);
	if (r == 0) {
		k = snprintf(note, sizeof(note), "(%llu bytes of message)",
		    total);
		client_debug(c, "->", note, k > 0 ? (size_t)k : 0);
		client_debug(c, "->", ".", 1);
	}
	if (r == -1)
		c->broken = 1;
	return r;
}

/* Gives a recipient the outcome of a reply. */
static void
client_rcpt_set(struct client_rcpt *rc, const struct reply *r,
    enum client_phase ph)
{
	rc->reply = *r;
	rc->phase = ph;
	rc->cause = CLIENT_CAUSE_NONE;
	rc->temporary = reply_temporary(r);
}

/* Gives a recipient an outcome without a reply; text says what. */
static void
client_rcpt_fail(struct client_rcpt *rc, enum client_phase ph,
    enum client_cause cause, int temporary, const char *text)
{
	(void)reply_set(&rc->reply, 0, NULL, "%s", text);
	rc->phase = ph;
	rc->cause = cause;
	rc->temporary = temporary;
}

/* Gives a recipient the outcome of res, without its reply. */
static void
client_rcpt_as(struct client_rcpt *rc, const struct client_result *res)
{
	client_rcpt_fail(rc, res->phase, res->cause, res->temporary,
	    res->text);
}

static int
client_transaction(struct client_conn *c, struct client_msg *m,
    struct client_result *res)
{
	enum { CMD_RSET, CMD_MAIL, CMD_RCPT, CMD_DATA };
	struct reply r, mail_r;
	struct str params;
	struct stat sb;
	char err[256];
	long long size = -1;
	off_t pos;
	size_t i, ncmd, sent, done, group, accepted = 0, worst_i = 0;
	int rset, mail_ok = 0, rc, worst = -1, lost = 0;
	int data_code = 0;
	struct reply data_r;

	memset(res, 0, sizeof(*res));
	str_lcpy(res->host, c->peer, sizeof(res->host));
	for (i = 0; i < m->nrcpts; i++) {
		reply_clear(&m->rcpts[i].reply);
		m->rcpts[i].phase = CLIENT_PH_MAIL;
		m->rcpts[i].cause = CLIENT_CAUSE_NONE;
		m->rcpts[i].temporary = 1;
	}
	if (m->nrcpts == 0) {
		client_set(res, CLIENT_PH_MAIL, CLIENT_CAUSE_USAGE, 0, NULL,
		    "no recipients");
		return client_result_severity(res);
	}
	if (c->io == NULL || c->broken) {
		client_set(res, CLIENT_PH_MAIL, CLIENT_CAUSE_LOST, 1, NULL,
		    "the connection to %s is lost", c->peer);
		goto allfail;
	}
	if (m->smtputf8 && !(c->caps & CAP_SMTPUTF8)) {
		/* RFC 6531 3.4: no downgrade; say so. */
		client_set(res, CLIENT_PH_MAIL, CLIENT_CAUSE_SMTPUTF8, 0, NULL,
		    "the message needs SMTPUTF8 (RFC 6531), which %s does "
		    "not offer",
		    c->peer);
		goto allfail;
	}
	if (m->requiretls && !clientext_requiretls_ok(c->tls != NULL,
	    client_tls_auth(c), c->opts.tls_pin != NULL,
	    (c->caps & CAP_REQUIRETLS) != 0, err, sizeof(err))) {
		/* RFC 8689 4.2.1: no delivery on lesser terms. */
		client_set(res, CLIENT_PH_MAIL, CLIENT_CAUSE_REQUIRETLS, 0,
		    NULL, "REQUIRETLS support required: %s: %s", c->peer, err);
		goto allfail;
	}
	if (m->fd != -1) {
		pos = m->data_pread ? m->data_off : lseek(m->fd, 0, SEEK_CUR);
		if (fstat(m->fd, &sb) == 0 && S_ISREG(sb.st_mode) &&
		    pos != (off_t)-1 && pos <= sb.st_size)
			size = (long long)(sb.st_size - pos);
	} else
		size = (long long)m->datalen;
	if ((c->caps & CAP_SIZE) && c->size_max > 0 && size >= 0 &&
	    (unsigned long long)size > c->size_max) {
		/* RFC 1870: no point sending what will be refused. */
		client_set(res, CLIENT_PH_MAIL, CLIENT_CAUSE_TOO_BIG, 0, NULL,
		    "the message (%lld bytes) is larger than %s accepts "
		    "(SIZE %llu)", size, c->peer, c->size_max);
		goto allfail;
	}

	str_init(&params, 1024);
	if ((c->caps & CAP_SIZE) && size >= 0)
		(void)str_appendf(&params, " SIZE=%lld", size);
	if (m->eightbit && (c->caps & CAP_8BITMIME))
		(void)str_appends(&params, " BODY=8BITMIME");
	if (m->smtputf8)
		(void)str_appends(&params, " SMTPUTF8");
	if (m->requiretls)
		(void)str_appends(&params, " REQUIRETLS");
	if ((c->caps & CAP_DSN) && m->ret != NULL)
		(void)str_appendf(&params, " RET=%s", m->ret);
	if ((c->caps & CAP_DSN) && m->envid != NULL)
		(void)str_appendf(&params, " ENVID=%s", m->envid);

	/* Commands in order: [RSET] MAIL RCPT... DATA. */
	rset = c->ntrans > 0;
	c->ntrans++;
	ncmd = (size_t)rset + 1 + m->nrcpts + 1;
	group = (c->caps & CAP_PIPELINING) ? CLIENT_PIPE_GROUP : 1;
	memset(&mail_r, 0, sizeof(mail_r));
	memset(&data_r, 0, sizeof(data_r));
	for (sent = done = 0; done < ncmd && !lost; ) {
		/* Queue a group (RFC 2920: DATA ends it). */
		while (sent < ncmd && sent - done < group) {
			size_t k = sent - (size_t)rset;

			if (rset && sent == 0)
				rc = client_cmd(c, NULL, "RSET");
			else if (k == 0)
				rc = client_cmd(c, NULL, "MAIL FROM:<%s>%s",
				    m->sender, str_cstr(&params));
			else if (k <= m->nrcpts) {
				const struct client_rcpt *rp = &m->rcpts[k - 1];

				if (!mail_ok && group == 1)
					break;	/* not worth asking */
				rc = client_cmd(c, NULL, "RCPT TO:<%s>%s%s%s%s",
				    rp->addr,
				    (c->caps & CAP_DSN) && rp->notify ?
				    " NOTIFY=" : "",
				    (c->caps & CAP_DSN) && rp->notify ?
				    rp->notify : "",
				    (c->caps & CAP_DSN) && rp->orcpt ?
				    " ORCPT=" : "",
				    (c->caps & CAP_DSN) && rp->orcpt ?
				    rp->orcpt : "");
			} else {
				if (group == 1 && (!mail_ok || accepted == 0))
					break;
				rc = client_cmd(c, NULL, "DATA");
			}
			if (rc == -1) {
				client_set(res, CLIENT_PH_MAIL,
				    CLIENT_CAUSE_NETWORK, 1, NULL,
				    "connection lost: %s", strerror(errno));
				lost = 1;
				break;
			}
			sent++;
		}
		if (sent == done)
			break;	/* nothing more worth sending */
		/* Read the group's replies. */
		for (; done < sent && !lost; done++) {
			size_t k = done - (size_t)rset;

			rc = client_reply(c, &r, NULL,
			    c->opts.command_timeout);
			if (rc != 0) {
				lost = 1;
				client_set(res, CLIENT_PH_MAIL, rc == -2 ?
				    CLIENT_CAUSE_PROTOCOL :
				    CLIENT_CAUSE_NETWORK, rc != -2, NULL, "%s",
				    rc == -2 ? "the reply is not SMTP" :
				    "connection lost");
				if (rc == -1)
					snprintf(res->text, sizeof(res->text),
					    "connection lost: %s",
					    strerror(errno));
				break;
			}
			if (rset && done == 0) {
				if (r.code / 100 != 2) {
					client_set_reply(res, NULL,
					    CLIENT_PH_MAIL, &r, "RSET");
					res->temporary = 1;
					c->broken = 1;
					lost = 1;
				}
			} else if (k == 0) {
				mail_r = r;
				mail_ok = r.code / 100 == 2;
			} else if (k <= m->nrcpts) {
				struct client_rcpt *rp = &m->rcpts[k - 1];

				if (!mail_ok)
					client_rcpt_set(rp, &mail_r,
					    CLIENT_PH_MAIL);
				else {
					client_rcpt_set(rp, &r, CLIENT_PH_RCPT);
					if (r.code / 100 == 2)
						accepted++;
				}
			} else {
				data_r = r;
				data_code = r.code;
			}
		}
	}
	str_free(&params);

	if (lost) {
		if (res->text[0] == '\0')
			client_set(res, CLIENT_PH_MAIL, CLIENT_CAUSE_NETWORK,
			    1, NULL,
			    "connection lost while sending commands");
		/* Whatever was not settled is lost with the connection. */
		for (i = 0; i < m->nrcpts; i++)
			if (m->rcpts[i].reply.code == 0 ||
			    m->rcpts[i].reply.code / 100 == 2)
				client_rcpt_as(&m->rcpts[i], res);
		goto summary;
	}
	if (data_code == 354 && (!mail_ok || accepted == 0)) {
		/* RFC 2920 3.1: a 354 must be answered; send nothing. */
		if (lineio_write(c->io, ".\r\n", 3) == -1 ||
		    client_reply(c, &r, NULL, c->opts.data_timeout) != 0)
			c->broken = 1;
	}
	if (!mail_ok) {
		/* Without pipelining the RCPTs were never sent. */
		for (i = 0; i < m->nrcpts; i++)
			client_rcpt_set(&m->rcpts[i], &mail_r, CLIENT_PH_MAIL);
		client_set_reply(res, c->peer, CLIENT_PH_MAIL, &mail_r,
		    "MAIL FROM:<%s> refused", m->sender);
		return client_result_severity(res);
	}
	if (accepted == 0)
		goto summary;
	if (data_code != 354) {
		for (i = 0; i < m->nrcpts; i++)
			if (m->rcpts[i].reply.code / 100 == 2) {
				client_rcpt_set(&m->rcpts[i], &data_r,
				    CLIENT_PH_DATA);
				/* 2xx to DATA is no invitation to send. */
				if (client_rcpt_severity(&m->rcpts[i]) == 0)
					m->rcpts[i].cause =
					    CLIENT_CAUSE_PROTOCOL;
			}
		goto summary;
	}
	rc = client_send_data(c, m, err, sizeof(err));
	if (rc == -2) {
		/* We cannot end the data cleanly: drop the connection so
		 * the server discards what it got. */
		c->broken = 1;
		for (i = 0; i < m->nrcpts; i++)
			if (m->rcpts[i].reply.code / 100 == 2)
				client_rcpt_fail(&m->rcpts[i], CLIENT_PH_DATA,
				    CLIENT_CAUSE_MESSAGE, 0, err);
		client_set(res, CLIENT_PH_DATA, CLIENT_CAUSE_MESSAGE, 0, NULL,
		    "%s", err);
		return client_result_severity(res);
	}
	if (rc == 0 && c->opts.lmtp) {
		/* Who got the message is settled per recipient. */
		(void)client_lmtp_replies(c, m, res);
		goto summary;
	}
	if (rc == 0)
		rc = client_reply(c, &r, NULL, c->opts.data_timeout);
	if (rc != 0) {
		snprintf(err, sizeof(err), "%s after the message data%s%s",
		    rc == -2 ? "garbled reply" : "connection lost",
		    rc == -1 ? ": " : "", rc == -1 ? strerror(errno) : "");
		for (i = 0; i < m->nrcpts; i++)
			if (m->rcpts[i].reply.code / 100 == 2)
				client_rcpt_fail(&m->rcpts[i], CLIENT_PH_DOT,
				    rc == -2 ? CLIENT_CAUSE_PROTOCOL :
				    CLIENT_CAUSE_NETWORK, rc != -2, err);
		goto summary;
	}
	for (i = 0; i < m->nrcpts; i++)
		if (m->rcpts[i].reply.code / 100 == 2)
			client_rcpt_set(&m->rcpts[i], &r, CLIENT_PH_DOT);
	if (r.code / 100 == 2)
		client_set_reply(res, c->peer, CLIENT_PH_DOT, &r, "sent");

summary:
	/* The worst recipient decides (permanent over temporary). */
	for (i = 0; i < m->nrcpts; i++) {
		int sev = client_rcpt_severity(&m->rcpts[i]);

		if (worst == -1 || sev > worst) {
			worst = sev;
			worst_i = i;
		}
	}
	if (worst != 0) {
		struct client_rcpt *rp = &m->rcpts[worst_i];

		if (rp->reply.code != 0)
			client_set(res, rp->phase, rp->cause, rp->temporary,
			    c->peer, "<%s>: %d %s", rp->addr, rp->reply.code,
			    rp->reply.text);
		else
			client_set(res, rp->phase, rp->cause, rp->temporary,
			    c->peer, "<%s>: %s", rp->addr, rp->reply.text);
		res->reply = rp->reply;
	}
	return client_result_severity(res);

allfail:
	for (i = 0; i < m->nrcpts; i++)
		client_rcpt_as(&m->rcpts[i], res);
	return client_result_severity(res);
}

/*
 * RFC 2033 4.2: after the data, one reply for each recipient that RCPT
 * accepted, in RCPT order.  0 when all came; -1 when the connection
 * failed on the way (those left get that failure, res says it).
 */
static int
client_lmtp_replies(struct client_conn *c, struct client_msg *m,
    struct client_result *res)
{
	struct reply r;
	char err[256];
	size_t i, j;
	int rc;

	for (i = 0; i < m->nrcpts; i++) {
		if (m->rcpts[i].reply.code / 100 != 2)
			continue;
		rc = client_reply(c, &r, NULL, c->opts.data_timeout);
		if (rc != 0) {
			snprintf(err, sizeof(err), "%s after the message "
			    "data%s%s", rc == -2 ? "garbled reply" :
			    "connection lost", rc == -1 ? ": " : "",
			    rc == -1 ? strerror(errno) : "");
			c->broken = 1;
			for (j = i; j < m->nrcpts; j++)
				if (m->rcpts[j].reply.code / 100 == 2)
					client_rcpt_fail(&m->rcpts[j],
					    CLIENT_PH_LMTP, rc == -2 ?
					    CLIENT_CAUSE_PROTOCOL :
					    CLIENT_CAUSE_NETWORK, rc != -2,
					    err);
			client_set(res, CLIENT_PH_LMTP, rc == -2 ?
			    CLIENT_CAUSE_PROTOCOL : CLIENT_CAUSE_NETWORK,
			    rc != -2, c->peer, "%s", err);
			return -1;
		}
		client_rcpt_set(&m->rcpts[i], &r, CLIENT_PH_LMTP);
		if (r.code / 100 == 2)
			client_set_reply(res, c->peer, CLIENT_PH_LMTP, &r,
			    "sent");
	}
	return 0;
}

/* Gives recipients rcpts[from..to) the outcome r, never tried. */
static void
client_rcpts_fail(struct client_msg *m, size_t from,
    const struct client_result *r)
{
	size_t i;

	for (i = from; i < m->nrcpts; i++)
		client_rcpt_as(&m->rcpts[i], r);
}

/*
 * RFC 9422: a server's RCPTMAX is met by splitting the recipients over
 * transactions, each with the whole message; the worst outcome decides.
 */
int
client_send(struct client_conn *c, struct client_msg *m,
    struct client_result *res)
{
	struct client_msg part;
	struct client_result r;
	size_t off, n, max = c->limits.rcptmax;
	off_t start = -1;
	int worst = -1, stop = 0, sev;

	if (max == 0 || m->nrcpts <= max)
		return client_transaction(c, m, res);
	/* Data read from a descriptor must be read again from its start;
	 * one that cannot seek goes in one piece, as before LIMITS. */
	if (m->fd != -1 && !m->data_pread &&
	    (start = lseek(m->fd, 0, SEEK_CUR)) == -1)
		return client_transaction(c, m, res);
	memset(res, 0, sizeof(*res));
	for (off = 0; off < m->nrcpts && !stop; off += n) {
		n = m->nrcpts - off < max ? m->nrcpts - off : max;
		memset(&r, 0, sizeof(r));
		part = *m;
		part.rcpts = m->rcpts + off;
		part.nrcpts = n;
		if (off > 0 && !client_usable(c)) {
			/* MAILMAX reached, or the connection is gone: the
			 * rest wait for another connection. */
			client_set(&r, CLIENT_PH_MAIL, CLIENT_CAUSE_LIMITS, 1,
			    c->peer,
			    "%s takes no more transactions on this "
			    "connection (LIMITS)", c->peer);
			client_rcpts_fail(m, off, &r);
			stop = 1;
		} else if (start != -1 && lseek(m->fd, start, SEEK_SET) ==
		    -1) {
			client_set(&r, CLIENT_PH_DATA, CLIENT_CAUSE_MESSAGE, 0,
			    NULL,
			    "rewinding the message: %s", strerror(errno));
			client_rcpts_fail(m, off, &r);
			stop = 1;
		} else
			(void)client_transaction(c, &part, &r);
		/* The worst decides; among successes, the last. */
		sev = client_result_severity(&r);
		if (worst == -1 || sev > worst || (sev == 0 && worst == 0)) {
			worst = sev;
			*res = r;
		}
	}
	return client_result_severity(res);
}
