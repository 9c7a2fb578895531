#include "config.h"

#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/net.h"
#include "tests.h"

/* A socket pair whose send buffer holds little, for filling it. */
static int
small_pair(int sv[2])
{
	int size = 4096;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
		return -1;
	(void)setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	(void)setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	return 0;
}

/*
 * All of a buffer larger than the socket holds arrives, with a reader;
 * without one the deadline ends the wait even on a blocking socket; a
 * gone peer is EPIPE, and no SIGPIPE kills the test.
 */
static void
test_send_all(void)
{
	enum { LEN = 512 * 1024 };
	char *buf, *got;
	size_t n = 0;
	ssize_t r;
	pid_t pid;
	long long t0;
	int sv[2], st;

	buf = malloc(LEN);
	got = malloc(LEN);
	CU_ASSERT_FATAL(buf != NULL && got != NULL);
	for (n = 0; n < LEN; n++)
		buf[n] = (char)(n * 7);
	CU_ASSERT_FATAL(small_pair(sv) == 0);
	if ((pid = fork()) == 0) {
		close(sv[1]);
		_exit(net_send_all(sv[0], buf, LEN, net_now_ms() + 10000) ==
		    0 ? 0 : 1);
	}
	CU_ASSERT_FATAL(pid != -1);
	close(sv[0]);
	for (n = 0; n < LEN; n += (size_t)r)
		if ((r = read(sv[1], got + n, LEN - n)) <= 0)
			break;
	CU_ASSERT_EQUAL(n, LEN);
	CU_ASSERT(memcmp(buf, got, LEN) == 0);
	CU_ASSERT(waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
	    WEXITSTATUS(st) == 0);
	close(sv[1]);

	CU_ASSERT_FATAL(small_pair(sv) == 0);
	t0 = net_now_ms();
	errno = 0;
	CU_ASSERT_EQUAL(net_send_all(sv[0], buf, LEN, t0 + 200), -1);
	CU_ASSERT_EQUAL(errno, ETIMEDOUT);
	CU_ASSERT(net_now_ms() - t0 >= 200);
	close(sv[1]);
	errno = 0;
	CU_ASSERT_EQUAL(net_send_all(sv[0], buf, 10, t0 + 10000), -1);
	CU_ASSERT_EQUAL(errno, EPIPE);
	close(sv[0]);
	free(buf);
	free(got);
}

int
suite_net(void)
{
	CU_pSuite s = CU_add_suite("net", NULL, NULL);

	if (s == NULL ||
	    CU_add_test(s, "sending all before a deadline", test_send_all) ==
	    NULL)
		return -1;
	return 0;
}
