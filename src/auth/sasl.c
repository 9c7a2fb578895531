/*
 * sasl: server-side SMTP AUTH exchanges.  See sasl.h.
 *
 * Every decoded client message is wiped as soon as it has been looked at.
 * Base64 is checked strictly here (RFC 4648 alphabet, padding, no white
 * space) before GnuTLS decodes it, since GnuTLS's decoder is lenient.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>

#include "lib/str.h"
#include "auth/dovecot.h"
#include "auth/secrets.h"
#include "sasl.h"

#define SASL_HOST_MAX	255
/* "<" 20 digits "." 20 digits "@" host ">" */
#define SASL_CHAL_MAX	(SASL_HOST_MAX + 48)

enum step {
	STEP_DONE = 0,
	STEP_PLAIN,		/* waiting for the PLAIN message */
	STEP_LOGIN_USER,
	STEP_LOGIN_PASS,
	STEP_CRAM,		/* waiting for "user digest" */
};

struct sasl {
	enum step	 step;
	unsigned int	 mech;		/* SASL_M_* */
	struct secrets	*secrets;
	const char	*dovecot;	/* checks passwords instead, or NULL */
	char		 user[SASL_USER_MAX + 1];
	char		 chal[SASL_CHAL_MAX + 1];
	size_t		 chlen;
	const char	*why;
};

static const struct mech {
	const char	*name;
	unsigned int	 bit;
	int		 cleartext;	/* sends the password itself */
} mechs[] = {
	{ "PLAIN",	SASL_M_PLAIN,		1 },
	{ "LOGIN",	SASL_M_LOGIN,		1 },
	{ "CRAM-MD5",	SASL_M_CRAM_MD5,	0 },
};
#define NMECHS	(sizeof(mechs) / sizeof(mechs[0]))

/* RFC 4954 section 6 and RFC 3463; indexed by enum sasl_result. */
static const struct {
	int		 code;
	const char	*ecode;
	const char	*text;
} replies[SASL_NRESULTS] = {
	[SASL_CONTINUE] = { 334, NULL, "" },
	[SASL_OK] = { 235, "2.7.0", "Authentication successful" },
	[SASL_FAIL] = { 535, "5.7.8",
	    "Authentication credentials invalid" },
	[SASL_TEMPFAIL] = { 454, "4.7.0",
	    "Temporary authentication failure" },
	[SASL_CANCELLED] = { 501, "5.0.0", "Authentication cancelled" },
	[SASL_BAD_BASE64] = { 501, "5.5.2", "Cannot decode base64 data" },
	[SASL_MALFORMED] = { 501, "5.5.2",
	    "Malformed authentication data" },
	[SASL_SYNTAX] = { 501, "5.5.4",
	    "Syntax: AUTH mechanism [initial-response]" },
	[SASL_UNKNOWN_MECH] = { 504, "5.5.4",
	    "Unrecognized authentication type" },
	[SASL_TOO_WEAK] = { 534, "5.7.9",
	    "Authentication mechanism is too weak" },
	[SASL_ENCRYPT_REQUIRED] = { 538, "5.7.11",
	    "Encryption required for requested authentication mechanism" },
	[SASL_TOO_LONG] = { 500, "5.5.6",
	    "Authentication exchange line is too long" },
	/* The same words as SASL_FAIL: the reply tells nothing more. */
	[SASL_NO_SECRET] = { 535, "5.7.8",
	    "Authentication credentials invalid" },
	[SASL_ALREADY] = { 503, "5.5.1", "Already authenticated" },
	[SASL_IN_TRANSACTION] = { 503, "5.5.1",
	    "AUTH not permitted during a mail transaction" },
	[SASL_AUTH_REQUIRED] = { 530, "5.7.0", "Authentication required" },
	[SASL_SENDER_DENIED] = { 553, "5.7.1",
	    "Sender address not owned by the authenticated user" },
	[SASL_BLOCKED] = { 421, "4.7.0",
	    "Too many authentication failures, try again later" },
};

static const struct mech *mech_lookup(const char *);
static int	b64_valid(const char *, size_t);
static int	b64_decode(const char *, size_t, gnutls_datum_t *);
static int	b64_encode(const void *, size_t, char *, size_t);
static void	datum_wipe(gnutls_datum_t *);
static enum sasl_result finish(struct sasl *, enum sasl_result,
		    const char *, struct reply *);
static enum sasl_result challenge(struct sasl *, const void *, size_t,
		    enum step, struct reply *);
static enum sasl_result verdict(struct sasl *, int, struct reply *);
static enum secrets_status check_pass(const struct sasl *, const void *,
		    size_t);
static enum sasl_result do_plain(struct sasl *, const unsigned char *,
		    size_t, struct reply *);
static enum sasl_result do_login_user(struct sasl *, const unsigned char *,
		    size_t, struct reply *);
static enum sasl_result do_login_pass(struct sasl *, const unsigned char *,
		    size_t, struct reply *);
static enum sasl_result do_cram(struct sasl *, const unsigned char *,
		    size_t, struct reply *);
static enum sasl_result cram_challenge(struct sasl *, const char *,
		    struct reply *);
static enum sasl_result feed(struct sasl *, const unsigned char *, size_t,
		    struct reply *);

static const struct mech *
mech_lookup(const char *name)
{
	size_t i;

	for (i = 0; i < NMECHS; i++)
		if (strcasecmp(mechs[i].name, name) == 0)
			return &mechs[i];
	return NULL;
}

unsigned int
sasl_mech_bit(const char *name)
{
	const struct mech *m = mech_lookup(name);

	return m != NULL ? m->bit : 0;
}

void
sasl_reply_for(enum sasl_result r, struct reply *rep)
{
	if ((int)r < 0 || r >= SASL_NRESULTS)
		r = SASL_TEMPFAIL;
	(void)reply_set(rep, replies[r].code, replies[r].ecode, "%s",
	    replies[r].text);
}

int
sasl_split(const char *arg, char *mech, size_t mechlen, const char **ir)
{
	size_t n, i;
	const char *sp;

	*ir = NULL;
	if (mechlen > 0)
		mech[0] = '\0';
	sp = strchr(arg, ' ');
	n = sp != NULL ? (size_t)(sp - arg) : strlen(arg);
	if (n == 0 || n > SASL_MECH_MAX || n >= mechlen)
		return -1;
	/* RFC 4422 3.1: upper-case letters, digits, '-' and '_'. */
	for (i = 0; i < n; i++)
		if (!((arg[i] >= 'A' && arg[i] <= 'Z') ||
		    (arg[i] >= 'a' && arg[i] <= 'z') ||
		    (arg[i] >= '0' && arg[i] <= '9') ||
		    arg[i] == '-' || arg[i] == '_'))
			return -1;
	memcpy(mech, arg, n);
	mech[n] = '\0';
	if (sp == NULL)
		return 0;
	/* Exactly one space, then one token. */
	if (sp[1] == '\0' || strchr(sp + 1, ' ') != NULL)
		return -1;
	*ir = sp + 1;
	return 0;
}

/* RFC 4648 section 4 base64, padded, nothing else: 1 or 0. */
static int
b64_valid(const char *s, size_t len)
{
	size_t i, pad = 0;
	char c;

	if (len % 4 != 0)
		return 0;
	for (i = 0; i < len; i++) {
		c = s[i];
		if (c == '=') {
			if (i < len - 2)
				return 0;
			pad++;
			continue;
		}
		if (pad > 0)
			return 0;	/* data after padding */
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '+' || c == '/'))
			return 0;
	}
	return 1;
}

/* 0 with *out set (data NULL when empty), -1 when s is not base64. */
static int
b64_decode(const char *s, size_t len, gnutls_datum_t *out)
{
	gnutls_datum_t in;

	out->data = NULL;
	out->size = 0;
	if (!b64_valid(s, len))
		return -1;
	if (len == 0)
		return 0;
	in.data = (unsigned char *)(uintptr_t)s;
	in.size = (unsigned int)len;
	return gnutls_base64_decode2(&in, out) == 0 ? 0 : -1;
}

/* 0, or -1 when it does not fit. */
static int
b64_encode(const void *p, size_t n, char *out, size_t outlen)
{
	gnutls_datum_t in, enc = { NULL, 0 };
	int r = -1;

	if (n == 0) {
		if (outlen == 0)
			return -1;
		out[0] = '\0';
		return 0;
	}
	in.data = (unsigned char *)(uintptr_t)p;
	in.size = (unsigned int)n;
	if (gnutls_base64_encode2(&in, &enc) != 0)
		return -1;
	if (enc.size < outlen) {
		memcpy(out, enc.data, enc.size);
		out[enc.size] = '\0';
		r = 0;
	}
	gnutls_free(enc.data);
	return r;
}

static void
datum_wipe(gnutls_datum_t *d)
{
	if (d->data != NULL) {
		str_wipe(d->data, d->size);
		gnutls_free(d->data);
	}
	d->data = NULL;
	d->size = 0;
}

static enum sasl_result
finish(struct sasl *sa, enum sasl_result r, const char *why,
    struct reply *rep)
{
	sa->step = STEP_DONE;
	if (why != NULL)
		sa->why = why;
	sasl_reply_for(r, rep);
	return r;
}

/* Sends a challenge (raw bytes, base64-encoded here) and waits for step. */
static enum sasl_result
challenge(struct sasl *sa, const void *p, size_t n, enum step next,
    struct reply *rep)
{
	sasl_reply_for(SASL_CONTINUE, rep);
	if (b64_encode(p, n, rep->text, sizeof(rep->text)) == -1)
		return finish(sa, SASL_TEMPFAIL, "cannot encode challenge",
		    rep);
	sa->step = next;
	return SASL_CONTINUE;
}

static enum sasl_result
verdict(struct sasl *sa, int st, struct reply *rep)
{
	switch (st) {
	case SECRETS_OK:
		return finish(sa, SASL_OK, "", rep);
	case SECRETS_FAIL:
		return finish(sa, SASL_FAIL, "bad password or unknown user",
		    rep);
	case SECRETS_NO_CLEAR:
		return finish(sa, SASL_NO_SECRET,
		    "CRAM-MD5 needs a {PLAIN} secret", rep);
	default:
		return finish(sa, SASL_TEMPFAIL, "cannot check credentials",
		    rep);
	}
}

/* The password check: the secrets table, or Dovecot. */
static enum secrets_status
check_pass(const struct sasl *sa, const void *pass, size_t len)
{
	if (sa->dovecot != NULL)
		return dovecot_auth_verify(sa->dovecot, sa->user, pass, len);
	return secrets_verify(sa->secrets, sa->user, pass, len);
}

/* RFC 4616 section 2: [authzid] NUL authcid NUL passwd. */
static enum sasl_result
do_plain(struct sasl *sa, const unsigned char *m, size_t len,
    struct reply *rep)
{
	const unsigned char *n1, *n2;
	size_t zlen, ulen, plen;

	if ((n1 = memchr(m, '\0', len)) == NULL ||
	    (n2 = memchr(n1 + 1, '\0', len - (size_t)(n1 - m) - 1)) == NULL ||
	    memchr(n2 + 1, '\0', len - (size_t)(n2 - m) - 1) != NULL)
		return finish(sa, SASL_MALFORMED,
		    "PLAIN message without two NULs", rep);
	zlen = (size_t)(n1 - m);
	ulen = (size_t)(n2 - n1 - 1);
	plen = len - (size_t)(n2 - m) - 1;
	if (ulen == 0 || ulen > SASL_USER_MAX || plen == 0 ||
	    plen > SECRETS_PASS_MAX)
		return finish(sa, SASL_MALFORMED,
		    "PLAIN user or password empty or too long", rep);
	memcpy(sa->user, n1 + 1, ulen);
	sa->user[ulen] = '\0';
	/* We let nobody act for someone else: authzid is empty or the user. */
	if (zlen != 0 && (zlen != ulen || memcmp(m, n1 + 1, ulen) != 0))
		return finish(sa, SASL_FAIL,
		    "authorization identity differs from the user", rep);
	return verdict(sa, check_pass(sa, n2 + 1, plen), rep);
}

static enum sasl_result
do_login_user(struct sasl *sa, const unsigned char *m, size_t len,
    struct reply *rep)
{
	static const char prompt[] = "Password:";

	if (len == 0 || len > SASL_USER_MAX || memchr(m, '\0', len) != NULL)
		return finish(sa, SASL_MALFORMED,
		    "LOGIN user empty, too long or with a NUL", rep);
	memcpy(sa->user, m, len);
	sa->user[len] = '\0';
	return challenge(sa, prompt, sizeof(prompt) - 1, STEP_LOGIN_PASS, rep);
}

static enum sasl_result
do_login_pass(struct sasl *sa, const unsigned char *m, size_t len,
    struct reply *rep)
{
	if (len == 0)
		return finish(sa, SASL_FAIL, "empty password", rep);
	return verdict(sa, check_pass(sa, m, len), rep);
}

static int
hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* RFC 2195 section 2: "user" SP 32 lower-case hex digits. */
static enum sasl_result
do_cram(struct sasl *sa, const unsigned char *m, size_t len,
    struct reply *rep)
{
	unsigned char digest[16];
	const unsigned char *sp = NULL, *hex;
	size_t i, ulen;
	int hi, lo;

	/* The user name may hold spaces; the digest cannot. */
	for (i = len; i > 0; i--)
		if (m[i - 1] == ' ') {
			sp = m + i - 1;
			break;
		}
	if (sp == NULL || (size_t)(m + len - sp - 1) != 32)
		return finish(sa, SASL_MALFORMED,
		    "CRAM-MD5 answer is not \"user digest\"", rep);
	ulen = (size_t)(sp - m);
	if (ulen == 0 || ulen > SASL_USER_MAX || memchr(m, '\0', ulen) != NULL)
		return finish(sa, SASL_MALFORMED,
		    "CRAM-MD5 user empty, too long or with a NUL", rep);
	hex = sp + 1;
	for (i = 0; i < 16; i++) {
		hi = hexval(hex[2 * i]);
		lo = hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return finish(sa, SASL_MALFORMED,
			    "CRAM-MD5 digest is not hex", rep);
		digest[i] = (unsigned char)(hi << 4 | lo);
	}
	memcpy(sa->user, m, ulen);
	sa->user[ulen] = '\0';
	return verdict(sa, secrets_verify_cram(sa->secrets, sa->user, sa->chal,
	    sa->chlen, digest), rep);
}

/* RFC 2195 section 2: a unique "<random.timestamp@hostname>". */
static enum sasl_result
cram_challenge(struct sasl *sa, const char *hostname,
    struct reply *rep)
{
	unsigned long long rnd;
	int n;

	if (gnutls_rnd(GNUTLS_RND_NONCE, &rnd, sizeof(rnd)) != 0)
		return finish(sa, SASL_TEMPFAIL, "no random bytes", rep);
	if (hostname == NULL || *hostname == '\0')
		hostname = "localhost";
	n = snprintf(sa->chal, sizeof(sa->chal), "<%llu.%lld@%.*s>", rnd,
	    (long long)time(NULL), SASL_HOST_MAX, hostname);
	if (n < 0 || (size_t)n >= sizeof(sa->chal))
		return finish(sa, SASL_TEMPFAIL, "challenge too long", rep);
	sa->chlen = (size_t)n;
	return challenge(sa, sa->chal, sa->chlen, STEP_CRAM, rep);
}

/* Hands a decoded client message to the current step. */
static enum sasl_result
feed(struct sasl *sa, const unsigned char *m, size_t len,
    struct reply *rep)
{
	switch (sa->step) {
	case STEP_PLAIN:
		return do_plain(sa, m, len, rep);
	case STEP_LOGIN_USER:
		return do_login_user(sa, m, len, rep);
	case STEP_LOGIN_PASS:
		return do_login_pass(sa, m, len, rep);
	case STEP_CRAM:
		return do_cram(sa, m, len, rep);
	default:
		return finish(sa, SASL_TEMPFAIL, "exchange already over", rep);
	}
}

enum sasl_result
sasl_start(struct sasl **sap, const char *mech, const char *ir,
    const struct sasl_conf *conf, struct reply *rep)
{
	static const char user_prompt[] = "Username:";
	const struct mech *m;
	gnutls_datum_t d;
	struct sasl *sa;
	enum sasl_result r;

	if ((*sap = sa = calloc(1, sizeof(*sa))) == NULL) {
		sasl_reply_for(SASL_TEMPFAIL, rep);
		return SASL_TEMPFAIL;
	}
	sa->why = "";
	if ((m = mech_lookup(mech)) == NULL)
		return finish(sa, SASL_UNKNOWN_MECH, "unknown mechanism", rep);
	sa->mech = m->bit;
	if ((conf->mechs & m->bit) == 0)
		return finish(sa, SASL_TOO_WEAK, "mechanism disabled", rep);
	if (m->cleartext && (conf->flags & (SASL_F_TLS | SASL_F_CLEARTEXT)) ==
	    0)
		return finish(sa, SASL_ENCRYPT_REQUIRED,
		    "clear-text password without TLS", rep);
	/* RFC 4954 section 4: the server speaks first in CRAM-MD5. */
	if (m->bit == SASL_M_CRAM_MD5 && ir != NULL)
		return finish(sa, SASL_SYNTAX,
		    "initial response with CRAM-MD5", rep);
	if (conf->dovecot != NULL) {
		/* Dovecot gets a password, never a CRAM-MD5 digest. */
		if (m->bit == SASL_M_CRAM_MD5)
			return finish(sa, SASL_TOO_WEAK, "CRAM-MD5 with the "
			    "Dovecot backend", rep);
		sa->dovecot = conf->dovecot;
	} else if (conf->secrets == NULL)
		return finish(sa, SASL_TEMPFAIL, "no secrets table", rep);
	else
		sa->secrets = secrets_ref(conf->secrets);

	switch (m->bit) {
	case SASL_M_PLAIN:
		if (ir == NULL)
			return challenge(sa, "", 0, STEP_PLAIN, rep);
		sa->step = STEP_PLAIN;
		break;
	case SASL_M_LOGIN:
		if (ir == NULL)
			return challenge(sa, user_prompt,
			    sizeof(user_prompt) - 1, STEP_LOGIN_USER, rep);
		sa->step = STEP_LOGIN_USER;
		break;
	default:
		return cram_challenge(sa, conf->hostname, rep);
	}
	if (strlen(ir) > SASL_LINE_MAX)
		return finish(sa, SASL_TOO_LONG, "initial response too long",
		    rep);
	/* RFC 4954 section 4: "=" is an initial response of zero bytes. */
	if (strcmp(ir, "=") == 0)
		return feed(sa, (const unsigned char *)"", 0, rep);
	if (b64_decode(ir, strlen(ir), &d) == -1)
		return finish(sa, SASL_BAD_BASE64, "bad base64", rep);
	r = feed(sa, d.data != NULL ? d.data : (const unsigned char *)"",
	    d.size, rep);
	datum_wipe(&d);
	return r;
}

enum sasl_result
sasl_step(struct sasl *sa, const char *line, size_t len,
    struct reply *rep)
{
	gnutls_datum_t d;
	enum sasl_result r;

	if (sa == NULL || sa->step == STEP_DONE) {
		sasl_reply_for(SASL_TEMPFAIL, rep);
		return SASL_TEMPFAIL;
	}
	if (len > 0 && line[len - 1] == '\n')
		len--;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len > SASL_LINE_MAX)
		return finish(sa, SASL_TOO_LONG, "response too long", rep);
	if (len == 1 && line[0] == '*')
		return finish(sa, SASL_CANCELLED, "cancelled by the client",
		    rep);
	if (b64_decode(line, len, &d) == -1)
		return finish(sa, SASL_BAD_BASE64, "bad base64", rep);
	r = feed(sa, d.data != NULL ? d.data : (const unsigned char *)"",
	    d.size, rep);
	datum_wipe(&d);
	return r;
}

void
sasl_free(struct sasl **sap)
{
	struct sasl *sa = *sap;

	if (sa == NULL)
		return;
	*sap = NULL;
	secrets_unref(&sa->secrets);
	str_wipe(sa, sizeof(*sa));
	free(sa);
}

const char *
sasl_user(const struct sasl *sa)
{
	return sa != NULL ? sa->user : "";
}

const char *
sasl_mech(const struct sasl *sa)
{
	size_t i;

	if (sa != NULL)
		for (i = 0; i < NMECHS; i++)
			if (mechs[i].bit == sa->mech)
				return mechs[i].name;
	return "";
}

const char *
sasl_why(const struct sasl *sa)
{
	return sa != NULL && sa->why != NULL ? sa->why : "";
}

size_t
sasl_mechlist(const struct sasl_conf *conf, char *buf, size_t len)
{
	size_t i, n = 0, l;

	if (len == 0)
		return 0;
	buf[0] = '\0';
	for (i = 0; i < NMECHS; i++) {
		if ((conf->mechs & mechs[i].bit) == 0)
			continue;
		if (mechs[i].cleartext &&
		    (conf->flags & (SASL_F_TLS | SASL_F_CLEARTEXT)) == 0)
			continue;
		/* Without a clear secret, CRAM-MD5 can never succeed. */
		if (mechs[i].bit == SASL_M_CRAM_MD5 && (conf->dovecot != NULL ||
		    (conf->secrets != NULL &&
		    !secrets_any_clear(conf->secrets))))
			continue;
		l = strlen(mechs[i].name);
		if (n + (n > 0) + l >= len)
			break;
		if (n > 0)
			buf[n++] = ' ';
		memcpy(buf + n, mechs[i].name, l + 1);
		n += l;
	}
	return n;
}
