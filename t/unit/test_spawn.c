#include "config.h"

#include <sys/stat.h>
#include <sys/wait.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "queue/agent.h"
#include "lib/spawn.h"
#include "queue/queueconf.h"
#include "tests.h"
#include "testutil.h"

static int
sh(const char *script, unsigned int timeout, struct spawn_result *res,
    spawn_feed_fn feed, void *arg, int infd)
{
	char *argv[] = { (char *)"/bin/sh", (char *)"-c", (char *)script, NULL };
	struct spawn_opts opts;
	char err[256];

	memset(&opts, 0, sizeof(opts));
	opts.timeout = timeout;
	if (infd < 0 && feed == NULL)
		infd = STDIN_FILENO;
	return spawn_run(argv, infd, feed, arg, &opts, res, err, sizeof(err));
}

struct counter {
	size_t	left;
};

static ssize_t
feed_x(void *arg, char *buf, size_t len)
{
	struct counter *c = arg;
	size_t n = c->left < len ? c->left : len;

	memset(buf, 'x', n);
	c->left -= n;
	return (ssize_t)n;
}

static void
test_exit_and_stderr(void)
{
	struct spawn_result res;

	CU_ASSERT_EQUAL_FATAL(sh("exit 3", 10, &res, NULL, NULL, -1), 0);
	CU_ASSERT_EQUAL(res.status, 3);
	CU_ASSERT_EQUAL(res.timed_out, 0);
	CU_ASSERT_EQUAL_FATAL(sh("printf 'first\\tline\\r\\nsecond\\n' >&2; "
	    "exit 1", 10, &res, NULL, NULL, -1), 0);
	CU_ASSERT_EQUAL(res.status, 1);
	CU_ASSERT_STRING_EQUAL(res.errline, "first?line");
	CU_ASSERT_EQUAL_FATAL(sh("kill -9 $$", 10, &res, NULL, NULL, -1), 0);
	CU_ASSERT_EQUAL(res.status, -1);
	CU_ASSERT_EQUAL(res.signal, 9);
}

static void
test_feed(void)
{
	struct spawn_result res;
	struct counter c = { 300000 };

	/* More than a pipe holds: the feeding must interleave. */
	CU_ASSERT_EQUAL_FATAL(sh("wc -c >&2", 10, &res, feed_x, &c, -1), 0);
	CU_ASSERT_EQUAL(res.status, 0);
	CU_ASSERT_STRING_EQUAL(res.errline, "300000");
	/* A program that reads nothing still has its exit status counted. */
	c.left = 300000;
	CU_ASSERT_EQUAL_FATAL(sh("exit 0", 10, &res, feed_x, &c, -1), 0);
	CU_ASSERT_EQUAL(res.status, 0);
}

static void
test_timeout(void)
{
	struct spawn_result res;

	CU_ASSERT_EQUAL_FATAL(sh("sleep 30", 1, &res, NULL, NULL, -1), 0);
	CU_ASSERT_EQUAL(res.timed_out, 1);
	CU_ASSERT_EQUAL(res.status, -1);
	/* Exited, though a child of it keeps stderr open. */
	CU_ASSERT_EQUAL_FATAL(sh("(sleep 30 &) ; echo done >&2; exit 4", 20,
	    &res, NULL, NULL, -1), 0);
	CU_ASSERT_EQUAL(res.timed_out, 0);
	CU_ASSERT_EQUAL(res.status, 4);
	CU_ASSERT_STRING_EQUAL(res.errline, "done");
}

static void
test_output_and_group(void)
{
	char *argv[] = { (char *)"/bin/sh", (char *)"-c", NULL, NULL };
	char out[8], pidfile[] = "/tmp/spawn-test.XXXXXX", cmd[256];
	struct spawn_opts opts;
	struct spawn_result res;
	char err[256];
	FILE *f;
	long bg = 0;
	int fd;

	/* Standard output kept as far as it fits; no feed: /dev/null in. */
	memset(&opts, 0, sizeof(opts));
	opts.timeout = 10;
	opts.out = out;
	opts.outlen = sizeof(out);
	argv[2] = (char *)"cat; echo 0123456789; echo more >&2";
	CU_ASSERT_EQUAL_FATAL(spawn_run(argv, -1, NULL, NULL, &opts, &res,
	    err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(res.status, 0);
	CU_ASSERT_EQUAL(res.outlen, 7);
	CU_ASSERT_STRING_EQUAL(out, "0123456");
	CU_ASSERT_STRING_EQUAL(res.errline, "more");

	/* The timeout kills the whole group, not only the program. */
	CU_ASSERT_FATAL((fd = mkstemp(pidfile)) != -1);
	close(fd);
	snprintf(cmd, sizeof(cmd), "sleep 60 & echo $! > %s; exec sleep 60",
	    pidfile);
	argv[2] = cmd;
	opts.timeout = 1;
	CU_ASSERT_EQUAL_FATAL(spawn_run(argv, -1, NULL, NULL, &opts, &res,
	    err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(res.timed_out, 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f = fopen(pidfile, "r"));
	CU_ASSERT_EQUAL(fscanf(f, "%ld", &bg), 1);
	fclose(f);
	unlink(pidfile);
	CU_ASSERT(bg > 1 && tu_pid_gone((pid_t)bg));
	if (bg > 1 && !tu_pid_gone((pid_t)bg))
		(void)kill((pid_t)bg, SIGKILL);
}

static void
test_not_started(void)
{
	char *argv[] = { (char *)"/nonexistent/prog", NULL };
	char *argv2[] = { (char *)"no-such-program-anywhere", NULL };
	struct spawn_result res;
	char err[256];

	CU_ASSERT_EQUAL(spawn_run(argv, 0, NULL, NULL, NULL, &res, err,
	    sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "No such file"));
	CU_ASSERT_EQUAL(spawn_run(argv2, 0, NULL, NULL, NULL, &res, err,
	    sizeof(err)), -1);
}

static void
test_reply(void)
{
	static const struct {
		int		 status, timed_out;
		const char	*errline;
		int		 code;
		const char	*want;
	} cases[] = {
		{ 0, 0, "", 250, "250 2.0.0 Ok: delivered" },
		{ 75, 0, "mailbox locked", 451, "451 4.3.0 mailbox locked" },
		{ 75, 0, "", 451, "451 4.3.0 Temporary failure" },
		{ 67, 0, "no such user", 554, "554 5.3.0 no such user" },
		{ 1, 0, "", 554, "554 5.3.0 Delivery failed (mailer exit status 1)" },
		{ -1, 1, "", 451, "451 4.4.7 Mailer timed out" },
		{ -1, 0, "", 451, "451 4.3.0 Mailer ended by signal" },
	};
	struct spawn_result res;
	char buf[300];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&res, 0, sizeof(res));
		res.status = cases[i].status;
		res.timed_out = cases[i].timed_out;
		snprintf(res.errline, sizeof(res.errline), "%s", cases[i].errline);
		CU_ASSERT_EQUAL(agent_pipe_reply(&res, buf, sizeof(buf)),
		    cases[i].code);
		CU_ASSERT_EQUAL(strncmp(buf, cases[i].want,
		    strlen(cases[i].want)), 0);
	}
}

static void
test_handoff(void)
{
	const char *rcpts[] = { "a@example.com", "b@example.com" };
	static const char text[] = "#!/bin/sh\n[ \"$1\" = -r ] || exit 64\n"
	    "[ \"$2\" = -- ] || exit 64\n"
	    "[ \"$4\" = b@example.com ] || exit 64\n"
	    "read -r from sender rest\n"
	    "[ \"$from $sender\" = \"From s@example.org\" ] || exit 66\n"
	    "[ \"$(cat)\" = hello ] || { echo wrong input >&2; exit 65; }\n";
	static struct queue_conf qc;
	struct agent_handoff h;
	char reply[300], script[] = "/tmp/mailer-test.XXXXXX";
	FILE *msg;
	int fd;

	/* "mailer -r -- rcpt..." with the message on stdin, CRLF made LF. */
	CU_ASSERT((fd = mkstemp(script)) != -1);
	CU_ASSERT(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);
	CU_ASSERT_EQUAL(chmod(script, 0700), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(msg = tmpfile());
	fputs("envelope\nhello\r\n", msg);
	fflush(msg);
	memset(&h, 0, sizeof(h));
	h.mailer = script;
	h.timeout = 10;
	h.qc = &qc;
	h.id = "test";
	h.sender = "s@example.org";
	h.rcpts = rcpts;
	h.nrcpts = 2;
	h.fd = fileno(msg);
	/* From the current offset: what is before is not the message. */
	CU_ASSERT_EQUAL(lseek(h.fd, 9, SEEK_SET), 9);
	CU_ASSERT_EQUAL(agent_pipe_handoff(&h, reply, sizeof(reply)), 250);
	CU_ASSERT_STRING_EQUAL(reply, "250 2.0.0 Ok: delivered");
	h.nrcpts = 1;
	CU_ASSERT_EQUAL(agent_pipe_handoff(&h, reply, sizeof(reply)), 554);
	CU_ASSERT_STRING_EQUAL(reply, "554 5.3.0 Delivery failed (mailer exit "
	    "status 64)");
	h.nrcpts = 2;
	CU_ASSERT_EQUAL(lseek(h.fd, 0, SEEK_SET), 0);
	CU_ASSERT_EQUAL(agent_pipe_handoff(&h, reply, sizeof(reply)), 554);
	CU_ASSERT_STRING_EQUAL(reply, "554 5.3.0 wrong input");
	fclose(msg);
	unlink(script);
}

/* A forked child keeps only what it was told to keep. */
static void
test_close_others(void)
{
	int p[2], a[2], keep[2], status;
	char seen[4];
	pid_t pid;

	CU_ASSERT_FATAL(pipe(p) == 0);
	CU_ASSERT_FATAL(pipe(a) == 0);
	pid = fork();
	CU_ASSERT_FATAL(pid != -1);
	if (pid == 0) {
		keep[0] = p[1];
		keep[1] = a[0];
		(void)spawn_close_others(keep, 2);
		seen[0] = fcntl(p[1], F_GETFD) != -1 ? 'y' : 'n';
		seen[1] = fcntl(a[0], F_GETFD) != -1 ? 'y' : 'n';
		seen[2] = fcntl(a[1], F_GETFD) != -1 ? 'y' : 'n';
		seen[3] = fcntl(p[0], F_GETFD) != -1 ? 'y' : 'n';
		_exit(write(p[1], seen, sizeof(seen)) == sizeof(seen) ? 0 : 1);
	}
	close(p[1]);
	close(a[0]);
	close(a[1]);
	memset(seen, 0, sizeof(seen));
	CU_ASSERT(read(p[0], seen, sizeof(seen)) == (ssize_t)sizeof(seen));
	CU_ASSERT(memcmp(seen, "yynn", 4) == 0);
	CU_ASSERT(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 0);
	close(p[0]);
}

int
suite_spawn(void)
{
	CU_pSuite s = CU_add_suite("spawn", NULL, NULL);

	signal(SIGPIPE, SIG_IGN);
	if (s == NULL ||
	    CU_add_test(s, "exit status and stderr", test_exit_and_stderr) ==
	    NULL ||
	    CU_add_test(s, "feeding input", test_feed) == NULL ||
	    CU_add_test(s, "timeout", test_timeout) == NULL ||
	    CU_add_test(s, "output and the process group",
	    test_output_and_group) == NULL ||
	    CU_add_test(s, "cannot start", test_not_started) == NULL ||
	    CU_add_test(s, "SMTP replies", test_reply) == NULL ||
	    CU_add_test(s, "Plan 9 hand-off", test_handoff) == NULL ||
	    CU_add_test(s, "a child closes what it does not keep",
	    test_close_others) == NULL)
		return -1;
	return 0;
}
