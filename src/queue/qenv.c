#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "lib/addr.h"
#include "lib/str.h"
#include "qenv.h"

#define QENV_CHUNK	8192

static int	parse_path(const char *, size_t, int, char **, size_t *);
static int	parse_rcpt(struct qenv *, const char *, size_t, char *,
		    size_t);
static char	*dupn(const char *, size_t);

static char *
dupn(const char *s, size_t n)
{
	char *p;

	if ((p = malloc(n + 1)) == NULL)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

int
qenv_parse_notify(const char *s)
{
	const char *p = s, *e;
	size_t n;
	int bits = 0;

	while (*p != '\0') {
		e = strchr(p, ',');
		n = e ? (size_t)(e - p) : strlen(p);
		if (n == 5 && strncasecmp(p, "NEVER", 5) == 0)
			bits |= QENV_NOTIFY_NEVER;
		else if (n == 7 && strncasecmp(p, "SUCCESS", 7) == 0)
			bits |= QENV_NOTIFY_SUCCESS;
		else if (n == 7 && strncasecmp(p, "FAILURE", 7) == 0)
			bits |= QENV_NOTIFY_FAILURE;
		else if (n == 5 && strncasecmp(p, "DELAY", 5) == 0)
			bits |= QENV_NOTIFY_DELAY;
		else
			return -1;
		p += n;
		if (*p == ',')
			p++;
	}
	/* RFC 3461 4.1: NEVER stands alone. */
	if (bits == 0 || ((bits & QENV_NOTIFY_NEVER) && bits != QENV_NOTIFY_NEVER))
		return -1;
	return bits;
}

int
qenv_xtext_decode(const char *in, char *out, size_t outlen)
{
	static const char hex[] = "0123456789ABCDEF";
	const char *h1, *h2;
	size_t o = 0;

	for (; *in != '\0'; in++) {
		unsigned char c = (unsigned char)*in;

		if (c < 33 || c > 126 || c == '=')
			return -1;
		if (c == '+') {
			if (in[1] == '\0' || in[2] == '\0' ||
			    (h1 = strchr(hex, in[1])) == NULL ||
			    (h2 = strchr(hex, in[2])) == NULL)
				return -1;
			c = (unsigned char)((h1 - hex) * 16 + (h2 - hex));
			in += 2;
		}
		if (o + 1 >= outlen)
			return -1;
		out[o++] = (char)c;
	}
	if (outlen == 0)
		return -1;
	out[o] = '\0';
	return (int)o;
}

int
qenv_xtext_encode(const char *s, char *out, size_t outlen)
{
	size_t o = 0;

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 33 || c > 126 || c == '+' || c == '=') {
			if (o + 4 > outlen)
				return -1;
			snprintf(out + o, 4, "+%02X", c);
			o += 3;
		} else {
			if (o + 2 > outlen)
				return -1;
			out[o++] = (char)c;
		}
	}
	if (outlen == 0)
		return -1;
	out[o] = '\0';
	return (int)o;
}

/*
 * A "<mailbox>" at s: *mb gets the mailbox, *used the bytes taken.  The
 * RFC 5321 parser knows where a quoted local part ends.
 */
static int
parse_path(const char *s, size_t len, int null_ok, char **mb, size_t *used)
{
	struct addr a;

	if (addr_parse_path(s, len, (null_ok ? ADDR_NULL_OK : 0) |
	    ADDR_UTF8_OK | ADDR_POSTMASTER_OK, &a, used, NULL) != ADDR_OK)
		return -1;
	if ((*mb = strdup(a.mailbox)) == NULL)
		return -1;
	return 0;
}

static int
parse_rcpt(struct qenv *e, const char *v, size_t len, char *err,
    size_t errlen)
{
	struct qenv_rcpt *r, *nr;
	const char *p, *end = v + len, *w;
	size_t used, wl;
	char tmp[64];

	if (e->nrcpts >= QENV_RCPT_MAX) {
		snprintf(err, errlen, "more than %d recipients", QENV_RCPT_MAX);
		return -1;
	}
	if ((e->nrcpts & (e->nrcpts - 1)) == 0) {
		nr = realloc(e->rcpts, (e->nrcpts ? e->nrcpts * 2 : 1) *
		    sizeof(*nr));
		if (nr == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		e->rcpts = nr;
	}
	r = &e->rcpts[e->nrcpts];
	memset(r, 0, sizeof(*r));
	if (parse_path(v, len, 0, &r->mailbox, &used) == -1) {
		snprintf(err, errlen, "bad rcpt line");
		return -1;
	}
	e->nrcpts++;
	/* Parameters: notify=LIST orcpt=TYPE;XTEXT, unknown ones ignored. */
	for (p = v + used; p < end; p = w + wl) {
		while (p < end && *p == ' ')
			p++;
		w = p;
		wl = 0;
		while (w + wl < end && w[wl] != ' ')
			wl++;
		if (wl == 0)
			break;
		if (wl > 7 && strncasecmp(w, "notify=", 7) == 0) {
			if (wl - 7 >= sizeof(tmp)) {
				snprintf(err, errlen, "bad notify= in rcpt line");
				return -1;
			}
			memcpy(tmp, w + 7, wl - 7);
			tmp[wl - 7] = '\0';
			if ((r->notify = qenv_parse_notify(tmp)) == -1) {
				snprintf(err, errlen, "bad notify= in rcpt line");
				return -1;
			}
		} else if (wl > 6 && strncasecmp(w, "orcpt=", 6) == 0) {
			if (memchr(w + 6, ';', wl - 6) == NULL) {
				snprintf(err, errlen, "bad orcpt= in rcpt line");
				return -1;
			}
			free(r->orcpt);
			if ((r->orcpt = dupn(w + 6, wl - 6)) == NULL) {
				snprintf(err, errlen, "out of memory");
				return -1;
			}
		}
	}
	return 0;
}

static int
set_string(char **field, const char *v, size_t n, char *err, size_t errlen)
{
	free(*field);
	if ((*field = dupn(v, n)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

int
qenv_parse(const char *buf, size_t len, struct qenv **ep, char *err,
    size_t errlen)
{
	/* The envelope items that are kept as they are. */
	static const struct {
		const char	*key;
		size_t		 off;
	} string_keys[] = {
		{ "envid", offsetof(struct qenv, envid) },
		{ "auth", offsetof(struct qenv, auth) },
		{ "helo", offsetof(struct qenv, helo) },
		{ "peer", offsetof(struct qenv, peer) },
		{ "peer-name", offsetof(struct qenv, peer_name) },
		{ "protocol", offsetof(struct qenv, protocol) },
		{ "body", offsetof(struct qenv, body) },
		{ "user", offsetof(struct qenv, user) },
	};
	struct qenv *e;
	const char *p = buf, *end = buf + len, *nl, *v;
	size_t ll, kl, vl, used, i;
	long long t;
	char *ep2, num[32];
	int lineno = 0, have_from = 0, have_id = 0, have_arrival = 0;

	*ep = NULL;
	if ((e = calloc(1, sizeof(*e))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (;;) {
		if (p >= end || (nl = memchr(p, '\n', (size_t)(end - p))) ==
		    NULL) {
			snprintf(err, errlen, "envelope not terminated by an "
			    "empty line");
			goto fail;
		}
		ll = (size_t)(nl - p);
		lineno++;
		if (lineno == 1) {
			if (ll < 12 || memcmp(p, "smtpd-spool ", 12) != 0) {
				snprintf(err, errlen, "not a spool file (first "
				    "line is not \"smtpd-spool 1\")");
				goto fail;
			}
			if (ll != 13 || p[12] != '1') {
				snprintf(err, errlen, "unsupported spool format "
				    "version \"%.*s\"", (int)(ll > 40 ? 40 : ll),
				    p);
				goto fail;
			}
			p = nl + 1;
			continue;
		}
		if (ll == 0) {
			p = nl + 1;
			break;
		}
		if (memchr(p, '\0', ll) != NULL || memchr(p, '\r', ll) != NULL) {
			snprintf(err, errlen, "line %d: control characters",
			    lineno);
			goto fail;
		}
		v = memchr(p, ' ', ll);
		kl = v ? (size_t)(v - p) : ll;
		v = v ? v + 1 : p + ll;
		vl = (size_t)(nl - v);
#define KEY(k)	(kl == sizeof(k) - 1 && memcmp(p, k, kl) == 0)
		if (KEY("id")) {
			if (vl == 0 || vl >= sizeof(e->id)) {
				snprintf(err, errlen, "line %d: bad id", lineno);
				goto fail;
			}
			memcpy(e->id, v, vl);
			e->id[vl] = '\0';
			have_id = 1;
		} else if (KEY("arrival")) {
			if (vl == 0 || vl >= sizeof(num))
				goto badarrival;
			memcpy(num, v, vl);
			num[vl] = '\0';
			errno = 0;
			t = strtoll(num, &ep2, 10);
			if (errno != 0 || *ep2 != '\0' || t < 0)
				goto badarrival;
			e->arrival = (time_t)t;
			have_arrival = 1;
		} else if (KEY("from")) {
			free(e->sender);
			e->sender = NULL;
			if (parse_path(v, vl, 1, &e->sender, &used) == -1 ||
			    used != vl) {
				snprintf(err, errlen, "line %d: bad from line",
				    lineno);
				goto fail;
			}
			have_from = 1;
		} else if (KEY("rcpt")) {
			char rerr[128];

			if (parse_rcpt(e, v, vl, rerr, sizeof(rerr)) == -1) {
				snprintf(err, errlen, "line %d: %s", lineno,
				    rerr);
				goto fail;
			}
		} else if (KEY("ret")) {
			if (vl == 4 && strncasecmp(v, "FULL", 4) == 0)
				e->ret = QENV_RET_FULL;
			else if (vl == 4 && strncasecmp(v, "HDRS", 4) == 0)
				e->ret = QENV_RET_HDRS;
			else {
				snprintf(err, errlen, "line %d: bad ret", lineno);
				goto fail;
			}
		} else if (KEY("smtputf8")) {
			e->smtputf8 = 1;
		} else if (KEY("requiretls")) {
			e->requiretls = 1;
		} else {
			for (i = 0; i < sizeof(string_keys) /
			    sizeof(string_keys[0]); i++)
				if (strlen(string_keys[i].key) == kl &&
				    memcmp(p, string_keys[i].key, kl) == 0)
					break;
			if (i < sizeof(string_keys) / sizeof(string_keys[0]) &&
			    set_string((char **)((char *)e + string_keys[i].off),
			    v, vl, err, errlen) == -1)
				goto fail;
		}
		/* Unknown keys are for later versions: ignored. */
#undef KEY
		p = nl + 1;
	}
	if (!have_id || !have_from || !have_arrival || e->nrcpts == 0) {
		snprintf(err, errlen, "envelope lacks %s",
		    !have_id ? "an id line" : !have_from ? "a from line" :
		    !have_arrival ? "an arrival line" : "recipients");
		goto fail;
	}
	e->body_off = (off_t)(p - buf);
	*ep = e;
	return 0;
badarrival:
	snprintf(err, errlen, "line %d: bad arrival time", lineno);
fail:
	qenv_free(&e);
	return -1;
}

int
qenv_read(int fd, struct qenv **ep, char *err, size_t errlen)
{
	struct str buf;
	struct stat st;
	char chunk[QENV_CHUNK];
	const char *hit;
	size_t from;
	ssize_t n;
	off_t off = 0;

	*ep = NULL;
	str_init(&buf, QENV_MAX);
	for (;;) {
		n = pread(fd, chunk, sizeof(chunk), off);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			snprintf(err, errlen, "read: %s", strerror(errno));
			str_free(&buf);
			return -1;
		}
		if (n == 0) {
			snprintf(err, errlen, "file ends inside the envelope");
			str_free(&buf);
			return -2;
		}
		from = buf.len >= 1 ? buf.len - 1 : 0;
		if (str_append(&buf, chunk, (size_t)n) == -1) {
			snprintf(err, errlen, "envelope larger than %d bytes",
			    QENV_MAX);
			str_free(&buf);
			return -2;
		}
		off += n;
		/* The envelope ends at the first "\n\n". */
		hit = NULL;
		while (from + 1 < buf.len) {
			const char *q = memchr(buf.s + from, '\n',
			    buf.len - from - 1);

			if (q == NULL)
				break;
			if (q[1] == '\n') {
				hit = q;
				break;
			}
			from = (size_t)(q - buf.s) + 1;
		}
		if (hit != NULL)
			break;
	}
	if (qenv_parse(buf.s, (size_t)(hit - buf.s) + 2, ep, err,
	    errlen) == -1) {
		str_free(&buf);
		return -2;
	}
	str_free(&buf);
	if (fstat(fd, &st) == -1) {
		snprintf(err, errlen, "fstat: %s", strerror(errno));
		qenv_free(ep);
		return -1;
	}
	(*ep)->size = st.st_size - (*ep)->body_off;
	return 0;
}

void
qenv_free(struct qenv **ep)
{
	struct qenv *e = *ep;
	size_t i;

	if (e == NULL)
		return;
	*ep = NULL;
	for (i = 0; i < e->nrcpts; i++) {
		free(e->rcpts[i].mailbox);
		free(e->rcpts[i].orcpt);
	}
	free(e->rcpts);
	free(e->sender);
	free(e->envid);
	free(e->auth);
	free(e->user);
	free(e->helo);
	free(e->peer);
	free(e->peer_name);
	free(e->protocol);
	free(e->body);
	free(e);
}
