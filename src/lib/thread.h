/*
 * thread: how the daemons' busy threads ask to be scheduled.
 */
#ifndef THREAD_H
#define THREAD_H

/*
 * Marks the calling thread as throughput work (SCHED_BATCH, where the
 * system has it): a thread it wakes then waits for the running one to
 * block or use up its time slice instead of preempting it at once.  An
 * SMTP worker wakes others at every reply and commit, and each such
 * preemption is a context switch that buys nothing.  A thread the
 * administrator started under another policy (real-time, idle) keeps it.
 * 1 done, 0 left as it was, -1 with errno.
 */
int	thread_batch(void);

#endif
