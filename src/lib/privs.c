/*
 * privs: see privs.h.
 */
#include "config.h"

#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <errno.h>
#include <ftw.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"
#include "privs.h"
#include "str.h"

#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT			47
#define PR_CAP_AMBIENT_CLEAR_ALL	4
#endif

static int	set_caps(uint64_t);

int
privs_lookup(const char *name, struct privs_user *u, char *err, size_t errlen)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	int r;

	memset(u, 0, sizeof(*u));
	if (str_lcpy(u->name, name, sizeof(u->name)) >= sizeof(u->name)) {
		snprintf(err, errlen, "user name \"%.32s...\" is too long",
		    name);
		return -1;
	}
	if ((r = getpwnam_r(name, &pw, buf, sizeof(buf), &res)) != 0 ||
	    res == NULL) {
		snprintf(err, errlen, "no such user \"%.64s\"%s%s", name,
		    r ? ": " : "", r ? strerror(r) : "");
		return -1;
	}
	u->uid = pw.pw_uid;
	u->gid = pw.pw_gid;
	return 0;
}

/* Permitted and effective = keep; inheritable empty.  Raw syscall. */
static int
set_caps(uint64_t keep)
{
	struct __user_cap_header_struct h;
	struct __user_cap_data_struct d[2];

	memset(&h, 0, sizeof(h));
	memset(d, 0, sizeof(d));
	h.version = _LINUX_CAPABILITY_VERSION_3;
	h.pid = 0;
	d[0].permitted = d[0].effective = (uint32_t)keep;
	d[1].permitted = d[1].effective = (uint32_t)(keep >> 32);
	return (int)syscall(SYS_capset, &h, d);
}

int
privs_clear_caps(void)
{
	return set_caps(0);
}

int
privs_can_switch(void)
{
	struct __user_cap_header_struct h;
	struct __user_cap_data_struct d[2];

	if (geteuid() == 0)
		return 1;
	memset(&h, 0, sizeof(h));
	memset(d, 0, sizeof(d));
	h.version = _LINUX_CAPABILITY_VERSION_3;
	if (syscall(SYS_capget, &h, d) == -1)
		return 0;
	return (d[0].effective & PRIVS_CAP(CAP_SETUID)) != 0 &&
	    (d[0].effective & PRIVS_CAP(CAP_SETGID)) != 0;
}

int
privs_drop(const struct privs_user *u, uint64_t keep, char *err,
    size_t errlen)
{
	uid_t ruid, euid, suid;
	gid_t rgid, egid, sgid;
	int cap;

	/* The bounding set first: cutting it takes CAP_SETPCAP. */
	for (cap = 0; cap < 64; cap++) {
		if (keep & PRIVS_CAP(cap))
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == -1) {
			if (errno == EINVAL)	/* past the kernel's last */
				break;
			snprintf(err, errlen, "cannot drop capability %d from "
			    "the bounding set: %s", cap, strerror(errno));
			return -1;
		}
	}
	(void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	if (keep != 0 && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) == -1) {
		snprintf(err, errlen, "PR_SET_KEEPCAPS: %s", strerror(errno));
		return -1;
	}
	if (setgroups(1, &u->gid) == -1 ||
	    setresgid(u->gid, u->gid, u->gid) == -1 ||
	    setresuid(u->uid, u->uid, u->uid) == -1) {
		snprintf(err, errlen, "cannot become %s (uid %lu, gid %lu): "
		    "%s", u->name, (unsigned long)u->uid,
		    (unsigned long)u->gid, strerror(errno));
		return -1;
	}
	if (set_caps(keep) == -1) {
		snprintf(err, errlen, "capset: %s", strerror(errno));
		return -1;
	}
	if (keep != 0)
		(void)prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1) {
		snprintf(err, errlen, "PR_SET_NO_NEW_PRIVS: %s",
		    strerror(errno));
		return -1;
	}
	/* Trust, but verify. */
	if (getresuid(&ruid, &euid, &suid) == -1 ||
	    getresgid(&rgid, &egid, &sgid) == -1 ||
	    ruid != u->uid || euid != u->uid || suid != u->uid ||
	    rgid != u->gid || egid != u->gid || sgid != u->gid ||
	    (u->uid != 0 && !(keep & PRIVS_CAP(CAP_SETUID)) &&
	    setuid(0) != -1)) {
		snprintf(err, errlen, "the switch to %s did not hold",
		    u->name);
		return -1;
	}
	return 0;
}

/* nftw() takes no argument: the owner wanted, for one walk at a time. */
static uid_t	 walk_uid;
static gid_t	 walk_gid;
static int	 walk_errno;
static char	 walk_path[256];

static int
chown_one(const char *path, const struct stat *st, int type,
    struct FTW *ftw)
{
	(void)type;
	(void)ftw;
	if (S_ISLNK(st->st_mode) ||
	    (st->st_uid == walk_uid && st->st_gid == walk_gid))
		return 0;
	if (lchown(path, walk_uid, walk_gid) == -1) {
		walk_errno = errno;
		str_lcpy(walk_path, path, sizeof(walk_path));
		return 1;
	}
	return 0;
}

int
privs_chown_tree(const char *path, uid_t uid, gid_t gid, char *err,
    size_t errlen)
{
	int r;

	walk_uid = uid;
	walk_gid = gid;
	walk_errno = 0;
	r = nftw(path, chown_one, 32, FTW_PHYS | FTW_MOUNT);
	if (r == 0)
		return 0;
	snprintf(err, errlen, "%s: %s", r == 1 ? walk_path : path,
	    strerror(r == 1 ? walk_errno : errno));
	return -1;
}

int
privs_own_dir(const char *path, const struct privs_user *u, int walk,
    char *err, size_t errlen)
{
	char parent[4096], *slash;
	struct stat st;

	if (str_lcpy(parent, path, sizeof(parent)) >= sizeof(parent)) {
		snprintf(err, errlen, "%.100s...: path too long", path);
		return -1;
	}
	if ((slash = strrchr(parent, '/')) != NULL && slash != parent) {
		*slash = '\0';
		if (fs_mkdirs(parent, 0755) == -1) {
			snprintf(err, errlen, "%s: %s", parent,
			    strerror(errno));
			return -1;
		}
	}
	if (fs_mkdirs(path, 0700) == -1 || stat(path, &st) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (!walk && st.st_uid == u->uid && st.st_gid == u->gid)
		return 0;
	return privs_chown_tree(path, u->uid, u->gid, err, errlen);
}

size_t
privs_raise_nofile(size_t want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return want;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want &&
	    rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ||
		    rl.rlim_max > want ? (rlim_t)want : rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			(void)getrlimit(RLIMIT_NOFILE, &rl);
	}
	return rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > want ? want :
	    (size_t)rl.rlim_cur;
}
