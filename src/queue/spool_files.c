/*
 * The group fsync of the queue directory.  The first committer to arrive
 * fsyncs it on behalf of everybody who asked before the fsync started;
 * those who ask meanwhile wait, and one of them does the next fsync for
 * all of them.  So a directory fsync is shared by as many commits as
 * arrive during one.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "spool_files.h"

struct dirsync {
	int		 fd;
	pthread_mutex_t	 mu;
	pthread_cond_t	 cv;
	unsigned long	 requested;	/* tickets handed out */
	unsigned long	 synced;	/* every ticket up to this is synced */
	int		 syncing;
	int		 error;		/* of the last failed fsync */
	unsigned long	 failed_upto;	/* the tickets it covered */
};

struct dirsync *
dirsync_new(int dirfd)
{
	struct dirsync *ds;

	if ((ds = calloc(1, sizeof(*ds))) == NULL)
		return NULL;
	ds->fd = dirfd;
	pthread_mutex_init(&ds->mu, NULL);
	pthread_cond_init(&ds->cv, NULL);
	return ds;
}

void
dirsync_free(struct dirsync **dsp)
{
	struct dirsync *ds = *dsp;

	if (ds == NULL)
		return;
	*dsp = NULL;
	pthread_mutex_destroy(&ds->mu);
	pthread_cond_destroy(&ds->cv);
	free(ds);
}

int
dirsync_wait(struct dirsync *ds)
{
	unsigned long mine, upto;
	int r = 0, e;

	pthread_mutex_lock(&ds->mu);
	mine = ++ds->requested;
	while (ds->synced < mine) {
		if (ds->syncing) {
			pthread_cond_wait(&ds->cv, &ds->mu);
			continue;
		}
		ds->syncing = 1;
		upto = ds->requested;
		pthread_mutex_unlock(&ds->mu);
		e = fsync(ds->fd) == -1 ? errno : 0;
		pthread_mutex_lock(&ds->mu);
		ds->syncing = 0;
		ds->synced = upto;
		if (e != 0) {
			ds->error = e;
			ds->failed_upto = upto;
		}
		pthread_cond_broadcast(&ds->cv);
	}
	/*
	 * A failed fsync fails every ticket it covered (and, should this
	 * waiter look only after a later one failed, an older ticket too:
	 * a refusal the client retries, never a message lost).
	 */
	if (ds->error != 0 && ds->failed_upto >= mine) {
		errno = ds->error;
		r = -1;
	}
	pthread_mutex_unlock(&ds->mu);
	return r;
}
