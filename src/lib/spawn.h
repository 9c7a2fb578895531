/*
 * spawn: runs a program without a shell, with data on its standard input,
 * for a bounded time, in its own process group, which is killed when the
 * time is up: delivery programs (the pipe agent, smtpd -m), the client's
 * password command.
 *
 * Safe to call from any thread: everything the child needs is prepared
 * before fork(); the child only calls async-signal-safe functions.  The
 * caller must ignore SIGPIPE (smtpd and smtpq do), since a program that
 * exits early closes its end of the input pipe.
 */
#ifndef SPAWN_H
#define SPAWN_H

#include <sys/types.h>

#include <stddef.h>

#define SPAWN_ERRLINE_MAX	256	/* first stderr line kept */
#define SPAWN_DEF_TIMEOUT	600
#define SPAWN_MAX_TIMEOUT	86400
#define SPAWN_GROUPS_MAX	64

/* Whom to run as; honoured only when we are root. */
struct spawn_cred {
	uid_t	 uid;
	gid_t	 gid;
	gid_t	 groups[SPAWN_GROUPS_MAX];
	int	 ngroups;
};

struct spawn_opts {
	const struct spawn_cred *cred;	/* NULL: as ourselves */
	unsigned int	 timeout;	/* seconds; 0 = SPAWN_DEF_TIMEOUT */
	char *const	*envp;		/* NULL: a minimal PATH/HOME/LANG */
	const int	*cancel;	/* non-zero: stop now (read atomically) */
	/*
	 * Where standard output goes: out[0..outlen-1], NUL-terminated,
	 * what does not fit read and dropped; NULL: /dev/null.  The
	 * caller wipes it when it holds a secret: it is never copied.
	 */
	char		*out;
	size_t		 outlen;
	const char	*dir;		/* where it runs; NULL: "/" */
};

/*
 * Produces the program's input: up to len bytes into buf.  Returns the
 * number of bytes, 0 at the end, -1 on an error (the run is abandoned).
 */
typedef ssize_t (*spawn_feed_fn)(void *arg, char *buf, size_t len);

struct spawn_result {
	int	 status;	/* exit status 0..255, -1 if it did not exit */
	int	 signal;	/* the signal that ended it, 0 if none */
	int	 timed_out;	/* it was killed after the timeout */
	int	 cancelled;	/* it was killed because *cancel was set */
	int	 feed_error;	/* the feed function failed */
	char	 errline[SPAWN_ERRLINE_MAX];	/* first stderr line, printable */
	size_t	 outlen;	/* bytes of standard output in opts->out */
};

/*
 * In a forked child that does not exec: closes every descriptor above 2
 * except the n in keep, so that the child holds nothing of the parent's
 * (the queue runner's lock, other deliveries, client connections) should
 * it outlive the parent.  Async-signal-safe.  0, or -1.
 */
int	spawn_close_others(const int *keep, size_t n);
/*
 * Runs argv[0] (an absolute path, or a name looked up in PATH) with argv.
 * Its standard input is infd when infd >= 0 (passed as it is: position it
 * first), otherwise what feed produces, or /dev/null without a feed.
 * Standard output goes to opts->out or /dev/null; the first line of
 * standard error is kept.  The program runs
 * in its own process group, which is killed when the timeout passes.
 * Returns 0 when the program ran (see *res), -1 when it could not be
 * started (err says why: no such program, fork failed, ...).
 */
int	spawn_run(char *const argv[], int infd, spawn_feed_fn feed,
	    void *arg, const struct spawn_opts *, struct spawn_result *res,
	    char *err, size_t errlen);

#endif
