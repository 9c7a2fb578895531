#include "config.h"

#include <sys/socket.h>

#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/parking.h"
#include "lib/net.h"
#include "tests.h"

/* A connection: our end (parked) and the client's. */
struct pair {
	int	 ours, theirs;
	int	 tag;
};

static void
pair_open(struct pair *p, int tag)
{
	int sv[2];

	CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
	    sv) == 0);
	p->ours = sv[0];
	p->theirs = sv[1];
	p->tag = tag;
}

/* Takes the next connection within ms: 1 and its state, 0, or -1. */
static int
take(struct parking *pk, int ms, struct pair **pp, int *st)
{
	void *c = NULL;
	int r;

	*st = -1;
	r = parking_take(pk, ms, &c, st);
	*pp = c;
	return r;
}

/* New, parked, woken by input, timed out, closed: each state in turn. */
static void
test_lifecycle(void)
{
	struct parking *pk = parking_new(1024);
	struct pair a, *got;
	long long now;
	int st;

	CU_ASSERT_PTR_NOT_NULL_FATAL(pk);
	pair_open(&a, 1);
	/* Nothing there yet. */
	CU_ASSERT_EQUAL(take(pk, 0, &got, &st), 0);
	CU_ASSERT_EQUAL(parking_add(pk, a.ours, &a), 0);
	CU_ASSERT_EQUAL(take(pk, 1000, &got, &st), 1);
	CU_ASSERT_PTR_EQUAL(got, &a);
	CU_ASSERT_EQUAL(st, PARK_NEW);
	/* Parked: no event until the client writes. */
	now = net_now_ms();
	CU_ASSERT_EQUAL(parking_park(pk, a.ours, now + 60000, 1, &st), 0);
	CU_ASSERT_EQUAL(take(pk, 50, &got, &st), 0);
	CU_ASSERT_EQUAL(parking_sweep(pk, now, SWEEP_DEADLINES), now + 60000);
	CU_ASSERT_FATAL(write(a.theirs, "NOOP\r\n", 6) == 6);
	CU_ASSERT_EQUAL(take(pk, 1000, &got, &st), 1);
	CU_ASSERT_EQUAL(st, PARK_WAIT);
	/* Taken: a sweep past its old deadline leaves it alone. */
	CU_ASSERT_EQUAL(parking_sweep(pk, now + 120000, SWEEP_CUT),
	    PARK_NEVER);
	CU_ASSERT_EQUAL(take(pk, 50, &got, &st), 0);
	/* Parked again (the NOOP still unread), then its deadline passes. */
	CU_ASSERT_EQUAL(parking_park(pk, a.ours, now + 10, 0, &st), 0);
	CU_ASSERT_EQUAL(take(pk, 1000, &got, &st), 1);
	CU_ASSERT_EQUAL(st, PARK_WAIT);
	CU_ASSERT_FATAL(recv(a.ours, (char[8]){0}, 8, MSG_DONTWAIT) == 6);
	CU_ASSERT_EQUAL(parking_park(pk, a.ours, now + 10, 0, &st), 0);
	CU_ASSERT_EQUAL(parking_sweep(pk, now + 5, SWEEP_DEADLINES), now + 10);
	CU_ASSERT_EQUAL(parking_sweep(pk, now + 10, SWEEP_DEADLINES),
	    PARK_NEVER);
	CU_ASSERT_EQUAL(take(pk, 1000, &got, &st), 1);
	CU_ASSERT_EQUAL(st, PARK_TIMEOUT);
	/* The timed-out socket reads as ended, but writes still go out. */
	CU_ASSERT_EQUAL(recv(a.ours, (char[8]){0}, 8, MSG_DONTWAIT), 0);
	CU_ASSERT_EQUAL(write(a.ours, "421\r\n", 5), 5);
	parking_close(pk, a.ours);
	CU_ASSERT_EQUAL(take(pk, 50, &got, &st), 0);
	close(a.theirs);
	parking_free(&pk);
	CU_ASSERT_PTR_NULL(pk);
}

/*
 * Stopping: a sweep ends the parked sessions between transactions and
 * leaves the one in a transaction until it cuts them all; then every
 * worker's wait returns -1.
 */
static void
test_stop_and_cut(void)
{
	struct parking *pk = parking_new(1024);
	struct pair a, b, *got;
	long long far = net_now_ms() + 60000;
	int st, i;

	CU_ASSERT_PTR_NOT_NULL_FATAL(pk);
	pair_open(&a, 1);
	pair_open(&b, 2);
	CU_ASSERT_EQUAL(parking_add(pk, a.ours, &a), 0);
	CU_ASSERT_EQUAL(parking_add(pk, b.ours, &b), 0);
	for (i = 0; i < 2; i++) {
		CU_ASSERT_EQUAL_FATAL(take(pk, 1000, &got, &st), 1);
		CU_ASSERT_EQUAL(st, PARK_NEW);
		/* a between transactions, b in one */
		CU_ASSERT_EQUAL(parking_park(pk, got->ours, far,
		    got == &a, &st), 0);
	}
	(void)parking_sweep(pk, net_now_ms(), SWEEP_STOP);
	CU_ASSERT_EQUAL(take(pk, 1000, &got, &st), 1);
	CU_ASSERT_PTR_EQUAL(got, &a);
	CU_ASSERT_EQUAL(st, PARK_SHUT);
	CU_ASSERT_EQUAL(take(pk, 50, &got, &st), 0);
	(void)parking_sweep(pk, net_now_ms(), SWEEP_CUT);
	CU_ASSERT_EQUAL(take(pk, 1000, &got, &st), 1);
	CU_ASSERT_PTR_EQUAL(got, &b);
	CU_ASSERT_EQUAL(st, PARK_SHUT);
	/* a is still a worker's: cutting it shuts its socket both ways. */
	parking_cut_running(pk);
	CU_ASSERT_EQUAL(recv(a.theirs, (char[8]){0}, 8, MSG_DONTWAIT), 0);
	parking_close(pk, a.ours);
	parking_close(pk, b.ours);
	CU_ASSERT_EQUAL(parking_stop(pk), 0);
	CU_ASSERT_EQUAL(take(pk, 1000, &got, &st), -1);
	CU_ASSERT_EQUAL(take(pk, 1000, &got, &st), -1);
	close(a.theirs);
	close(b.theirs);
	parking_free(&pk);
}

/* A descriptor beyond the slots is refused, not written past the end. */
static void
test_descriptor_beyond_slots(void)
{
	struct parking *pk = parking_new(4);
	struct pair a;

	CU_ASSERT_PTR_NOT_NULL_FATAL(pk);
	CU_ASSERT_EQUAL(parking_slots(pk), 4);
	pair_open(&a, 1);
	CU_ASSERT_EQUAL(parking_add(pk, a.ours, &a), -1);
	CU_ASSERT_EQUAL(errno, EMFILE);
	close(a.ours);
	close(a.theirs);
	parking_free(&pk);
}

int
suite_parking(void)
{
	CU_pSuite s = CU_add_suite("parking", NULL, NULL);

	if (s == NULL ||
	    CU_add_test(s, "new, parked, woken, timed out", test_lifecycle) == NULL ||
	    CU_add_test(s, "stop and cut", test_stop_and_cut) == NULL ||
	    CU_add_test(s, "descriptor beyond the slots", test_descriptor_beyond_slots) == NULL)
		return -1;
	return 0;
}
