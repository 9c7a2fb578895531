/*
 * The maildir agent: one file per recipient in the Maildir named by the
 * route's path template, written to tmp/, flushed, then linked into new/
 * (the usual Maildir rules).  The spool's CRLF line ends become LF, and
 * Return-Path: and Delivered-To: are added on top.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "lib/addr.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/str.h"
#include "agent.h"

#define MD_BUF		65536
#define MD_HDR_MAX	65536	/* header bytes searched for Delivered-To */
#define MD_TRIES	5

static void	*md_open(const struct route *, const char *,
		    const struct queue_conf *, struct agent_result *);
static int	 md_deliver(void *, const struct route *,
		    const struct agent_msg *, struct agent_rcpt *, size_t);
static void	 md_close(void **);

const struct agent_ops agent_maildir_ops = {
	"maildir", md_open, md_deliver, md_close
};

static unsigned long	md_seq;

static void *
md_open(const struct route *r, const char *dest,
    const struct queue_conf *qc, struct agent_result *res)
{
	/* Nothing to connect to; any non-NULL pointer will do. */
	return (void *)&agent_maildir_ops;
}

static void
md_close(void **sessp)
{
	*sessp = NULL;
}

/* "local@domain" into a usable local part and a domain, lower case. */
static int
md_split(const struct queue_conf *qc, const char *mailbox, char *local,
    size_t llen, char *domain, size_t dlen)
{
	const char *at = strrchr(mailbox, '@');
	size_t n, i;

	n = at ? (size_t)(at - mailbox) : strlen(mailbox);
	if (n == 0 || n >= llen)
		return -1;
	memcpy(local, mailbox, n);
	local[n] = '\0';
	if (str_lcpy(domain, at ? at + 1 : qc->hostname, dlen) >= dlen)
		return -1;
	/* It becomes a directory name: no paths, no hidden names, no quotes. */
	if (local[0] == '.' || local[0] == '"')
		return -1;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)local[i];

		if (c < 0x21 || c == 0x7f || c == '/' || c == '\\')
			return -1;
		local[i] = (char)tolower(c);
	}
	if (domain[0] == '.' || domain[0] == '\0' || strchr(domain, '/'))
		return -1;
	for (i = 0; domain[i] != '\0'; i++)
		domain[i] = (char)tolower((unsigned char)domain[i]);
	return 0;
}

static int
md_expand(const char *tmpl, const char *local, const char *domain,
    char *out, size_t len)
{
	struct str s;
	const char *p;
	int rc = 0;

	str_init(&s, len - 1);
	for (p = tmpl; *p != '\0' && rc == 0; p++) {
		if (*p != '%') {
			rc = str_appendc(&s, *p);
			continue;
		}
		p++;
		if (*p == 'u')
			rc = str_appends(&s, local);
		else if (*p == 'd')
			rc = str_appends(&s, domain);
		else if (*p == '%')
			rc = str_appendc(&s, '%');
		else
			rc = -1;
	}
	if (rc == 0)
		str_lcpy(out, str_cstr(&s), len);
	str_free(&s);
	return rc;
}

/* 1 if the header already has "Delivered-To: mailbox": a mail loop. */
static int
md_looped(const struct agent_msg *m, const char *mailbox)
{
	char *buf, *p, *end, *nl, *v;
	size_t mlen = strlen(mailbox), vl;
	ssize_t n;
	int found = 0;

	if ((buf = malloc(MD_HDR_MAX)) == NULL)
		return 0;
	n = pread(m->fd, buf, MD_HDR_MAX, m->env->body_off);
	if (n <= 0) {
		free(buf);
		return 0;
	}
	end = buf + n;
	for (p = buf; p < end; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			break;
		if (nl == p || (nl == p + 1 && *p == '\r'))
			break;	/* end of the header */
		if ((size_t)(nl - p) > 13 &&
		    strncasecmp(p, "Delivered-To:", 13) == 0) {
			v = p + 13;
			while (v < nl && (*v == ' ' || *v == '\t'))
				v++;
			vl = (size_t)(nl - v);
			while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == ' ' ||
			    v[vl - 1] == '\t'))
				vl--;
			if (vl == mlen && strncasecmp(v, mailbox, mlen) == 0) {
				found = 1;
				break;
			}
		}
	}
	free(buf);
	return found;
}

/* The host part of a Maildir name, with '/' and ':' encoded. */
static void
md_hostpart(const char *host, char *out, size_t len)
{
	struct str s;

	str_init(&s, len - 1);
	for (; *host != '\0'; host++) {
		if (*host == '/')
			(void)str_appends(&s, "\\057");
		else if (*host == ':')
			(void)str_appends(&s, "\\072");
		else
			(void)str_appendc(&s, *host);
	}
	str_lcpy(out, str_cstr(&s), len);
	str_free(&s);
}

static int
md_mkdir(const char *path, const struct route *r)
{
	if (mkdir(path, 0700) == -1) {
		if (errno == EEXIST)
			return 0;
		return -1;
	}
	if (r->has_owner && geteuid() == 0 &&
	    chown(path, r->owner.cred.uid, r->owner.cred.gid) == -1)
		return -1;
	return 0;
}

/* Makes dir/{tmp,new,cur} when the route allows. */
static int
md_prepare(const struct route *r, const char *dir, struct agent_result *res)
{
	char sub[PATH_MAX];
	struct stat st;
	const char *subs[3] = { "tmp", "new", "cur" };
	int i;

	if ((size_t)snprintf(sub, sizeof(sub), "%s/new", dir) >= sizeof(sub))
		goto toolong;
	if (stat(sub, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	if (!r->create) {
		agent_set(res, AGENT_PERM, 550, "5.1.1", "no such mailbox "
		    "(%.200s does not exist)", dir);
		return -1;
	}
	/* Parents as plain directories, the Maildir itself as its owner's. */
	if ((size_t)snprintf(sub, sizeof(sub), "%s", dir) >= sizeof(sub))
		goto toolong;
	{
		char *slash = strrchr(sub, '/');

		if (slash != NULL && slash != sub) {
			*slash = '\0';
			if (fs_mkdirs(sub, 0755) == -1)
				goto syserr;
		}
	}
	if (md_mkdir(dir, r) == -1)
		goto syserr;
	for (i = 0; i < 3; i++) {
		if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", dir, subs[i]) >=
		    sizeof(sub))
			goto toolong;
		if (md_mkdir(sub, r) == -1)
			goto syserr;
	}
	return 0;
toolong:
	agent_set(res, AGENT_PERM, 550, "5.1.3", "mailbox path too long");
	return -1;
syserr:
	agent_set(res, AGENT_TEMP, 451, "4.3.0", "cannot create %.200s: %s",
	    dir, strerror(errno));
	return -1;
}

static void
md_syserr(struct agent_result *res, const char *what, int e)
{
	if (e == ENOSPC)
		agent_set(res, AGENT_TEMP, 452, "4.3.1", "%s: %s", what,
		    strerror(e));
#ifdef EDQUOT
	else if (e == EDQUOT)
		agent_set(res, AGENT_TEMP, 452, "4.2.2", "mailbox full: %s",
		    strerror(e));
#endif
	else
		agent_set(res, AGENT_TEMP, 451, "4.3.0", "%s: %s", what,
		    strerror(e));
}

static void
md_deliver_one(const struct route *r, const struct agent_msg *m,
    struct agent_rcpt *rc)
{
	char local[ADDR_PATH_MAX + 1], domain[ADDR_PATH_MAX + 1], dir[PATH_MAX];
	char host[300], base[200], tmp[PATH_MAX], dst[PATH_MAX];
	struct agent_result *res = &rc->res;
	struct agent_lf *lf = NULL;
	struct timespec ts;
	char *buf = NULL;
	unsigned long seq;
	long long size = 0;
	ssize_t n;
	int fd = -1, tries, e;

	if (md_split(m->qc, rc->mailbox, local, sizeof(local), domain,
	    sizeof(domain)) == -1) {
		agent_set(res, AGENT_PERM, 550, "5.1.3", "mailbox name not "
		    "usable for a maildir");
		return;
	}
	if (md_expand(r->path, local, domain, dir, sizeof(dir)) == -1) {
		agent_set(res, AGENT_PERM, 550, "5.1.3", "mailbox path too "
		    "long");
		return;
	}
	if (md_prepare(r, dir, res) == -1)
		return;
	if (md_looped(m, rc->mailbox)) {
		agent_set(res, AGENT_PERM, 554, "5.4.6", "mail loop: the "
		    "message was already delivered to %.200s", rc->mailbox);
		return;
	}
	if ((buf = malloc(MD_BUF)) == NULL || (lf = malloc(sizeof(*lf))) ==
	    NULL) {
		agent_set(res, AGENT_TEMP, 451, "4.3.0", "out of memory");
		goto out;
	}
	md_hostpart(m->qc->hostname, host, sizeof(host));
	for (tries = 0; tries < MD_TRIES; tries++) {
		clock_gettime(CLOCK_REALTIME, &ts);
		seq = __atomic_add_fetch(&md_seq, 1, __ATOMIC_RELAXED);
		snprintf(base, sizeof(base), "%lld.M%06ldP%ldQ%lu",
		    (long long)ts.tv_sec, ts.tv_nsec / 1000L, (long)getpid(),
		    seq);
		if ((size_t)snprintf(tmp, sizeof(tmp), "%s/tmp/%s.%s", dir,
		    base, host) >= sizeof(tmp)) {
			agent_set(res, AGENT_PERM, 550, "5.1.3", "mailbox path "
			    "too long");
			goto out;
		}
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, 0600);
		if (fd != -1 || errno != EEXIST)
			break;
	}
	if (fd == -1) {
		md_syserr(res, "cannot create a file in the maildir", errno);
		goto out;
	}
	n = snprintf(buf, MD_BUF, "Return-Path: <%s>\nDelivered-To: %s\n",
	    m->env->sender, rc->mailbox);
	if (n < 0 || n >= MD_BUF || fs_write_all(fd, buf, (size_t)n) == -1)
		goto writefail;
	size += n;
	agent_lf_init(lf, m->fd, m->env->body_off);
	while ((n = agent_lf_read(lf, buf, MD_BUF)) > 0) {
		if (fs_write_all(fd, buf, (size_t)n) == -1)
			goto writefail;
		size += n;
	}
	if (n == -1) {
		agent_set(res, AGENT_TEMP, 451, "4.3.0", "cannot read the "
		    "queued message: %s", strerror(errno));
		goto discard;
	}
	if (fsync(fd) == -1)
		goto writefail;
	if (r->has_owner && geteuid() == 0 &&
	    fchown(fd, r->owner.cred.uid, r->owner.cred.gid) == -1)
		goto writefail;
	e = close(fd);
	fd = -1;
	if (e == -1)
		goto writefail;
	if ((size_t)snprintf(dst, sizeof(dst), "%s/new/%s.%s,S=%lld", dir,
	    base, host, size) >= sizeof(dst)) {
		agent_set(res, AGENT_PERM, 550, "5.1.3", "mailbox path too "
		    "long");
		goto discard;
	}
	/* link() never replaces an existing message, unlike rename(). */
	if (link(tmp, dst) == -1) {
		md_syserr(res, "cannot move the message into new/", errno);
		goto discard;
	}
	(void)unlink(tmp);
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s/new", dir) < sizeof(tmp) &&
	    agent_sync_dir(tmp) == -1) {
		md_syserr(res, "cannot flush new/", errno);
		goto out;
	}
	agent_set(res, AGENT_DELIVERED, 250, "2.0.0", "delivered to maildir");
	goto out;
writefail:
	md_syserr(res, "cannot write the message", errno);
discard:
	if (fd != -1)
		close(fd);
	fd = -1;
	(void)unlink(tmp);
out:
	if (fd != -1)
		close(fd);
	free(buf);
	free(lf);
}

static int
md_deliver(void *sess, const struct route *r, const struct agent_msg *m,
    struct agent_rcpt *rcpts, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		md_deliver_one(r, m, &rcpts[i]);
	return 0;
}
