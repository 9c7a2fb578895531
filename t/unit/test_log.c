#include "config.h"

#include <sys/wait.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "tests.h"

/* Logs one line to standard error and returns it, read from a pipe. */
static ssize_t
logged(const char *what, char *buf, size_t len)
{
	int p[2], saved;
	ssize_t n;

	CU_ASSERT_FATAL(pipe(p) == 0);
	saved = dup(2);
	CU_ASSERT_FATAL(saved != -1 && dup2(p[1], 2) != -1);
	close(p[1]);
	log_info("%s", what);
	CU_ASSERT_FATAL(dup2(saved, 2) != -1);
	close(saved);
	n = read(p[0], buf, len - 1);
	close(p[0]);
	buf[n > 0 ? n : 0] = '\0';
	return n;
}

/* The pid in each line is the logging process's, in a forked child too. */
static void
test_pid_after_fork(void)
{
	char line[512], want[64];
	int p[2], status;
	pid_t child;
	ssize_t n;

	log_init("unit", 1, 0);
	CU_ASSERT(logged("parent", line, sizeof(line)) > 0);
	snprintf(want, sizeof(want), " unit[%ld]: parent\n", (long)getpid());
	CU_ASSERT_PTR_NOT_NULL(strstr(line, want));

	CU_ASSERT_FATAL(pipe(p) == 0);
	if ((child = fork()) == 0) {
		close(p[0]);
		n = logged("child", line, sizeof(line));
		_exit(n > 0 && write(p[1], line, (size_t)n) == n ? 0 : 1);
	}
	CU_ASSERT_FATAL(child > 0);
	close(p[1]);
	n = read(p[0], line, sizeof(line) - 1);
	close(p[0]);
	line[n > 0 ? n : 0] = '\0';
	CU_ASSERT(waitpid(child, &status, 0) == child && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 0);
	snprintf(want, sizeof(want), " unit[%ld]: child\n", (long)child);
	CU_ASSERT_PTR_NOT_NULL(strstr(line, want));
}

/* 1 if line starts with the UTC date and time of one of the two instants. */
static int
stamped(const char *line, const struct timespec *a, const struct timespec *b)
{
	char want[32];
	struct tm tm;
	size_t n;

	gmtime_r(&a->tv_sec, &tm);
	n = strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%S.", &tm);
	if (strncmp(line, want, n) == 0)
		return 1;
	gmtime_r(&b->tv_sec, &tm);
	n = strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%S.", &tm);
	return strncmp(line, want, n) == 0;
}

/* Each line carries the time it was logged, across a change of second. */
static void
test_stamp_follows_clock(void)
{
	const struct timespec pause = { 1, 100 * 1000 * 1000 };
	struct timespec before, after;
	char line[512];
	int i;

	log_init("unit", 1, 0);
	for (i = 0; i < 3; i++) {
		if (i > 0)
			nanosleep(&pause, NULL);
		clock_gettime(CLOCK_REALTIME, &before);
		CU_ASSERT_FATAL(logged("tick", line, sizeof(line)) > 0);
		clock_gettime(CLOCK_REALTIME, &after);
		CU_ASSERT(stamped(line, &before, &after));
	}
}

/* Control characters in what is logged cannot start a line of their own. */
static void
test_control_characters_neutralised(void)
{
	char line[512];

	log_init("unit", 1, 0);
	CU_ASSERT_FATAL(logged("bad\r\nfake: smtp connect\x1b[2J\x7f end",
	    line, sizeof(line)) > 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(line,
	    ": bad??fake: smtp connect?[2J? end\n"));
	CU_ASSERT_EQUAL(strchr(line, '\n'), line + strlen(line) - 1);
}

int
suite_log(void)
{
	CU_pSuite s = CU_add_suite("log", NULL, NULL);

	if (s == NULL ||
	    CU_add_test(s, "pid after fork", test_pid_after_fork) == NULL ||
	    CU_add_test(s, "time stamp", test_stamp_follows_clock) == NULL ||
	    CU_add_test(s, "control characters neutralised",
	    test_control_characters_neutralised) == NULL)
		return -1;
	return 0;
}
