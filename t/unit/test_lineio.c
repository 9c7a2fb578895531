#include "config.h"

#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/lineio.h"
#include "tests.h"

/*
 * A lineio on one end of a socketpair, no timeout set yet (a park time is
 * set before the first).
 */
static struct lineio *
bare_pair(int sv[2], size_t inmax)
{
	struct lineio *l;

	CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	l = lineio_new(sv[0], sv[0], inmax);
	CU_ASSERT_FATAL(l != NULL);
	return l;
}

/* A lineio reading what we write into the other end of a socketpair. */
static struct lineio *
pair(int sv[2], const char *input, size_t inmax)
{
	struct lineio *l = bare_pair(sv, inmax);

	if (input != NULL)
		CU_ASSERT_FATAL(write(sv[1], input, strlen(input)) ==
		    (ssize_t)strlen(input));
	lineio_set_timeout(l, 2000);
	return l;
}

static void
test_lines_and_eof(void)
{
	int sv[2];
	struct lineio *l = pair(sv, "HELO a\r\nNOOP\nlast", 64);
	char *p;
	size_t n;

	CU_ASSERT_EQUAL(lineio_getline(l, &p, &n), 1);
	CU_ASSERT_EQUAL(n, 8);
	CU_ASSERT_NSTRING_EQUAL(p, "HELO a\r\n", 8);
	CU_ASSERT_EQUAL(lineio_getline(l, &p, &n), 1);
	CU_ASSERT_EQUAL(n, 5);
	CU_ASSERT_EQUAL(lineio_pending(l), 4);
	close(sv[1]);
	/* An unterminated last line is not a line. */
	CU_ASSERT_EQUAL(lineio_getline(l, &p, &n), 0);
	lineio_free(&l);
	CU_ASSERT_PTR_NULL(l);
	close(sv[0]);
}

static void
test_too_long_is_discarded(void)
{
	char big[200];
	int sv[2];
	struct lineio *l;
	char *p;
	size_t n;

	memset(big, 'x', sizeof(big) - 3);
	memcpy(big + sizeof(big) - 3, "\r\n", 3);
	l = pair(sv, big, 32);
	CU_ASSERT_FATAL(write(sv[1], "NEXT\r\n", 6) == 6);
	CU_ASSERT_EQUAL(lineio_getline(l, &p, &n), -2);
	/* The reader is in step again after the long line. */
	CU_ASSERT_EQUAL(lineio_getline(l, &p, &n), 1);
	CU_ASSERT_NSTRING_EQUAL(p, "NEXT\r\n", 6);
	lineio_free(&l);
	close(sv[0]);
	close(sv[1]);
}

static void
test_chunks_never_split_crlf(void)
{
	int sv[2];
	struct lineio *l;
	char *p;
	size_t n, total = 0;
	int eol, pieces = 0;
	char line[40];

	/* 15 bytes then CR LF, with a buffer of 16: the CR must stay with LF. */
	memset(line, 'a', 15);
	memcpy(line + 15, "\r\n", 3);
	l = pair(sv, line, 16);
	for (;;) {
		CU_ASSERT_EQUAL_FATAL(lineio_getchunk(l, &p, &n, &eol), 1);
		total += n;
		pieces++;
		if (eol) {
			CU_ASSERT_TRUE(n >= 2 && p[n - 2] == '\r');
			break;
		}
		CU_ASSERT_NOT_EQUAL(p[n - 1], '\r');
		CU_ASSERT_FATAL(pieces < 5);
	}
	CU_ASSERT_EQUAL(total, 17);
	lineio_free(&l);
	close(sv[0]);
	close(sv[1]);
}

static void
test_timeout(void)
{
	int sv[2];
	struct lineio *l = pair(sv, NULL, 64);
	char *p;
	size_t n;

	lineio_set_timeout(l, 50);
	CU_ASSERT_EQUAL(lineio_getline(l, &p, &n), -1);
	CU_ASSERT_EQUAL(errno, ETIMEDOUT);
	lineio_free(&l);
	close(sv[0]);
	close(sv[1]);
}

/*
 * A line deadline shorter than the idle timeout: silence ends the line as
 * idle, half a line as the deadline.
 */
static void
test_line_deadline_names_the_end(void)
{
	int sv[2];
	struct lineio *l = pair(sv, NULL, 64);
	char *p;
	size_t n;

	lineio_set_timeout(l, 400);
	lineio_set_line_deadline(l, 50);
	CU_ASSERT_EQUAL(lineio_getline(l, &p, &n), -1);
	CU_ASSERT_EQUAL(lineio_end(l), LINEIO_IDLE);
	CU_ASSERT_FATAL(write(sv[1], "MAIL FROM", 9) == 9);
	CU_ASSERT_EQUAL(lineio_getline(l, &p, &n), -1);
	CU_ASSERT_EQUAL(lineio_end(l), LINEIO_LINE_DEADLINE);
	lineio_free(&l);
	close(sv[0]);
	close(sv[1]);
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * A caller that waited for the line's first byte itself (a parked session)
 * says since when: the deadline counts from then, not from the call.
 */
static void
test_line_begun_earlier(void)
{
	int sv[2];
	struct lineio *l = pair(sv, NULL, 64);
	long long t0;
	char *p;
	size_t n;

	lineio_set_timeout(l, 5000);
	lineio_set_line_deadline(l, 1000);
	CU_ASSERT_FATAL(write(sv[1], "MAIL FROM", 9) == 9);
	t0 = now_ms();
	lineio_line_begun(l, t0 - 900);
	CU_ASSERT_EQUAL(lineio_getline(l, &p, &n), -1);
	CU_ASSERT_EQUAL(lineio_end(l), LINEIO_LINE_DEADLINE);
	CU_ASSERT(now_ms() - t0 < 600);
	/* Once only: the next line has its whole deadline again. */
	CU_ASSERT_FATAL(write(sv[1], "\r\nRCPT", 6) == 6);
	t0 = now_ms();
	CU_ASSERT_EQUAL(lineio_getline(l, &p, &n), 1);
	CU_ASSERT_EQUAL(lineio_getline(l, &p, &n), -1);
	CU_ASSERT(now_ms() - t0 >= 900);
	lineio_free(&l);
	close(sv[0]);
	close(sv[1]);
}

/*
 * The socket's own timeouts are set once, to the first value: a shorter
 * timeout set later still holds (the 2 s of pair() must not bound it).
 */
static void
test_shorter_timeout_later(void)
{
	int sv[2];
	struct lineio *l = pair(sv, NULL, 64);
	long long t0;
	char *p;
	size_t n;

	lineio_set_timeout(l, 50);
	t0 = now_ms();
	CU_ASSERT_EQUAL(lineio_getline(l, &p, &n), -1);
	CU_ASSERT_EQUAL(errno, ETIMEDOUT);
	CU_ASSERT_EQUAL(lineio_end(l), LINEIO_IDLE);
	CU_ASSERT(now_ms() - t0 < 1500);
	lineio_free(&l);
	close(sv[0]);
	close(sv[1]);
}

/* ... and a longer one is not cut short by the socket's first. */
static void
test_longer_timeout_later(void)
{
	int sv[2];
	struct lineio *l = bare_pair(sv, 64);
	pid_t child;
	char *p;
	size_t n;
	int status;

	lineio_set_timeout(l, 100);
	lineio_set_timeout(l, 5000);
	if ((child = fork()) == 0) {
		usleep(400 * 1000);
		_exit(write(sv[1], "late\r\n", 6) == 6 ? 0 : 1);
	}
	CU_ASSERT_FATAL(child > 0);
	CU_ASSERT_EQUAL(lineio_getline(l, &p, &n), 1);
	CU_ASSERT_EQUAL(n, 6);
	CU_ASSERT(waitpid(child, &status, 0) == child && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 0);
	lineio_free(&l);
	close(sv[0]);
	close(sv[1]);
}

static void
test_output_flushed_before_blocking(void)
{
	int sv[2];
	struct lineio *l = pair(sv, "A\r\nB\r\n", 64);
	char *p, got[64];
	size_t n;
	ssize_t r;

	CU_ASSERT_EQUAL(lineio_getline(l, &p, &n), 1);
	CU_ASSERT_EQUAL(lineio_printf(l, "250 a\r\n"), 0);
	CU_ASSERT_EQUAL(lineio_getline(l, &p, &n), 1);
	CU_ASSERT_EQUAL(lineio_printf(l, "250 b\r\n"), 0);
	/* Both replies are still buffered: input was there, no need to wait. */
	CU_ASSERT_EQUAL(lineio_unflushed(l), 14);
	/* Waiting for more input must first write the group out, in one go. */
	lineio_set_timeout(l, 50);
	CU_ASSERT_EQUAL(lineio_getline(l, &p, &n), -1);
	CU_ASSERT_EQUAL(lineio_unflushed(l), 0);
	r = read(sv[1], got, sizeof(got));
	CU_ASSERT_EQUAL(r, 14);
	CU_ASSERT_NSTRING_EQUAL(got, "250 a\r\n250 b\r\n", 14);
	lineio_free(&l);
	close(sv[0]);
	close(sv[1]);
}

/*
 * Parking at once: with nothing to read, LINEIO_PARKED without the park
 * time's wait, the replies written first; a line already there is read.
 */
static void
test_park_at_once(void)
{
	int sv[2];
	struct lineio *l = bare_pair(sv, 64);
	struct timespec t0, t1;
	char *p, got[16];
	size_t n;
	long ms;

	lineio_set_park(l, 3000);
	lineio_set_timeout(l, 5000);
	CU_ASSERT_EQUAL(lineio_printf(l, "220 hi\r\n"), 0);
	(void)clock_gettime(CLOCK_MONOTONIC, &t0);
	CU_ASSERT_EQUAL(lineio_getline_parkable(l, 1, &p, &n), LINEIO_PARKED);
	(void)clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 +
	    (t1.tv_nsec - t0.tv_nsec) / 1000000;
	CU_ASSERT(ms < 1500);
	CU_ASSERT_EQUAL(read(sv[1], got, sizeof(got)), 8);
	CU_ASSERT_NSTRING_EQUAL(got, "220 hi\r\n", 8);
	CU_ASSERT_FATAL(write(sv[1], "EHLO x\r\n", 8) == 8);
	CU_ASSERT_EQUAL(lineio_getline_parkable(l, 1, &p, &n), 1);
	CU_ASSERT_EQUAL(n, 8);
	lineio_free(&l);
	close(sv[0]);
	close(sv[1]);
}

static void
test_read_exact(void)
{
	int sv[2];
	struct lineio *l = pair(sv, "0123456789", 64);
	char *p;
	size_t n;

	CU_ASSERT_EQUAL(lineio_read(l, &p, &n, 4), 1);
	CU_ASSERT_EQUAL(n, 4);
	CU_ASSERT_NSTRING_EQUAL(p, "0123", 4);
	CU_ASSERT_EQUAL(lineio_read(l, &p, &n, 100), 1);
	CU_ASSERT_EQUAL(n, 6);
	lineio_free(&l);
	close(sv[0]);
	close(sv[1]);
}

int
suite_lineio(void)
{
	CU_pSuite s = CU_add_suite("lineio", NULL, NULL);

	if (s == NULL ||
	    CU_add_test(s, "lines and EOF", test_lines_and_eof) == NULL ||
	    CU_add_test(s, "too long line is discarded", test_too_long_is_discarded) == NULL ||
	    CU_add_test(s, "chunks keep CR with LF", test_chunks_never_split_crlf) == NULL ||
	    CU_add_test(s, "read timeout", test_timeout) == NULL ||
	    CU_add_test(s, "line deadline or idle", test_line_deadline_names_the_end) == NULL ||
	    CU_add_test(s, "line begun before the call", test_line_begun_earlier) == NULL ||
	    CU_add_test(s, "shorter timeout later", test_shorter_timeout_later) == NULL ||
	    CU_add_test(s, "longer timeout later", test_longer_timeout_later) == NULL ||
	    CU_add_test(s, "pipelined output flushed before blocking", test_output_flushed_before_blocking) == NULL ||
	    CU_add_test(s, "park at once", test_park_at_once) == NULL ||
	    CU_add_test(s, "read exact counts", test_read_exact) == NULL)
		return -1;
	return 0;
}
