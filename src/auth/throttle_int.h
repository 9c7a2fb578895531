/*
 * What throttle.c (the counting) and throttle_file.c (the state file
 * shared in stdio mode) share.  Not for other modules.
 */
#ifndef THROTTLE_INT_H
#define THROTTLE_INT_H

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "throttle.h"

#define KEYLEN	9	/* kind byte + at most 8 address bytes (v4, v6/64) */
#define KEY_V4		4
#define KEY_V6		6
#define KEY_NET4	0x44	/* an IPv4 /24, for the global count */

struct tentry {
	unsigned char	 key[KEYLEN];
	uint32_t	 hnext;		/* hash chain, or the free list */
	uint32_t	 newer, older;	/* LRU list */
	unsigned int	 failures;	/* including reserved attempts */
	unsigned int	 inflight;	/* reserved, not yet decided */
	time_t		 last;		/* last failure or reservation */
	time_t		 blocked_until;
	uint64_t	 gseq;		/* global window it was counted in */
};

struct throttle {
	pthread_mutex_t	 mu;
	struct throttle_conf c;
	struct tentry	*e;
	uint32_t	 size, used;
	uint32_t	*bucket;
	uint32_t	 mask;		/* buckets - 1, a power of two */
	uint32_t	 newest, oldest;
	uint32_t	 freelist;
	uint64_t	 seed;
	/* All clients together: networks with failures in this window. */
	unsigned int	 gfailures;
	time_t		 gstart;
	time_t		 gblocked_until;
	uint64_t	 gseq;		/* numbers the global windows */
	enum throttle_news news;	/* not yet fetched by the caller */
	unsigned int	 news_count;
	int		 fd;		/* the state file; -1 none, -2 broken */
	char		 path[PATH_MAX];
};

#define E(t, i)	(&(t)->e[(i) - 1])

/* Empties the table and the global count. */
void	throttle_table_reset(struct throttle *);
/* The entry for key, made the most recently seen; created if need be. */
uint32_t throttle_touch(struct throttle *, const unsigned char *key);
/*
 * With the mutex held and a state file attached (t->fd != -1): takes the
 * file's lock and reads the table from it; *offp gets the wall clock's
 * offset from the monotonic one.  0, or -1 when the file failed (its lock
 * is then not held).
 */
int	throttle_file_lock(struct throttle *, time_t *offp);
/* Writes the table back to the file and drops the file's lock. */
void	throttle_file_unlock(struct throttle *, time_t off);

#endif
