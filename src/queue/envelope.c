#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "lib/addr.h"
#include "lib/str.h"
#include "envelope.h"

#define ENV_CHUNK	8192
#define ENV_VERSION	"smtpd-spool 1"

/* How a key's value is written and read. */
enum env_kind {
	EK_ID,		/* the queue id */
	EK_TIME,	/* seconds since the epoch */
	EK_SENDER,	/* "<mailbox>", "<>" allowed */
	EK_RCPTS,	/* one line per recipient, with parameters */
	EK_RET,
	EK_XTEXT,	/* RFC 3461 xtext, kept encoded */
	EK_TEXT,	/* free text to the end of the line */
	EK_BODY,
	EK_FLAG		/* the key alone; present means set */
};

struct env_key {
	const char	*name;
	enum env_kind	 kind;
	size_t		 off;		/* the field in struct envelope */
	int		 required;
};

#define F(f)	offsetof(struct envelope, f)

/* The envelope's items in the order they are written (smtpd-spool(5)). */
static const struct env_key env_keys[] = {
	{ "id",		EK_ID,		F(id),		1 },
	{ "arrival",	EK_TIME,	F(arrival),	1 },
	{ "from",	EK_SENDER,	F(sender),	1 },
	{ "rcpt",	EK_RCPTS,	F(rcpts),	1 },
	{ "ret",	EK_RET,		F(ret),		0 },
	{ "envid",	EK_XTEXT,	F(envid),	0 },
	{ "auth",	EK_TEXT,	F(auth),	0 },
	{ "helo",	EK_TEXT,	F(helo),	0 },
	{ "peer",	EK_TEXT,	F(peer),	0 },
	{ "peer-name",	EK_TEXT,	F(peer_name),	0 },
	{ "protocol",	EK_TEXT,	F(protocol),	0 },
	{ "body",	EK_BODY,	F(body),	0 },
	{ "smtputf8",	EK_FLAG,	F(smtputf8),	0 },
	{ "requiretls",	EK_FLAG,	F(requiretls),	0 },
	{ "user",	EK_TEXT,	F(user),	0 },
	{ "account",	EK_TEXT,	F(account),	0 },
};
#define NKEYS	(sizeof(env_keys) / sizeof(env_keys[0]))

#undef F

static const char *const notify_names[] = {
	"NEVER", "SUCCESS", "FAILURE", "DELAY"		/* bit 0, 1, 2, 3 */
};

#define FIELD(e, k, type)	((type *)(void *)((char *)(e) + (k)->off))
#define CFIELD(e, k, type)	\
	((const type *)(const void *)((const char *)(e) + (k)->off))

int
env_notify_parse(const char *s)
{
	const char *p = s;
	size_t n, i;
	int bits = 0, bit;

	while (*p != '\0') {
		n = strcspn(p, ",");
		bit = 0;
		for (i = 0; i < 4; i++)
			if (strlen(notify_names[i]) == n &&
			    strncasecmp(p, notify_names[i], n) == 0)
				bit = 1 << i;
		/* RFC 3461 4.1: each keyword once. */
		if (bit == 0 || (bits & bit))
			return -1;
		bits |= bit;
		p += n;
		if (*p == ',' && *++p == '\0')
			return -1;
	}
	/* RFC 3461 4.1: NEVER stands alone. */
	if (bits == 0 || ((bits & ENV_NOTIFY_NEVER) &&
	    bits != ENV_NOTIFY_NEVER))
		return -1;
	return bits;
}

int
env_notify_format(int bits, char *buf, size_t len)
{
	size_t i, o = 0, n;

	if (len == 0)
		return -1;
	buf[0] = '\0';
	if ((bits & ~0x0f) != 0 || ((bits & ENV_NOTIFY_NEVER) &&
	    bits != ENV_NOTIFY_NEVER))
		return -1;
	for (i = 0; i < 4; i++) {
		if (!(bits & (1 << i)))
			continue;
		n = strlen(notify_names[i]);
		if (o + (o > 0) + n + 1 > len)
			return -1;
		if (o > 0)
			buf[o++] = ',';
		memcpy(buf + o, notify_names[i], n + 1);
		o += n;
	}
	return 0;
}

const char *
env_ret_name(enum env_ret r)
{
	return r == ENV_RET_FULL ? "FULL" : r == ENV_RET_HDRS ? "HDRS" : NULL;
}

const char *
env_body_name(enum env_body b)
{
	return b == ENV_BODY_7BIT ? "7BIT" : b == ENV_BODY_8BITMIME ?
	    "8BITMIME" : NULL;
}

/* xtext's hexchar is upper case (RFC 3461 4). */
static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
env_xtext_valid(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '+') {
			if (n - i < 3 || hexval(s[i + 1]) == -1 ||
			    hexval(s[i + 2]) == -1)
				return 0;
			i += 2;
		} else if (c < 33 || c > 126 || c == '=')
			return 0;
	}
	return 1;
}

int
env_orcpt_valid(const char *s)
{
	const char *semi = strchr(s, ';');
	const char *p;

	if (semi == NULL || semi == s || strlen(s) > ENVELOPE_ORCPT_MAX)
		return 0;
	/* addr-type is an RFC 5321 atom. */
	for (p = s; p < semi; p++)
		if ((unsigned char)*p < 33 || (unsigned char)*p > 126 ||
		    strchr("()<>[]:;@\\,.\"", *p) != NULL)
			return 0;
	return env_xtext_valid(semi + 1, strlen(semi + 1));
}

int
env_xtext_decode(const char *in, char *out, size_t outlen)
{
	size_t o = 0;
	int h1, h2;

	if (outlen == 0)
		return -1;
	for (; *in != '\0'; in++) {
		unsigned char c = (unsigned char)*in;

		if (c < 33 || c > 126 || c == '=')
			return -1;
		if (c == '+') {
			if (in[1] == '\0' || (h1 = hexval(in[1])) == -1 ||
			    (h2 = hexval(in[2])) == -1)
				return -1;
			c = (unsigned char)(h1 * 16 + h2);
			in += 2;
		}
		if (o + 1 >= outlen)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return (int)o;
}

int
env_xtext_encode(const char *s, char *out, size_t outlen)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	if (outlen == 0)
		return -1;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 33 || c > 126 || c == '+' || c == '=') {
			if (o + 4 > outlen)
				return -1;
			out[o++] = '+';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		} else {
			if (o + 2 > outlen)
				return -1;
			out[o++] = (char)c;
		}
	}
	out[o] = '\0';
	return (int)o;
}

static int
valid_envid(const char *s)
{
	char tmp[ENVELOPE_ENVID_MAX + 1];

	return env_xtext_decode(s, tmp, sizeof(tmp)) != -1;
}

/* Appending to the output; running out of room is remembered. */
struct fmt {
	struct str	*s;
	int		 full;
};

static void
fmt_c(struct fmt *f, int c)
{
	if (str_appendc(f->s, c) == -1)
		f->full = 1;
}

static void
fmt_s(struct fmt *f, const char *s)
{
	if (str_appends(f->s, s) == -1)
		f->full = 1;
}

static void	fmt_f(struct fmt *, const char *, ...)
		    __attribute__((__format__(__printf__, 2, 3)));

static void
fmt_f(struct fmt *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (str_vappendf(f->s, fmt, ap) == -1)
		f->full = 1;
	va_end(ap);
}

/* Free text is one line: control characters become '?'. */
static void
put_text(struct fmt *f, const char *val)
{
	const char *p;

	for (p = val; *p != '\0'; p++)
		fmt_c(f, (unsigned char)*p < 0x20 || *p == 0x7f ?
		    '?' : *p);
}

/*
 * "<mailbox>" as the reader will parse it: a mailbox that would not read
 * back (or come back different) is refused here, not found damaged later.
 */
static int
put_path(struct fmt *f, const char *mailbox, int null_ok, char *err,
    size_t errlen)
{
	struct addr a;
	size_t start = f->s->len, used;

	fmt_c(f, '<');
	put_text(f, mailbox);
	fmt_c(f, '>');
	if (f->full)
		return 0;	/* envelope_format() says so */
	if (addr_parse_path(f->s->s + start, f->s->len - start, (null_ok ?
	    ADDR_NULL_OK : 0) | ADDR_UTF8_OK | ADDR_POSTMASTER_OK, &a, &used,
	    NULL) != ADDR_OK || used != f->s->len - start ||
	    strcmp(a.mailbox, mailbox) != 0) {
		snprintf(err, errlen, "not a valid mailbox: <%.100s>",
		    mailbox);
		return -1;
	}
	return 0;
}

static int
put_rcpt(struct fmt *f, const struct env_rcpt *r, char *err, size_t errlen)
{
	char notify[ENV_NOTIFY_STRMAX];

	fmt_s(f, "rcpt ");
	if (r->mailbox == NULL || put_path(f, r->mailbox, 0, err,
	    errlen) == -1) {
		if (r->mailbox == NULL)
			snprintf(err, errlen, "recipient without a mailbox");
		return -1;
	}
	if (r->notify != 0) {
		if (env_notify_format(r->notify, notify, sizeof(notify)) ==
		    -1) {
			snprintf(err, errlen, "invalid NOTIFY bits 0x%x for "
			    "<%.100s>", (unsigned int)r->notify, r->mailbox);
			return -1;
		}
		fmt_s(f, " notify=");
		fmt_s(f, notify);
	}
	if (r->orcpt != NULL) {
		if (!env_orcpt_valid(r->orcpt)) {
			snprintf(err, errlen, "invalid ORCPT for <%.100s>",
			    r->mailbox);
			return -1;
		}
		fmt_s(f, " orcpt=");
		fmt_s(f, r->orcpt);
	}
	fmt_c(f, '\n');
	return 0;
}

static int
put_key(struct fmt *f, const struct envelope *e, const struct env_key *k,
    char *err, size_t errlen)
{
	const char *v;
	size_t i;

	switch (k->kind) {
	case EK_ID:
		if (e->id[0] == '\0')
			break;
		fmt_f(f, "%s ", k->name);
		put_text(f, e->id);
		fmt_c(f, '\n');
		return 0;
	case EK_TIME:
		if (e->arrival < 0)
			break;
		fmt_f(f, "%s %lld\n", k->name,
		    (long long)e->arrival);
		return 0;
	case EK_SENDER:
		if (e->sender == NULL)
			break;
		fmt_f(f, "%s ", k->name);
		if (put_path(f, e->sender, 1, err, errlen) == -1)
			return -1;
		fmt_c(f, '\n');
		return 0;
	case EK_RCPTS:
		if (e->nrcpts == 0)
			break;
		if (e->nrcpts > ENVELOPE_RCPT_MAX) {
			snprintf(err, errlen, "more than %d recipients",
			    ENVELOPE_RCPT_MAX);
			return -1;
		}
		for (i = 0; i < e->nrcpts; i++)
			if (put_rcpt(f, &e->rcpts[i], err, errlen) == -1)
				return -1;
		return 0;
	case EK_RET:
		if ((v = env_ret_name(*CFIELD(e, k, enum env_ret))) != NULL)
			fmt_f(f, "%s %s\n", k->name, v);
		return 0;
	case EK_BODY:
		if ((v = env_body_name(*CFIELD(e, k, enum env_body))) != NULL)
			fmt_f(f, "%s %s\n", k->name, v);
		return 0;
	case EK_XTEXT:
		if ((v = *CFIELD(e, k, const char *)) == NULL)
			return 0;
		if (!valid_envid(v)) {
			snprintf(err, errlen, "invalid %s", k->name);
			return -1;
		}
		fmt_f(f, "%s %s\n", k->name, v);
		return 0;
	case EK_TEXT:
		if ((v = *CFIELD(e, k, const char *)) == NULL)
			return 0;
		fmt_f(f, "%s ", k->name);
		put_text(f, v);
		fmt_c(f, '\n');
		return 0;
	case EK_FLAG:
		if (*CFIELD(e, k, int))
			fmt_f(f, "%s\n", k->name);
		return 0;
	}
	snprintf(err, errlen, "envelope lacks its %s", k->name);
	return -1;
}

int
envelope_format(const struct envelope *e, struct str *out, char *err,
    size_t errlen)
{
	struct fmt f = { out, 0 };
	size_t i, start = out->len;

	fmt_s(&f, ENV_VERSION "\n");
	for (i = 0; i < NKEYS && !f.full; i++)
		if (put_key(&f, e, &env_keys[i], err, errlen) == -1)
			return -1;
	fmt_c(&f, '\n');
	if (f.full || out->len - start > ENVELOPE_MAX) {
		snprintf(err, errlen, "envelope larger than %zu bytes",
		    out->max < ENVELOPE_MAX ? out->max : (size_t)ENVELOPE_MAX);
		return -1;
	}
	return 0;
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

/* One rcpt parameter (notify=, orcpt=); unknown ones are ignored. */
static int
parse_rcpt_param(struct env_rcpt *r, const char *w, size_t wl, char *err,
    size_t errlen)
{
	char *v = NULL;

	if (wl >= 7 && strncasecmp(w, "notify=", 7) == 0) {
		if (r->notify != 0 || (v = dupn(w + 7, wl - 7)) == NULL ||
		    (r->notify = env_notify_parse(v)) == -1) {
			r->notify = 0;
			if (v != NULL)
				free(v);
			snprintf(err, errlen, "bad notify= in rcpt line");
			return -1;
		}
		free(v);
	} else if (wl >= 6 && strncasecmp(w, "orcpt=", 6) == 0) {
		if (r->orcpt != NULL || (r->orcpt = v = dupn(w + 6, wl - 6)) ==
		    NULL || !env_orcpt_valid(v)) {
			snprintf(err, errlen, "bad orcpt= in rcpt line");
			return -1;
		}
	}
	return 0;
}

static int
parse_rcpt(struct envelope *e, const char *v, size_t len, char *err,
    size_t errlen)
{
	/* The parser owns what it builds: const only for the readers. */
	struct env_rcpt *rw = (struct env_rcpt *)e->rcpts, *nr, *r;
	const char *p, *end = v + len, *w;
	size_t used, wl;
	char *mb;

	if (e->nrcpts >= ENVELOPE_RCPT_MAX) {
		snprintf(err, errlen, "more than %d recipients",
		    ENVELOPE_RCPT_MAX);
		return -1;
	}
	if ((e->nrcpts & (e->nrcpts - 1)) == 0) {
		nr = realloc(rw, (e->nrcpts ? e->nrcpts * 2 : 1) *
		    sizeof(*nr));
		if (nr == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		e->rcpts = rw = nr;
	}
	r = &rw[e->nrcpts];
	memset(r, 0, sizeof(*r));
	if (parse_path(v, len, 0, &mb, &used) == -1) {
		snprintf(err, errlen, "bad rcpt line");
		return -1;
	}
	r->mailbox = mb;
	e->nrcpts++;
	for (p = v + used; p < end; p = w + wl) {
		if (*p != ' ') {
			snprintf(err, errlen, "bad rcpt line");
			return -1;
		}
		while (p < end && *p == ' ')
			p++;
		w = p;
		wl = 0;
		while (w + wl < end && w[wl] != ' ')
			wl++;
		if (wl > 0 && parse_rcpt_param(r, w, wl, err, errlen) == -1)
			return -1;
	}
	return 0;
}

/* One line's value (vl bytes at v) into the field key k names. */
static int
parse_value(struct envelope *e, const struct env_key *k, const char *v,
    size_t vl, char *err, size_t errlen)
{
	char num[32], *end, *s;
	long long t;
	size_t used;

	switch (k->kind) {
	case EK_ID:
		if (vl == 0 || vl > ENVELOPE_ID_MAX)
			goto bad;
		memcpy(e->id, v, vl);
		e->id[vl] = '\0';
		return 0;
	case EK_TIME:
		if (vl == 0 || vl >= sizeof(num) || v[0] < '0' || v[0] > '9')
			goto bad;
		memcpy(num, v, vl);
		num[vl] = '\0';
		errno = 0;
		t = strtoll(num, &end, 10);
		if (errno != 0 || *end != '\0' || t < 0 ||
		    (long long)(time_t)t != t)
			goto bad;
		e->arrival = (time_t)t;
		return 0;
	case EK_SENDER:
		if (parse_path(v, vl, 1, &s, &used) == -1)
			goto bad;
		e->sender = s;
		if (used != vl)
			goto bad;
		return 0;
	case EK_RCPTS:
		return parse_rcpt(e, v, vl, err, errlen);
	case EK_RET:
		if (vl == 4 && strncasecmp(v, "FULL", 4) == 0)
			e->ret = ENV_RET_FULL;
		else if (vl == 4 && strncasecmp(v, "HDRS", 4) == 0)
			e->ret = ENV_RET_HDRS;
		else
			goto bad;
		return 0;
	case EK_BODY:
		if (vl == 4 && strncasecmp(v, "7BIT", 4) == 0)
			e->body = ENV_BODY_7BIT;
		else if (vl == 8 && strncasecmp(v, "8BITMIME", 8) == 0)
			e->body = ENV_BODY_8BITMIME;
		else
			goto bad;
		return 0;
	case EK_XTEXT:
	case EK_TEXT:
		if ((s = dupn(v, vl)) == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		*FIELD(e, k, const char *) = s;
		if (k->kind == EK_XTEXT && !valid_envid(s))
			goto bad;
		return 0;
	case EK_FLAG:
		/* Nothing may follow the key. */
		if (vl != 0)
			goto bad;
		*FIELD(e, k, int) = 1;
		return 0;
	}
bad:
	snprintf(err, errlen, "bad %s line", k->name);
	return -1;
}

/* The first line: "smtpd-spool 1". */
static int
check_version(const char *p, size_t ll, char *err, size_t errlen)
{
	if (ll < 12 || memcmp(p, "smtpd-spool ", 12) != 0) {
		snprintf(err, errlen, "not a spool file (first line is not "
		    "\"" ENV_VERSION "\")");
		return -1;
	}
	if (ll != sizeof(ENV_VERSION) - 1 || memcmp(p, ENV_VERSION, ll) != 0) {
		snprintf(err, errlen, "unsupported spool format version "
		    "\"%.*s\"", (int)(ll > 40 ? 40 : ll), p);
		return -1;
	}
	return 0;
}

int
envelope_parse(const char *buf, size_t len, struct envelope **ep, char *err,
    size_t errlen)
{
	const char *p = buf, *end = buf + len, *nl, *v;
	unsigned char seen[NKEYS];
	struct envelope *e;
	size_t ll, kl, i;
	int lineno = 0;
	char lerr[160];

	*ep = NULL;
	memset(seen, 0, sizeof(seen));
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
		if (++lineno == 1) {
			if (check_version(p, ll, err, errlen) == -1)
				goto fail;
			p = nl + 1;
			continue;
		}
		if (ll == 0)
			break;
		for (i = 0; i < ll; i++)
			if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f) {
				snprintf(err, errlen, "line %d: control "
				    "characters", lineno);
				goto fail;
			}
		v = memchr(p, ' ', ll);
		kl = v != NULL ? (size_t)(v - p) : ll;
		v = v != NULL ? v + 1 : nl;
		for (i = 0; i < NKEYS; i++)
			if (strlen(env_keys[i].name) == kl &&
			    memcmp(p, env_keys[i].name, kl) == 0)
				break;
		/* Unknown keys are for later versions: ignored. */
		if (i < NKEYS) {
			if (seen[i] && env_keys[i].kind != EK_RCPTS) {
				snprintf(err, errlen, "line %d: second %s "
				    "line", lineno, env_keys[i].name);
				goto fail;
			}
			seen[i] = 1;
			if (parse_value(e, &env_keys[i], v, (size_t)(nl - v),
			    lerr, sizeof(lerr)) == -1) {
				snprintf(err, errlen, "line %d: %s", lineno,
				    lerr);
				goto fail;
			}
		}
		p = nl + 1;
	}
	for (i = 0; i < NKEYS; i++)
		if (env_keys[i].required && !seen[i]) {
			snprintf(err, errlen, "envelope lacks a%s %s line",
			    strchr("aeiou", env_keys[i].name[0]) ? "n" : "",
			    env_keys[i].name);
			goto fail;
		}
	e->body_off = (off_t)(nl + 1 - buf);
	*ep = e;
	return 0;
fail:
	envelope_free(&e);
	return -1;
}

/* The bytes up to and including the first "\n\n", read with pread. */
static int
read_head(int fd, struct str *buf, size_t *envlen, char *err, size_t errlen)
{
	char chunk[ENV_CHUNK];
	const char *q;
	size_t from = 0;
	ssize_t n;
	off_t off = 0;

	for (;;) {
		n = pread(fd, chunk, sizeof(chunk), off);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			snprintf(err, errlen, "read: %s", strerror(errno));
			return -1;
		}
		if (n == 0) {
			snprintf(err, errlen, "file ends inside the envelope");
			return -2;
		}
		if (str_append(buf, chunk, (size_t)n) == -1) {
			snprintf(err, errlen, "envelope larger than %d bytes",
			    ENVELOPE_MAX);
			return -2;
		}
		off += n;
		while (from + 1 < buf->len &&
		    (q = memchr(buf->s + from, '\n', buf->len - from - 1)) !=
		    NULL) {
			if (q[1] == '\n') {
				*envlen = (size_t)(q - buf->s) + 2;
				return 0;
			}
			from = (size_t)(q - buf->s) + 1;
		}
	}
}

int
envelope_read(int fd, struct envelope **ep, char *err, size_t errlen)
{
	struct str buf;
	struct stat st;
	size_t envlen = 0;
	int rc;

	*ep = NULL;
	str_init(&buf, ENVELOPE_MAX);
	rc = read_head(fd, &buf, &envlen, err, errlen);
	if (rc == 0 && envelope_parse(buf.s, envlen, ep, err, errlen) == -1)
		rc = -2;
	str_free(&buf);
	if (rc != 0)
		return rc;
	if (fstat(fd, &st) == -1) {
		snprintf(err, errlen, "fstat: %s", strerror(errno));
		envelope_free(ep);
		return -1;
	}
	(*ep)->size = st.st_size - (*ep)->body_off;
	return 0;
}

int
envelope_set_mailbox(struct envelope *e, size_t i, const char *mailbox)
{
	struct env_rcpt *r = (struct env_rcpt *)&e->rcpts[i];
	char *p;

	if (i >= e->nrcpts || (p = strdup(mailbox)) == NULL)
		return -1;
	free((char *)r->mailbox);
	r->mailbox = p;
	return 0;
}

void
envelope_free(struct envelope **ep)
{
	struct envelope *e = *ep;
	size_t i;

	if (e == NULL)
		return;
	*ep = NULL;
	for (i = 0; i < e->nrcpts; i++) {
		free((char *)e->rcpts[i].mailbox);
		free((char *)e->rcpts[i].orcpt);
	}
	free((struct env_rcpt *)e->rcpts);
	free((char *)e->sender);
	for (i = 0; i < NKEYS; i++)
		if (env_keys[i].kind == EK_XTEXT ||
		    env_keys[i].kind == EK_TEXT)
			free((char *)*FIELD(e, &env_keys[i], const char *));
	free(e);
}
