/*
 * The queue's schedule: a hash of messages by id and a binary heap by due
 * time, so that the next due message is found at once however long the
 * queue, and the retry times.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gnutls/crypto.h>

#include "lib/log.h"
#include "lib/str.h"
#include "sched.h"

#define SCHED_BUCKETS	1024	/* to start with; doubles as needed */
#define SCHED_HEAP_MIN	1024

static time_t		wall_now(void *);
static unsigned int	wall_random(void *);
static unsigned long	hash_id(const char *);
static void		heap_swap(struct sched *, size_t, size_t);
static void		heap_fix(struct sched *, size_t);

static time_t
wall_now(void *arg)
{
	(void)arg;
	return time(NULL);
}

static unsigned int
wall_random(void *arg)
{
	unsigned int rnd = 0;

	(void)arg;
	if (gnutls_rnd(GNUTLS_RND_NONCE, &rnd, sizeof(rnd)) != 0)
		rnd = (unsigned int)time(NULL);
	return rnd;
}

int
sched_init(struct sched *s, const struct sched_clock *clock)
{
	memset(s, 0, sizeof(*s));
	if (clock != NULL)
		s->clock = *clock;
	if (s->clock.now == NULL)
		s->clock.now = wall_now;
	if (s->clock.random == NULL)
		s->clock.random = wall_random;
	s->msize = SCHED_BUCKETS;
	/* NOLINTNEXTLINE(bugprone-sizeof-expression): pointers */
	if ((s->mtab = calloc(s->msize, sizeof(*s->mtab))) == NULL)
		return -1;
	return 0;
}

void
sched_free(struct sched *s)
{
	struct sched_msg *m, *next;
	size_t i;

	for (i = 0; s->mtab != NULL && i < s->msize; i++)
		for (m = s->mtab[i]; m != NULL; m = next) {
			next = m->hnext;
			free(m);
		}
	free(s->mtab);
	free(s->heap);
	s->mtab = NULL;
	s->heap = NULL;
	s->nmsgs = s->nheap = s->heapcap = 0;
}

time_t
sched_now(const struct sched *s)
{
	return s->clock.now(s->clock.arg);
}

static unsigned long
hash_id(const char *s)
{
	unsigned long h = 2166136261UL;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619UL;
	return h;
}

struct sched_msg *
sched_find(struct sched *s, const char *id)
{
	struct sched_msg *m;

	for (m = s->mtab[hash_id(id) & (s->msize - 1)]; m != NULL;
	    m = m->hnext)
		if (strcmp(m->id, id) == 0)
			return m;
	return NULL;
}

struct sched_msg *
sched_add(struct sched *s, const char *id, time_t due)
{
	struct sched_msg *m, **nt, *next;
	size_t i, nsize;

	if (s->nmsgs >= s->msize) {
		nsize = s->msize * 2;
		/* NOLINTNEXTLINE(bugprone-sizeof-expression): pointers */
		if ((nt = calloc(nsize, sizeof(*nt))) != NULL) {
			for (i = 0; i < s->msize; i++)
				for (m = s->mtab[i]; m != NULL; m = next) {
					next = m->hnext;
					m->hnext = nt[hash_id(m->id) &
					    (nsize - 1)];
					nt[hash_id(m->id) & (nsize - 1)] = m;
				}
			free(s->mtab);
			s->mtab = nt;
			s->msize = nsize;
		}
	}
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return NULL;
	str_lcpy(m->id, id, sizeof(m->id));
	m->due = due;
	m->hidx = SCHED_NOHEAP;
	i = hash_id(id) & (s->msize - 1);
	m->hnext = s->mtab[i];
	s->mtab[i] = m;
	s->nmsgs++;
	if (sched_push(s, m) == -1) {
		sched_forget(s, m);
		return NULL;
	}
	return m;
}

void
sched_forget(struct sched *s, struct sched_msg *m)
{
	struct sched_msg **pp;
	size_t last;

	if (m->hidx != SCHED_NOHEAP) {
		/* The last one takes its place. */
		last = --s->nheap;
		if (m->hidx != last) {
			s->heap[m->hidx] = s->heap[last];
			s->heap[m->hidx]->hidx = m->hidx;
			heap_fix(s, m->hidx);
		}
		m->hidx = SCHED_NOHEAP;
	}
	for (pp = &s->mtab[hash_id(m->id) & (s->msize - 1)]; *pp != NULL;
	    pp = &(*pp)->hnext)
		if (*pp == m) {
			*pp = m->hnext;
			s->nmsgs--;
			break;
		}
	free(m);
}

static void
heap_swap(struct sched *s, size_t a, size_t b)
{
	struct sched_msg *t = s->heap[a];

	s->heap[a] = s->heap[b];
	s->heap[b] = t;
	s->heap[a]->hidx = a;
	s->heap[b]->hidx = b;
}

/* Restores the heap order around position i. */
static void
heap_fix(struct sched *s, size_t i)
{
	size_t c;

	while (i > 0 && s->heap[(i - 1) / 2]->due > s->heap[i]->due) {
		heap_swap(s, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
	for (;;) {
		c = 2 * i + 1;
		if (c >= s->nheap)
			break;
		if (c + 1 < s->nheap && s->heap[c + 1]->due < s->heap[c]->due)
			c++;
		if (s->heap[i]->due <= s->heap[c]->due)
			break;
		heap_swap(s, i, c);
		i = c;
	}
}

int
sched_push(struct sched *s, struct sched_msg *m)
{
	struct sched_msg **nh;
	size_t ncap;

	if (m->hidx != SCHED_NOHEAP) {
		heap_fix(s, m->hidx);
		return 0;
	}
	if (s->nheap == s->heapcap) {
		ncap = s->heapcap ? s->heapcap * 2 : SCHED_HEAP_MIN;
		/* NOLINTNEXTLINE(bugprone-sizeof-expression): pointers */
		if ((nh = realloc(s->heap, ncap * sizeof(*nh))) == NULL) {
			log_err("queue: out of memory; %s waits for a rescan",
			    m->id);
			return -1;
		}
		s->heap = nh;
		s->heapcap = ncap;
	}
	m->hidx = s->nheap;
	s->heap[s->nheap++] = m;
	heap_fix(s, m->hidx);
	return 0;
}

struct sched_msg *
sched_pop_due(struct sched *s)
{
	struct sched_msg *m;

	if (s->nheap == 0 || s->heap[0]->due > sched_now(s))
		return NULL;
	m = s->heap[0];
	s->nheap--;
	if (s->nheap > 0) {
		s->heap[0] = s->heap[s->nheap];
		s->heap[0]->hidx = 0;
		heap_fix(s, 0);
	}
	m->hidx = SCHED_NOHEAP;
	return m;
}

int
sched_next_due(const struct sched *s, time_t *due)
{
	if (s->nheap == 0)
		return 0;
	*due = s->heap[0]->due;
	return 1;
}

int
sched_wake(struct sched *s, struct sched_msg *m)
{
	m->force = 1;
	if (m->busy) {
		m->wake = 1;
		return 0;
	}
	m->held = 0;
	m->due = sched_now(s);
	if (sched_push(s, m) == -1) {
		sched_forget(s, m);
		return -1;
	}
	return 0;
}

time_t
sched_backoff(const struct sched *s, const struct queue_conf *qc,
    unsigned int attempts)
{
	unsigned long long d = qc->retry_min;
	unsigned int i, rnd;

	for (i = 1; i < attempts && d < qc->retry_max; i++)
		d *= 2;
	if (d > qc->retry_max)
		d = qc->retry_max;
	/* Jitter of +-25% keeps retries from marching in step. */
	rnd = s->clock.random(s->clock.arg);
	d = d - d / 4 + rnd % (d / 2 + 1);
	return d < 1 ? 1 : (time_t)d;
}

int
sched_give_up(const struct sched *s, const struct queue_conf *qc,
    time_t arrival, unsigned int attempts, time_t *next)
{
	time_t now = sched_now(s);

	if (now - arrival >= (time_t)qc->lifetime)
		return 1;
	*next = now + sched_backoff(s, qc, attempts);
	return 0;
}
