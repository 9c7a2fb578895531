/*
 * Applying the changes milters asked for (taken down by milter_edit.c):
 * a new spool message with the same queue id, the envelope and header
 * changed in the order asked, the body copied or replaced, takes the
 * received one's place.  See milter.h.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cmdparse.h"
#include "lib/log.h"
#include "lib/str.h"
#include "milter_int.h"
#include "queue/envelope.h"

#define EDIT_COPY	16384

struct field {
	const char	*p;
	size_t		 n;
};

struct fields {
	struct field	*f;
	size_t		 n, cap;
};

static int
fields_insert(struct fields *fl, size_t at, const char *p, size_t n)
{
	struct field *nf;

	if (fl->n == fl->cap) {
		if ((nf = reallocarray(fl->f, fl->cap ? fl->cap * 2 : 64,
		    sizeof(*nf))) == NULL)
			return -1;
		fl->f = nf;
		fl->cap = fl->cap ? fl->cap * 2 : 64;
	}
	if (at > fl->n)
		at = fl->n;
	memmove(fl->f + at + 1, fl->f + at, (fl->n - at) * sizeof(*fl->f));
	fl->f[at].p = p;
	fl->f[at].n = n;
	fl->n++;
	return 0;
}

/* Is field f named name (case does not matter, nor space before ':')? */
static int
field_is(const struct field *f, const char *name, size_t nl)
{
	const char *colon = memchr(f->p, ':', f->n);
	size_t l;

	if (colon == NULL)
		return 0;
	l = (size_t)(colon - f->p);
	while (l > 0 && (f->p[l - 1] == ' ' || f->p[l - 1] == '\t'))
		l--;
	return l == nl && strncasecmp(f->p, name, nl) == 0;
}

/* The header the milters saw, as fields (each with its CRLFs). */
static int
split_fields(const char *p, size_t n, struct fields *fl)
{
	const char *end = p + n, *line, *nl;

	while (p < end) {
		line = p;
		for (;;) {
			nl = memchr(p, '\n', (size_t)(end - p));
			p = nl == NULL ? end : nl + 1;
			if (p >= end || (*p != ' ' && *p != '\t'))
				break;
		}
		if (fields_insert(fl, fl->n, line, (size_t)(p - line)) == -1)
			return -1;
	}
	return 0;
}

static const char *
mname(const struct milter_session *s, int mi)
{
	return mi < s->n ? s->m[mi].d->address : "?";
}

/* The header changes in the order asked, each logged. */
static int
edit_fields(struct milter_session *s, struct milter_edit *e,
    struct fields *fl)
{
	struct milter_rec r;
	char name[256];
	size_t off = 0, i, k;
	uint32_t idx;

	while (milter_rec_get(&e->hops, &off, &r) == 0) {
		snprintf(name, sizeof(name), "%.*s", (int)(r.alen > 200 ? 200 :
		    r.alen), r.a);
		if (r.op == R_ADDHEADER || r.op == R_INSHEADER) {
			if (fields_insert(fl, r.op == R_ADDHEADER ? fl->n :
			    r.idx, r.b, r.blen) == -1)
				return -1;
			log_info("%s milter %s: header field %s %s", s->ps->id,
			    mname(s, r.mi), name, r.op == R_ADDHEADER ?
			    "added" : "inserted");
			continue;
		}
		/* Index 1 is the first field of that name; 0 is taken so. */
		idx = r.idx == 0 ? 1 : r.idx;
		for (i = 0, k = 0; i < fl->n; i++)
			if (field_is(&fl->f[i], r.a, r.alen) && ++k == idx)
				break;
		if (i < fl->n && r.blen == 0) {
			memmove(fl->f + i, fl->f + i + 1, (fl->n - i - 1) *
			    sizeof(*fl->f));
			fl->n--;
			log_info("%s milter %s: header field %s (%u) deleted",
			    s->ps->id, mname(s, r.mi), name, idx);
		} else if (i < fl->n) {
			fl->f[i].p = r.b;
			fl->f[i].n = r.blen;
			log_info("%s milter %s: header field %s (%u) changed",
			    s->ps->id, mname(s, r.mi), name, idx);
		} else if (r.blen > 0) {
			/* As sendmail and Postfix do: not there, added. */
			if (fields_insert(fl, fl->n, r.b, r.blen) == -1)
				return -1;
			log_info("%s milter %s: header field %s (%u) not there; "
			    "added", s->ps->id, mname(s, r.mi), name, idx);
		}
	}
	return 0;
}

/* The envelope as changed: every string here is its own. */
struct env_edit {
	struct env_rcpt	*r;
	size_t		 n, cap;
	char		*sender, *envid;
	enum env_ret	 ret;
};

static void
env_edit_free(struct env_edit *ee)
{
	size_t i;

	for (i = 0; i < ee->n; i++) {
		free((char *)ee->r[i].mailbox);
		free((char *)ee->r[i].orcpt);
	}
	free(ee->r);
	free(ee->sender);
	free(ee->envid);
	memset(ee, 0, sizeof(*ee));
}

static char *
dupn(const char *p, size_t n)
{
	char *d;

	if ((d = malloc(n + 1)) == NULL)
		return NULL;
	memcpy(d, p, n);
	d[n] = '\0';
	return d;
}

/* Appends a recipient; 0 or -1 (no memory). */
static int
rcpt_add(struct env_edit *ee, const char *addr, size_t alen,
    int notify, const char *orcpt, size_t olen)
{
	struct env_rcpt *nr, *r;

	if (ee->n == ee->cap) {
		if ((nr = reallocarray(ee->r, ee->cap ? ee->cap * 2 : 16,
		    sizeof(*nr))) == NULL)
			return -1;
		ee->r = nr;
		ee->cap = ee->cap ? ee->cap * 2 : 16;
	}
	r = &ee->r[ee->n];
	memset(r, 0, sizeof(*r));
	r->notify = notify;
	if ((r->mailbox = dupn(addr, alen)) == NULL ||
	    (olen > 0 && (r->orcpt = dupn(orcpt, olen)) == NULL)) {
		free((char *)r->mailbox);
		return -1;
	}
	ee->n++;
	return 0;
}

static size_t
rcpt_find(const struct env_edit *ee, const char *a, size_t al)
{
	size_t i;

	if (al >= 2 && a[0] == '<' && a[al - 1] == '>') {
		a++;
		al -= 2;
	}
	for (i = 0; i < ee->n; i++)
		if (strlen(ee->r[i].mailbox) == al &&
		    strncasecmp(ee->r[i].mailbox, a, al) == 0)
			break;
	return i;
}

/* Recipients, sender, RET and ENVID after the changes, each logged. */
static int
edit_envelope(struct milter_session *s, struct milter_edit *e,
    const struct envelope *q, struct env_edit *ee)
{
	char notify[ENV_NOTIFY_STRMAX];
	struct milter_rec r;
	size_t off = 0, i, nl;
	int bits;

	for (i = 0; i < q->nrcpts; i++) {
		if (rcpt_add(ee, q->rcpts[i].mailbox,
		    strlen(q->rcpts[i].mailbox), q->rcpts[i].notify,
		    q->rcpts[i].orcpt != NULL ? q->rcpts[i].orcpt : "",
		    q->rcpts[i].orcpt != NULL ? strlen(q->rcpts[i].orcpt) :
		    0) == -1)
			return -1;
	}
	ee->ret = q->ret;
	if ((ee->sender = strdup(q->sender)) == NULL ||
	    (q->envid != NULL && (ee->envid = strdup(q->envid)) == NULL))
		return -1;
	while (milter_rec_get(&e->eops, &off, &r) == 0) {
		nl = strnlen(r.b, r.blen);
		switch (r.op) {
		case R_CHGFROM:
			/* b: RET NUL ENVID, empty ones unchanged */
			free(ee->sender);
			if ((ee->sender = dupn(r.a, r.alen)) == NULL)
				return -1;
			if (nl > 0)
				ee->ret = nl == 4 && memcmp(r.b, "FULL", 4) ==
				    0 ? ENV_RET_FULL : ENV_RET_HDRS;
			if (nl + 1 < r.blen) {
				free(ee->envid);
				if ((ee->envid = dupn(r.b + nl + 1, r.blen -
				    nl - 1)) == NULL)
					return -1;
			}
			log_info("%s milter %s: sender changed to <%s>",
			    s->ps->id, mname(s, r.mi), ee->sender);
			break;
		case R_DELRCPT:
			if ((i = rcpt_find(ee, r.a, r.alen)) == ee->n) {
				log_info("%s milter %s: %.*s is not a "
				    "recipient; not removed", s->ps->id,
				    mname(s, r.mi), (int)(r.alen > 256 ? 256 :
				    r.alen), r.a);
				break;
			}
			log_info("%s milter %s: recipient <%s> removed",
			    s->ps->id, mname(s, r.mi), ee->r[i].mailbox);
			free((char *)ee->r[i].mailbox);
			free((char *)ee->r[i].orcpt);
			memmove(ee->r + i, ee->r + i + 1, (ee->n - i - 1) *
			    sizeof(*ee->r));
			ee->n--;
			break;
		default:
			/* b: NOTIFY NUL ORCPT */
			if (rcpt_find(ee, r.a, r.alen) < ee->n) {
				log_info("%s milter %s: <%.*s> is a recipient "
				    "already", s->ps->id, mname(s, r.mi),
				    (int)(r.alen > 256 ? 256 : r.alen), r.a);
				break;
			}
			if (ee->n >= ENVELOPE_RCPT_MAX) {
				errno = E2BIG;
				return -1;
			}
			/* Checked when it was taken down: valid or empty. */
			bits = 0;
			if (nl > 0 && nl < sizeof(notify)) {
				memcpy(notify, r.b, nl);
				notify[nl] = '\0';
				if ((bits = env_notify_parse(notify)) == -1)
					bits = 0;
			}
			if (rcpt_add(ee, r.a, r.alen, bits, nl < r.blen ?
			    r.b + nl + 1 : "", nl < r.blen ? r.blen - nl - 1 :
			    0) == -1)
				return -1;
			log_info("%s milter %s: recipient <%s> added%s%.*s",
			    s->ps->id, mname(s, r.mi),
			    ee->r[ee->n - 1].mailbox, nl > 0 ? " notify=" : "",
			    (int)nl, r.b);
			break;
		}
	}
	return 0;
}

/* Copies old's message bytes from off to end (-1: to its end). */
static int
copy_old(struct spool_msg *old, struct spool_msg *new, off_t off, off_t end,
    size_t *out)
{
	char buf[EDIT_COPY];
	ssize_t r;
	size_t want;

	while (end == -1 || off < end) {
		want = end == -1 || end - off > (off_t)sizeof(buf) ?
		    sizeof(buf) : (size_t)(end - off);
		if ((r = spool_msg_pread(old, buf, want, off)) == -1)
			return -1;
		if (r == 0) {
			if (end == -1)
				return 0;
			errno = EIO;
			return -1;
		}
		if (spool_write(new, buf, (size_t)r) == -1)
			return -1;
		off += r;
		*out += (size_t)r;
	}
	return 0;
}

static int
copy_body(FILE *f, struct spool_msg *new, size_t *out)
{
	char buf[EDIT_COPY];
	size_t r;

	if (fseek(f, 0, SEEK_SET) == -1)
		return -1;
	while ((r = fread(buf, 1, sizeof(buf), f)) > 0) {
		if (spool_write(new, buf, r) == -1)
			return -1;
		*out += r;
	}
	return ferror(f) ? -1 : 0;
}

/* The new message's content: our prefix, the header, the body. */
static int
write_content(struct milter_session *s, struct milter_edit *e,
    struct spool_msg *old, struct spool_msg *new, size_t *newlen)
{
	const char *h = s->hdr.s != NULL ? s->hdr.s : "";
	size_t hlen = s->hdr.len, flen = hlen, i;
	struct fields fl = { NULL, 0, 0 };
	int blank = 0, rc = -1;

	if (hlen >= 2 && memcmp(h + hlen - 2, "\r\n", 2) == 0 &&
	    (hlen == 2 || (hlen >= 4 && memcmp(h + hlen - 4, "\r\n\r\n",
	    4) == 0))) {
		blank = 1;
		flen = hlen - 2;
	}
	*newlen = 0;
	if (copy_old(old, new, 0, (off_t)s->prefix, newlen) == -1)
		goto out;
	if (e->hops.len > 0) {
		if (split_fields(h, flen, &fl) == -1 ||
		    edit_fields(s, e, &fl) == -1)
			goto out;
		for (i = 0; i < fl.n; i++) {
			if (spool_write(new, fl.f[i].p, fl.f[i].n) == -1)
				goto out;
			*newlen += fl.f[i].n;
		}
	} else if (copy_old(old, new, (off_t)s->prefix, (off_t)(s->prefix +
	    flen), newlen) == -1)
		goto out;
	if (e->body == NULL) {
		if (copy_old(old, new, (off_t)(s->prefix + flen), -1,
		    newlen) == -1)
			goto out;
	} else {
		log_info("%s milter %s: body replaced (%zu bytes)", s->ps->id,
		    mname(s, e->body_mi), e->blen);
		if ((blank || e->blen > 0) &&
		    spool_write(new, "\r\n", 2) == -1)
			goto out;
		*newlen += blank || e->blen > 0 ? 2 : 0;
		if (copy_body(e->body, new, newlen) == -1)
			goto out;
	}
	rc = 0;
out:
	free(fl.f);
	return rc;
}

/* The envelope of the new message: old's, with the changes. */
static void
fill_envelope(struct envelope *env, const struct envelope *q,
    const struct env_edit *ee)
{
	memset(env, 0, sizeof(*env));
	env->sender = ee->sender;
	env->rcpts = ee->r;
	env->nrcpts = ee->n;
	env->ret = ee->ret;
	env->envid = ee->envid;
	env->auth = q->auth;
	env->helo = q->helo;
	env->peer = q->peer;
	env->peer_name = q->peer_name;
	env->protocol = q->protocol;
	env->body = q->body;
	env->smtputf8 = q->smtputf8;
	env->requiretls = q->requiretls;
	env->arrival = q->arrival;
	env->user = q->user;
}

/*
 * Applies the changes to *mp: a new message with the same queue id
 * takes its place, so that nothing half-changed is ever queued.  0, or
 * -1 (logged; *mp is as it was).  All recipients removed: discarded.
 */
int
milter_edit_apply(struct milter_session *s, struct milter_edit *e,
    struct spool_msg **mp, size_t *added)
{
	struct envelope env;
	struct env_edit ee;
	struct spool_msg *new = NULL;
	struct envelope *q = NULL;
	struct str et;
	char err[256] = "";
	size_t newlen = 0, oldlen;
	int rc = -1;

	if (e->hops.len == 0 && e->eops.len == 0 && e->body == NULL)
		return 0;
	memset(&ee, 0, sizeof(ee));
	str_init(&et, ENVELOPE_MAX);
	errno = 0;
	if (e->failed) {
		errno = e->failed;
		goto out;
	}
	if (e->hops.len > 0 && s->hdr_cut) {
		snprintf(err, sizeof(err), "the header is too long to change");
		goto out;
	}
	if (spool_msg_envelope(*mp, &et) == -1)
		goto out;
	if (envelope_parse(et.s, et.len, &q, err, sizeof(err)) == -1 ||
	    edit_envelope(s, e, q, &ee) == -1)
		goto out;
	if (ee.n == 0) {
		log_info("%s milter: no recipients left; message discarded",
		    s->ps->id);
		s->ps->discard = 1;
		rc = 0;
		goto out;
	}
	fill_envelope(&env, q, &ee);
	if ((new = spool_begin_replacement(*mp, &env)) == NULL ||
	    write_content(s, e, *mp, new, &newlen) == -1)
		goto out;
	oldlen = s->prefix + s->seen;
	if (e->eops.len > 0)
		log_info("%s milter: the message is now from=<%s> nrcpt=%zu",
		    s->ps->id, ee.sender, ee.n);
	spool_abort(mp);
	*mp = new;
	new = NULL;
	s->rewritten = 1;
	/* Only the sum of the two is used: wrapping is fine. */
	*added += newlen - oldlen;
	rc = 0;
out:
	if (rc == -1)
		log_err("%s milter: the changes cannot be made: %s", s->ps->id,
		    err[0] ? err : errno != 0 ? strerror(errno) :
		    "out of memory");
	spool_abort(&new);
	envelope_free(&q);
	env_edit_free(&ee);
	str_free(&et);
	return rc;
}
