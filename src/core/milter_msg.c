/*
 * The milter client's message stages: header fields and body through a
 * datain tap, then the end of the message with the changes asked for.
 * See milter.h.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/str.h"
#include "milter_int.h"

/* The header as fields: name NUL value NUL, each to every milter. */
static void
send_header(struct milter_session *s)
{
	const char *p = s->hdr.s, *end = p + s->hdr.len, *line, *colon, *q, *qe;
	struct str f;
	int i;

	str_init(&f, HEADER_MAX);
	while (p != NULL && p < end && !(p[0] == '\r' || p[0] == '\n')) {
		line = p;
		/* A field runs to a line that does not start with WSP. */
		for (;;) {
			p = memchr(p, '\n', (size_t)(end - p));
			if (p == NULL) {
				p = end;
				break;
			}
			p++;
			if (p >= end || (*p != ' ' && *p != '\t'))
				break;
		}
		if ((colon = memchr(line, ':', (size_t)(p - line))) == NULL)
			continue;
		str_clear(&f);
		(void)str_append(&f, line, (size_t)(colon - line));
		(void)str_appendc(&f, '\0');
		colon++;
		/*
		 * The value: folds as LF, no final line end, no space after
		 * the colon (put back for HDR_LEADSPC below).
		 */
		q = colon;
		qe = p;
		while (qe > q && (qe[-1] == '\n' || qe[-1] == '\r'))
			qe--;
		if (q < qe && *q == ' ')
			q++;
		for (; q < qe; q++)
			if (*q != '\r')
				(void)str_appendc(&f, *q);
		(void)str_appendc(&f, '\0');
		for (i = 0; i < s->n; i++) {
			struct milter *m = &s->m[i];
			char *buf;
			size_t len;
			int c;

			if (s->msg_v.kind != VERDICT_CONTINUE ||
			    s->conn_v.kind != VERDICT_CONTINUE)
				break;
			if (!milter_live(m) || (m->pflags & P_NOHDRS) != 0)
				continue;
			if ((m->pflags & P_HDR_LEADSPC) != 0 &&
			    colon < p && *colon == ' ') {
				struct str g;
				size_t nl = strlen(f.s) + 1;

				str_init(&g, HEADER_MAX + 1);
				(void)str_append(&g, f.s, nl);
				(void)str_appendc(&g, ' ');
				(void)str_append(&g, f.s + nl, f.len - nl);
				c = milter_put(s, m, C_HEADER, g.s, g.len);
				str_free(&g);
			} else
				c = milter_put(s, m, C_HEADER, f.s, f.len);
			if (c == -1 || (m->pflags & P_NR_HDR) != 0)
				continue;
			if ((c = milter_get(s, m, &buf, &len)) == -1)
				continue;
			(void)milter_answer(s, m, c, buf + 1, len, 0, NULL);
			free(buf);
		}
	}
	str_free(&f);
	milter_stage(s, C_EOH, NULL, 0, P_NOEOH, P_NR_EOH, 0, NULL);
}

static void
send_chunk(struct milter_session *s)
{
	struct milter *m;
	char *buf;
	size_t len;
	int i, c;

	for (i = 0; i < s->n && s->chunklen > 0; i++) {
		m = &s->m[i];
		if (s->msg_v.kind != VERDICT_CONTINUE ||
		    s->conn_v.kind != VERDICT_CONTINUE)
			break;
		if (!milter_live(m) || m->skip_body ||
		    (m->pflags & P_NOBODY) != 0)
			continue;
		if (milter_put(s, m, C_BODY, s->chunk, s->chunklen) == -1 ||
		    (m->pflags & P_NR_BODY) != 0)
			continue;
		if ((c = milter_get(s, m, &buf, &len)) == -1)
			continue;
		if (c == R_SKIP && (m->pflags & P_SKIP) == 0)
			c = R_CONTINUE;
		(void)milter_answer(s, m, c, buf + 1, len, 0, NULL);
		free(buf);
	}
	s->chunklen = 0;
}

/* The datain tap: header fields, then body chunks. */
static void
feed(void *arg, const char *p, size_t n)
{
	struct milter_session *s = arg;
	size_t take;

	if (s->next != NULL)
		s->next(s->next_arg, p, n);
	s->seen += n;
	while (n > 0 && !s->in_body) {
		if (str_appendc(&s->hdr, *p) == -1) {
			s->in_body = 1;	/* too long: the rest is body */
			s->hdr_cut = 1;
		} else {
			p++;
			n--;
		}
		if ((s->hdr.len == 2 && memcmp(s->hdr.s, "\r\n", 2) == 0) ||
		    (s->hdr.len >= 4 && memcmp(s->hdr.s + s->hdr.len - 4,
		    "\r\n\r\n", 4) == 0))
			s->in_body = 1;
		if (s->in_body)
			send_header(s);
	}
	while (n > 0) {
		take = sizeof(s->chunk) - s->chunklen;
		if (take > n)
			take = n;
		memcpy(s->chunk + s->chunklen, p, take);
		s->chunklen += take;
		p += take;
		n -= take;
		if (s->chunklen == sizeof(s->chunk))
			send_chunk(s);
	}
}

void
milter_data(struct milter_session *s, struct datain *d, const char *id)
{
	if (s == NULL)
		return;
	str_lcpy(s->queue_id, id, sizeof(s->queue_id));
	str_clear(&s->hdr);
	s->hdr_cut = 0;
	s->rewritten = 0;
	s->seen = 0;
	s->prefix = 0;
	/* What is in the message already (our trace field) is not shown. */
	for (;;) {
		char buf[4096];
		ssize_t r = spool_msg_pread(d->msg, buf, sizeof(buf),
		    (off_t)s->prefix);

		if (r <= 0)
			break;
		s->prefix += (size_t)r;
	}
	s->in_body = 0;
	s->chunklen = 0;
	milter_stage(s, C_DATA, NULL, 0, P_NODATA, P_NR_DATA, 0, NULL);
	s->next = d->tap;
	s->next_arg = d->tap_arg;
	datain_tap(d, feed, s);
}

/* The changes asked for at the end of the message, then its verdict. */
static void
eom_one(struct milter_session *s, struct milter *m, struct milter_edit *e)
{
	char *buf;
	size_t len, nl;
	int c, i;

	if (milter_macros(s, m, C_BODYEOB) == -1 ||
	    milter_put(s, m, C_BODYEOB, NULL, 0) == -1)
		return;
	/* Scanning the whole message may take longer than a command. */
	for (i = 0; i < CHANGES_MAX; i++) {
		if ((c = milter_get_within(s, m, &buf, &len,
		    m->d->eom_timeout)) == -1)
			return;
		switch (c) {
		case R_ADDHEADER:
		case R_INSHEADER:
		case R_CHGHEADER:
		case R_REPLBODY:
		case R_ADDRCPT:
		case R_ADDRCPT_PAR:
		case R_DELRCPT:
		case R_CHGFROM:
			if (milter_edit_take(s, m, e, c, buf + 1, len) == -1) {
				free(buf);
				return;
			}
			break;
		case R_QUARANTINE:
			if ((m->actions & A_QUARANTINE) == 0) {
				free(buf);
				errno = 0;
				milter_broken(s, m, "quarantines without having "
				    "negotiated it");
				return;
			}
			nl = strnlen(buf + 1, len);
			log_info("%s milter %s: quarantine: %.*s", s->ps->id,
			    m->d->address, (int)(nl > 200 ? 200 : nl),
			    buf + 1);
			s->quarantine = 1;
			break;
		case R_SETSYMLIST:
		case R_SHUTDOWN:
		case R_CONN_FAIL:
		case C_OPTNEG:
			c = -2;	/* not an answer here */
			/* FALLTHROUGH */
		default:
			(void)milter_answer(s, m, c, buf + 1, len, 0, NULL);
			free(buf);
			return;
		}
		free(buf);
	}
	errno = 0;
	milter_broken(s, m, "too many changes");
}

int
milter_eom(struct milter_session *s, struct spool_msg **mp, size_t *added,
    struct verdict *v)
{
	struct milter_edit e;
	int i, rc = 0;

	memset(v, 0, sizeof(*v));
	if (s == NULL)
		return 0;
	if (!s->in_body) {
		s->in_body = 1;
		send_header(s);
	}
	send_chunk(s);
	milter_edit_init(&e, *mp);
	for (i = 0; i < s->n; i++) {
		if (s->msg_v.kind != VERDICT_CONTINUE ||
		    s->conn_v.kind != VERDICT_CONTINUE)
			break;
		if (!milter_live(&s->m[i]))
			continue;
		milter_edit_begin(&e, i);
		eom_one(s, &s->m[i], &e);
		/* A milter that broke meanwhile: none of its changes. */
		milter_edit_end(&e, s->m[i].fd != -1);
	}
	/* After the end of a message the milters await MAIL, no abort. */
	for (i = 0; i < s->n; i++)
		s->m[i].in_tx = 0;
	if (milter_outcome(s, v) == VERDICT_CONTINUE && !s->discard) {
		if (milter_edit_apply(s, &e, mp, added) == -1) {
			v->kind = VERDICT_DEFER;
			(void)reply_set(&v->reply, 451, "4.3.0", "Queue file "
			    "write error, try again later");
		} else if (s->quarantine && !s->ps->discard &&
		    (rc = spool_hold(*mp)) == 0)
			s->ps->hold = 1;
	}
	if (s->discard)
		s->ps->discard = 1;
	milter_edit_free(&e);
	return rc;
}

int
milter_rewrote(const struct milter_session *s)
{
	return s != NULL && s->rewritten;
}

int
milter_retap(struct milter_session *s, struct spool_msg *m, datain_tap_fn fn,
    void *arg)
{
	char buf[16384];
	off_t off;
	ssize_t r;

	if (s == NULL || !s->rewritten)
		return 0;
	for (off = (off_t)s->prefix; (r = spool_msg_pread(m, buf, sizeof(buf),
	    off)) > 0; off += r)
		fn(arg, buf, (size_t)r);
	return r == -1 ? -1 : 0;
}
