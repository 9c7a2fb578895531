#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/throttle.h"
#include "tests.h"
#include "testutil.h"

/* A few addresses to throttle; each call gets its own slot. */
static const struct sockaddr *
addr(const char *s)
{
	static struct sockaddr_storage ss[8];
	static unsigned int next;
	struct sockaddr_storage *p = &ss[next++ % 8];
	struct sockaddr_in *sin = (struct sockaddr_in *)p;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)p;

	memset(p, 0, sizeof(*p));
	if (inet_pton(AF_INET, s, &sin->sin_addr) == 1)
		sin->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, s, &sin6->sin6_addr) == 1)
		sin6->sin6_family = AF_INET6;
	else
		abort();
	return (const struct sockaddr *)p;
}

static struct throttle *
make(unsigned int max_failures, unsigned int window, unsigned int block,
    unsigned int delay, unsigned int max_delay, unsigned int gfail,
    unsigned int table)
{
	struct throttle_conf c;
	struct throttle *t;
	char err[256];

	throttle_conf_defaults(&c);
	c.max_failures = max_failures;
	c.window = window;
	c.block = block;
	c.delay_ms = delay;
	c.max_delay_ms = max_delay;
	c.global_failures = gfail;
	c.global_window = 60;
	c.global_block = 30;
	c.table_size = table;
	t = throttle_new(&c, err, sizeof(err));
	TU_CHECK(t != NULL, "throttle_new: %s", err);
	return t;
}

static void
test_conf(void)
{
	static const struct {
		const char	*key;
		unsigned int	 val;
	} bad[] = {
		{ "window", 0 }, { "window", THROTTLE_MAX_SECONDS + 1 },
		{ "block", 0 }, { "max_delay", THROTTLE_MAX_DELAY + 1 },
		{ "delay", THROTTLE_DEF_MAX_DELAY_MS + 1 },
		{ "global_window", 0 }, { "global_block", 0 },
		{ "table_size", THROTTLE_MIN_TABLE - 1 },
		{ "table_size", THROTTLE_MAX_TABLE + 1 },
	};
	struct throttle_conf c;
	struct throttle *t;
	char err[256], want[64];
	size_t i;

	throttle_conf_defaults(&c);
	CU_ASSERT_EQUAL(throttle_conf_check(&c, err, sizeof(err)), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		throttle_conf_defaults(&c);
		if (strcmp(bad[i].key, "window") == 0)
			c.window = bad[i].val;
		else if (strcmp(bad[i].key, "block") == 0)
			c.block = bad[i].val;
		else if (strcmp(bad[i].key, "max_delay") == 0)
			c.max_delay_ms = bad[i].val;
		else if (strcmp(bad[i].key, "delay") == 0)
			c.delay_ms = bad[i].val;
		else if (strcmp(bad[i].key, "global_window") == 0)
			c.global_window = bad[i].val;
		else if (strcmp(bad[i].key, "global_block") == 0)
			c.global_block = bad[i].val;
		else
			c.table_size = bad[i].val;
		err[0] = '\0';
		t = throttle_new(&c, err, sizeof(err));
		TU_CHECK(t == NULL, "%s = %u accepted", bad[i].key,
		    bad[i].val);
		throttle_free(&t);
		snprintf(want, sizeof(want), "auth.throttle.%s:", bad[i].key);
		TU_CHECK(strncmp(err, want, strlen(want)) == 0,
		    "%s = %u: got \"%s\"", bad[i].key, bad[i].val, err);
	}
	/* Off switches: no block needs no block time, no global needs none. */
	throttle_conf_defaults(&c);
	c.max_failures = 0;
	c.block = 0;
	c.global_failures = 0;
	c.global_window = 0;
	c.global_block = 0;
	t = throttle_new(&c, err, sizeof(err));
	TU_CHECK(t != NULL, "off switches: %s", err);
	throttle_free(&t);
	CU_ASSERT_PTR_NULL(t);
	throttle_free(&t);
}

static void
test_delays(void)
{
	static const unsigned int want[] = {
		1000, 2000, 4000, 8000, 8000, 8000
	};
	struct throttle *t = make(10, 600, 60, 1000, 8000, 0, 64);
	const struct sockaddr *a = addr("192.0.2.1");
	unsigned int d, i;
	int blocked;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		blocked = -1;
		d = throttle_fail(t, a, 1000 + i, &blocked);
		TU_CHECK(d == want[i] && blocked == 0,
		    "failure %u: got %u ms blocked %d, want %u ms, 0", i + 1,
		    d, blocked, want[i]);
	}
	CU_ASSERT_EQUAL(throttle_failures(t, a, 1010), 6);
	CU_ASSERT_EQUAL(throttle_check(t, a, 1010, NULL), THROTTLE_OK);
	throttle_free(&t);

	/* No delay configured: none given, however many failures. */
	t = make(0, 600, 60, 0, 0, 0, 64);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	for (i = 0; i < 100; i++)
		CU_ASSERT_EQUAL(throttle_fail(t, a, 1000, NULL), 0);
	CU_ASSERT_EQUAL(throttle_check(t, a, 1000, NULL), THROTTLE_OK);
	throttle_free(&t);
}

static void
test_block(void)
{
	struct throttle *t = make(3, 600, 100, 10, 1000, 0, 64);
	const struct sockaddr *a = addr("192.0.2.1");
	const struct sockaddr *b = addr("192.0.2.2");
	unsigned int left;
	int blocked;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	(void)throttle_fail(t, a, 1000, &blocked);
	CU_ASSERT_EQUAL(blocked, 0);
	(void)throttle_fail(t, a, 1001, &blocked);
	CU_ASSERT_EQUAL(blocked, 0);
	CU_ASSERT_EQUAL(throttle_check(t, a, 1001, NULL), THROTTLE_OK);
	(void)throttle_fail(t, a, 1002, &blocked);
	CU_ASSERT_EQUAL(blocked, 1);

	CU_ASSERT_EQUAL(throttle_check(t, a, 1002, &left), THROTTLE_BLOCKED);
	TU_CHECK(left == 100, "left: got %u, want 100", left);
	CU_ASSERT_EQUAL(throttle_check(t, a, 1101, &left), THROTTLE_BLOCKED);
	TU_CHECK(left == 1, "left: got %u, want 1", left);
	/* Others are not affected. */
	CU_ASSERT_EQUAL(throttle_check(t, b, 1050, &left), THROTTLE_OK);
	CU_ASSERT_EQUAL(left, 0);
	/* A success cannot lift a block. */
	CU_ASSERT_EQUAL(throttle_success(t, a, 1050), 1);
	CU_ASSERT_EQUAL(throttle_check(t, a, 1050, NULL), THROTTLE_BLOCKED);
	/* A failure while blocked says blocked again. */
	(void)throttle_fail(t, a, 1050, &blocked);
	CU_ASSERT_EQUAL(blocked, 1);

	/* The block ends; the count starts over. */
	CU_ASSERT_EQUAL(throttle_check(t, a, 1102, &left), THROTTLE_OK);
	CU_ASSERT_EQUAL(throttle_failures(t, a, 1102), 0);
	CU_ASSERT_EQUAL(throttle_fail(t, a, 1103, &blocked), 10);
	CU_ASSERT_EQUAL(blocked, 0);
	throttle_free(&t);
}

static void
test_window_and_success(void)
{
	struct throttle *t = make(5, 100, 100, 10, 1000, 0, 64);
	const struct sockaddr *a = addr("192.0.2.1");

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(throttle_fail(t, a, 0, NULL), 10);
	CU_ASSERT_EQUAL(throttle_fail(t, a, 50, NULL), 20);
	/* Counted from the last failure. */
	CU_ASSERT_EQUAL(throttle_failures(t, a, 149), 2);
	CU_ASSERT_EQUAL(throttle_failures(t, a, 150), 0);
	CU_ASSERT_EQUAL(throttle_fail(t, a, 151, NULL), 10);

	CU_ASSERT_EQUAL(throttle_fail(t, a, 152, NULL), 20);
	CU_ASSERT_EQUAL(throttle_clients(t), 1);
	CU_ASSERT_EQUAL(throttle_success(t, a, 152), 0);
	CU_ASSERT_EQUAL(throttle_failures(t, a, 153), 0);
	CU_ASSERT_EQUAL(throttle_clients(t), 0);
	CU_ASSERT_EQUAL(throttle_fail(t, a, 153, NULL), 10);
	throttle_free(&t);
}

static void
test_keys(void)
{
	static const struct {
		const char	*a, *b;
		int		 same;
	} rows[] = {
		{ "192.0.2.1", "192.0.2.1", 1 },
		{ "192.0.2.1", "192.0.2.2", 0 },
		{ "192.0.2.1", "::ffff:192.0.2.1", 1 },
		{ "2001:db8:1:2::1", "2001:db8:1:2:ffff::9", 1 },
		{ "2001:db8:1:2::1", "2001:db8:1:3::1", 0 },
		{ "2001:db8::", "32.1.13.184", 0 },
	};
	struct throttle *t;
	struct sockaddr_un sun;
	size_t i;
	unsigned int n;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		t = make(0, 600, 100, 10, 1000, 0, 64);
		CU_ASSERT_PTR_NOT_NULL_FATAL(t);
		(void)throttle_fail(t, addr(rows[i].a), 1000, NULL);
		n = throttle_failures(t, addr(rows[i].b), 1000);
		TU_CHECK(n == (unsigned int)rows[i].same, "%s vs %s: got %u, "
		    "want %d", rows[i].a, rows[i].b, n, rows[i].same);
		throttle_free(&t);
	}
	/* Without an IP address, all share one count. */
	t = make(0, 600, 100, 10, 1000, 0, 64);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	(void)throttle_fail(t, (struct sockaddr *)&sun, 1000, NULL);
	(void)throttle_fail(t, NULL, 1000, NULL);
	CU_ASSERT_EQUAL(throttle_failures(t, NULL, 1000), 2);
	throttle_free(&t);
}

static void
test_global(void)
{
	struct throttle *t = make(0, 600, 100, 100, 1000, 10, 64);
	unsigned int i, d, left;
	char ip[32];
	int blocked;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	/* Nine networks, one failure each: the delay grows for everyone. */
	for (i = 1; i <= 9; i++) {
		snprintf(ip, sizeof(ip), "198.51.%u.1", i);
		d = throttle_fail(t, addr(ip), 1000, &blocked);
		TU_CHECK(d == (i * 100 > 100 ? i * 100 : 100) && !blocked,
		    "global failure %u: got %u ms, blocked %d", i, d, blocked);
	}
	CU_ASSERT_EQUAL(throttle_check(t, addr("203.0.113.1"), 1000, NULL),
	    THROTTLE_OK);
	CU_ASSERT_EQUAL(throttle_news(t, NULL), THROTTLE_NEWS_NONE);
	d = throttle_fail(t, addr("198.51.10.1"), 1001, &blocked);
	CU_ASSERT_EQUAL(d, 1000);
	CU_ASSERT_EQUAL(blocked, 1);
	CU_ASSERT_EQUAL(throttle_news(t, &i), THROTTLE_NEWS_GLOBAL_START);
	CU_ASSERT_EQUAL(i, 10);
	CU_ASSERT_EQUAL(throttle_news(t, NULL), THROTTLE_NEWS_NONE);
	/* Now nobody may try, not even a newcomer. */
	CU_ASSERT_EQUAL(throttle_check(t, addr("203.0.113.1"), 1001, &left),
	    THROTTLE_BLOCKED_GLOBAL);
	CU_ASSERT_EQUAL(left, 30);
	CU_ASSERT_EQUAL(throttle_check(t, addr("203.0.113.1"), 1030, &left),
	    THROTTLE_BLOCKED_GLOBAL);
	CU_ASSERT_EQUAL(throttle_check(t, addr("203.0.113.1"), 1031, &left),
	    THROTTLE_OK);
	CU_ASSERT_EQUAL(throttle_news(t, NULL), THROTTLE_NEWS_GLOBAL_END);
	/* Afterwards the global count starts over. */
	CU_ASSERT_EQUAL(throttle_fail(t, addr("203.0.113.1"), 1032, &blocked),
	    100);
	CU_ASSERT_EQUAL(blocked, 0);
	throttle_free(&t);

	/* Windows roll: nine failures, then a minute later only one. */
	t = make(0, 600, 100, 100, 1000, 10, 64);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	for (i = 1; i <= 9; i++) {
		snprintf(ip, sizeof(ip), "198.51.%u.1", i);
		(void)throttle_fail(t, addr(ip), 1000, NULL);
	}
	d = throttle_fail(t, addr("198.51.10.1"), 1060, &blocked);
	CU_ASSERT_EQUAL(d, 100);
	CU_ASSERT_EQUAL(blocked, 0);
	throttle_free(&t);
}

/*
 * Attempts are counted when they begin: with failures = 3, parallel
 * attempts beyond the third are refused before any password is checked.
 */
static void
test_reserve(void)
{
	struct throttle *t = make(3, 600, 100, 10, 1000, 0, 64);
	const struct sockaddr *a = addr("192.0.2.7");
	unsigned int i, ok = 0, d;
	int blocked;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	for (i = 0; i < 50; i++)
		if (throttle_reserve(t, a, 1000, NULL) == THROTTLE_OK)
			ok++;
	TU_CHECK(ok == 3, "reserved %u of 50 parallel attempts, want 3", ok);
	CU_ASSERT_EQUAL(throttle_failures(t, a, 1000), 3);
	/* The three fail: not counted twice; the last one blocks. */
	d = throttle_fail(t, a, 1001, &blocked);
	CU_ASSERT_EQUAL(blocked, 1);
	CU_ASSERT_EQUAL(d, 40);
	(void)throttle_fail(t, a, 1001, &blocked);
	(void)throttle_fail(t, a, 1001, &blocked);
	CU_ASSERT_EQUAL(throttle_failures(t, a, 1001), 3);
	CU_ASSERT_EQUAL(throttle_reserve(t, a, 1002, NULL), THROTTLE_BLOCKED);
	throttle_free(&t);

	/* A success releases its own reservation, not the others'. */
	t = make(3, 600, 100, 10, 1000, 0, 64);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(throttle_reserve(t, a, 1000, NULL), THROTTLE_OK);
	CU_ASSERT_EQUAL(throttle_reserve(t, a, 1000, NULL), THROTTLE_OK);
	CU_ASSERT_EQUAL(throttle_success(t, a, 1000), 0);
	CU_ASSERT_EQUAL(throttle_failures(t, a, 1000), 1);
	/* An exchange that judged no password gives its slot back. */
	CU_ASSERT_EQUAL(throttle_release(t, a, 1000), 10);
	CU_ASSERT_EQUAL(throttle_failures(t, a, 1000), 0);
	throttle_free(&t);

	/* Blocked while it ran: the success is to be answered as a failure,
	 * with the delay a failure gets. */
	t = make(2, 600, 100, 10, 1000, 0, 64);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(throttle_reserve(t, a, 1000, NULL), THROTTLE_OK);
	CU_ASSERT_EQUAL(throttle_reserve(t, a, 1000, NULL), THROTTLE_OK);
	(void)throttle_fail(t, a, 1000, &blocked);
	CU_ASSERT_EQUAL(blocked, 1);
	CU_ASSERT_EQUAL(throttle_success(t, a, 1001), 1);
	CU_ASSERT_EQUAL(throttle_fail(t, a, 1001, &blocked), 20);
	CU_ASSERT_EQUAL(blocked, 1);
	throttle_free(&t);
}

/* The global count weighs networks (IPv4 /24, IPv6 /64), not addresses. */
static void
test_networks(void)
{
	struct throttle *t = make(0, 600, 100, 10, 1000, 5, 256);
	unsigned int i;
	char ip[64];
	int blocked = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	/* 200 addresses of one /24, 100 of one /64: two networks. */
	for (i = 0; i < 200 && !blocked; i++) {
		snprintf(ip, sizeof(ip), "203.0.113.%u", i);
		(void)throttle_fail(t, addr(ip), 1000, &blocked);
	}
	for (i = 0; i < 100 && !blocked; i++) {
		snprintf(ip, sizeof(ip), "2001:db8:1:2::%x", i);
		(void)throttle_fail(t, addr(ip), 1000, &blocked);
	}
	CU_ASSERT_EQUAL(blocked, 0);
	CU_ASSERT_EQUAL(throttle_check(t, addr("192.0.2.1"), 1000, NULL),
	    THROTTLE_OK);
	/* Three more networks make five. */
	(void)throttle_fail(t, addr("203.0.114.1"), 1000, &blocked);
	(void)throttle_fail(t, addr("2001:db8:1:3::1"), 1000, &blocked);
	CU_ASSERT_EQUAL(blocked, 0);
	(void)throttle_fail(t, addr("::ffff:198.51.100.9"), 1000, &blocked);
	CU_ASSERT_EQUAL(blocked, 1);
	CU_ASSERT_EQUAL(throttle_reserve(t, addr("192.0.2.1"), 1000, NULL),
	    THROTTLE_BLOCKED_GLOBAL);
	throttle_free(&t);
}

/* Two throttles on one file count together, as two processes would. */
static void
test_file(void)
{
	struct throttle *t1 = make(3, 600, 100, 10, 1000, 0, 64);
	struct throttle *t2 = make(3, 600, 100, 10, 1000, 0, 64);
	const struct sockaddr *a = addr("192.0.2.9");
	char path[] = "/tmp/test_throttle.XXXXXX", err[256];
	time_t now = throttle_now();
	int fd, blocked;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t2);
	fd = mkstemp(path);
	CU_ASSERT_FATAL(fd != -1);
	(void)close(fd);
	TU_CHECK(throttle_attach_file(t1, path, err, sizeof(err)) == 0,
	    "attach: %s", err);
	TU_CHECK(throttle_attach_file(t2, path, err, sizeof(err)) == 0,
	    "attach: %s", err);
	CU_ASSERT_EQUAL(throttle_reserve(t1, a, now, NULL), THROTTLE_OK);
	(void)throttle_fail(t1, a, now, &blocked);
	CU_ASSERT_EQUAL(throttle_reserve(t2, a, now, NULL), THROTTLE_OK);
	(void)throttle_fail(t2, a, now, &blocked);
	CU_ASSERT_EQUAL(blocked, 0);
	CU_ASSERT_EQUAL(throttle_failures(t1, a, now), 2);
	CU_ASSERT_EQUAL(throttle_reserve(t1, a, now, NULL), THROTTLE_OK);
	(void)throttle_fail(t1, a, now, &blocked);
	CU_ASSERT_EQUAL(blocked, 1);
	CU_ASSERT_EQUAL(throttle_reserve(t2, a, now, NULL), THROTTLE_BLOCKED);
	throttle_free(&t1);
	throttle_free(&t2);

	/* A file we cannot use: every call says so, nothing goes unchecked. */
	t1 = make(3, 600, 100, 10, 1000, 0, 64);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t1);
	CU_ASSERT_EQUAL(chmod(path, 0666), 0);
	CU_ASSERT_EQUAL(throttle_attach_file(t1, path, err, sizeof(err)), -1);
	CU_ASSERT_EQUAL(throttle_reserve(t1, a, now, NULL), THROTTLE_ERROR);
	CU_ASSERT_EQUAL(throttle_attach_file(t1, "/nonexistent/dir/x", err,
	    sizeof(err)), -1);
	CU_ASSERT_EQUAL(throttle_reserve(t1, a, now, NULL), THROTTLE_ERROR);
	throttle_free(&t1);
	(void)unlink(path);
}

static void
test_lru(void)
{
	struct throttle *t = make(0, 600, 100, 10, 1000, 0, 16);
	char ip[32];
	unsigned int i;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	for (i = 0; i < 16; i++) {
		snprintf(ip, sizeof(ip), "10.0.0.%u", i);
		(void)throttle_fail(t, addr(ip), 1000, NULL);
	}
	CU_ASSERT_EQUAL(throttle_clients(t), 16);
	/* 10.0.0.0 was seen again, so 10.0.0.1 is now the oldest. */
	CU_ASSERT_EQUAL(throttle_check(t, addr("10.0.0.0"), 1001, NULL),
	    THROTTLE_OK);
	(void)throttle_fail(t, addr("10.0.0.100"), 1002, NULL);
	CU_ASSERT_EQUAL(throttle_clients(t), 16);
	CU_ASSERT_EQUAL(throttle_failures(t, addr("10.0.0.0"), 1002), 1);
	CU_ASSERT_EQUAL(throttle_failures(t, addr("10.0.0.1"), 1002), 0);
	CU_ASSERT_EQUAL(throttle_failures(t, addr("10.0.0.2"), 1002), 1);
	CU_ASSERT_EQUAL(throttle_failures(t, addr("10.0.0.100"), 1002), 1);
	/* Many more newcomers: still bounded, all chains intact. */
	for (i = 0; i < 1000; i++) {
		snprintf(ip, sizeof(ip), "10.1.%u.%u", i / 256, i % 256);
		(void)throttle_fail(t, addr(ip), 1003, NULL);
	}
	CU_ASSERT_EQUAL(throttle_clients(t), 16);
	for (i = 984; i < 1000; i++) {
		snprintf(ip, sizeof(ip), "10.1.%u.%u", i / 256, i % 256);
		TU_CHECK(throttle_failures(t, addr(ip), 1003) == 1,
		    "%s forgotten", ip);
	}
	/* Successes free their slots. */
	for (i = 984; i < 1000; i++) {
		snprintf(ip, sizeof(ip), "10.1.%u.%u", i / 256, i % 256);
		(void)throttle_success(t, addr(ip), 1003);
	}
	CU_ASSERT_EQUAL(throttle_clients(t), 0);
	throttle_free(&t);
}

static void
test_configure(void)
{
	struct throttle *t = make(5, 600, 100, 10, 1000, 0, 16);
	const struct sockaddr *a = addr("192.0.2.1");
	struct throttle_conf c;
	char err[256];
	int blocked;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	(void)throttle_fail(t, a, 1000, &blocked);
	(void)throttle_fail(t, a, 1000, &blocked);
	CU_ASSERT_EQUAL(blocked, 0);
	throttle_conf_defaults(&c);
	c.max_failures = 3;
	c.table_size = 1000;
	c.global_failures = 0;
	CU_ASSERT_EQUAL(throttle_configure(t, &c, err, sizeof(err)), 0);
	/* The count survives; the new limit applies. */
	(void)throttle_fail(t, a, 1000, &blocked);
	CU_ASSERT_EQUAL(blocked, 1);
	c.window = 0;
	CU_ASSERT_EQUAL(throttle_configure(t, &c, err, sizeof(err)), -1);
	throttle_free(&t);
}

struct hammer {
	struct throttle	*t;
	unsigned int	 seed;
};

static void *
hammer_thread(void *arg)
{
	struct hammer *h = arg;
	struct sockaddr_in sin;
	unsigned int i;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	for (i = 0; i < 2000; i++) {
		/* One shared address, and many private ones. */
		sin.sin_addr.s_addr = htonl(i % 2 == 0 ? 0x0a000001 :
		    0x0b000000 + h->seed * 100000 + i);
		(void)throttle_check(h->t, (struct sockaddr *)&sin, 1000,
		    NULL);
		(void)throttle_fail(h->t, (struct sockaddr *)&sin, 1000, NULL);
		if (i % 2 == 1 && i % 7 == 1)
			(void)throttle_success(h->t, (struct sockaddr *)&sin,
			    1000);
	}
	return NULL;
}

/* Threads at once: nothing lost on the shared address, table bounded. */
static void
test_threads(void)
{
	struct throttle *t = make(0, 600, 100, 0, 0, 0, 64);
	struct hammer h[4];
	pthread_t th[4];
	struct sockaddr_in sin;
	unsigned int i;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	for (i = 0; i < 4; i++) {
		h[i].t = t;
		h[i].seed = i;
		CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL,
		    hammer_thread, &h[i]), 0);
	}
	for (i = 0; i < 4; i++)
		CU_ASSERT_EQUAL(pthread_join(th[i], NULL), 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(0x0a000001);
	/*
	 * The shared address failed 4 * 1000 times, and being touched every
	 * other call it is never the least recently seen: none is lost.
	 */
	i = throttle_failures(t, (struct sockaddr *)&sin, 1000);
	TU_CHECK(i == 4000, "shared address: got %u failures, want 4000", i);
	CU_ASSERT(throttle_clients(t) <= 64);
	throttle_free(&t);

	/* A big table: the same, with fewer evictions. */
	t = make(0, 600, 100, 0, 0, 0, 1000);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	for (i = 0; i < 4; i++) {
		h[i].t = t;
		h[i].seed = i;
		CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL,
		    hammer_thread, &h[i]), 0);
	}
	for (i = 0; i < 4; i++)
		CU_ASSERT_EQUAL(pthread_join(th[i], NULL), 0);
	i = throttle_failures(t, (struct sockaddr *)&sin, 1000);
	TU_CHECK(i == 4000, "shared address: got %u failures, want 4000", i);
	CU_ASSERT(throttle_clients(t) <= 1000);
	throttle_free(&t);
}

int
suite_throttle(void)
{
	CU_pSuite s;

	if ((s = CU_add_suite("throttle", NULL, NULL)) == NULL)
		return -1;
	if (CU_add_test(s, "config", test_conf) == NULL ||
	    CU_add_test(s, "increasing delay", test_delays) == NULL ||
	    CU_add_test(s, "block", test_block) == NULL ||
	    CU_add_test(s, "window and success",
	    test_window_and_success) == NULL ||
	    CU_add_test(s, "address keys", test_keys) == NULL ||
	    CU_add_test(s, "global", test_global) == NULL ||
	    CU_add_test(s, "reservation", test_reserve) == NULL ||
	    CU_add_test(s, "global count by network", test_networks) == NULL ||
	    CU_add_test(s, "shared state file", test_file) == NULL ||
	    CU_add_test(s, "bounded table", test_lru) == NULL ||
	    CU_add_test(s, "reconfigure", test_configure) == NULL ||
	    CU_add_test(s, "threads", test_threads) == NULL)
		return -1;
	return 0;
}
