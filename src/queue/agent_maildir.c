/*
 * The maildir agent: one file per recipient in the Maildir named by the
 * route's path template, written to tmp/, flushed, then linked into new/
 * (the usual Maildir rules).  The spool's CRLF line ends become LF, and
 * Return-Path: and Delivered-To: are added on top.
 *
 * Maildirs live in directories their users control, so nothing is done by
 * path name: the directories below the template's trusted part are opened
 * one by one without following symbolic links, the files are made relative
 * to those descriptors, and as root the writing is done by a child that has
 * become the Maildir's user.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
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
#include "lib/privs.h"
#include "lib/str.h"
#include "agent.h"
#include "lib/spawn.h"
#include "recipients.h"

#define MD_BUF		65536
#define MD_HDR_MAX	65536	/* header bytes searched for Delivered-To */
#define MD_TRIES	5
#define MD_NAME_MAX	256	/* a file name in tmp/ */
#define MD_HDR_LEN	(2 * ADDR_PATH_MAX + 64)

static void	*md_open(const struct route *, const char *, const char *,
		    const struct queue_conf *, struct agent_result *);
static int	 md_deliver(void *, const struct route *,
		    const struct agent_msg *, struct agent_rcpt *, size_t);
static void	 md_close(void **);
static void	 md_syserr(struct agent_result *, const char *, int);

const struct agent_ops agent_maildir_ops = {
	"maildir", md_open, md_deliver, md_close, NULL
};

static unsigned long	md_seq;

static void *
md_open(const struct route *r, const char *dest, const char *id,
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

/*
 * "local@domain" into a local part and a domain, lower case, that can
 * name directories.
 */
static int
md_split(const struct queue_conf *qc, const char *mailbox, char *local,
    size_t llen, char *domain, size_t dlen)
{
	size_t i;

	if (queueconf_split_mailbox(qc, mailbox, local, llen, domain,
	    dlen) == -1)
		return -1;
	/* It becomes a directory name: no paths, no hidden names, no quotes. */
	if (local[0] == '.' || local[0] == '"')
		return -1;
	for (i = 0; local[i] != '\0'; i++) {
		unsigned char c = (unsigned char)local[i];

		if (c < 0x21 || c == 0x7f || c == '/' || c == '\\')
			return -1;
	}
	if (domain[0] == '.' || domain[0] == '\0' || strchr(domain, '/'))
		return -1;
	return 0;
}

static int
md_expand(const char *tmpl, const char *local, const char *domain,
    char *out, size_t len)
{
	struct str_var vars[] = { { 'u', local }, { 'd', domain } };
	struct str s;
	int rc;

	str_init(&s, len - 1);
	rc = str_expand(&s, tmpl, vars, sizeof(vars) / sizeof(vars[0]));
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

/*
 * What the writer needs, all prepared before it runs: it may run in a
 * forked child of a threaded process, where only async-signal-safe calls
 * are allowed.
 */
struct md_job {
	int			 mdfd;		/* the Maildir */
	int			 msgfd;
	off_t			 body_off;
	int			 create;
	int			 check_owner;	/* tmp/ and new/ must be uid's */
	uid_t			 uid;
	const char		*hdr;
	size_t			 hdrlen;
	char			 names[MD_TRIES][MD_NAME_MAX];
	char			 dst[MD_NAME_MAX + 32];
	char			*buf;
	struct fs_lf		*lf;
};

/* Where the writer stopped, for the parent to word. */
enum md_stage {
	MD_DONE,
	MD_E_CRED,	/* could not become the owner */
	MD_E_NOBOX,	/* no new/ and nothing may be created */
	MD_E_SUBLINK,	/* a subdirectory is a link or not a directory */
	MD_E_SUBOWNER,	/* a subdirectory belongs to someone else */
	MD_E_MKDIR,
	MD_E_CREATE,
	MD_E_READ,
	MD_E_WRITE,
	MD_E_LINK,
	MD_E_SYNC,
	MD_E_CHILD,	/* the child ended without a report */
};

struct md_report {
	int	 stage;
	int	 err;
	char	 sub[4];	/* "tmp", "new" or "cur" */
	uid_t	 owner;		/* of sub, for MD_E_SUBOWNER */
};

/* Appends the decimal v to s (async-signal-safe); -1 when it does not fit. */
static int
md_append_num(char *s, size_t len, unsigned long long v)
{
	char digits[24];
	size_t n = 0, l = strlen(s);

	do {
		digits[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0);
	if (l + n >= len)
		return -1;
	while (n > 0)
		s[l++] = digits[--n];
	s[l] = '\0';
	return 0;
}

static int
md_fail(struct md_report *rep, int stage, const char *sub)
{
	rep->stage = stage;
	rep->err = errno;
	if (sub != NULL)
		memcpy(rep->sub, sub, 4);
	return -1;
}

/* Opens (making it when allowed) the subdirectory sub of the Maildir. */
static int
md_subdir(const struct md_job *j, const char *sub, struct md_report *rep)
{
	struct stat st;
	int fd, e;

	fd = openat(j->mdfd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (fd == -1 && errno == ENOENT) {
		if (!j->create)
			return md_fail(rep, MD_E_NOBOX, sub);
		if (mkdirat(j->mdfd, sub, 0700) == -1 && errno != EEXIST)
			return md_fail(rep, MD_E_MKDIR, sub);
		fd = openat(j->mdfd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
	}
	if (fd == -1)
		return md_fail(rep, errno == ELOOP || errno == ENOTDIR ?
		    MD_E_SUBLINK : MD_E_MKDIR, sub);
	if (fstat(fd, &st) == -1) {
		e = errno;
		close(fd);
		errno = e;
		return md_fail(rep, MD_E_MKDIR, sub);
	}
	if (j->check_owner && st.st_uid != j->uid) {
		close(fd);
		rep->owner = st.st_uid;
		errno = 0;
		return md_fail(rep, MD_E_SUBOWNER, sub);
	}
	return fd;
}

/*
 * Writes the message into tmp/ and links it into new/, every step relative
 * to the Maildir's descriptor and never through a symbolic link.  Only
 * async-signal-safe calls.  0, or -1 with *rep saying where it stopped.
 */
static int
md_write(struct md_job *j, struct md_report *rep)
{
	int tmpfd = -1, newfd = -1, curfd = -1, fd = -1, t, rc = -1;
	const char *name = NULL;
	long long size;
	ssize_t n;

	if ((tmpfd = md_subdir(j, "tmp", rep)) == -1 ||
	    (newfd = md_subdir(j, "new", rep)) == -1)
		goto out;
	if (j->create && (curfd = md_subdir(j, "cur", rep)) == -1)
		goto out;
	for (t = 0; t < MD_TRIES; t++) {
		name = j->names[t];
		fd = openat(tmpfd, name, O_WRONLY | O_CREAT | O_EXCL |
		    O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd != -1 || errno != EEXIST)
			break;
	}
	if (fd == -1) {
		md_fail(rep, MD_E_CREATE, NULL);
		goto out;
	}
	if (fs_write_all(fd, j->hdr, j->hdrlen) == -1) {
		md_fail(rep, MD_E_WRITE, NULL);
		goto discard;
	}
	size = (long long)j->hdrlen;
	fs_lf_init(j->lf, j->msgfd, j->body_off);
	while ((n = fs_lf_read(j->lf, j->buf, MD_BUF)) > 0) {
		if (fs_write_all(fd, j->buf, (size_t)n) == -1) {
			md_fail(rep, MD_E_WRITE, NULL);
			goto discard;
		}
		size += n;
	}
	if (n == -1) {
		md_fail(rep, MD_E_READ, NULL);
		goto discard;
	}
	if (fsync(fd) == -1) {
		md_fail(rep, MD_E_WRITE, NULL);
		goto discard;
	}
	t = close(fd);
	fd = -1;
	if (t == -1) {
		md_fail(rep, MD_E_WRITE, NULL);
		goto discard;
	}
	if (str_lcpy(j->dst, name, sizeof(j->dst)) >= sizeof(j->dst) ||
	    str_lcat(j->dst, ",S=", sizeof(j->dst)) >= sizeof(j->dst) ||
	    md_append_num(j->dst, sizeof(j->dst), (unsigned long long)size) ==
	    -1) {
		errno = ENAMETOOLONG;
		md_fail(rep, MD_E_LINK, NULL);
		goto discard;
	}
	/* linkat() never replaces an existing message, unlike rename. */
	if (linkat(tmpfd, name, newfd, j->dst, 0) == -1) {
		md_fail(rep, MD_E_LINK, NULL);
		goto discard;
	}
	(void)unlinkat(tmpfd, name, 0);
	if (fsync(newfd) == -1) {
		md_fail(rep, MD_E_SYNC, NULL);
		goto out;
	}
	rep->stage = MD_DONE;
	rc = 0;
	goto out;
discard:
	if (fd != -1)
		close(fd);
	fd = -1;
	(void)unlinkat(tmpfd, name, 0);
out:
	if (fd != -1)
		close(fd);
	if (tmpfd != -1)
		close(tmpfd);
	if (newfd != -1)
		close(newfd);
	if (curfd != -1)
		close(curfd);
	return rc;
}

/*
 * Runs md_write() in a child that has become the mailbox's owner first,
 * so that nothing in the Maildir is ever touched with root's rights.
 */
static void
md_write_as(struct md_job *j, const struct spawn_cred *cred,
    struct md_report *rep)
{
	struct md_report crep;
	int p[2], status;
	ssize_t n;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) == -1) {
		md_fail(rep, MD_E_CHILD, NULL);
		return;
	}
	if ((pid = fork()) == -1) {
		md_fail(rep, MD_E_CHILD, NULL);
		close(p[0]);
		close(p[1]);
		return;
	}
	if (pid == 0) {
		int keep[3];

		memset(&crep, 0, sizeof(crep));
		close(p[0]);
		/*
		 * Nothing of the runner's stays open here: a writer that
		 * outlives a killed runner would keep its lock, and the next
		 * smtpd would start without one.
		 */
		keep[0] = p[1];
		keep[1] = j->mdfd;
		keep[2] = j->msgfd;
		(void)spawn_close_others(keep, 3);
		/* Capabilities a non-root runner kept go too. */
		if (setgroups((size_t)cred->ngroups, cred->groups) == -1 ||
		    setgid(cred->gid) == -1 || setuid(cred->uid) == -1 ||
		    privs_clear_caps() == -1 ||
		    getuid() != cred->uid || geteuid() != cred->uid ||
		    getegid() != cred->gid ||
		    (cred->uid != 0 && setuid(0) != -1))
			md_fail(&crep, MD_E_CRED, NULL);
		else
			(void)md_write(j, &crep);
		if (write(p[1], &crep, sizeof(crep)) != (ssize_t)sizeof(crep))
			_exit(2);
		_exit(0);
	}
	close(p[1]);
	do
		n = read(p[0], rep, sizeof(*rep));
	while (n == -1 && errno == EINTR);
	close(p[0]);
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	if (n != (ssize_t)sizeof(*rep)) {
		memset(rep, 0, sizeof(*rep));
		rep->stage = MD_E_CHILD;
		rep->err = EIO;
	}
}

static const char *const md_subs[] = { "tmp", "new", "cur" };

/*
 * Removes the Maildir name in dfd that was being made (fd, its open
 * directory, or -1 to open it here, never through a link): its tmp/,
 * new/ and cur/ and itself, each only if empty.  Closes fd.  0 or -1.
 */
static int
md_remove_box(int dfd, const char *name, int fd)
{
	size_t i;

	if (fd == -1 && (fd = openat(dfd, name, O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC)) == -1)
		return -1;
	for (i = 0; i < sizeof(md_subs) / sizeof(md_subs[0]); i++)
		(void)unlinkat(fd, md_subs[i], AT_REMOVEDIR);
	close(fd);
	return unlinkat(dfd, name, AT_REMOVEDIR);
}

/*
 * Removes what deliveries killed while making a Maildir left in dfd: the
 * ".maildir-PID-N" directories of processes that are gone.  Only empty
 * directories go and no link is followed, so anything else that bears
 * such a name stays.
 */
static void
md_clean_strays(int dfd)
{
	struct dirent *de;
	DIR *dir;
	char *end;
	long pid;
	int fd;

	/* A descriptor of its own: closedir() closes it. */
	if ((fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return;
	if ((dir = fdopendir(fd)) == NULL) {
		close(fd);
		return;
	}
	while ((de = readdir(dir)) != NULL) {
		if (strncmp(de->d_name, ".maildir-", 9) != 0)
			continue;
		errno = 0;
		pid = strtol(de->d_name + 9, &end, 10);
		if (pid <= 0 || pid > INT_MAX || *end != '-' ||
		    kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		if (md_remove_box(dfd, de->d_name, -1) == 0)
			log_info("maildir: removed %s, left by a delivery that "
			    "was killed", de->d_name);
	}
	closedir(dir);
}

/*
 * Makes the Maildir name in the directory dfd, with its tmp/, new/ and
 * cur/, already its owner's (the route's user; else root's when we are
 * a runner that switches users; else ours): built under a temporary name
 * and renamed into place, so that no delivery ever finds one half made or
 * not yet given to its owner -- one killed half-way leaves a stray
 * ".maildir-*" directory, not a Maildir nobody can use, and the next
 * Maildir made there removes it.  0, or -1 with errno (EEXIST: another
 * delivery made it first).
 */
static int
md_make_box(const struct route *r, int dfd, const char *name)
{
	char tmp[64];
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;
	size_t i;
	int fd = -1, e;

	if (r->has_owner) {
		uid = r->owner.cred.uid;
		gid = r->owner.cred.gid;
	} else if (geteuid() != 0 && privs_can_switch())
		uid = gid = 0;
	md_clean_strays(dfd);
	snprintf(tmp, sizeof(tmp), ".maildir-%ld-%lu", (long)getpid(),
	    __atomic_add_fetch(&md_seq, 1, __ATOMIC_RELAXED));
	if (mkdirat(dfd, tmp, 0700) == -1)
		return -1;
	if ((fd = openat(dfd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		goto fail;
	for (i = 0; i < sizeof(md_subs) / sizeof(md_subs[0]); i++)
		if (mkdirat(fd, md_subs[i], 0700) == -1 ||
		    (uid != (uid_t)-1 && fchownat(fd, md_subs[i], uid, gid,
		    AT_SYMLINK_NOFOLLOW) == -1))
			goto fail;
	if ((uid != (uid_t)-1 && fchown(fd, uid, gid) == -1) ||
	    fchmod(fd, 0700) == -1)
		goto fail;
	if (renameat2(dfd, tmp, dfd, name, RENAME_NOREPLACE) == -1)
		goto fail;
	close(fd);
	return 0;
fail:
	e = errno;
	if (fd != -1)
		(void)md_remove_box(dfd, tmp, fd);
	else
		(void)unlinkat(dfd, tmp, AT_REMOVEDIR);
	errno = e;
	return -1;
}

/*
 * Makes a directory above the Maildir (0755).  A runner that is not root
 * but may switch users makes it root's all the same.  0 or -1 (errno).
 */
static int
md_make_parent(int dfd, const char *name)
{
	if (mkdirat(dfd, name, 0755) == -1)
		return -1;
	if (geteuid() != 0 && privs_can_switch())
		(void)fchownat(dfd, name, 0, 0, AT_SYMLINK_NOFOLLOW);
	return 0;
}

/*
 * Opens path's directory component by component below the trusted base,
 * never following a symbolic link; missing directories are made when
 * create is set (the Maildir by md_make_box(), its parents 0755).  The
 * descriptor, or -1 with res set.
 */
static int
md_walk(const struct route *r, const char *dir, size_t baselen, int create,
    struct agent_result *res)
{
	char part[NAME_MAX + 1], base[PATH_MAX];
	const char *p, *e;
	struct stat st;
	size_t n;
	int fd, next, last;

	if (baselen == 0)
		str_lcpy(base, dir[0] == '/' ? "/" : ".", sizeof(base));
	else {
		memcpy(base, dir, baselen);
		base[baselen] = '\0';
	}
	if ((fd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		md_syserr(res, "cannot open the maildir base", errno);
		return -1;
	}
	for (p = dir + baselen; *p != '\0'; p = e) {
		while (*p == '/')
			p++;
		if (*p == '\0')
			break;
		e = strchr(p, '/');
		n = e ? (size_t)(e - p) : strlen(p);
		if (e == NULL)
			e = p + n;
		last = e[strspn(e, "/")] == '\0';
		if (n > NAME_MAX) {
			agent_set(res, AGENT_PERM, 550, "5.1.3", "mailbox path "
			    "too long");
			goto fail;
		}
		memcpy(part, p, n);
		part[n] = '\0';
		if (strcmp(part, ".") == 0)
			continue;
		if (strcmp(part, "..") == 0) {
			agent_set(res, AGENT_PERM, 550, "5.1.3", "mailbox path "
			    "%.200s goes up with \"..\"", dir);
			goto fail;
		}
		next = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
		if (next == -1 && errno == ENOENT && create) {
			/* The Maildir whole and owned, or a parent. */
			if ((last ? md_make_box(r, fd, part) :
			    md_make_parent(fd, part)) == -1 &&
			    errno != EEXIST) {
				agent_set(res, AGENT_TEMP, 451, "4.3.0",
				    "cannot create %.200s: %s", dir,
				    strerror(errno));
				goto fail;
			}
			next = openat(fd, part, O_RDONLY | O_DIRECTORY |
			    O_NOFOLLOW | O_CLOEXEC);
		}
		if (next == -1) {
			if (errno == ENOENT)
				agent_set(res, AGENT_PERM, 550, "5.1.1", "no "
				    "such mailbox (%.200s does not exist)", dir);
			else if (fstatat(fd, part, &st, AT_SYMLINK_NOFOLLOW) ==
			    0 && S_ISLNK(st.st_mode))
				agent_set(res, AGENT_TEMP, 451, "4.3.0",
				    "maildir %.200s refused: \"%.100s\" is a "
				    "symbolic link", dir, part);
			else
				agent_set(res, AGENT_TEMP, 451, "4.3.0",
				    "maildir %.200s refused: \"%.100s\": %s",
				    dir, part, strerror(errno));
			goto fail;
		}
		close(fd);
		fd = next;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

/* The length of the template's trusted part: up to the last '/' before %. */
static size_t
md_baselen(const char *tmpl)
{
	const char *pct = strchr(tmpl, '%'), *p;
	size_t end = pct ? (size_t)(pct - tmpl) : strlen(tmpl);

	/* Without a %, the Maildir itself is still checked. */
	while (end > 0 && tmpl[end - 1] == '/')
		end--;
	for (p = tmpl + end; p > tmpl; p--)
		if (p[-1] == '/')
			return (size_t)(p - tmpl) - 1 == 0 ? 1 :
			    (size_t)(p - tmpl) - 1;
	return 0;
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

/* The writer's report in words. */
static void
md_result(const struct md_report *rep, const char *dir, uid_t uid,
    struct agent_result *res)
{
	switch (rep->stage) {
	case MD_DONE:
		agent_set(res, AGENT_DELIVERED, 250, "2.0.0", "delivered to "
		    "maildir");
		break;
	case MD_E_CRED:
		agent_set(res, AGENT_TEMP, 451, "4.3.0", "cannot switch to "
		    "uid %lu for %.200s: %s", (unsigned long)uid, dir,
		    strerror(rep->err));
		break;
	case MD_E_NOBOX:
		agent_set(res, AGENT_PERM, 550, "5.1.1", "no such mailbox "
		    "(%.200s/%.3s does not exist)", dir, rep->sub);
		break;
	case MD_E_SUBLINK:
		agent_set(res, AGENT_TEMP, 451, "4.3.0", "maildir %.200s "
		    "refused: %.3s/ is a symbolic link or not a directory",
		    dir, rep->sub);
		break;
	case MD_E_SUBOWNER:
		agent_set(res, AGENT_TEMP, 451, "4.3.0", "maildir %.200s "
		    "refused: %.3s/ belongs to uid %lu, not %lu", dir,
		    rep->sub, (unsigned long)rep->owner, (unsigned long)uid);
		break;
	case MD_E_MKDIR:
		agent_set(res, AGENT_TEMP, 451, "4.3.0", "cannot create "
		    "%.200s/%.3s: %s", dir, rep->sub, strerror(rep->err));
		break;
	case MD_E_CREATE:
		md_syserr(res, "cannot create a file in the maildir", rep->err);
		break;
	case MD_E_READ:
		agent_set(res, AGENT_TEMP, 451, "4.3.0", "cannot read the "
		    "queued message: %s", strerror(rep->err));
		break;
	case MD_E_WRITE:
		md_syserr(res, "cannot write the message", rep->err);
		break;
	case MD_E_LINK:
		md_syserr(res, "cannot move the message into new/", rep->err);
		break;
	case MD_E_SYNC:
		md_syserr(res, "cannot flush new/", rep->err);
		break;
	default:
		agent_set(res, AGENT_TEMP, 451, "4.3.0", "the maildir delivery "
		    "process failed: %s", strerror(rep->err));
		break;
	}
}

/*
 * Opens the Maildir and settles whom it belongs to: the route's user, or
 * without one, whoever owns the Maildir (one made here is the route's
 * user's from the start).  The descriptor, or -1 with res set.
 */
static int
md_open_box(const struct route *r, const char *dir, int create,
    struct spawn_cred *cred, struct agent_result *res)
{
	struct stat st;
	int fd, root = privs_can_switch();

	if ((fd = md_walk(r, dir, md_baselen(r->path), create, res)) == -1)
		return -1;
	if (fstat(fd, &st) == -1) {
		md_syserr(res, "cannot look at the maildir", errno);
		goto fail;
	}
	if (r->has_owner)
		*cred = r->owner.cred;
	else {
		memset(cred, 0, sizeof(*cred));
		cred->uid = st.st_uid;
		cred->gid = st.st_gid;
		cred->groups[0] = st.st_gid;
		cred->ngroups = 1;
	}
	if (root && st.st_uid != cred->uid) {
		agent_set(res, AGENT_TEMP, 451, "4.3.0", "maildir %.200s "
		    "refused: it belongs to uid %lu, not to %.64s (uid %lu)",
		    dir, (unsigned long)st.st_uid, r->owner.name,
		    (unsigned long)cred->uid);
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

static void
md_deliver_one(const struct route *r, const struct agent_msg *m,
    struct agent_rcpt *rc)
{
	char local[ADDR_PATH_MAX + 1], domain[ADDR_PATH_MAX + 1], dir[PATH_MAX];
	char host[300], base[ADDR_PATH_MAX + 1], why[300];
	struct agent_result *res = &rc->res;
	struct spawn_cred cred;
	struct md_report rep;
	struct md_job *j = NULL;
	struct timespec ts;
	char *hdr = NULL;
	unsigned long seq;
	int i, n, create;

	if (md_split(m->qc, rc->mailbox, local, sizeof(local), domain,
	    sizeof(domain)) == -1) {
		agent_set(res, AGENT_PERM, 550, "5.1.3", "mailbox name not "
		    "usable for a maildir");
		return;
	}
	/* user+tag is delivered to user; Delivered-To keeps the tag. */
	(void)qc_base_local(m->qc, local, base, sizeof(base));
	/* A Maildir is made only for a listed user: never for a guess. */
	create = r->create ? queueconf_may_create(m->qc, r, rc->mailbox, why,
	    sizeof(why)) : 0;
	if (create == -1) {
		agent_set(res, AGENT_TEMP, 451, "4.3.0", "%s", why);
		return;
	}
	if (md_expand(r->path, base, domain, dir, sizeof(dir)) == -1) {
		agent_set(res, AGENT_PERM, 550, "5.1.3", "mailbox path too "
		    "long");
		return;
	}
	if (md_looped(m, rc->mailbox)) {
		agent_set(res, AGENT_PERM, 554, "5.4.6", "mail loop: the "
		    "message was already delivered to %.200s", rc->mailbox);
		return;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL ||
	    (j->buf = malloc(MD_BUF)) == NULL ||
	    (j->lf = malloc(sizeof(*j->lf))) == NULL ||
	    (hdr = malloc(MD_HDR_LEN)) == NULL) {
		agent_set(res, AGENT_TEMP, 451, "4.3.0", "out of memory");
		goto out;
	}
	n = snprintf(hdr, MD_HDR_LEN, "Return-Path: <%s>\nDelivered-To: %s\n",
	    m->env->sender, rc->mailbox);
	if (n < 0 || n >= MD_HDR_LEN) {
		agent_set(res, AGENT_PERM, 550, "5.1.3", "addresses too long");
		goto out;
	}
	j->hdr = hdr;
	j->hdrlen = (size_t)n;
	j->msgfd = m->fd;
	j->body_off = m->env->body_off;
	j->create = create;
	md_hostpart(m->qc->hostname, host, sizeof(host));
	for (i = 0; i < MD_TRIES; i++) {
		clock_gettime(CLOCK_REALTIME, &ts);
		seq = __atomic_add_fetch(&md_seq, 1, __ATOMIC_RELAXED);
		n = snprintf(j->names[i], sizeof(j->names[i]),
		    "%lld.M%06ldP%ldQ%lu.%s", (long long)ts.tv_sec,
		    ts.tv_nsec / 1000L, (long)getpid(), seq, host);
		if (n < 0 || (size_t)n >= sizeof(j->names[i])) {
			agent_set(res, AGENT_PERM, 550, "5.1.3", "host name "
			    "too long for a maildir file name");
			goto out;
		}
	}
	if ((j->mdfd = md_open_box(r, dir, create, &cred, res)) == -1)
		goto out;
	memset(&rep, 0, sizeof(rep));
	if (privs_can_switch()) {
		j->check_owner = 1;
		j->uid = cred.uid;
		if (cred.uid == 0 && geteuid() == 0)
			(void)md_write(j, &rep);
		else
			md_write_as(j, &cred, &rep);
	} else
		(void)md_write(j, &rep);
	close(j->mdfd);
	md_result(&rep, dir, cred.uid, res);
	if (rep.stage == MD_E_SUBLINK || rep.stage == MD_E_SUBOWNER)
		log_warn("%s maildir: %s", m->id, res->reply.text);
out:
	if (j != NULL) {
		free(j->buf);
		free(j->lf);
	}
	free(j);
	free(hdr);
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
