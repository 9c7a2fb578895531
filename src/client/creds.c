#include "config.h"

#include <sys/types.h>
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "creds.h"
#include "lib/spawn.h"
#include "lib/str.h"

#define CREDS_FILE_MAX		(1024 * 1024)
#define CREDS_TOKENS_MAX	32
#define CREDS_NAME_MAX		256

extern char **environ;

static int	creds_home(char *, size_t);
static int	creds_read_file(const char *, int, struct str *, int *,
		    char *, size_t);
static int	creds_tokenize(const char *, char *, size_t, char **, int);
static enum creds_status creds_scan(const char *, int,
		    int (*)(const char *, void *, struct creds *), void *,
		    struct creds *, const char *, char *, size_t);
static int	creds_query_match(const char *, void *, struct creds *);
static int	creds_label_line(const char *, void *, struct creds *);
static enum creds_status creds_from_keyfile(const struct creds_query *,
		    struct creds *, char *, size_t);
static enum creds_status creds_from_netrc(const struct creds_query *,
		    struct creds *, char *, size_t);
static enum creds_status creds_from_command(const struct creds_query *,
		    struct creds *, char *, size_t);

void
creds_wipe(struct creds *c)
{
	str_wipe(c->secret, sizeof(c->secret));
	c->is_token = 0;
}

static int
creds_home(char *buf, size_t len)
{
	const char *h = getenv("HOME");
	struct passwd *pw;

	if (h == NULL || *h == '\0') {
		if ((pw = getpwuid(getuid())) == NULL)
			return -1;
		h = pw->pw_dir;
	}
	return str_lcpy(buf, h, len) >= len ? -1 : 0;
}

int
creds_default_keyfile(char *buf, size_t len)
{
	const char *e;
	char home[1024];
	int r;

	if ((e = getenv("SMTP_KEYFILE")) != NULL && *e != '\0')
		return str_lcpy(buf, e, len) >= len ? -1 : 0;
	if ((e = getenv("XDG_CONFIG_HOME")) != NULL && *e == '/')
		r = snprintf(buf, len, "%s/smtp/keys", e);
	else {
		if (creds_home(home, sizeof(home)) == -1)
			return -1;
		r = snprintf(buf, len, "%s/.config/smtp/keys", home);
	}
	return r < 0 || (size_t)r >= len ? -1 : 0;
}

int
creds_default_netrc(char *buf, size_t len)
{
	const char *e;
	char home[1024];
	int r;

	if ((e = getenv("NETRC")) != NULL && *e != '\0')
		return str_lcpy(buf, e, len) >= len ? -1 : 0;
	if (creds_home(home, sizeof(home)) == -1)
		return -1;
	r = snprintf(buf, len, "%s/.netrc", home);
	return r < 0 || (size_t)r >= len ? -1 : 0;
}

/*
 * Reads a whole (small) file.  1 read, 0 it does not exist, -1 error.
 * private: refuse it if group or others may read it.  *loose gets whether
 * they may.
 */
static int
creds_read_file(const char *path, int private, struct str *out, int *loose,
    char *err, size_t errlen)
{
	struct stat sb;
	int fd, rc, e;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		close(fd);
		return -1;
	}
	*loose = (sb.st_mode & 077) != 0;
	if (private && *loose) {
		snprintf(err, errlen, "%s: group or others may read it; "
		    "refusing to use it (chmod 600)", path);
		close(fd);
		return -1;
	}
	rc = str_read_fd(out, fd);
	e = errno;
	close(fd);
	if (rc == -2)
		snprintf(err, errlen, "%s: too large", path);
	else if (rc == -1)
		snprintf(err, errlen, "%s: %s", path, strerror(e));
	return rc == 0 ? 1 : -1;
}

/*
 * Splits a key line into words (rc quoting: 'a b', '' is a quote) stored
 * in buf.  Returns the number of words, -1 on a syntax error.
 */
static int
creds_tokenize(const char *s, char *buf, size_t buflen, char **words, int max)
{
	size_t o = 0;
	int n = 0, inq;

	for (;;) {
		while (*s == ' ' || *s == '\t' || *s == '\r')
			s++;
		if (*s == '\0' || *s == '\n' || *s == '#')
			return n;
		if (n == max)
			return -1;
		words[n++] = buf + o;
		inq = 0;
		while (*s != '\0' && *s != '\n' && (inq || (*s != ' ' &&
		    *s != '\t' && *s != '\r'))) {
			if (*s == '\'') {
				if (inq && s[1] == '\'') {
					s++;	/* '' inside quotes */
				} else {
					inq = !inq;
					s++;
					continue;
				}
			}
			if (o + 2 > buflen)
				return -1;
			buf[o++] = *s++;
		}
		if (inq)
			return -1;
		buf[o++] = '\0';
	}
}

/* The attributes of one key file line that lookups use. */
struct key_attrs {
	const char	*proto, *service, *server, *user, *label, *secret;
	int		 token;		/* the secret is a !token */
};

/*
 * Splits line (into buf) and finds its attributes: 1, or 0 for a line
 * with no words (blank or a comment), -1 when it does not split or names
 * one of these attributes twice (which would make a match ambiguous).
 * Attributes without "=" (booleans) and others are skipped.
 */
static int
key_attrs(const char *line, char *buf, size_t buflen, struct key_attrs *a)
{
	static const struct {
		const char	*name;
		size_t		 off;
	} known[] = {
		{ "proto", offsetof(struct key_attrs, proto) },
		{ "service", offsetof(struct key_attrs, service) },
		{ "server", offsetof(struct key_attrs, server) },
		{ "user", offsetof(struct key_attrs, user) },
		{ "label", offsetof(struct key_attrs, label) },
		{ "!password", offsetof(struct key_attrs, secret) },
		{ "!token", offsetof(struct key_attrs, secret) },
	};
	char *w[CREDS_TOKENS_MAX], *eq;
	const char **slot;
	size_t k;
	int n, i;

	memset(a, 0, sizeof(*a));
	if ((n = creds_tokenize(line, buf, buflen, w, CREDS_TOKENS_MAX)) == -1)
		return -1;
	i = n > 0 && strcmp(w[0], "key") == 0;
	if (i == n)
		return 0;
	for (; i < n; i++) {
		if ((eq = strchr(w[i], '=')) == NULL)
			continue;	/* a boolean attribute */
		*eq++ = '\0';
		for (k = 0; k < sizeof(known) / sizeof(known[0]); k++)
			if (strcmp(w[i], known[k].name) == 0)
				break;
		if (k == sizeof(known) / sizeof(known[0]))
			continue;
		slot = (const char **)(void *)((char *)a + known[k].off);
		if (*slot != NULL)
			return -1;
		*slot = eq;
		if (strcmp(w[i], "!token") == 0)
			a->token = 1;
	}
	return 1;
}

/* proto= of a key we can use: a password, or an OAuth 2 token. */
static int
usable_proto(const char *proto)
{
	return strcmp(proto, "pass") == 0 || strcmp(proto, "oauth2") == 0 ||
	    strcmp(proto, "xoauth2") == 0;
}

/* 1 if the key is for q's service and server (either left out: any). */
static int
key_for(const struct key_attrs *a, const struct creds_query *q)
{
	return (a->service == NULL ||
	    strcasecmp(a->service, q->service) == 0) &&
	    (a->server == NULL || str_host_eq(a->server, q->server));
}

int
creds_key_match(const char *line, const struct creds_query *q,
    struct creds *c)
{
	char buf[CREDS_LINE_MAX];
	struct key_attrs a;
	int r;

	if ((r = key_attrs(line, buf, sizeof(buf), &a)) != 1)
		goto out;
	if (!key_for(&a, q) || (a.user != NULL && (q->user == NULL ||
	    strcmp(a.user, q->user) != 0)))
		r = 0;
	else if (a.proto == NULL)
		r = -1;
	else if (!usable_proto(a.proto))
		r = 0;	/* a key for something else */
	else if (a.secret == NULL || *a.secret == '\0')
		r = -1;
	else if (str_lcpy(c->secret, a.secret, sizeof(c->secret)) >=
	    sizeof(c->secret))
		r = -1;
	else {
		c->is_token = a.token || strcmp(a.proto, "pass") != 0;
		r = 1;
	}
out:
	str_wipe(buf, sizeof(buf));
	return r;
}

int
creds_key_user(const char *line, const struct creds_query *q, char *user,
    size_t userlen)
{
	char buf[CREDS_LINE_MAX];
	struct key_attrs a;
	int r;

	if ((r = key_attrs(line, buf, sizeof(buf), &a)) != 1)
		goto out;
	if (!key_for(&a, q))
		r = 0;
	else if (a.proto == NULL)
		r = -1;
	else if (!usable_proto(a.proto))
		r = 0;
	else if (a.secret == NULL || *a.secret == '\0' ||
	    str_lcpy(user, a.user != NULL ? a.user : "", userlen) >= userlen)
		r = -1;
	else
		r = 1;
out:
	str_wipe(buf, sizeof(buf));
	return r;
}

/* Skips a netrc macro definition: it runs to the next empty line. */
static void
netrc_skip_macdef(const char **pp, const char *end)
{
	const char *p = *pp, *nl;

	for (;;) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL) {
			p = end;
			break;
		}
		p = nl + 1;
		if (p < end && *p == '\n')
			break;
	}
	*pp = p;
}

/* The next netrc word: 1 (copied into buf, maybe cut), 0 at the end. */
static int
creds_netrc_word(const char **pp, const char *end, char *buf, size_t len)
{
	const char *p = *pp;
	size_t o = 0;

	while (p < end && isspace((unsigned char)*p))
		p++;
	if (p == end) {
		*pp = p;
		return 0;
	}
	if (*p == '"') {
		for (p++; p < end && *p != '"'; p++) {
			if (*p == '\\' && p + 1 < end)
				p++;
			if (o + 1 < len)
				buf[o++] = *p;
		}
		if (p < end)
			p++;
	} else
		for (; p < end && !isspace((unsigned char)*p); p++)
			if (o + 1 < len)
				buf[o++] = *p;
	buf[o] = '\0';
	*pp = p;
	return 1;
}

int
creds_netrc_find(const char *text, size_t len, const char *host,
    const char *user, char *pw, size_t pwlen)
{
	const char *p = text, *end = text + len;
	char word[CREDS_SECRET_MAX], machine[CREDS_NAME_MAX];
	char login[CREDS_NAME_MAX], pass[CREDS_SECRET_MAX];
	int inentry = 0, isdefault = 0, havepass = 0, havelogin = 0, r = 0;
	int more;

	do {
		more = creds_netrc_word(&p, end, word, sizeof(word));
		if (!more || strcmp(word, "machine") == 0 ||
		    strcmp(word, "default") == 0) {
			/* The previous entry is complete: does it fit? */
			if (inentry && havepass && (!havelogin ||
			    (user != NULL && strcmp(login, user) == 0)) &&
			    (isdefault || str_host_eq(machine, host))) {
				r = str_lcpy(pw, pass, pwlen) < pwlen ? 1 : -1;
				break;
			}
			if (!more)
				break;
			inentry = 1;
			havepass = havelogin = 0;
			isdefault = strcmp(word, "default") == 0;
			machine[0] = '\0';
			if (!isdefault && !creds_netrc_word(&p, end, machine,
			    sizeof(machine)))
				break;
		} else if (strcmp(word, "login") == 0) {
			havelogin = creds_netrc_word(&p, end, login,
			    sizeof(login));
		} else if (strcmp(word, "password") == 0) {
			havepass = creds_netrc_word(&p, end, pass,
			    sizeof(pass));
		} else if (strcmp(word, "account") == 0) {
			(void)creds_netrc_word(&p, end, word, sizeof(word));
		} else if (strcmp(word, "macdef") == 0)
			netrc_skip_macdef(&p, end);
	} while (more);
	str_wipe(word, sizeof(word));
	str_wipe(pass, sizeof(pass));
	return r;
}

int
creds_netrc_login(const char *text, size_t len, const char *host,
    char *login, size_t loginlen)
{
	const char *p = text, *end = text + len;
	char word[CREDS_SECRET_MAX], machine[CREDS_NAME_MAX];
	char deflogin[CREDS_NAME_MAX];
	int isdefault = 0, mine = 0, havedef = 0, r = 0;

	deflogin[0] = '\0';
	while (creds_netrc_word(&p, end, word, sizeof(word))) {
		if (strcmp(word, "machine") == 0) {
			isdefault = 0;
			if (!creds_netrc_word(&p, end, machine,
			    sizeof(machine)))
				break;
			mine = str_host_eq(machine, host);
		} else if (strcmp(word, "default") == 0) {
			isdefault = 1;
			mine = 0;
		} else if (strcmp(word, "login") == 0) {
			if (!creds_netrc_word(&p, end, word, sizeof(word)))
				break;
			if (mine) {
				r = str_lcpy(login, word, loginlen) < loginlen ?
				    1 : -1;
				break;
			}
			if (isdefault && !havedef) {
				havedef = str_lcpy(deflogin, word,
				    sizeof(deflogin)) < sizeof(deflogin) ?
				    1 : -1;
			}
		} else if (strcmp(word, "password") == 0 ||
		    strcmp(word, "account") == 0) {
			(void)creds_netrc_word(&p, end, word, sizeof(word));
		} else if (strcmp(word, "macdef") == 0)
			netrc_skip_macdef(&p, end);
	}
	if (r == 0 && havedef != 0)
		r = havedef == 1 && str_lcpy(login, deflogin, loginlen) <
		    loginlen ? 1 : -1;
	str_wipe(word, sizeof(word));
	return r;
}

/*
 * Runs match over each line of the key file path until one matches (1) or
 * is bad (-1; bad says what a key should look like).  A missing file is
 * CREDS_NOTFOUND, or CREDS_ERROR when must_exist.
 */
static enum creds_status
creds_scan(const char *path, int must_exist,
    int (*match)(const char *, void *, struct creds *), void *arg,
    struct creds *c, const char *bad, char *err, size_t errlen)
{
	struct str file;
	const char *p, *nl, *end;
	char line[CREDS_LINE_MAX];
	size_t n;
	int r, loose, lineno = 0;
	enum creds_status st = CREDS_NOTFOUND;

	str_init(&file, CREDS_FILE_MAX);
	r = creds_read_file(path, 1, &file, &loose, err, errlen);
	if (r <= 0) {
		str_free(&file);
		if (r == 0 && must_exist) {
			snprintf(err, errlen, "%s: %s", path, strerror(ENOENT));
			return CREDS_ERROR;
		}
		return r == 0 ? CREDS_NOTFOUND : CREDS_ERROR;
	}
	p = str_cstr(&file);
	end = p + file.len;
	while (p < end && st == CREDS_NOTFOUND) {
		lineno++;
		nl = memchr(p, '\n', (size_t)(end - p));
		n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		if (n >= sizeof(line)) {
			snprintf(err, errlen, "%s:%d: line too long", path,
			    lineno);
			st = CREDS_ERROR;
			break;
		}
		memcpy(line, p, n);
		line[n] = '\0';
		r = match(line, arg, c);
		if (r == 1) {
			st = CREDS_OK;
			snprintf(c->source, sizeof(c->source), "key file");
		} else if (r == -1) {
			snprintf(err, errlen, "%s:%d: bad key (want %s)", path,
			    lineno, bad);
			st = CREDS_ERROR;
		}
		p += n + (nl != NULL);
	}
	str_wipe(line, sizeof(line));
	if (file.s != NULL)
		str_wipe(file.s, file.len);
	str_free(&file);
	return st;
}

static int
creds_query_match(const char *line, void *arg, struct creds *c)
{
	return creds_key_match(line, arg, c);
}

static enum creds_status
creds_from_keyfile(const struct creds_query *q, struct creds *c, char *err,
    size_t errlen)
{
	return creds_scan(q->keyfile, 0, creds_query_match, (void *)q, c,
	    "proto=pass ... !password=SECRET", err, errlen);
}

struct creds_label {
	const char	*label;
	char		*user;
	size_t		 userlen;
};

int
creds_label_match(const char *line, const char *label, char *user,
    size_t userlen, struct creds *c)
{
	char buf[CREDS_LINE_MAX];
	struct key_attrs a;
	int r;

	if ((r = key_attrs(line, buf, sizeof(buf), &a)) != 1)
		goto out;
	if (a.label == NULL || strcmp(a.label, label) != 0)
		r = 0;	/* another key: not ours to judge */
	else if (a.proto == NULL || !usable_proto(a.proto))
		r = -1;
	else if (a.user == NULL || *a.user == '\0' || a.secret == NULL ||
	    *a.secret == '\0')
		r = -1;
	else if (str_lcpy(user, a.user, userlen) >= userlen ||
	    str_lcpy(c->secret, a.secret, sizeof(c->secret)) >=
	    sizeof(c->secret)) {
		creds_wipe(c);
		r = -1;
	} else {
		c->is_token = a.token || strcmp(a.proto, "pass") != 0;
		r = 1;
	}
out:
	str_wipe(buf, sizeof(buf));
	return r;
}

static int
creds_label_line(const char *line, void *arg, struct creds *c)
{
	struct creds_label *l = arg;

	return creds_label_match(line, l->label, l->user, l->userlen, c);
}

enum creds_status
creds_label_lookup(const char *path, const char *label, char *user,
    size_t userlen, struct creds *c, char *err, size_t errlen)
{
	struct creds_label l = { label, user, userlen };

	/* Nothing of an earlier lookup may survive a failed one. */
	creds_wipe(c);
	user[0] = '\0';
	return creds_scan(path, 1, creds_label_line, &l, c,
	    "label=LABEL proto=pass user=USER !password=SECRET", err, errlen);
}

static enum creds_status
creds_from_netrc(const struct creds_query *q, struct creds *c, char *err,
    size_t errlen)
{
	struct str file;
	int r, loose;

	str_init(&file, CREDS_FILE_MAX);
	r = creds_read_file(q->netrc, 0, &file, &loose, err, errlen);
	if (r <= 0) {
		str_free(&file);
		return r == 0 ? CREDS_NOTFOUND : CREDS_ERROR;
	}
	r = creds_netrc_find(str_cstr(&file), file.len, q->server, q->user,
	    c->secret, sizeof(c->secret));
	if (file.s != NULL)
		str_wipe(file.s, file.len);
	str_free(&file);
	if (r == 1 && loose) {
		creds_wipe(c);
		snprintf(err, errlen, "%s: group or others may read it; "
		    "refusing to use its password (chmod 600)", q->netrc);
		return CREDS_ERROR;
	}
	if (r == -1) {
		snprintf(err, errlen, "%s: password too long", q->netrc);
		return CREDS_ERROR;
	}
	if (r == 0)
		return CREDS_NOTFOUND;
	c->is_token = 0;
	snprintf(c->source, sizeof(c->source), "netrc");
	return CREDS_OK;
}

/* Counts the keys for the query's server, keeping the first one's user. */
struct creds_keyusers {
	const struct creds_query *q;
	int		 n;
	char		 user[CREDS_NAME_MAX];
};

static int
creds_keyuser_line(const char *line, void *arg, struct creds *c)
{
	struct creds_keyusers *ku = arg;
	char u[CREDS_NAME_MAX];
	int r;

	(void)c;
	if ((r = creds_key_user(line, ku->q, u, sizeof(u))) != 1)
		return r;
	if (ku->n++ == 0)
		str_lcpy(ku->user, u, sizeof(ku->user));
	return 0;	/* on to the next line: every key counts */
}

enum creds_status
creds_find_user(const struct creds_query *q, char *user, size_t userlen,
    const char **from, char *err, size_t errlen)
{
	struct creds_keyusers ku;
	struct creds scratch;
	struct str file;
	enum creds_status st;
	int r, loose;

	if (errlen > 0)
		err[0] = '\0';
	if (q->keyfile != NULL) {
		memset(&ku, 0, sizeof(ku));
		ku.q = q;
		st = creds_scan(q->keyfile, 0, creds_keyuser_line, &ku,
		    &scratch, "proto=pass ... !password=SECRET", err, errlen);
		if (st == CREDS_ERROR)
			return st;
		if (ku.n == 1 && ku.user[0] != '\0') {
			if (str_lcpy(user, ku.user, userlen) >= userlen) {
				snprintf(err, errlen, "%s: user too long",
				    q->keyfile);
				return CREDS_ERROR;
			}
			*from = "key file";
			return CREDS_OK;
		}
	}
	if (q->netrc == NULL)
		return CREDS_NOTFOUND;
	str_init(&file, CREDS_FILE_MAX);
	r = creds_read_file(q->netrc, 0, &file, &loose, err, errlen);
	if (r == 1)
		r = creds_netrc_login(str_cstr(&file), file.len, q->server,
		    user, userlen);
	if (file.s != NULL)
		str_wipe(file.s, file.len);
	str_free(&file);
	if (r == -1 && err[0] == '\0')
		snprintf(err, errlen, "%s: login too long", q->netrc);
	if (r == -1)
		return CREDS_ERROR;
	if (r == 0)
		return CREDS_NOTFOUND;
	*from = "netrc";
	return CREDS_OK;
}

static enum creds_status
creds_from_command(const struct creds_query *q, struct creds *c, char *err,
    size_t errlen)
{
	char *argv[4], **envp = NULL, *srv = NULL, *usr = NULL, *nl;
	char buf[CREDS_SECRET_MAX + 2], serr[256];
	struct spawn_opts opts;
	struct spawn_result res;
	size_t nenv = 0, i, off;

	/* Everything the child needs is built before fork (threads). */
	while (environ != NULL && environ[nenv] != NULL)
		nenv++;
	if ((envp = calloc(nenv + 3, sizeof(*envp))) == NULL ||
	    asprintf(&srv, "SMTP_SERVER=%s", q->server) == -1) {
		free(envp);
		snprintf(err, errlen, "out of memory");
		return CREDS_ERROR;
	}
	if (asprintf(&usr, "SMTP_USER=%s", q->user ? q->user : "") == -1) {
		free(srv);
		free(envp);
		snprintf(err, errlen, "out of memory");
		return CREDS_ERROR;
	}
	for (i = 0; i < nenv; i++)
		envp[i] = environ[i];
	envp[nenv] = srv;
	envp[nenv + 1] = usr;
	argv[0] = "/bin/sh";
	argv[1] = "-c";
	argv[2] = (char *)q->command;
	argv[3] = NULL;

	memset(&opts, 0, sizeof(opts));
	/* At least a second: 0 would mean spawn's default. */
	opts.timeout = q->command_timeout > 0 ? q->command_timeout : 1;
	opts.envp = envp;
	opts.out = buf;
	opts.outlen = sizeof(buf);
	/* A relative path in the command means the caller's directory. */
	opts.dir = ".";
	buf[0] = '\0';
	if (spawn_run(argv, -1, NULL, NULL, &opts, &res, serr,
	    sizeof(serr)) == -1) {
		snprintf(err, errlen, "password command: %s", serr);
		goto fail;
	}
	/* Only the first line counts. */
	off = res.outlen;
	if ((nl = memchr(buf, '\n', off)) != NULL)
		*nl = '\0';
	off = strlen(buf);
	if (off > 0 && buf[off - 1] == '\r')
		buf[--off] = '\0';
	if (res.timed_out) {
		snprintf(err, errlen, "password command timed out after %u s",
		    q->command_timeout);
		goto fail;
	}
	if (res.status != 0) {
		if (res.status > 0)
			snprintf(err, errlen, "password command exited with "
			    "status %d%s%s", res.status, res.errline[0] ?
			    ": " : "", res.errline);
		else
			snprintf(err, errlen, "password command killed by "
			    "signal %d", res.signal);
		goto fail;
	}
	if (off == 0) {
		snprintf(err, errlen, "password command printed nothing");
		goto fail;
	}
	if (str_lcpy(c->secret, buf, sizeof(c->secret)) >= sizeof(c->secret)) {
		snprintf(err, errlen, "password command: secret too long");
		goto fail;
	}
	str_wipe(buf, sizeof(buf));
	c->is_token = q->command_token;
	snprintf(c->source, sizeof(c->source), "password command");
	free(srv);
	free(usr);
	free(envp);
	return CREDS_OK;
fail:
	str_wipe(buf, sizeof(buf));
	creds_wipe(c);
	free(srv);
	free(usr);
	free(envp);
	return CREDS_ERROR;
}

enum creds_status
creds_lookup(const struct creds_query *q, struct creds *c, char *err,
    size_t errlen)
{
	enum creds_status st;

	memset(c, 0, sizeof(*c));
	if (errlen > 0)
		err[0] = '\0';
	if (q->keyfile != NULL &&
	    (st = creds_from_keyfile(q, c, err, errlen)) != CREDS_NOTFOUND)
		return st;
	if (q->netrc != NULL &&
	    (st = creds_from_netrc(q, c, err, errlen)) != CREDS_NOTFOUND)
		return st;
	if (q->command != NULL)
		return creds_from_command(q, c, err, errlen);
	return CREDS_NOTFOUND;
}
