/*
 * mailer: runs a delivery program without a shell, with a message on its
 * standard input, for a bounded time: the pipe delivery agent (which
 * smtpd's Plan 9 style "-m mailer" hand-off also goes through).
 *
 * Safe to call from any thread: everything the child needs is prepared
 * before fork(); the child only calls async-signal-safe functions.  The
 * caller must ignore SIGPIPE (smtpd and smtpq do), since a program that
 * exits early closes its end of the input pipe.
 */
#ifndef MAILER_H
#define MAILER_H

#include <sys/types.h>

#include <stddef.h>

#define MAILER_ERRLINE_MAX	256	/* first stderr line kept */
#define MAILER_DEF_TIMEOUT	600
#define MAILER_MAX_TIMEOUT	86400
#define MAILER_GROUPS_MAX	64

/* Whom to run as; honoured only when we are root. */
struct mailer_cred {
	uid_t	 uid;
	gid_t	 gid;
	gid_t	 groups[MAILER_GROUPS_MAX];
	int	 ngroups;
};

struct mailer_opts {
	const struct mailer_cred *cred;	/* NULL: as ourselves */
	unsigned int	 timeout;	/* seconds; 0 = MAILER_DEF_TIMEOUT */
	char *const	*envp;		/* NULL: a minimal PATH/HOME/LANG */
	const int	*cancel;	/* non-zero: stop now (read atomically) */
};

/*
 * Produces the program's input: up to len bytes into buf.  Returns the
 * number of bytes, 0 at the end, -1 on an error (the run is abandoned).
 */
typedef ssize_t (*mailer_feed_fn)(void *arg, char *buf, size_t len);

struct mailer_result {
	int	 status;	/* exit status 0..255, -1 if it did not exit */
	int	 signal;	/* the signal that ended it, 0 if none */
	int	 timed_out;	/* it was killed after the timeout */
	int	 cancelled;	/* it was killed because *cancel was set */
	int	 feed_error;	/* the feed function failed */
	char	 errline[MAILER_ERRLINE_MAX];	/* first stderr line, printable */
};

/*
 * Runs argv[0] (an absolute path, or a name looked up in PATH) with argv.
 * Its standard input is infd when infd >= 0 (passed as it is: position it
 * first), otherwise what feed produces.  Standard output goes to
 * /dev/null; the first line of standard error is kept.  The program runs
 * in its own process group, which is killed when the timeout passes.
 * Returns 0 when the program ran (see *res), -1 when it could not be
 * started (err says why: no such program, fork failed, ...).
 */
int	mailer_run(char *const argv[], int infd, mailer_feed_fn feed,
	    void *arg, const struct mailer_opts *, struct mailer_result *res,
	    char *err, size_t errlen);

/*
 * The SMTP reply to DATA for a hand-off result (no CRLF):
 * exit 0 -> 250, 75 (EX_TEMPFAIL) -> 451, a timeout or a signal -> 451,
 * any other status -> 554 with the program's first stderr line.
 * Returns the reply code.
 */
int	mailer_reply(const struct mailer_result *, char *buf, size_t len);

#endif
