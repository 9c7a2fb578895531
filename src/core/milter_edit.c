/*
 * The changes milters ask for at the end of a message: header fields
 * added, inserted, changed or deleted, the body replaced, recipients
 * added or removed, the sender changed.  They are collected while the
 * milters answer, each milter's dropped if it breaks meanwhile, and
 * applied by milter_apply.c.  See milter.h.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmdparse.h"
#include "lib/log.h"
#include "lib/str.h"
#include "milter_int.h"

#define ENV_OPS_MAX	(1024 * 1024)	/* bytes of envelope changes */

static int
rec_put(struct str *out, char op, int mi, uint32_t idx, const char *a,
    size_t alen, const char *b, size_t blen)
{
	uint32_t l[3] = { idx, (uint32_t)alen, (uint32_t)blen };

	if (str_appendc(out, op) == -1 || str_appendc(out, mi) == -1 ||
	    str_append(out, l, sizeof(l)) == -1 ||
	    str_append(out, a, alen) == -1 || str_append(out, b, blen) == -1)
		return -1;
	return 0;
}

int
milter_rec_get(const struct str *in, size_t *off, struct milter_rec *r)
{
	uint32_t l[3];
	const char *p;

	/* An empty list has no buffer: nothing to point into. */
	if (*off >= in->len)
		return -1;
	p = in->s + *off;
	r->op = p[0];
	r->mi = (unsigned char)p[1];
	memcpy(l, p + 2, sizeof(l));
	r->idx = l[0];
	r->alen = l[1];
	r->blen = l[2];
	r->a = p + 2 + sizeof(l);
	r->b = r->a + r->alen;
	*off += 2 + sizeof(l) + r->alen + r->blen;
	return 0;
}

void
milter_edit_init(struct milter_edit *e, struct spool_msg *msg)
{
	memset(e, 0, sizeof(*e));
	e->msg = msg;
	str_init(&e->hops, HEADER_MAX);
	str_init(&e->eops, ENV_OPS_MAX);
	e->body = NULL;
	e->nbody = NULL;
}

void
milter_edit_free(struct milter_edit *e)
{
	str_free(&e->hops);
	str_free(&e->eops);
	if (e->body != NULL)
		fclose(e->body);
	if (e->nbody != NULL)
		fclose(e->nbody);
	e->body = e->nbody = NULL;
}

/* A new turn: what m asks for from now on can be taken back. */
void
milter_edit_begin(struct milter_edit *e, int mi)
{
	e->cur_mi = mi;
	e->hmark = e->hops.len;
	e->emark = e->eops.len;
}

/* Bytes of a replaced body, with every line end made CRLF. */
static int
body_put(struct milter_edit *e, const char *p, size_t n)
{
	char out[2 * 4096 + 2];
	size_t o = 0, i;

	for (i = 0; i < n; i++) {
		if (o + 4 > sizeof(out)) {
			if (fwrite(out, 1, o, e->nbody) != o)
				return -1;
			e->nlen += o;
			o = 0;
		}
		if (e->ncr) {
			/* A CR ends a line, with or without its LF. */
			out[o++] = '\r';
			out[o++] = '\n';
			e->ncr = 0;
			e->nlf = 1;
			if (p[i] == '\n')
				continue;
		}
		if (p[i] == '\r') {
			e->ncr = 1;
			continue;
		}
		if (p[i] == '\n') {
			out[o++] = '\r';
			out[o++] = '\n';
			e->nlf = 1;
			continue;
		}
		out[o++] = p[i];
		e->nlf = 0;
	}
	if (o > 0 && fwrite(out, 1, o, e->nbody) != o)
		return -1;
	e->nlen += o;
	return 0;
}

/* The replaced body's length once its last line is ended. */
static size_t
body_len(const struct milter_edit *e)
{
	return e->nlen + (e->ncr || (e->nlen > 0 && !e->nlf) ? 2 : 0);
}

/* m's turn is over: its changes stay (ok) or go. */
void
milter_edit_end(struct milter_edit *e, int ok)
{
	if (!ok) {
		e->hops.len = e->hmark;
		e->eops.len = e->emark;
		if (e->nbody != NULL)
			fclose(e->nbody);
		e->nbody = NULL;
		return;
	}
	if (e->nbody == NULL)
		return;
	/* The last line ends too. */
	if (body_len(e) > e->nlen && fwrite("\r\n", 1, 2, e->nbody) == 2)
		e->nlen += 2;
	if (fflush(e->nbody) == EOF || ferror(e->nbody)) {
		e->failed = errno != 0 ? errno : EIO;
		fclose(e->nbody);
		e->nbody = NULL;
		return;
	}
	if (e->body != NULL)
		fclose(e->body);
	e->body = e->nbody;
	e->blen = e->nlen;
	e->body_mi = e->cur_mi;
	e->nbody = NULL;
}

/* RFC 5322 field-name: one or more printable characters but ':'. */
static int
field_name_ok(const char *name)
{
	const char *q;

	if (name[0] == '\0')
		return 0;
	for (q = name; *q != '\0'; q++)
		if ((unsigned char)*q <= 0x20 || *q == ':' ||
		    (unsigned char)*q >= 0x7f)
			return 0;
	return 1;
}

/*
 * A header field as the message will have it: "Name: value" with CRLF
 * folds and line end.  0, or -1 when the name or value cannot be a
 * header field (a line break not followed by white space, a CR alone).
 */
static int
render_field(struct str *out, const char *name, const char *v, size_t vlen,
    int leadspc)
{
	const char *q, *end = v + vlen;

	if (!field_name_ok(name))
		return -1;
	if (str_appends(out, name) == -1 || str_appendc(out, ':') == -1)
		return -1;
	/* The milter gives the space after the colon only if it said so. */
	if (!leadspc && vlen > 0 && v[0] != ' ' && v[0] != '\t' &&
	    str_appendc(out, ' ') == -1)
		return -1;
	for (q = v; q < end; q++) {
		if (*q == '\r' && q + 1 < end && q[1] == '\n')
			continue;
		if (*q == '\r')
			return -1;
		if (*q == '\n') {
			if (q + 1 >= end || (q[1] != ' ' && q[1] != '\t'))
				return -1;
			if (str_append(out, "\r\n", 2) == -1)
				return -1;
			continue;
		}
		if (str_appendc(out, *q) == -1)
			return -1;
	}
	return str_append(out, "\r\n", 2);
}

/* Name NUL value NUL at p: the name, and the value in *v, *vlen. */
static int
two_strings(const char *p, size_t n, const char **v, size_t *vlen)
{
	size_t nl = strnlen(p, n);

	if (nl >= n)
		return -1;
	*v = p + nl + 1;
	*vlen = strnlen(*v, n - nl - 1);
	if (nl + 1 + *vlen >= n)
		return -1;
	return 0;
}

/* "<addr>" or "addr" and ESMTP parameters as a command argument. */
static void
path_arg(struct str *b, const char *verb, const char *addr, const char *args)
{
	str_clear(b);
	(void)str_appends(b, verb);
	if (addr[0] == '<')
		(void)str_appends(b, addr);
	else
		(void)str_appendf(b, "<%s>", addr);
	if (args != NULL && args[0] != '\0')
		(void)str_appendf(b, " %s", args);
}

static int
header_change(struct milter_session *s, struct milter *m, int mi,
    struct milter_edit *e, int c, const char *p, size_t n)
{
	const char *name, *v;
	uint32_t idx = 0;
	struct str f;
	size_t vlen;
	int rc;

	if (c != R_ADDHEADER) {
		if (n < 4)
			return -2;
		memcpy(&idx, p, 4);
		idx = ntohl(idx);
		p += 4;
		n -= 4;
	}
	name = p;
	if (two_strings(p, n, &v, &vlen) == -1)
		return -2;
	str_init(&f, MILTER_PACKET_MAX + 1024);
	/* Deleting: an empty value. */
	if (c == R_CHGHEADER && vlen == 0)
		rc = field_name_ok(name) ? 0 : -1;
	else
		rc = render_field(&f, name, v, vlen,
		    (m->pflags & P_HDR_LEADSPC) != 0);
	if (rc == -1) {
		log_err("%s milter %s: header field %.100s to %s is "
		    "malformed; not done", s->ps->id, m->d->address, name,
		    c != R_CHGHEADER ? "add" : vlen == 0 ? "delete" :
		    "change");
		str_free(&f);
		return 0;
	}
	rc = rec_put(&e->hops, (char)c, mi, idx, name, strlen(name), f.s,
	    f.len);
	str_free(&f);
	return rc == -1 ? -3 : 0;
}

static int
rcpt_change(struct milter_session *s, struct milter *m, int mi,
    struct milter_edit *e, int c, const char *p, size_t n)
{
	char notify[ENV_NOTIFY_STRMAX];
	const char *args = NULL, *why = "";
	struct rcpt_params rp;
	struct addr a;
	struct str b;
	size_t alen;
	int rc;

	if ((alen = strnlen(p, n)) >= n)
		return -2;
	if (c == R_ADDRCPT_PAR) {
		args = p + alen + 1;
		if (strnlen(args, n - alen - 1) >= n - alen - 1)
			return -2;
	}
	if (c == R_DELRCPT)
		return rec_put(&e->eops, (char)c, mi, 0, p, alen, "", 0) == -1 ?
		    -3 : 0;
	str_init(&b, MILTER_PACKET_MAX + 16);
	path_arg(&b, "TO:", p, args);
	if (cmd_parse_rcpt(str_cstr(&b), 1, &a, &rp, &why) != PATH_OK ||
	    a.mailbox[0] == '\0') {
		log_err("%s milter %s: recipient %.256s%s%.200s to add: %s; "
		    "not added", s->ps->id, m->d->address, p, args ? " " : "",
		    args ? args : "", why[0] ? why : "malformed");
		str_free(&b);
		return 0;
	}
	str_free(&b);
	if (env_notify_format(rp.notify, notify, sizeof(notify)) == -1)
		notify[0] = '\0';
	/* mailbox, then "notify NUL orcpt" */
	str_init(&b, sizeof(notify) + sizeof(rp.orcpt) + 2);
	(void)str_append(&b, notify, strlen(notify) + 1);
	(void)str_append(&b, rp.orcpt, strlen(rp.orcpt));
	rc = rec_put(&e->eops, (char)c, mi, 0, a.mailbox, strlen(a.mailbox),
	    b.s != NULL ? b.s : "", b.len);
	str_free(&b);
	return rc == -1 ? -3 : 0;
}

static int
from_change(struct milter_session *s, struct milter *m, int mi,
    struct milter_edit *e, const char *p, size_t n)
{
	const char *args = NULL, *why = "";
	struct mail_params mp;
	struct addr a;
	struct str b;
	size_t alen;
	int rc;

	if ((alen = strnlen(p, n)) >= n)
		return -2;
	/* The ESMTP parameters are optional. */
	if (alen + 1 < n) {
		args = p + alen + 1;
		if (strnlen(args, n - alen - 1) >= n - alen - 1)
			return -2;
	}
	str_init(&b, MILTER_PACKET_MAX + 16);
	path_arg(&b, "FROM:", p, args);
	if (cmd_parse_mail(str_cstr(&b), &a, &mp, &why) != PATH_OK) {
		log_err("%s milter %s: sender %.256s%s%.200s: %s; not changed",
		    s->ps->id, m->d->address, p, args ? " " : "",
		    args ? args : "", why[0] ? why : "malformed");
		str_free(&b);
		return 0;
	}
	str_free(&b);
	/* mailbox, then "RET NUL ENVID" (empty: as the client said) */
	str_init(&b, sizeof(mp.envid) + 8);
	(void)str_appends(&b, env_ret_name(mp.ret) != NULL ?
	    env_ret_name(mp.ret) : "");
	(void)str_appendc(&b, '\0');
	(void)str_appends(&b, mp.envid);
	rc = rec_put(&e->eops, R_CHGFROM, mi, 0, a.mailbox, strlen(a.mailbox),
	    b.s, b.len);
	str_free(&b);
	return rc == -1 ? -3 : 0;
}

/*
 * One change m asks for at the end of the message, taken down.  0; -1
 * when m is now broken (it asked for what it had not negotiated, or
 * the packet is not the protocol).
 */
int
milter_edit_take(struct milter_session *s, struct milter *m,
    struct milter_edit *e, int c, const char *p, size_t n)
{
	static const struct {
		int		 c;
		uint32_t	 need;
		const char	*what;
	} acts[] = {
		{ R_ADDHEADER, A_ADDHDRS, "adds a header field" },
		{ R_INSHEADER, A_ADDHDRS, "inserts a header field" },
		{ R_CHGHEADER, A_CHGHDRS, "changes a header field" },
		{ R_REPLBODY, A_CHGBODY, "replaces the body" },
		{ R_ADDRCPT, A_ADDRCPT, "adds a recipient" },
		{ R_ADDRCPT_PAR, A_ADDRCPT_PAR, "adds a recipient with "
		    "parameters" },
		{ R_DELRCPT, A_DELRCPT, "removes a recipient" },
		{ R_CHGFROM, A_CHGFROM, "changes the sender" },
	};
	char why[128];
	size_t i, limit = s->ps->pol->message_size;
	int mi = (int)(m - s->m), rc;

	for (i = 0; i < sizeof(acts) / sizeof(acts[0]); i++)
		if (acts[i].c == c)
			break;
	if (i == sizeof(acts) / sizeof(acts[0]))
		return 0;
	if ((m->actions & acts[i].need) == 0) {
		snprintf(why, sizeof(why), "%s without having negotiated it",
		    acts[i].what);
		errno = 0;
		milter_broken(s, m, why);
		return -1;
	}
	switch (c) {
	case R_ADDHEADER:
	case R_INSHEADER:
	case R_CHGHEADER:
		rc = header_change(s, m, mi, e, c, p, n);
		break;
	case R_REPLBODY:
		rc = 0;
		if (e->nbody == NULL) {
			e->nlen = 0;
			e->ncr = e->nlf = 0;
			int fd = spool_tmpfile(e->msg);

			if (fd != -1 && (e->nbody = fdopen(fd, "w+")) == NULL)
				close(fd);
			if (e->nbody == NULL) {
				e->failed = errno;
				log_err("%s milter %s: replaced body: %s",
				    s->ps->id, m->d->address, strerror(errno));
				return 0;
			}
		}
		/* Before and after the line ends are made CRLF (up to 2n). */
		if (limit > 0 && (n > limit || e->nlen + n > limit))
			goto too_big;
		if (body_put(e, p, n) == -1) {
			e->failed = errno != 0 ? errno : EIO;
			log_err("%s milter %s: replaced body: %s", s->ps->id,
			    m->d->address, strerror(e->failed));
		}
		if (limit > 0 && body_len(e) > limit)
			goto too_big;
		break;
	case R_CHGFROM:
		rc = from_change(s, m, mi, e, p, n);
		break;
	default:
		rc = rcpt_change(s, m, mi, e, c, p, n);
		break;
	}
	if (rc == -2) {
		errno = 0;
		milter_broken(s, m, "malformed change request");
		return -1;
	}
	if (rc == -3) {
		errno = 0;
		milter_broken(s, m, "changes too large");
		return -1;
	}
	return 0;
too_big:
	snprintf(why, sizeof(why), "replaced body exceeds the message size "
	    "limit (%zu)", limit);
	errno = 0;
	milter_broken(s, m, why);
	return -1;
}
