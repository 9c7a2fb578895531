#include "config.h"

#include <pthread.h>
#include <sched.h>
#include <string.h>

#include "tests.h"
#include "lib/thread.h"

struct outcome {
	int	 before;	/* the policy to start under */
	int	 rc;
	int	 after;
};

static void *
run(void *arg)
{
	struct outcome *o = arg;
	struct sched_param sp;
	int policy;

	memset(&sp, 0, sizeof(sp));
	if (o->before != SCHED_OTHER)
		(void)pthread_setschedparam(pthread_self(), o->before, &sp);
	o->rc = thread_batch();
	if (pthread_getschedparam(pthread_self(), &policy, &sp) == 0)
		o->after = policy;
	return NULL;
}

static void
in_thread(struct outcome *o)
{
	pthread_t t;

	o->rc = -2;
	o->after = -1;
	CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, run, o), 0);
	CU_ASSERT_EQUAL(pthread_join(t, NULL), 0);
}

/* The default policy becomes SCHED_BATCH, for the calling thread only. */
static void
test_batch(void)
{
	struct outcome o = { SCHED_OTHER, 0, 0 };
	struct sched_param sp;
	int policy;

	in_thread(&o);
#ifdef SCHED_BATCH
	CU_ASSERT_EQUAL(o.rc, 1);
	CU_ASSERT_EQUAL(o.after, SCHED_BATCH);
#else
	CU_ASSERT_EQUAL(o.rc, 0);
#endif
	CU_ASSERT_EQUAL_FATAL(pthread_getschedparam(pthread_self(), &policy,
	    &sp), 0);
	CU_ASSERT_EQUAL(policy, SCHED_OTHER);
}

/* A thread the administrator put under another policy keeps it. */
static void
test_other_policy_kept(void)
{
#ifdef SCHED_IDLE
	struct outcome o = { SCHED_IDLE, 0, 0 };

	in_thread(&o);
	CU_ASSERT_EQUAL(o.rc, 0);
	CU_ASSERT_EQUAL(o.after, SCHED_IDLE);
#endif
}

int
suite_thread(void)
{
	CU_pSuite s = CU_add_suite("thread", NULL, NULL);

	if (s == NULL ||
	    CU_add_test(s, "default policy becomes batch", test_batch) == NULL ||
	    CU_add_test(s, "another policy is kept",
	    test_other_policy_kept) == NULL)
		return -1;
	return 0;
}
