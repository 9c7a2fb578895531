#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/net.h"
#include "tests.h"
#include "testutil.h"

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

/* Connects without blocking until the listener at sun refuses one. */
static int
fill_backlog(const struct sockaddr_un *sun, int *fds, int max)
{
	int n, fd;

	for (n = 0; n < max; n++) {
		if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0)) == -1)
			break;
		if (connect(fd, (const struct sockaddr *)sun,
		    sizeof(*sun)) == -1) {
			close(fd);
			return errno == EAGAIN ? n : -1;
		}
		fds[n] = fd;
	}
	return -1;
}

/*
 * A unix listener whose backlog is full: connecting waits (no socket
 * that is not connected), until the deadline or until an accept makes
 * room; the connection then works, non-blocking.
 */
static void
test_connect_full_backlog(void)
{
	char dir[64], path[100];
	struct sockaddr_un sun;
	int lfd, fds[64], n, i, fd, fl, st;
	long long t0;
	pid_t pid;

	CU_ASSERT_FATAL(tu_mkdtemp(dir, sizeof(dir)) == 0);
	snprintf(path, sizeof(path), "%s/l.sock", dir);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	CU_ASSERT_FATAL((lfd = socket(AF_UNIX, SOCK_STREAM, 0)) != -1);
	CU_ASSERT_FATAL(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)) == 0);
	CU_ASSERT_FATAL(listen(lfd, 1) == 0);
	n = fill_backlog(&sun, fds, 64);
	CU_ASSERT_FATAL(n > 0);

	t0 = net_now_ms();
	errno = 0;
	CU_ASSERT_EQUAL(net_connect(path, NULL, NULL, t0 + 300), -1);
	CU_ASSERT_EQUAL(errno, ETIMEDOUT);
	CU_ASSERT(net_now_ms() - t0 >= 300);

	/* A child accepts one after a while: the waiting connect gets in. */
	if ((pid = fork()) == 0) {
		usleep(200 * 1000);
		_exit(accept(lfd, NULL, NULL) == -1 ? 1 : 0);
	}
	CU_ASSERT_FATAL(pid != -1);
	fd = net_connect(path, NULL, NULL, net_now_ms() + 10000);
	CU_ASSERT(fd != -1);
	CU_ASSERT(waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
	    WEXITSTATUS(st) == 0);
	if (fd != -1) {
		CU_ASSERT(send(fd, "x", 1, MSG_NOSIGNAL) == 1);
		CU_ASSERT((fl = fcntl(fd, F_GETFL)) != -1 &&
		    (fl & O_NONBLOCK) != 0);
		close(fd);
	}
	for (i = 0; i < n; i++)
		close(fds[i]);
	close(lfd);
	tu_rmtree(dir);
}

int
suite_net(void)
{
	CU_pSuite s = CU_add_suite("net", NULL, NULL);

	if (s == NULL ||
	    CU_add_test(s, "sending all before a deadline", test_send_all) ==
	    NULL ||
	    CU_add_test(s, "connecting to a full unix listener",
	    test_connect_full_backlog) == NULL)
		return -1;
	return 0;
}
