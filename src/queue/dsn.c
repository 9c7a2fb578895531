#include "config.h"

#include <sys/types.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/addr.h"
#include "lib/fsutil.h"
#include "lib/str.h"
#include "dsn.h"

#define DSN_TEXT_MAX	(256 * 1024)	/* everything but the returned part */
/* Where the recipients' lists stop even before DSN_LIST_MAX. */
#define DSN_PART1_MAX	(DSN_TEXT_MAX / 4)
#define DSN_PART2_MAX	(DSN_TEXT_MAX * 3 / 4)
#define DSN_CHUNK	65536

static int	append_original(const struct dsn_report *, struct str *,
		    int whole);
static void	put_decoded(struct str *, const char *);

/* An xtext value decoded for display; the raw value if it is not xtext. */
static void
put_decoded(struct str *s, const char *xtext)
{
	char buf[1024];
	size_t i;

	if (env_xtext_decode(xtext, buf, sizeof(buf)) == -1) {
		(void)str_appends(s, xtext);
		return;
	}
	for (i = 0; buf[i] != '\0'; i++)
		(void)str_appendc(s, (unsigned char)buf[i] < 0x20 ? '?' :
		    buf[i]);
}

/*
 * The original message (whole) or its header, CRLF-terminated.  Returns
 * 0, or -1 on a read error.
 */
static int
append_original(const struct dsn_report *r, struct str *s, int whole)
{
	char *buf;
	off_t off = r->env->body_off, end;
	size_t limit, got = 0;
	ssize_t n;
	const char *hdr_end;

	if ((buf = malloc(DSN_CHUNK)) == NULL)
		return -1;
	if (whole) {
		limit = (size_t)r->env->size;
	} else {
		limit = r->bounce_size > DSN_HEADER_MAX ? r->bounce_size :
		    DSN_HEADER_MAX;
		if ((off_t)limit > r->env->size)
			limit = (size_t)r->env->size;
	}
	end = off + (off_t)limit;
	while (off < end) {
		size_t want = (size_t)(end - off) < DSN_CHUNK ?
		    (size_t)(end - off) : DSN_CHUNK;

		n = pread(r->fd, buf, want, off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(buf);
			return n == 0 ? 0 : -1;
		}
		if (str_append(s, buf, (size_t)n) == -1) {
			free(buf);
			errno = ENOMEM;
			return -1;
		}
		off += n;
		got += (size_t)n;
		if (!whole && (hdr_end = memmem(s->s + s->len - got, got,
		    "\r\n\r\n", 4)) != NULL) {
			/* Keep the header and its blank line only. */
			s->len = (size_t)(hdr_end - s->s) + 2;
			s->s[s->len] = '\0';
			break;
		}
	}
	free(buf);
	if (s->len >= 2 && memcmp(s->s + s->len - 2, "\r\n", 2) != 0)
		(void)str_appends(s, "\r\n");
	return 0;
}

int
dsn_build(const struct dsn_report *r, const char *msgid, struct str *out,
    char *err, size_t errlen)
{
	const struct dsn_rcpt *rc;
	const struct reply *rp;
	const char *subject, *semi, *status, *ctype, *desc;
	char date[64], boundary[128];
	size_t i, limit, nlist, listmax;
	int whole, eightbit, rc_ok;
	struct str s;

	eightbit = r->env->body == ENV_BODY_8BITMIME;
	eightbit |= r->env->smtputf8;
	/* A REQUIRETLS message's content does not come back, only its
	 * header: the report may travel another path (RFC 8689 4.3). */
	whole = r->kind == DSN_FAILURE && r->env->ret != ENV_RET_HDRS &&
	    !r->env->requiretls &&
	    (size_t)r->env->size <= r->bounce_size && !r->minimal;
	listmax = r->minimal ? 1 : DSN_LIST_MAX;
	limit = DSN_TEXT_MAX + (whole ? (size_t)r->env->size :
	    (r->bounce_size > DSN_HEADER_MAX ? r->bounce_size :
	    DSN_HEADER_MAX));
	str_init(&s, limit);

	switch (r->kind) {
	case DSN_FAILURE:
		subject = "Undelivered Mail Returned to Sender";
		break;
	case DSN_DELAY:
		subject = "Delayed Mail (still being retried)";
		break;
	default:
		subject = "Successful Mail Delivery Report";
		break;
	}
	snprintf(boundary, sizeof(boundary), "%s/%s", msgid, r->hostname);
	fs_rfc5322_date(date, sizeof(date), time(NULL));
	(void)str_appendf(&s, "From: Mail Delivery System "
	    "<MAILER-DAEMON@%s>\r\n", r->hostname);
	(void)str_appendf(&s, "To: <%s>\r\n", r->env->sender);
	(void)str_appendf(&s, "Subject: %s\r\n", subject);
	(void)str_appendf(&s, "Date: %s\r\n", date);
	(void)str_appendf(&s, "Message-ID: <%s@%s>\r\n", msgid, r->hostname);
	/* RFC 3834: automatic replies must not trigger more of them. */
	(void)str_appends(&s, "Auto-Submitted: auto-replied\r\n");
	(void)str_appends(&s, "MIME-Version: 1.0\r\n");
	(void)str_appendf(&s, "Content-Type: multipart/report; "
	    "report-type=delivery-status;\r\n\tboundary=\"%s\"\r\n", boundary);
	(void)str_appendf(&s, "Content-Transfer-Encoding: %s\r\n\r\n",
	    eightbit ? "8bit" : "7bit");
	(void)str_appends(&s, "This is a MIME-encapsulated message.\r\n\r\n");

	/* Part 1: for people. */
	(void)str_appendf(&s, "--%s\r\nContent-Description: Notification\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n\r\n", boundary);
	(void)str_appendf(&s, "This is the mail system at %s.\r\n\r\n",
	    r->hostname);
	switch (r->kind) {
	case DSN_FAILURE:
		(void)str_appends(&s, "Your message could not be delivered to "
		    "one or more recipients.\r\n");
		if (r->minimal) {
			(void)str_appendf(&s, "%zu recipients failed.\r\n",
			    r->nrcpts);
			break;
		}
		(void)str_appends(&s, "It is attached below");
		if (!whole)
			(void)str_appends(&s, " (its header only");
		if (!whole && r->env->ret != ENV_RET_HDRS && r->kind ==
		    DSN_FAILURE)
			(void)str_appendf(&s, ": the message is larger than "
			    "%zu bytes", r->bounce_size);
		(void)str_appends(&s, !whole ? ").\r\n" : ".\r\n");
		break;
	case DSN_DELAY:
		fs_rfc5322_date(date, sizeof(date), r->retry_until);
		(void)str_appendf(&s, "Your message has not been delivered to "
		    "the recipients below yet.\r\nDelivery will be tried until "
		    "%s;\r\nyou do not need to send it again.\r\n", date);
		break;
	default:
		(void)str_appends(&s, "Your message was delivered to the "
		    "recipients below, as you asked to be told.\r\n");
		break;
	}
	(void)str_appends(&s, "\r\n");
	/* However many recipients failed, the report stays small. */
	for (nlist = 0; nlist < r->nrcpts && nlist < listmax &&
	    s.len < DSN_PART1_MAX; nlist++) {
		rc = &r->rcpts[nlist];
		rp = rc->reply;
		(void)str_appendf(&s, "<%s>: ", rc->mailbox);
		if (rc->mta != NULL && rc->mta[0] != '\0')
			(void)str_appendf(&s, "host %s said: ", rc->mta);
		if (rp != NULL && rp->code > 0)
			(void)str_appendf(&s, "%d %s%s", rp->code, rp->status,
			    rp->status[0] ? " " : "");
		(void)str_appendf(&s, "%s\r\n", rp != NULL && rp->text[0] ?
		    rp->text : rc->action);
	}
	if (nlist < r->nrcpts)
		(void)str_appendf(&s, "... and %zu more recipient%s\r\n",
		    r->nrcpts - nlist, r->nrcpts - nlist == 1 ? "" : "s");
	(void)str_appends(&s, "\r\n");

	/* Part 2: for programs (RFC 3464 2). */
	(void)str_appendf(&s, "--%s\r\nContent-Description: Delivery report"
	    "\r\nContent-Type: message/delivery-status\r\n\r\n", boundary);
	(void)str_appendf(&s, "Reporting-MTA: dns; %s\r\n", r->hostname);
	if (r->queue_id != NULL)
		(void)str_appendf(&s, "X-Queue-ID: %s\r\n", r->queue_id);
	if (r->env->envid != NULL) {
		(void)str_appends(&s, "Original-Envelope-Id: ");
		put_decoded(&s, r->env->envid);
		(void)str_appends(&s, "\r\n");
	}
	fs_rfc5322_date(date, sizeof(date), r->env->arrival);
	(void)str_appendf(&s, "Arrival-Date: %s\r\n", date);
	for (i = 0; i < nlist && s.len < DSN_PART2_MAX; i++) {
		rc = &r->rcpts[i];
		rp = rc->reply;
		(void)str_appendf(&s, "\r\nFinal-Recipient: rfc822; %s\r\n",
		    rc->mailbox);
		if (rc->orcpt != NULL && (semi = strchr(rc->orcpt, ';')) !=
		    NULL) {
			(void)str_appendf(&s, "Original-Recipient: %.*s; ",
			    (int)(semi - rc->orcpt), rc->orcpt);
			put_decoded(&s, semi + 1);
			(void)str_appends(&s, "\r\n");
		}
		(void)str_appendf(&s, "Action: %s\r\n", rc->action);
		status = rp != NULL && rp->status[0] ? rp->status :
		    r->kind == DSN_FAILURE ? "5.0.0" :
		    r->kind == DSN_DELAY ? "4.0.0" : "2.0.0";
		(void)str_appendf(&s, "Status: %s\r\n", status);
		if (rc->mta != NULL && rc->mta[0] != '\0')
			(void)str_appendf(&s, "Remote-MTA: dns; %s\r\n", rc->mta);
		if (rp != NULL && rp->code > 0)
			(void)str_appendf(&s, "Diagnostic-Code: smtp; %d %s%s%s"
			    "\r\n", rp->code, rp->status,
			    rp->status[0] ? " " : "", rp->text);
		if (rc->last_attempt) {
			fs_rfc5322_date(date, sizeof(date), rc->last_attempt);
			(void)str_appendf(&s, "Last-Attempt-Date: %s\r\n", date);
		}
		if (r->kind == DSN_DELAY) {
			fs_rfc5322_date(date, sizeof(date), r->retry_until);
			(void)str_appendf(&s, "Will-Retry-Until: %s\r\n", date);
		}
	}
	(void)str_appends(&s, "\r\n");

	if (r->minimal) {
		if (str_appendf(&s, "--%s--\r\n", boundary) == -1) {
			snprintf(err, errlen, "cannot build the report: too "
			    "large");
			str_free(&s);
			return -1;
		}
		*out = s;
		return 0;
	}

	/* Part 3: the message, or its header (RFC 3462). */
	ctype = whole ? "message/rfc822" : "text/rfc822-headers";
	desc = whole ? (r->kind == DSN_FAILURE ? "Undelivered Message" :
	    "Message") : "Message Headers";
	(void)str_appendf(&s, "--%s\r\nContent-Description: %s\r\n"
	    "Content-Type: %s\r\n", boundary, desc, ctype);
	if (eightbit)
		(void)str_appends(&s, "Content-Transfer-Encoding: 8bit\r\n");
	rc_ok = str_appends(&s, "\r\n");
	if (rc_ok == -1 || append_original(r, &s, whole) == -1) {
		snprintf(err, errlen, "cannot build the report: %s",
		    rc_ok == -1 ? "too large" : strerror(errno));
		str_free(&s);
		return -1;
	}
	if (str_appendf(&s, "\r\n--%s--\r\n", boundary) == -1) {
		snprintf(err, errlen, "cannot build the report: too large");
		str_free(&s);
		return -1;
	}
	*out = s;
	return 0;
}

int
dsn_queue(struct spool *sp, const struct dsn_report *r, char *id,
    size_t idlen, char *err, size_t errlen)
{
	struct envelope env;
	struct spool_msg *m;
	struct env_rcpt rcpt = { r->env->sender, 0, NULL };
	struct dsn_report minimal;
	struct str s;
	char ferr[256];
	int e;

	if (r->env->sender[0] == '\0') {
		snprintf(err, errlen, "no DSN for a message from the null "
		    "sender");
		return -1;
	}
	memset(&env, 0, sizeof(env));
	env.sender = "";
	env.rcpts = &rcpt;
	env.nrcpts = 1;
	env.protocol = "LOCAL";
	env.body = r->env->body == ENV_BODY_8BITMIME || r->env->smtputf8 ?
	    ENV_BODY_8BITMIME : ENV_BODY_UNSET;
	env.smtputf8 = r->env->smtputf8;
	/* RFC 8689 4.3: the report is sent with REQUIRETLS too. */
	env.requiretls = r->env->requiretls;
	env.arrival = time(NULL);
	if ((m = spool_begin(sp, &env)) == NULL) {
		snprintf(err, errlen, "cannot queue the report: %s",
		    strerror(errno));
		return -1;
	}
	str_lcpy(id, spool_msg_id(m), idlen);
	if (dsn_build(r, spool_msg_id(m), &s, ferr, sizeof(ferr)) == -1) {
		/* Something the sender hears of beats nothing at all. */
		minimal = *r;
		minimal.minimal = 1;
		if (dsn_build(&minimal, spool_msg_id(m), &s, err, errlen) ==
		    -1) {
			spool_abort(&m);
			return -1;
		}
	}
	if (spool_write(m, s.s, s.len) == -1) {
		e = errno;
		str_free(&s);
		spool_abort(&m);
		snprintf(err, errlen, "cannot queue the report: %s",
		    strerror(e));
		return -1;
	}
	str_free(&s);
	if (spool_commit(&m) == -1) {
		snprintf(err, errlen, "cannot queue the report: %s",
		    strerror(errno));
		return -1;
	}
	return 0;
}
