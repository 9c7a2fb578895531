/*
 * What a milter (Sendmail/Postfix milter protocol, version 6) sends to
 * smtpd, as the milter client reads it from its socket.  The first bytes
 * of the input are the options negotiated and what is simulated; the
 * rest is the milter's byte stream (split in two when two milters are
 * simulated), written into the far end of a socket pair that then reads
 * its end of file.
 *
 * A session runs its stages (connect, HELO, MAIL, two RCPT, DATA, the
 * end of the message with the changes applied to a spool message kept in
 * memory), or just the end-of-message answers of each milter with every
 * change request taken down and read back.  Checks that a refusal has a
 * code of its class, an enhanced status code that fits it and printable
 * text; that each change taken down is as milter_edit.c promises (a
 * known request, a header field name without ':' or white space, a field
 * rendered with CRLF and folded lines only, a recipient or sender that
 * parsed); that a replaced body stays within the message size limit;
 * that a milter that broke keeps none of its changes; and that a message
 * the changes rewrote has CRLF lines, a header of fields, and an
 * envelope that reads back.
 */
#include "config.h"

#include <sys/socket.h>

#include <arpa/inet.h>
#include <ftw.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/milter_int.h"
#include "lib/log.h"
#include "lib/str.h"
#include "queue/envelope.h"
#include "queue/spool.h"
#include "refusal.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* The input's first bytes. */
#define F_STAGE		0x07	/* where the session starts, or edit mode */
#define F_ACCEPT	0x08	/* default action accept, not tempfail */
#define F_SIZE		0x10	/* a message size limit */
#define F_CUT		0x20	/* the header was too long to keep whole */
#define F_TWO		0x40	/* two milters; a 16-bit length splits the
				   stream */
#define F_AGAIN		0x80	/* a second message after the first */
#define HEAD_LEN	6	/* flags, actions (16 bits), steps (24 bits) */

#define STAGE_CONNECT	0
#define STAGE_HELO	1
#define STAGE_MAIL	2
#define STAGE_RCPT	3
#define STAGE_DATA	4
/* 5 to 7: the end of the message only, each change checked */

#define STREAM_MAX	(128 * 1024)
#define MSG_READ_MAX	(4 * 1024 * 1024)

static const char prefix[] = "Received: from client.example.net\r\n"
    "\tby mx.example.org; Thu, 1 Jan 2026 00:00:00 +0000\r\n";
static const char header[] = "From: <a@example.org>\r\n"
    "To: b@example.com, c@example.com\r\nSubject: test\r\n"
    "X-Tag: one\r\nX-Tag: two\r\n folded\r\n\r\n";
static const char body[] = "Hello.\r\n\r\n.. a dot\r\n";

static struct policy pol;
static struct policy_session ps;
static struct milter_def defs[2];
static struct spool *sp;
static char spooldir[PATH_MAX];

static int
rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return remove(path) == -1 ? -1 : 0;
}

static void
cleanup(void)
{
	spool_close(&sp);
	(void)nftw(spooldir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void
setup(void)
{
	static const char *const names[2] = { "unix:/fuzz/one",
	    "inet:127.0.0.1:8891" };
	const char *tmp;
	char err[256];
	int i;

	/* No syslog socket here: the module's log lines go nowhere. */
	log_init("fuzz_milter", 0, 0);
	/* Under $TMPDIR: tools/fuzz gives each run one it clears first. */
	tmp = getenv("TMPDIR");
	if ((size_t)snprintf(spooldir, sizeof(spooldir),
	    "%s/fuzz_milter.XXXXXX", tmp != NULL && *tmp != '\0' ? tmp :
	    "/tmp") >= sizeof(spooldir) ||
	    mkdtemp(spooldir) == NULL) {
		perror("fuzz_milter: mkdtemp");
		abort();
	}
	/* Messages stay in memory until a commit, which never comes. */
	if ((sp = spool_open(spooldir, SPOOL_FILES, err, sizeof(err))) ==
	    NULL) {
		fprintf(stderr, "fuzz_milter: %s\n", err);
		abort();
	}
	atexit(cleanup);
	str_lcpy(pol.hostname, "mx.example.org", sizeof(pol.hostname));
	ps.pol = &pol;
	ps.id = "fuzz";
	for (i = 0; i < 2; i++) {
		str_lcpy(defs[i].address, names[i], sizeof(defs[i].address));
		/* End of file comes at once; nothing waits. */
		defs[i].timeout = defs[i].connect_timeout = 1;
		defs[i].eom_timeout = 1;
	}
}

static void
check_verdict(const struct verdict *v)
{
	if (v->kind != VERDICT_CONTINUE)
		check_refusal(v, 1);
}

static void
check_session(const struct milter_session *s)
{
	int i;

	check_verdict(&s->conn_v);
	check_verdict(&s->msg_v);
	for (i = 0; i < s->n; i++)
		if (s->m[i].fd == -1 && !s->m[i].conn_done)
			__builtin_trap();
}

/* A header field name as render_field() lets through. */
static void
check_name(const char *p, size_t n)
{
	size_t i;

	if (n == 0)
		__builtin_trap();
	for (i = 0; i < n; i++)
		if ((unsigned char)p[i] <= 0x20 || p[i] == ':' ||
		    p[i] == 0x7f)
			__builtin_trap();
}

/* "name:" value, CRLF line ends, every line after the first folded. */
static void
check_field(const struct milter_rec *r)
{
	const char *p = r->b, *end = r->b + r->blen;

	if (r->blen < r->alen + 3 || memcmp(p, r->a, r->alen) != 0 ||
	    p[r->alen] != ':' || end[-2] != '\r' || end[-1] != '\n')
		__builtin_trap();
	for (; p < end; p++) {
		if (*p == '\0' || (*p == '\r' && (p + 1 >= end ||
		    p[1] != '\n')))
			__builtin_trap();
		if (*p == '\n' && (p[-1] != '\r' || (p + 1 < end &&
		    p[1] != ' ' && p[1] != '\t')))
			__builtin_trap();
	}
}

/* A mailbox as the command parser gives it: no control characters. */
static void
check_mailbox(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
			__builtin_trap();
}

static void
check_records(const struct milter_session *s, const struct milter_edit *e)
{
	struct milter_rec r;
	size_t off = 0, nl;

	while (milter_rec_get(&e->hops, &off, &r) == 0) {
		if (off > e->hops.len || r.mi >= s->n ||
		    strnlen(r.a, r.alen) != r.alen)
			__builtin_trap();
		switch (r.op) {
		case R_ADDHEADER:
		case R_INSHEADER:
			if (r.op == R_ADDHEADER && r.idx != 0)
				__builtin_trap();
			check_name(r.a, r.alen);
			check_field(&r);
			break;
		case R_CHGHEADER:
			if (r.alen == 0)
				__builtin_trap();
			if (r.blen > 0) {
				check_name(r.a, r.alen);
				check_field(&r);
			}
			break;
		default:
			__builtin_trap();
		}
	}
	if (off != e->hops.len)
		__builtin_trap();
	off = 0;
	while (milter_rec_get(&e->eops, &off, &r) == 0) {
		if (off > e->eops.len || r.mi >= s->n || r.idx != 0 ||
		    strnlen(r.a, r.alen) != r.alen)
			__builtin_trap();
		nl = strnlen(r.b, r.blen);
		switch (r.op) {
		case R_ADDRCPT:
		case R_ADDRCPT_PAR:
			/* mailbox; NOTIFY NUL ORCPT */
			if (r.alen == 0 || nl >= r.blen || nl >=
			    ENV_NOTIFY_STRMAX || (nl > 0 &&
			    env_notify_parse(r.b) == -1))
				__builtin_trap();
			check_mailbox(r.a, r.alen);
			check_mailbox(r.b + nl + 1, r.blen - nl - 1);
			break;
		case R_DELRCPT:
			if (r.blen != 0)
				__builtin_trap();
			break;
		case R_CHGFROM:
			/* mailbox (empty: the null sender); RET NUL ENVID */
			if (nl >= r.blen || (nl != 0 && !(nl == 4 &&
			    (memcmp(r.b, "FULL", 4) == 0 ||
			    memcmp(r.b, "HDRS", 4) == 0))))
				__builtin_trap();
			check_mailbox(r.a, r.alen);
			check_mailbox(r.b + nl + 1, r.blen - nl - 1);
			break;
		default:
			__builtin_trap();
		}
	}
	if (off != e->eops.len)
		__builtin_trap();
}

/* The message as the changes left it, and its envelope. */
static void
check_message(struct spool_msg *msg)
{
	struct envelope *q = NULL;
	struct str b, et;
	char err[256];
	const char *p, *end, *eol, *colon;
	size_t i;
	ssize_t r;

	str_init(&b, MSG_READ_MAX);
	for (;;) {
		char buf[16384];

		if ((r = spool_msg_pread(msg, buf, sizeof(buf),
		    (off_t)b.len)) <= 0)
			break;
		if (str_append(&b, buf, (size_t)r) == -1)
			__builtin_trap();
	}
	if (r == -1)
		__builtin_trap();
	/* Every line ends in CRLF; no CR or LF alone. */
	for (i = 0; i < b.len; i++)
		if ((b.s[i] == '\r' && (i + 1 >= b.len ||
		    b.s[i + 1] != '\n')) ||
		    (b.s[i] == '\n' && (i == 0 || b.s[i - 1] != '\r')))
			__builtin_trap();
	if (b.len < 2 || memcmp(b.s + b.len - 2, "\r\n", 2) != 0)
		__builtin_trap();
	/* The header: fields (name, colon) and their folds, to a blank. */
	p = b.s + sizeof(prefix) - 1;
	end = b.s + b.len;
	if (memcmp(b.s, prefix, sizeof(prefix) - 1) != 0)
		__builtin_trap();
	while (p < end && !(p[0] == '\r' && p[1] == '\n')) {
		eol = memchr(p, '\r', (size_t)(end - p));
		if (p[0] != ' ' && p[0] != '\t') {
			if ((colon = memchr(p, ':', (size_t)(eol - p))) ==
			    NULL)
				__builtin_trap();
			check_name(p, (size_t)(colon - p));
		}
		p = eol + 2;
	}
	str_free(&b);
	str_init(&et, 1024 * 1024);
	if (spool_msg_envelope(msg, &et) == -1 ||
	    envelope_parse(et.s, et.len, &q, err, sizeof(err)) == -1 ||
	    q->nrcpts == 0)
		__builtin_trap();
	envelope_free(&q);
	str_free(&et);
}

/* The message as received: our Received: field, the client's bytes. */
static struct spool_msg *
message(struct milter_session *s)
{
	static const struct env_rcpt rcpts[] = {
		{ "b@example.com", 0, NULL },
		{ "c@example.com", 0, "rfc822;c@example.com" },
	};
	struct envelope env;
	struct spool_msg *msg;

	memset(&env, 0, sizeof(env));
	env.sender = "a@example.org";
	env.rcpts = rcpts;
	env.nrcpts = 2;
	env.arrival = 1767225600;
	env.helo = "client.example.net";
	env.peer = "192.0.2.1";
	env.protocol = "ESMTP";
	if ((msg = spool_begin(sp, &env)) == NULL ||
	    spool_write(msg, prefix, sizeof(prefix) - 1) == -1 ||
	    spool_write(msg, header, sizeof(header) - 1) == -1 ||
	    spool_write(msg, body, sizeof(body) - 1) == -1)
		abort();
	str_lcpy(s->queue_id, spool_msg_id(msg), sizeof(s->queue_id));
	/* What the tap saw: the header whole, the body pending. */
	str_clear(&s->hdr);
	if (str_append(&s->hdr, header, sizeof(header) - 1) == -1)
		abort();
	s->prefix = sizeof(prefix) - 1;
	s->seen = sizeof(header) - 1 + sizeof(body) - 1;
	s->in_body = 0;
	memcpy(s->chunk, body, sizeof(body) - 1);
	s->chunklen = sizeof(body) - 1;
	return msg;
}

/* The end of the message, each milter's changes taken down and read. */
static void
edit_only(struct milter_session *s)
{
	struct milter_edit e;
	struct spool_msg *msg;
	struct milter *m;
	struct verdict v;
	size_t len, hmark, emark, added = 0;
	FILE *oldbody;
	char *buf;
	int i, k, c, rc;

	msg = message(s);
	milter_edit_init(&e, msg);
	for (i = 0; i < s->n; i++) {
		m = &s->m[i];
		if (s->msg_v.kind != VERDICT_CONTINUE ||
		    s->conn_v.kind != VERDICT_CONTINUE)
			break;
		if (!milter_live(m))
			continue;
		milter_edit_begin(&e, i);
		hmark = e.hops.len;
		emark = e.eops.len;
		oldbody = e.body;
		/* As eom_one() reads the answer. */
		for (k = 0; k < CHANGES_MAX; k++) {
			if ((c = milter_get_within(s, m, &buf, &len,
			    m->d->eom_timeout)) == -1)
				break;
			if (buf[len + 1] != '\0')
				__builtin_trap();
			if (c == R_ADDHEADER || c == R_INSHEADER ||
			    c == R_CHGHEADER || c == R_REPLBODY ||
			    c == R_ADDRCPT || c == R_ADDRCPT_PAR ||
			    c == R_DELRCPT || c == R_CHGFROM) {
				rc = milter_edit_take(s, m, &e, c, buf + 1,
				    len);
				free(buf);
				if ((rc == -1) != (m->fd == -1))
					__builtin_trap();
				if (rc == -1)
					break;
				continue;
			}
			if (c == R_QUARANTINE &&
			    (m->actions & A_QUARANTINE) != 0) {
				s->quarantine = 1;
				free(buf);
				continue;
			}
			/* Not an answer here: the milter broke. */
			if (c == R_QUARANTINE || c == R_SETSYMLIST ||
			    c == R_SHUTDOWN || c == R_CONN_FAIL ||
			    c == C_OPTNEG)
				c = -2;
			(void)milter_answer(s, m, c, buf + 1, len, 0, NULL);
			free(buf);
			break;
		}
		milter_edit_end(&e, m->fd != -1);
		/* A replaced body is kept within the size limit, as stored. */
		if (pol.message_size > 0 && e.body != NULL &&
		    e.blen > pol.message_size)
			__builtin_trap();
		/* A milter that broke keeps nothing of what it asked. */
		if (m->fd == -1 && (e.hops.len != hmark ||
		    e.eops.len != emark || e.body != oldbody ||
		    e.nbody != NULL))
			__builtin_trap();
		check_records(s, &e);
		check_session(s);
	}
	if (milter_outcome(s, &v) == VERDICT_CONTINUE && !s->discard) {
		/*
		 * In memory nothing fails to be written: what was taken
		 * down is made, or refused for a header kept in part.
		 */
		if (milter_edit_apply(s, &e, &msg, &added) == -1) {
			if (e.failed == 0 && !(s->hdr_cut && e.hops.len > 0))
				__builtin_trap();
		} else if (s->rewritten)
			check_message(msg);
	}
	milter_edit_free(&e);
	spool_abort(&msg);
}

/* Refused: a verdict as smtpd would answer with; 1 to stop there. */
static int
refused(struct milter_session *s, enum verdict_kind k,
    const struct verdict *v)
{
	check_session(s);
	if (k == VERDICT_CONTINUE)
		return 0;
	if (k != v->kind)
		__builtin_trap();
	check_verdict(v);
	return 1;
}

/* One message: MAIL, two RCPT, DATA, the end of the message. */
static int
transaction(struct milter_session *s, int stage)
{
	struct spool_msg *msg;
	struct verdict v;
	size_t added = 0;
	int ok = 0;

	memset(&v, 0, sizeof(v));
	if (stage <= STAGE_MAIL && refused(s, milter_mail(s, "a@example.org",
	    &v), &v))
		return -1;
	if (stage <= STAGE_RCPT) {
		if (!refused(s, milter_rcpt(s, "b@example.com", &v), &v))
			ok++;
		if (!refused(s, milter_rcpt(s, "c@example.com", &v), &v))
			ok++;
		if (ok == 0 || s->conn_v.kind != VERDICT_CONTINUE ||
		    s->msg_v.kind != VERDICT_CONTINUE) {
			milter_abort(s);
			return -1;
		}
	}
	msg = message(s);
	milter_stage(s, C_DATA, NULL, 0, P_NODATA, P_NR_DATA, 0, NULL);
	/* Keeps hold marks off the disk: they are the spool's business. */
	ps.discard = 1;
	if (milter_eom(s, &msg, &added, &v) == -1)
		__builtin_trap();
	/* Refused with no milter refusing: the changes were not made. */
	if (v.kind != VERDICT_CONTINUE && s->conn_v.kind == VERDICT_CONTINUE &&
	    s->msg_v.kind == VERDICT_CONTINUE)
		__builtin_trap();
	if (refused(s, v.kind, &v) == 0 && milter_rewrote(s))
		check_message(msg);
	spool_abort(&msg);
	milter_abort(s);
	return 0;
}

static void
session(struct milter_session *s, int stage, int again)
{
	struct verdict v;

	memset(&v, 0, sizeof(v));
	if (stage <= STAGE_CONNECT) {
		milter_stage(s, C_CONNECT, "client.example.net\0U", 20,
		    P_NOCONNECT, P_NR_CONN, 1, NULL);
		check_session(s);
	}
	if (stage <= STAGE_HELO && refused(s, milter_helo(&s, &ps, NULL,
	    "client.example.net", &v), &v))
		return;
	if (transaction(s, stage) == 0 && again)
		(void)transaction(s, STAGE_MAIL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int once;
	struct milter_session *s;
	uint32_t actions, pflags;
	size_t split, n[2];
	const uint8_t *in[2];
	int sv[2][2], far[2] = { -1, -1 }, i, flags, stage;

	if (!once) {
		setup();
		once = 1;
	}
	if (size < HEAD_LEN)
		return 0;
	flags = data[0];
	stage = flags & F_STAGE;
	actions = ((uint32_t)data[1] << 8 | data[2]) & A_ALL;
	pflags = ((uint32_t)data[3] << 16 | (uint32_t)data[4] << 8 |
	    data[5]) & P_OFFERED;
	data += HEAD_LEN;
	size -= HEAD_LEN;
	in[0] = data;
	n[0] = size;
	n[1] = 0;
	if (flags & F_TWO) {
		if (size < 2)
			return 0;
		split = (size_t)data[0] << 8 | data[1];
		in[0] = data + 2;
		n[0] = split < size - 2 ? split : size - 2;
		in[1] = in[0] + n[0];
		n[1] = size - 2 - n[0];
	}
	pol.message_size = flags & F_SIZE ? 512 : 0;
	ps.discard = ps.hold = 0;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		abort();
	s->ps = &ps;
	s->n = flags & F_TWO ? 2 : 1;
	s->opened = 1;
	str_init(&s->hdr, HEADER_MAX);
	for (i = 0; i < s->n; i++) {
		defs[i].accept_on_fail = (flags & F_ACCEPT) != 0;
		s->m[i].d = &defs[i];
		s->m[i].actions = actions;
		s->m[i].pflags = pflags;
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv[i]) == -1)
			abort();
		s->m[i].fd = sv[i][0];
		far[i] = sv[i][1];
		/* The milter's whole answer, then its end of file. */
		if (n[i] > STREAM_MAX)
			n[i] = STREAM_MAX;
		if (n[i] > 0 && send(far[i], in[i], n[i], MSG_DONTWAIT) == -1)
			abort();
		if (shutdown(far[i], SHUT_WR) == -1)
			abort();
	}
	if (stage > STAGE_DATA) {
		s->hdr_cut = (flags & F_CUT) != 0;
		edit_only(s);
	} else
		session(s, stage, (flags & F_AGAIN) != 0);
	milter_close(&s);
	for (i = 0; i < 2; i++)
		if (far[i] != -1)
			close(far[i]);
	return 0;
}
