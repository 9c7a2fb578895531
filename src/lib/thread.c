#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>

#include "thread.h"

int
thread_batch(void)
{
#ifdef SCHED_BATCH
	struct sched_param sp;
	int policy, e;

	if ((e = pthread_getschedparam(pthread_self(), &policy, &sp)) != 0) {
		errno = e;
		return -1;
	}
	if (policy != SCHED_OTHER)
		return 0;
	memset(&sp, 0, sizeof(sp));
	if ((e = pthread_setschedparam(pthread_self(), SCHED_BATCH,
	    &sp)) != 0) {
		errno = e;
		return -1;
	}
	return 1;
#else
	return 0;
#endif
}
