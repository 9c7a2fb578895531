/*
 * secrets: the AUTH secrets file.  See secrets.h for the format.
 *
 * The whole file is read into memory (it is bounded), parsed, and turned
 * into a sorted array of entries searched with bsearch().  The table never
 * changes after loading; a changed file gives a new table.
 */
#include "config.h"

#include <assert.h>
#include <sys/stat.h>

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>

#include "lib/refcnt.h"
#include "lib/str.h"
#include "secrets.h"

enum scheme { SCHEME_PLAIN, SCHEME_CRYPT };

static const struct {
	const char	*name;
	enum scheme	 scheme;
} schemes[] = {
	{ "PLAIN",	SCHEME_PLAIN },
	{ "CRYPT",	SCHEME_CRYPT },
};

struct entry {
	char		*user;
	char		*value;		/* clear password or crypt(3) hash */
	size_t		 vlen;
	enum scheme	 scheme;
	unsigned int	 line;
};

/* What identifies one version of the file on disk. */
struct fileid {
	dev_t		 dev;
	ino_t		 ino;
	off_t		 size;
	struct timespec	 mtim, ctim;
};

struct secrets {
	int		 refs;		/* atomic */
	char		 path[PATH_MAX];
	struct fileid	 id;
	struct entry	*e;
	size_t		 n;
	int		 any_clear;
	/*
	 * Hashed for unknown users and {PLAIN} accounts so that they cost
	 * what a {CRYPT} one does: an entry's hash, or dummy_setting.
	 */
	const char	*dummy_crypt;
	char		 dummy_setting[CRYPT_GENSALT_OUTPUT_SIZE];	/* Set in the one table that stands for another process's. */
	const struct secrets_remote *remote;
};

static void	fileid_of(const struct stat *, struct fileid *);
static int	fileid_eq(const struct fileid *, const struct fileid *);
static int	user_ok(const char *, size_t);
static int	read_file(const char *, struct fileid *, char **, size_t *,
		    char *, size_t);
static int	parse(struct secrets *, char *, size_t, char *, size_t);
static int	parse_line(struct secrets *, const char *, size_t,
		    unsigned int, char *, size_t);
static int	crypt_value_ok(const char *);
static int	entry_cmp(const void *, const void *);
static int	key_cmp(const void *, const void *);
static const struct entry *find(const struct secrets *, const char *);
static void	table_free(struct secrets *);
static enum secrets_status check_plain(const char *, size_t, const void *,
		    size_t);
static enum secrets_status check_crypt(const char *, const void *, size_t);
static int	dummy_init(struct secrets *, char *, size_t);
static int	gate_enter(void);
static void	gate_leave(void);

static void
fileid_of(const struct stat *st, struct fileid *id)
{
	memset(id, 0, sizeof(*id));
	id->dev = st->st_dev;
	id->ino = st->st_ino;
	id->size = st->st_size;
	id->mtim = st->st_mtim;
	id->ctim = st->st_ctim;
}

static int
fileid_eq(const struct fileid *a, const struct fileid *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	    a->mtim.tv_sec == b->mtim.tv_sec &&
	    a->mtim.tv_nsec == b->mtim.tv_nsec &&
	    a->ctim.tv_sec == b->ctim.tv_sec &&
	    a->ctim.tv_nsec == b->ctim.tv_nsec;
}

/* A user name: printable, no ':' or white space, not starting a comment. */
static int
user_ok(const char *s, size_t len)
{
	size_t i;
	unsigned char c;

	if (len == 0 || len > SECRETS_USER_MAX || s[0] == '#')
		return 0;
	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if (c <= ' ' || c == 0x7f || c == ':')
			return 0;
	}
	return 1;
}

int
secrets_check_user(const char *name)
{
	return name != NULL && user_ok(name, strlen(name)) ? 0 : -1;
}

/*
 * Opens path, checks what it is and who may read it, and reads it whole
 * into *bufp (to be wiped and freed by the caller).  0 or -1.
 */
static int
read_file(const char *path, struct fileid *id, char **bufp, size_t *lenp,
    char *err, size_t errlen)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0, want;
	ssize_t r;
	int fd;

	*bufp = NULL;
	/* O_NONBLOCK: a FIFO put in the file's place must not hang us. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		goto fail;
	}
	/* Whoever owns it can make up accounts. */
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		snprintf(err, errlen, "%s: owned by uid %u, neither root nor "
		    "the user smtpd runs as; refusing it", path,
		    (unsigned int)st.st_uid);
		goto fail;
	}
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		snprintf(err, errlen, "%s: group or others have access "
		    "(mode %04o); refusing it (chmod 600)", path,
		    (unsigned int)(st.st_mode & 07777));
		goto fail;
	}
	if (st.st_size > SECRETS_FILE_MAX) {
		snprintf(err, errlen, "%s: larger than %d bytes", path,
		    SECRETS_FILE_MAX);
		goto fail;
	}
	fileid_of(&st, id);
	want = (size_t)st.st_size;
	if ((buf = malloc(want + 1)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	/*
	 * A file that changes while we read gives a table that no longer
	 * matches id, so secrets_changed() reports it and it is read again.
	 */
	while (len < want) {
		r = read(fd, buf + len, want - len);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			goto fail;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	buf[len] = '\0';
	(void)close(fd);
	*bufp = buf;
	*lenp = len;
	return 0;
fail:
	if (buf != NULL) {
		str_wipe(buf, want + 1);
		free(buf);
	}
	(void)close(fd);
	return -1;
}

/* Whether libcrypt can use the hash. */
static int
crypt_value_ok(const char *v)
{
	const char *p;

	for (p = v; *p != '\0'; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f ||
		    *p == ':')
			return 0;
	/* '*' and '!' are the conventional "locked" markers. */
	if (v[0] == '*' || v[0] == '!')
		return 0;
#ifdef CRYPT_CHECKSALT_AVAILABLE
	switch (crypt_checksalt(v)) {
	case CRYPT_SALT_OK:
	case CRYPT_SALT_METHOD_LEGACY:
	case CRYPT_SALT_TOO_CHEAP:
		return 1;
	default:
		return 0;
	}
#else
	return 1;
#endif
}

static int
parse_line(struct secrets *t, const char *p, size_t len, unsigned int line,
    char *err, size_t errlen)
{
	const char *colon, *rbrace, *val;
	size_t ulen, slen, vlen, i;
	struct entry *e;
	int sch = -1;

	if ((colon = memchr(p, ':', len)) == NULL) {
		snprintf(err, errlen, "%s:%u: expected user:{SCHEME}secret",
		    t->path, line);
		return -1;
	}
	ulen = (size_t)(colon - p);
	if (!user_ok(p, ulen)) {
		snprintf(err, errlen, "%s:%u: bad user name", t->path, line);
		return -1;
	}
	val = colon + 1;
	vlen = len - ulen - 1;
	if (vlen == 0 || val[0] != '{' ||
	    (rbrace = memchr(val, '}', vlen)) == NULL) {
		snprintf(err, errlen, "%s:%u: missing {SCHEME} after the user "
		    "name", t->path, line);
		return -1;
	}
	slen = (size_t)(rbrace - val - 1);
	for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
		if (strlen(schemes[i].name) == slen &&
		    strncasecmp(schemes[i].name, val + 1, slen) == 0)
			sch = (int)schemes[i].scheme;
	if (sch == -1) {
		snprintf(err, errlen, "%s:%u: unknown scheme {%.*s} (known: "
		    "{PLAIN}, {CRYPT})", t->path, line,
		    (int)(slen > 20 ? 20 : slen), val + 1);
		return -1;
	}
	vlen -= slen + 2;
	val = rbrace + 1;
	if (vlen == 0) {
		snprintf(err, errlen, "%s:%u: empty secret", t->path, line);
		return -1;
	}
	if (sch == SCHEME_PLAIN && vlen > SECRETS_PASS_MAX) {
		snprintf(err, errlen, "%s:%u: password longer than %d bytes",
		    t->path, line, SECRETS_PASS_MAX);
		return -1;
	}
	e = &t->e[t->n];
	if ((e->user = malloc(ulen + 1 + vlen + 1)) == NULL) {
		snprintf(err, errlen, "%s:%u: out of memory", t->path, line);
		return -1;
	}
	memcpy(e->user, p, ulen);
	e->user[ulen] = '\0';
	e->value = e->user + ulen + 1;
	memcpy(e->value, val, vlen);
	e->value[vlen] = '\0';
	e->vlen = vlen;
	e->scheme = (enum scheme)sch;
	e->line = line;
	t->n++;
	if (sch == SCHEME_CRYPT && !crypt_value_ok(e->value)) {
		snprintf(err, errlen, "%s:%u: not a crypt(3) hash that this "
		    "system supports", t->path, line);
		return -1;
	}
	if (sch == SCHEME_PLAIN)
		t->any_clear = 1;
	/* The first yescrypt hash (what `smtpq passwd` writes), else any. */
	else if (t->dummy_crypt == NULL || (strncmp(e->value, "$y$", 3) == 0 &&
	    strncmp(t->dummy_crypt, "$y$", 3) != 0))
		t->dummy_crypt = e->value;
	return 0;
}

static int
entry_cmp(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	int c;

	if ((c = strcmp(x->user, y->user)) != 0)
		return c;
	return x->line < y->line ? -1 : x->line > y->line;
}

static int
key_cmp(const void *key, const void *b)
{
	const struct entry *y = b;

	return strcmp(key, y->user);
}

static int
parse(struct secrets *t, char *buf, size_t len, char *err, size_t errlen)
{
	char *p = buf, *end = buf + len, *nl;
	size_t l, cap = 0, i, lines = 0;
	unsigned int line = 0;

	/* Count lines first so the entry array is allocated once. */
	for (i = 0; i < len; i++)
		if (buf[i] == '\n')
			lines++;
	cap = lines + 1;
	if (cap > SECRETS_ENTRIES_MAX)
		cap = SECRETS_ENTRIES_MAX;
	if ((t->e = calloc(cap, sizeof(*t->e))) == NULL) {
		snprintf(err, errlen, "%s: out of memory", t->path);
		return -1;
	}
	while (p < end) {
		line++;
		nl = memchr(p, '\n', (size_t)(end - p));
		l = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		if (l > 0 && p[l - 1] == '\r')
			l--;
		if (l > SECRETS_LINE_MAX) {
			snprintf(err, errlen, "%s:%u: line longer than %d "
			    "bytes", t->path, line, SECRETS_LINE_MAX);
			return -1;
		}
		if (memchr(p, '\0', l) != NULL) {
			snprintf(err, errlen, "%s:%u: NUL byte", t->path, line);
			return -1;
		}
		if (l > 0 && p[0] != '#' && t->n == cap) {
			snprintf(err, errlen, "%s:%u: more than %d users",
			    t->path, line, SECRETS_ENTRIES_MAX);
			return -1;
		}
		if (l > 0 && p[0] != '#' &&
		    parse_line(t, p, l, line, err, errlen) == -1)
			return -1;
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	qsort(t->e, t->n, sizeof(*t->e), entry_cmp);
	for (i = 1; i < t->n; i++)
		if (strcmp(t->e[i - 1].user, t->e[i].user) == 0) {
			snprintf(err, errlen, "%s:%u: user already defined on "
			    "line %u", t->path, t->e[i].line, t->e[i - 1].line);
			return -1;
		}
	return 0;
}

/* A yescrypt setting to hash against when no entry has a crypt(3) hash. */
static int
dummy_init(struct secrets *t, char *err, size_t errlen)
{
	unsigned char rnd[16];

	if (gnutls_rnd(GNUTLS_RND_NONCE, rnd, sizeof(rnd)) != 0 ||
	    crypt_gensalt_rn("$y$", 0, (const char *)rnd, (int)sizeof(rnd),
	    t->dummy_setting, (int)sizeof(t->dummy_setting)) == NULL) {
		snprintf(err, errlen, "%s: cannot make a yescrypt setting",
		    t->path);
		return -1;
	}
	t->dummy_crypt = t->dummy_setting;
	return 0;
}

static void
table_free(struct secrets *t)
{
	size_t i;

	if (t->e != NULL) {
		for (i = 0; i < t->n; i++) {
			str_wipe(t->e[i].value, t->e[i].vlen);
			free(t->e[i].user);
		}
		free(t->e);
	}
	/* The static remote table's count never reaches zero. */
	free(t);	/* NOLINT(clang-analyzer-unix.Malloc) */
}

struct secrets *
secrets_load(const char *path, char *err, size_t errlen)
{
	struct secrets *t;
	char *buf;
	size_t len;
	int r;

	if ((t = calloc(1, sizeof(*t))) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	t->refs = 1;
	if (str_lcpy(t->path, path, sizeof(t->path)) >= sizeof(t->path)) {
		snprintf(err, errlen, "%.100s...: path too long", path);
		free(t);
		return NULL;
	}
	if (read_file(path, &t->id, &buf, &len, err, errlen) == -1) {
		free(t);
		return NULL;
	}
	r = parse(t, buf, len, err, errlen);
	str_wipe(buf, len);
	free(buf);
	if (r == 0 && t->dummy_crypt == NULL)
		r = dummy_init(t, err, errlen);
	if (r == -1) {
		table_free(t);
		return NULL;
	}
	return t;
}

struct secrets *
secrets_ref(struct secrets *t)
{
	refcnt_take(&t->refs);
	return t;
}

void
secrets_unref(struct secrets **tp)
{
	struct secrets *t = *tp;

	if (t == NULL)
		return;
	*tp = NULL;
	if (refcnt_drop(&t->refs))
		table_free(t);
}

const char *
secrets_path(const struct secrets *t)
{
	return t->path;
}

size_t
secrets_count(const struct secrets *t)
{
	return t->n;
}

int
secrets_changed(const struct secrets *t)
{
	struct stat st;
	struct fileid id;

	if (stat(t->path, &st) == -1)
		return 1;
	fileid_of(&st, &id);
	return !fileid_eq(&id, &t->id);
}

static const struct entry *
find(const struct secrets *t, const char *user)
{
	if (user == NULL || t->n == 0)
		return NULL;
	return bsearch(user, t->e, t->n, sizeof(*t->e), key_cmp);
}

/*
 * Compares digests rather than the strings: the time taken then says
 * nothing about where they differ, nor about the stored length.
 */
static enum secrets_status
check_plain(const char *stored, size_t slen, const void *pass, size_t plen)
{
	unsigned char a[32], b[32];
	enum secrets_status st = SECRETS_TEMPFAIL;

	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, stored, slen, a) == 0 &&
	    gnutls_hash_fast(GNUTLS_DIG_SHA256, pass, plen, b) == 0)
		st = gnutls_memcmp(a, b, sizeof(a)) == 0 ? SECRETS_OK :
		    SECRETS_FAIL;
	str_wipe(a, sizeof(a));
	str_wipe(b, sizeof(b));
	return st;
}

/*
 * Bounds how many crypt_r() calls run at once: yescrypt takes 16 MB and
 * real CPU time, and a burst of AUTH attempts must not take the host down.
 */
static pthread_mutex_t	gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	gate_cv;
static pthread_once_t	gate_once = PTHREAD_ONCE_INIT;
static unsigned int	gate_busy;

static void
gate_init(void)
{
	pthread_condattr_t a;

	/* A monotonic clock, so a clock step cannot stretch the wait. */
	if (pthread_condattr_init(&a) == 0) {
		(void)pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
		(void)pthread_cond_init(&gate_cv, &a);
		(void)pthread_condattr_destroy(&a);
	} else
		(void)pthread_cond_init(&gate_cv, NULL);
}

/* 0 when it is our turn, -1 after SECRETS_HASH_WAIT seconds. */
static int
gate_enter(void)
{
	struct timespec dl;
	int r = 0;

	(void)pthread_once(&gate_once, gate_init);
	(void)clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += SECRETS_HASH_WAIT;
	pthread_mutex_lock(&gate_mu);
	while (gate_busy >= SECRETS_HASH_CONCURRENCY && r == 0)
		r = pthread_cond_timedwait(&gate_cv, &gate_mu, &dl);
	if (gate_busy < SECRETS_HASH_CONCURRENCY) {
		gate_busy++;
		r = 0;
	} else
		r = -1;
	pthread_mutex_unlock(&gate_mu);
	return r;
}

static void
gate_leave(void)
{
	pthread_mutex_lock(&gate_mu);
	gate_busy--;
	pthread_cond_signal(&gate_cv);
	pthread_mutex_unlock(&gate_mu);
}

static unsigned long	hash_calls;

unsigned long
secrets_hash_calls(void)
{
	return __atomic_load_n(&hash_calls, __ATOMIC_RELAXED);
}

static enum secrets_status
check_crypt(const char *stored, const void *pass, size_t plen)
{
	struct crypt_data *cd;
	char pw[SECRETS_PASS_MAX + 1];
	const char *out;
	size_t slen = strlen(stored);
	enum secrets_status st = SECRETS_TEMPFAIL;
	int toolong = 0;

	if (plen > SECRETS_PASS_MAX)
		return SECRETS_FAIL;
	/*
	 * libcrypt refuses longer passphrases, so no stored hash can match
	 * one; hash a prefix all the same, so that it costs the usual time.
	 */
	if (plen >= CRYPT_MAX_PASSPHRASE_SIZE) {
		plen = CRYPT_MAX_PASSPHRASE_SIZE - 1;
		toolong = 1;
	}
	/* 32 KB: too much for a worker thread's small stack. */
	if ((cd = calloc(1, sizeof(*cd))) == NULL)
		return SECRETS_TEMPFAIL;
	if (gate_enter() == -1) {
		free(cd);
		return SECRETS_TEMPFAIL;
	}
	memcpy(pw, pass, plen);
	pw[plen] = '\0';
	out = crypt_r(pw, stored, cd);
	gate_leave();
	__atomic_add_fetch(&hash_calls, 1, __ATOMIC_RELAXED);
	/* libcrypt's failure tokens start with '*'; the hash is unusable. */
	if (out != NULL && out[0] != '*')
		st = !toolong && strlen(out) == slen && gnutls_memcmp(out,
		    stored, slen) == 0 ? SECRETS_OK : SECRETS_FAIL;
	str_wipe(pw, sizeof(pw));
	str_wipe(cd, sizeof(*cd));
	free(cd);
	return st;
}

enum secrets_status
secrets_verify(const struct secrets *t, const char *user, const void *pass,
    size_t passlen)
{
	const struct entry *e;
	enum secrets_status st, dst;
	int bad_input;

	if (t == NULL)
		return SECRETS_TEMPFAIL;
	if (t->remote != NULL)
		return t->remote->verify(user, pass, passlen);
	/* A NUL cannot be in any secret (RFC 4616 forbids it in PLAIN). */
	bad_input = passlen > SECRETS_PASS_MAX ||
	    memchr(pass, '\0', passlen) != NULL;
	if (bad_input)
		passlen = 0;
	/*
	 * One crypt(3) hash whoever the user is: without it a {PLAIN}
	 * account or an unknown user answers measurably sooner than a
	 * {CRYPT} account.  A dummy that cannot run now (too many hashes
	 * at once) is a temporary failure, as the real one would be.
	 */
	e = find(t, user);
	if (e == NULL || e->scheme == SCHEME_PLAIN) {
		dst = check_crypt(t->dummy_crypt, pass, passlen);
		if (dst == SECRETS_TEMPFAIL)
			return SECRETS_TEMPFAIL;
		if (e == NULL)
			return SECRETS_FAIL;
		st = check_plain(e->value, e->vlen, pass, passlen);
	} else
		st = check_crypt(e->value, pass, passlen);
	return bad_input && st == SECRETS_OK ? SECRETS_FAIL : st;
}

enum secrets_status
secrets_verify_cram(const struct secrets *t, const char *user,
    const void *challenge, size_t chlen, const unsigned char digest[16])
{
	static const char dummy[] = "no clear secret: for timing only";
	const struct entry *e;
	const char *key = dummy;
	size_t klen = sizeof(dummy) - 1;
	unsigned char mac[16];
	int ok, usable;

	if (t == NULL)
		return SECRETS_TEMPFAIL;
	if (t->remote != NULL)
		return t->remote->verify_cram(user, challenge, chlen, digest);
	e = find(t, user);
	usable = e != NULL && e->scheme == SCHEME_PLAIN;
	if (usable) {
		key = e->value;
		klen = e->vlen;
	}
	if (gnutls_hmac_fast(GNUTLS_MAC_MD5, key, klen, challenge, chlen,
	    mac) != 0)
		return SECRETS_TEMPFAIL;
	ok = gnutls_memcmp(mac, digest, sizeof(mac)) == 0;
	str_wipe(mac, sizeof(mac));
	if (e != NULL && !usable)
		return SECRETS_NO_CLEAR;
	return usable && ok ? SECRETS_OK : SECRETS_FAIL;
}

int
secrets_any_clear(const struct secrets *t)
{
	if (t != NULL && t->remote != NULL)
		return t->remote->any_clear();
	return t != NULL && t->any_clear;
}

int
secrets_get_clear(const struct secrets *t, const char *user, char *buf,
    size_t len, size_t *lenp)
{
	const struct entry *e;

	if (t == NULL || t->remote != NULL || (e = find(t, user)) == NULL ||
	    e->scheme != SCHEME_PLAIN)
		return 0;
	if (e->vlen + 1 > len)
		return -1;
	memcpy(buf, e->value, e->vlen);
	buf[e->vlen] = '\0';
	if (lenp != NULL)
		*lenp = e->vlen;
	return 1;
}

int
secrets_crypt_line(const char *user, const char *pass, char *buf, size_t len,
    char *err, size_t errlen)
{
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	unsigned char rnd[16];		/* yescrypt's gensalt wants >= 16 */
	struct crypt_data *cd;
	const char *out;
	size_t plen;
	int r = -1;

	if (secrets_check_user(user) == -1) {
		snprintf(err, errlen, "bad user name (1 to %d printable bytes, "
		    "no ':' or white space)", SECRETS_USER_MAX);
		return -1;
	}
	plen = strlen(pass);
	if (plen == 0 || plen > SECRETS_PASS_MAX) {
		snprintf(err, errlen, "the password must be 1 to %d bytes",
		    SECRETS_PASS_MAX);
		return -1;
	}
	if (gnutls_rnd(GNUTLS_RND_RANDOM, rnd, sizeof(rnd)) != 0) {
		snprintf(err, errlen, "no random bytes for the salt");
		return -1;
	}
	if (crypt_gensalt_rn("$y$", 0, (const char *)rnd, (int)sizeof(rnd),
	    setting, (int)sizeof(setting)) == NULL) {
		snprintf(err, errlen, "crypt_gensalt: %s", strerror(errno));
		str_wipe(rnd, sizeof(rnd));
		return -1;
	}
	str_wipe(rnd, sizeof(rnd));
	if ((cd = calloc(1, sizeof(*cd))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	out = crypt_r(pass, setting, cd);
	if (out == NULL || out[0] == '*')
		snprintf(err, errlen, "crypt: %s", strerror(errno));
	else if ((size_t)snprintf(buf, len, "%s:{CRYPT}%s", user, out) >= len)
		snprintf(err, errlen, "line buffer too small");
	else
		r = 0;
	str_wipe(cd, sizeof(*cd));
	free(cd);
	return r;
}

/* The installed table, and the file version that last failed to load. */
static pthread_mutex_t	 cur_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t	 reload_mu = PTHREAD_MUTEX_INITIALIZER;
static struct secrets	*cur;
static char		 failed_path[PATH_MAX];
static struct fileid	 failed_id;
/* The stand-in for another process's table; never freed. */
static struct secrets	 remote_table = { .refs = 1 << 30 };

void
secrets_set_remote(const struct secrets_remote *r)
{
	str_lcpy(remote_table.path, "(remote)", sizeof(remote_table.path));
	__atomic_store_n(&remote_table.remote, r, __ATOMIC_RELEASE);
}

struct secrets *
secrets_current(void)
{
	struct secrets *t;
	const struct secrets_remote *r;

	if ((r = __atomic_load_n(&remote_table.remote,
	    __ATOMIC_ACQUIRE)) != NULL)
		return r->available() ? secrets_ref(&remote_table) : NULL;
	pthread_mutex_lock(&cur_mu);
	t = cur != NULL ? secrets_ref(cur) : NULL;
	pthread_mutex_unlock(&cur_mu);
	return t;
}

void
secrets_install(struct secrets *t)
{
	struct secrets *old;

	pthread_mutex_lock(&cur_mu);
	old = cur;
	cur = t;
	pthread_mutex_unlock(&cur_mu);
	secrets_unref(&old);
}

int
secrets_reload(const char *path, const struct secrets *have,
    struct secrets **out, char *err, size_t errlen)
{
	struct stat st;
	struct fileid id;
	int r = 0;

	*out = NULL;
	/* The other process reloads its own table. */
	if (__atomic_load_n(&remote_table.remote, __ATOMIC_ACQUIRE) != NULL)
		return 0;
	/* One reload at a time; the others go on with the table they have. */
	if (pthread_mutex_trylock(&reload_mu) != 0)
		return 0;
	if (have != NULL && strcmp(have->path, path) == 0 &&
	    !secrets_changed(have))
		goto out;
	/* A missing file has the all-zero identity. */
	if (stat(path, &st) == 0)
		fileid_of(&st, &id);
	else
		memset(&id, 0, sizeof(id));
	if (strcmp(failed_path, path) == 0 && fileid_eq(&id, &failed_id))
		goto out;	/* reported already */
	if ((*out = secrets_load(path, err, errlen)) == NULL) {
		str_lcpy(failed_path, path, sizeof(failed_path));
		failed_id = id;
		r = -1;
		goto out;
	}
	failed_path[0] = '\0';
	r = 1;
out:
	pthread_mutex_unlock(&reload_mu);
	return r;
}

int
secrets_refresh(const char *path, char *err, size_t errlen)
{
	struct secrets *t, *n;
	int r;

	t = secrets_current();
	r = secrets_reload(path, t, &n, err, errlen);
	secrets_unref(&t);
	if (r == 1)
		secrets_install(n);
	return r;
}
