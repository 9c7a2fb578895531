#include "config.h"

#include <sys/types.h>
#include <sys/wait.h>
#ifdef HAVE_SYS_PRCTL_H
#include <sys/prctl.h>
#endif

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "net.h"
#include "privs.h"
#include "spawn.h"
#include "str.h"

#define FEED_BUF	65536
#define CHILD_FD_BASE	10	/* where the child parks fds before dup2 */
#define CHILD_FD_MAX	4096	/* closed in the child without close_range */
#define WAIT_SLICE_MS	250

static char *default_env[] = {
	(char *)"PATH=/usr/local/bin:/usr/bin:/bin",
	(char *)"HOME=/",
	(char *)"LANG=C",
	NULL
};

static int		find_program(const char *, char *, size_t);
static void		child(const char *, char *const[], char *const[],
			    int, int, int, int, const struct spawn_cred *,
			    const char *, pid_t) __attribute__((noreturn));
static void		keep_errline(struct spawn_result *, size_t *, int *,
			    const char *, size_t);
static int		keep_out(const struct spawn_opts *,
			    struct spawn_result *, int);

/* Resolves name like execvp would, but before fork. */
static int
find_program(const char *name, char *out, size_t outlen)
{
	const char *path, *p, *e;
	size_t n;

	if (strchr(name, '/') != NULL) {
		if (str_lcpy(out, name, outlen) >= outlen) {
			errno = ENAMETOOLONG;
			return -1;
		}
		return 0;
	}
	if ((path = getenv("PATH")) == NULL || *path == '\0')
		path = "/usr/local/bin:/usr/bin:/bin";
	for (p = path; ; p = e + 1) {
		e = strchr(p, ':');
		n = e ? (size_t)(e - p) : strlen(p);
		if (n > 0 && (size_t)snprintf(out, outlen, "%.*s/%s", (int)n, p,
		    name) < outlen && access(out, X_OK) == 0)
			return 0;
		if (e == NULL)
			break;
	}
	errno = ENOENT;
	return -1;
}

/*
 * In the child: only async-signal-safe calls.  Any failure is reported
 * to the parent as an errno on execfd.
 */
int
spawn_close_others(const int *keep, size_t n)
{
	unsigned int from = 3, fd;
	size_t i;
	int lowest;

	/* The kept fds in ascending order, one gap closed before each. */
	for (;;) {
		lowest = -1;
		for (i = 0; i < n; i++)
			if (keep[i] >= (int)from &&
			    (lowest == -1 || keep[i] < lowest))
				lowest = keep[i];
		if (lowest == -1)
			break;
		for (fd = from; fd < (unsigned int)lowest; fd++)
			(void)close((int)fd);
		from = (unsigned int)lowest + 1;
	}
#ifdef HAVE_CLOSE_RANGE
	if (close_range(from, ~0U, 0) == 0)
		return 0;
#endif
	for (fd = from; fd < CHILD_FD_MAX; fd++)
		(void)close((int)fd);
	return 0;
}

static void
child(const char *path, char *const argv[], char *const envp[], int infd,
    int outfd, int errfd, int execfd, const struct spawn_cred *cred,
    const char *dir, pid_t parent)
{
	struct sigaction sa;
	sigset_t none;
	int e;

	(void)setpgid(0, 0);
	/* Park the fds above 0..3 so the dup2()s below cannot collide. */
	if ((infd = fcntl(infd, F_DUPFD, CHILD_FD_BASE)) == -1 ||
	    (outfd = fcntl(outfd, F_DUPFD, CHILD_FD_BASE)) == -1 ||
	    (errfd = fcntl(errfd, F_DUPFD, CHILD_FD_BASE)) == -1 ||
	    (execfd = fcntl(execfd, F_DUPFD, CHILD_FD_BASE)) == -1)
		goto fail;
	if (dup2(infd, 0) == -1 || dup2(outfd, 1) == -1 ||
	    dup2(errfd, 2) == -1 || dup2(execfd, 3) == -1 ||
	    fcntl(3, F_SETFD, FD_CLOEXEC) == -1)
		goto fail;
	execfd = 3;
	(void)spawn_close_others(&execfd, 1);
	if (cred != NULL && privs_can_switch()) {
		if (setgroups((size_t)cred->ngroups, cred->groups) == -1 ||
		    setgid(cred->gid) == -1 || setuid(cred->uid) == -1 ||
		    privs_clear_caps() == -1)
			goto fail;
	}
#if defined(HAVE_SYS_PRCTL_H) && defined(PR_SET_PDEATHSIG)
	/*
	 * A runner that is killed takes its delivery programs along.  Set
	 * after setuid(), which clears it; if the parent is already gone,
	 * stop here.
	 */
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
#endif
	if (chdir(dir) == -1)
		goto fail;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	(void)sigaction(SIGPIPE, &sa, NULL);
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
	execve(path, argv, envp);
fail:
	e = errno;
	if (write(execfd, &e, sizeof(e)) < 0)
		_exit(126);
	_exit(127);
}

/* Keeps the first line of stderr, printable; the rest is read and dropped. */
static void
keep_errline(struct spawn_result *res, size_t *len, int *done,
    const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n && !*done; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '\n') {
			*done = 1;
			break;
		}
		if (c == '\r')
			continue;
		if (*len + 1 >= sizeof(res->errline)) {
			*done = 1;
			break;
		}
		res->errline[(*len)++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
		res->errline[*len] = '\0';
	}
}

/*
 * Reads what the program wrote on its standard output into opts->out, as
 * far as it fits; the rest is read and dropped.  -1 when nothing was
 * there yet, 0 at the end, else 1.
 */
static int
keep_out(const struct spawn_opts *opts, struct spawn_result *res, int fd)
{
	char drop[4096];
	size_t room = 0;
	ssize_t n;

	if (opts != NULL && opts->out != NULL && opts->outlen > 0)
		room = opts->outlen - 1 - res->outlen;
	if (room > 0)
		n = read(fd, opts->out + res->outlen, room);
	else
		n = read(fd, drop, sizeof(drop));
	if (n == -1)
		return errno == EINTR || errno == EAGAIN ? -1 : 0;
	if (n == 0)
		return 0;
	if (room > 0) {
		res->outlen += (size_t)n;
		opts->out[res->outlen] = '\0';
	}
	return 1;
}

int
spawn_run(char *const argv[], int infd, spawn_feed_fn feed, void *arg,
    const struct spawn_opts *opts, struct spawn_result *res, char *err,
    size_t errlen)
{
	char path[PATH_MAX], ebuf[4096], *fbuf = NULL;
	size_t foff = 0, flen = 0, elen = 0;
	int errp[2] = { -1, -1 }, execp[2] = { -1, -1 }, inp[2] = { -1, -1 };
	int outp[2] = { -1, -1 };
	int devnull = -1, status, e, eline_done = 0, feeding, erropen = 1;
	int outopen;
	unsigned int timeout;
	long long deadline, left;
	struct pollfd pfd[3];
	ssize_t n;
	pid_t pid, w, parent;
	int np, child_err, naps = 0;

	memset(res, 0, sizeof(*res));
	res->status = -1;
	if (opts != NULL && opts->out != NULL && opts->outlen > 0)
		opts->out[0] = '\0';
	timeout = opts && opts->timeout ? opts->timeout : SPAWN_DEF_TIMEOUT;
	if (timeout > SPAWN_MAX_TIMEOUT)
		timeout = SPAWN_MAX_TIMEOUT;
	if (argv == NULL || argv[0] == NULL) {
		snprintf(err, errlen, "spawn: nothing to run");
		return -1;
	}
	if (find_program(argv[0], path, sizeof(path)) == -1) {
		snprintf(err, errlen, "%.200s: %s", argv[0], strerror(errno));
		return -1;
	}
	if ((devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) == -1 ||
	    pipe2(errp, O_CLOEXEC) == -1 || pipe2(execp, O_CLOEXEC) == -1 ||
	    (infd < 0 && feed != NULL && pipe2(inp, O_CLOEXEC) == -1) ||
	    (opts != NULL && opts->out != NULL &&
	    pipe2(outp, O_CLOEXEC) == -1)) {
		snprintf(err, errlen, "%.200s: %s", argv[0], strerror(errno));
		goto fail;
	}
	if (infd < 0 && feed != NULL && (fbuf = malloc(FEED_BUF)) == NULL) {
		snprintf(err, errlen, "%.200s: out of memory", argv[0]);
		goto fail;
	}
	parent = getpid();
	if ((pid = fork()) == -1) {
		snprintf(err, errlen, "%.200s: fork: %s", argv[0],
		    strerror(errno));
		goto fail;
	}
	if (pid == 0)
		child(path, argv, opts && opts->envp ? opts->envp : default_env,
		    infd >= 0 ? infd : inp[0] != -1 ? inp[0] : devnull,
		    outp[1] != -1 ? outp[1] : devnull, errp[1], execp[1],
		    opts ? opts->cred : NULL,
		    opts && opts->dir ? opts->dir : "/", parent);

	close(errp[1]);
	close(execp[1]);
	errp[1] = execp[1] = -1;
	if (inp[0] != -1) {
		close(inp[0]);
		inp[0] = -1;
	}
	if (outp[1] != -1) {
		close(outp[1]);
		outp[1] = -1;
	}
	close(devnull);
	devnull = -1;
	/* EOF: the exec worked; an int: the child's errno. */
	do
		n = read(execp[0], &child_err, sizeof(child_err));
	while (n == -1 && errno == EINTR);
	close(execp[0]);
	execp[0] = -1;
	if (n == (ssize_t)sizeof(child_err)) {
		while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
			;
		snprintf(err, errlen, "cannot run %.200s: %s", path,
		    strerror(child_err));
		goto fail;
	}

	feeding = inp[1] != -1;
	outopen = outp[0] != -1;
	if (feeding && fcntl(inp[1], F_SETFL, O_NONBLOCK) == -1)
		feeding = 0;
	deadline = net_now_ms() + (long long)timeout * 1000;
	for (;;) {
		/* Refill the feed buffer. */
		if (feeding && foff == flen) {
			n = feed(arg, fbuf, FEED_BUF);
			if (n <= 0) {
				if (n < 0)
					res->feed_error = 1;
				close(inp[1]);
				inp[1] = -1;
				feeding = 0;
				if (res->feed_error) {
					(void)kill(-pid, SIGKILL);
					break;
				}
			} else {
				foff = 0;
				flen = (size_t)n;
			}
		}
		if (!feeding && !erropen && !outopen)
			break;
		np = 0;
		if (erropen) {
			pfd[np].fd = errp[0];
			pfd[np].events = POLLIN;
			np++;
		}
		if (feeding) {
			pfd[np].fd = inp[1];
			pfd[np].events = POLLOUT;
			np++;
		}
		if (outopen) {
			pfd[np].fd = outp[0];
			pfd[np].events = POLLIN;
			np++;
		}
		left = deadline - net_now_ms();
		if (left <= 0) {
			res->timed_out = 1;
			(void)kill(-pid, SIGKILL);
			break;
		}
		if (opts != NULL && opts->cancel != NULL &&
		    __atomic_load_n(opts->cancel, __ATOMIC_RELAXED)) {
			res->cancelled = 1;
			(void)kill(-pid, SIGKILL);
			break;
		}
		if (poll(pfd, (nfds_t)np, (int)(left > WAIT_SLICE_MS ?
		    WAIT_SLICE_MS : left)) == -1) {
			if (errno == EINTR)
				continue;
			snprintf(err, errlen, "%.200s: poll: %s", argv[0],
			    strerror(errno));
			(void)kill(-pid, SIGKILL);
			while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
				;
			goto fail;
		}
		for (e = 0; e < np; e++) {
			if (pfd[e].revents == 0)
				continue;
			if (pfd[e].fd == errp[0]) {
				n = read(errp[0], ebuf, sizeof(ebuf));
				if (n > 0)
					keep_errline(res, &elen, &eline_done,
					    ebuf, (size_t)n);
				else if (n == 0 || errno != EINTR)
					erropen = 0;
			} else if (pfd[e].fd == outp[0]) {
				if (keep_out(opts, res, outp[0]) == 0)
					outopen = 0;
			} else {
				n = write(inp[1], fbuf + foff, flen - foff);
				if (n > 0)
					foff += (size_t)n;
				else if (n == -1 && errno != EAGAIN &&
				    errno != EINTR) {
					/* It stopped reading: its exit counts. */
					close(inp[1]);
					inp[1] = -1;
					feeding = 0;
				}
			}
		}
		/*
		 * A program whose own children keep stderr open has still
		 * finished when it exits.
		 */
		if ((erropen || outopen) && !feeding) {
			w = waitpid(pid, &status, WNOHANG);
			if (w == pid)
				goto reaped;
		}
	}
	/* Wait for the exit, within what is left of the timeout. */
	for (;;) {
		w = waitpid(pid, &status, res->timed_out || res->cancelled ||
		    res->feed_error ? 0 : WNOHANG);
		if (w == pid)
			break;
		if (w == -1 && errno != EINTR) {
			snprintf(err, errlen, "%.200s: waitpid: %s", argv[0],
			    strerror(errno));
			goto fail;
		}
		if (w == 0) {
			struct timespec ts = { 0, 0 };

			if (net_now_ms() >= deadline) {
				res->timed_out = 1;
				(void)kill(-pid, SIGKILL);
				continue;
			}
			if (opts != NULL && opts->cancel != NULL &&
			    __atomic_load_n(opts->cancel, __ATOMIC_RELAXED)) {
				res->cancelled = 1;
				(void)kill(-pid, SIGKILL);
				continue;
			}
			/* It has closed its output: the exit is near. */
			ts.tv_nsec = (long)(naps < 10 ? naps + 1 : 10) * 1000000L;
			naps++;
			nanosleep(&ts, NULL);
		}
	}
reaped:
	if (erropen && fcntl(errp[0], F_SETFL, O_NONBLOCK) == 0) {
		/* What it wrote before exiting, without waiting for more. */
		for (e = 0; e < 16; e++) {
			n = read(errp[0], ebuf, sizeof(ebuf));
			if (n <= 0)
				break;
			keep_errline(res, &elen, &eline_done, ebuf, (size_t)n);
		}
	}
	if (outopen && fcntl(outp[0], F_SETFL, O_NONBLOCK) == 0)
		for (e = 0; e < 16 && keep_out(opts, res, outp[0]) > 0; e++)
			;
	if (WIFEXITED(status))
		res->status = WEXITSTATUS(status);
	else if (WIFSIGNALED(status))
		res->signal = WTERMSIG(status);
	if (errp[0] != -1)
		close(errp[0]);
	if (inp[1] != -1)
		close(inp[1]);
	if (outp[0] != -1)
		close(outp[0]);
	free(fbuf);
	return 0;
fail:
	e = errno;
	if (devnull != -1)
		close(devnull);
	for (np = 0; np < 2; np++) {
		if (errp[np] != -1)
			close(errp[np]);
		if (execp[np] != -1)
			close(execp[np]);
		if (inp[np] != -1)
			close(inp[np]);
		if (outp[np] != -1)
			close(outp[np]);
	}
	free(fbuf);
	errno = e;
	return -1;
}
