#include "config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "queue/queueconf.h"
#include "queue/sched.h"
#include "tests.h"

/* A clock the tests move by hand, and jitter they choose. */
struct fake {
	time_t		now;
	unsigned int	rnd;
};

static time_t
fake_now(void *arg)
{
	return ((struct fake *)arg)->now;
}

static unsigned int
fake_random(void *arg)
{
	return ((struct fake *)arg)->rnd;
}

static void
start(struct sched *s, struct fake *f, time_t now)
{
	struct sched_clock c = { fake_now, fake_random, f };

	memset(f, 0, sizeof(*f));
	f->now = now;
	CU_ASSERT_EQUAL_FATAL(sched_init(s, &c), 0);
}

static const char *
pop_id(struct sched *s)
{
	struct sched_msg *m = sched_pop_due(s);

	return m != NULL ? m->id : "";
}

static void
test_due_order(void)
{
	struct sched s;
	struct fake f;
	time_t due;

	start(&s, &f, 1000);
	CU_ASSERT_PTR_NOT_NULL(sched_add(&s, "A", 1030));
	CU_ASSERT_PTR_NOT_NULL(sched_add(&s, "B", 1010));
	CU_ASSERT_PTR_NOT_NULL(sched_add(&s, "C", 1020));
	CU_ASSERT_PTR_NOT_NULL(sched_add(&s, "D", 1000));
	/* Only what is due by the clock comes out, earliest first. */
	CU_ASSERT_STRING_EQUAL(pop_id(&s), "D");
	CU_ASSERT_PTR_NULL(sched_pop_due(&s));
	CU_ASSERT_EQUAL(sched_next_due(&s, &due), 1);
	CU_ASSERT_EQUAL(due, 1010);
	f.now = 1025;
	CU_ASSERT_STRING_EQUAL(pop_id(&s), "B");
	CU_ASSERT_STRING_EQUAL(pop_id(&s), "C");
	CU_ASSERT_PTR_NULL(sched_pop_due(&s));
	f.now = 1030;
	CU_ASSERT_STRING_EQUAL(pop_id(&s), "A");
	CU_ASSERT_EQUAL(sched_next_due(&s, &due), 0);
	/* Popped is not forgotten: the set still knows all four. */
	CU_ASSERT_EQUAL(s.nmsgs, 4);
	CU_ASSERT_PTR_NOT_NULL(sched_find(&s, "C"));
	sched_free(&s);
}

static void
test_wake_and_forget(void)
{
	struct sched s;
	struct sched_msg *x, *y;
	struct fake f;
	time_t due;

	start(&s, &f, 500);
	CU_ASSERT_PTR_NOT_NULL_FATAL(x = sched_add(&s, "X", 9000));
	CU_ASSERT_PTR_NOT_NULL_FATAL(y = sched_add(&s, "Y", 8000));
	CU_ASSERT_PTR_NOT_NULL(sched_add(&s, "Z", 7000));
	CU_ASSERT_PTR_NULL(sched_pop_due(&s));
	/* smtpq flush: due now, whatever its schedule. */
	f.now = 600;
	CU_ASSERT_EQUAL(sched_wake(&s, x), 0);
	CU_ASSERT_EQUAL(x->force, 1);
	CU_ASSERT_STRING_EQUAL(pop_id(&s), "X");
	/* Woken during its round: noted, not queued twice. */
	x->busy = 1;
	CU_ASSERT_EQUAL(sched_wake(&s, x), 0);
	CU_ASSERT_EQUAL(x->wake, 1);
	CU_ASSERT_EQUAL(x->hidx, SCHED_NOHEAP);
	/* Forgetting one in the middle keeps the order of the rest. */
	sched_forget(&s, y);
	CU_ASSERT_PTR_NULL(sched_find(&s, "Y"));
	CU_ASSERT_EQUAL(sched_next_due(&s, &due), 1);
	CU_ASSERT_EQUAL(due, 7000);
	CU_ASSERT_EQUAL(s.nmsgs, 2);
	sched_free(&s);
}

static void
test_many(void)
{
	struct sched s;
	struct sched_msg *m;
	struct fake f;
	char id[32];
	time_t last = 0;
	unsigned int i, n = 0;

	/* More than the first hash size and heap size: both grow. */
	start(&s, &f, 0);
	for (i = 0; i < 3000; i++) {
		snprintf(id, sizeof(id), "M%u", i);
		CU_ASSERT_PTR_NOT_NULL(sched_add(&s, id,
		    (time_t)((i * 7919U) % 3001U)));
	}
	CU_ASSERT_PTR_NOT_NULL(sched_find(&s, "M2999"));
	f.now = 5000;
	while ((m = sched_pop_due(&s)) != NULL) {
		CU_ASSERT(m->due >= last);
		last = m->due;
		n++;
	}
	CU_ASSERT_EQUAL(n, 3000);
	sched_free(&s);
}

static void
test_backoff(void)
{
	struct queue_conf qc;
	struct sched s;
	struct fake f;
	unsigned int a;
	time_t d, prev = 0;

	memset(&qc, 0, sizeof(qc));
	qc.retry_min = 400;
	qc.retry_max = 6400;
	start(&s, &f, 0);
	/* Without jitter: 3/4 of retry_min doubled per attempt, capped. */
	f.rnd = 0;
	CU_ASSERT_EQUAL(sched_backoff(&s, &qc, 1), 300);
	CU_ASSERT_EQUAL(sched_backoff(&s, &qc, 2), 600);
	CU_ASSERT_EQUAL(sched_backoff(&s, &qc, 3), 1200);
	CU_ASSERT_EQUAL(sched_backoff(&s, &qc, 5), 4800);
	CU_ASSERT_EQUAL(sched_backoff(&s, &qc, 6), 4800);
	CU_ASSERT_EQUAL(sched_backoff(&s, &qc, 1000), 4800);
	for (a = 1; a < 40; a++) {
		d = sched_backoff(&s, &qc, a);
		CU_ASSERT(d >= prev);
		prev = d;
	}
	/* The jitter comes from the injected source... */
	f.rnd = 800;
	CU_ASSERT_EQUAL(sched_backoff(&s, &qc, 3), 2000);
	/* ...and stays within +-25%. */
	for (f.rnd = 0; f.rnd < 5000; f.rnd += 37) {
		d = sched_backoff(&s, &qc, 3);
		CU_ASSERT(d >= 1200 && d <= 2000);
		d = sched_backoff(&s, &qc, 100);
		CU_ASSERT(d >= 4800 && d <= 8000);
	}
	/* Never zero, however small the settings. */
	qc.retry_min = 0;
	qc.retry_max = 0;
	CU_ASSERT_EQUAL(sched_backoff(&s, &qc, 1), 1);
	sched_free(&s);
}

static void
test_give_up(void)
{
	struct queue_conf qc;
	struct sched s;
	struct fake f;
	time_t next = 0;

	memset(&qc, 0, sizeof(qc));
	qc.retry_min = 100;
	qc.retry_max = 1000;
	qc.lifetime = 86400;
	start(&s, &f, 1000000);
	/* Within the lifetime: another attempt, backoff from now. */
	CU_ASSERT_EQUAL(sched_give_up(&s, &qc, 1000000 - 86399, 2, &next), 0);
	CU_ASSERT_EQUAL(next, 1000000 + 150);
	/* The lifetime over: given up, whatever the attempts. */
	CU_ASSERT_EQUAL(sched_give_up(&s, &qc, 1000000 - 86400, 2, &next), 1);
	CU_ASSERT_EQUAL(sched_give_up(&s, &qc, 1000000 - 86400, 1, &next), 1);
	/* The clock decides: the same message later is expired. */
	f.now += 86399;
	CU_ASSERT_EQUAL(sched_give_up(&s, &qc, 1000000, 9, &next), 0);
	f.now += 1;
	CU_ASSERT_EQUAL(sched_give_up(&s, &qc, 1000000, 9, &next), 1);
	sched_free(&s);
}

int
suite_sched(void)
{
	CU_pSuite s = CU_add_suite("sched", NULL, NULL);

	if (s == NULL ||
	    CU_add_test(s, "due order by the injected clock",
	    test_due_order) == NULL ||
	    CU_add_test(s, "wake and forget", test_wake_and_forget) == NULL ||
	    CU_add_test(s, "many messages", test_many) == NULL ||
	    CU_add_test(s, "backoff growth and jitter", test_backoff) == NULL ||
	    CU_add_test(s, "give up after the lifetime", test_give_up) == NULL)
		return -1;
	return 0;
}
