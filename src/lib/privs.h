/*
 * privs: giving up privileges -- switching to an unprivileged user,
 * keeping only the capabilities a process needs, and making sure what
 * was given up cannot be taken back.  Linux capabilities are set with the
 * raw capset(2) call, so nothing beyond libc is needed.
 */
#ifndef PRIVS_H
#define PRIVS_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#define PRIVS_NAME_MAX	64

/* Capability bits for privs_drop()'s keep mask (linux/capability.h). */
#define PRIVS_CAP(n)	((uint64_t)1 << (n))

struct privs_user {
	char	 name[PRIVS_NAME_MAX];
	uid_t	 uid;
	gid_t	 gid;
};

/* Looks up a user by name.  0, or -1 with err ("no such user ..."). */
int	privs_lookup(const char *name, struct privs_user *, char *err,
	    size_t errlen);
/*
 * Becomes u for good (real, effective and saved ids; supplementary
 * groups cleared), keeping only the capabilities in keep (permitted and
 * effective; the bounding set is cut down to them too), and sets
 * no_new_privs so that no exec can give anything back.  u may be root
 * (uid 0): the process then keeps its uid but loses every capability
 * not in keep.  Must run as root before any thread starts.  Checks the
 * result: with a non-root u and without CAP_SETUID in keep, setuid(0)
 * must fail.  0, or -1 with err.
 */
int	privs_drop(const struct privs_user *u, uint64_t keep, char *err,
	    size_t errlen);
/*
 * Clears every capability of the calling process.  Async-signal-safe:
 * for a child forked from a threaded process that has just switched to a
 * delivery user.  0 or -1.
 */
int	privs_clear_caps(void);
/*
 * Raises the soft limit on open files toward want, as far as the hard
 * limit allows.  The soft limit then (want when unlimited or higher).
 */
size_t	privs_raise_nofile(size_t want);
/* 1 when this process may change its user (root, or CAP_SETUID). */
int	privs_can_switch(void);
/*
 * Gives path and everything below it (not following symbolic links, not
 * leaving its file system) to uid:gid where it belongs to someone else.
 * 0, or -1 with err.
 */
int	privs_chown_tree(const char *path, uid_t uid, gid_t gid, char *err,
	    size_t errlen);

/*
 * Makes sure directory path exists (missing parents 0755, path itself
 * 0700) and belongs to u: everything below it too when walk is set, else
 * only when path itself is someone else's.  0, or -1 with err.
 */
int	privs_own_dir(const char *path, const struct privs_user *u, int walk,
	    char *err, size_t errlen);

#endif
