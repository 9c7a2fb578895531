/*
 * throttle: AUTH failure counting.  See throttle.h.
 *
 * A fixed array of entries, found through a chained hash table (keyed
 * with a random seed, so nobody can aim addresses at one chain) and kept
 * on a least-recently-used list for eviction.  Indexes are 1-based so
 * that 0 can mean "none".
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>

#include "throttle.h"

#define KEYLEN	9	/* family byte + at most 8 address bytes (v4, v6/64) */

struct tentry {
	unsigned char	 key[KEYLEN];
	uint32_t	 hnext;		/* hash chain, or the free list */
	uint32_t	 newer, older;	/* LRU list */
	unsigned int	 failures;
	time_t		 last;		/* last failure */
	time_t		 blocked_until;
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
	/* All clients together. */
	unsigned int	 gfailures;
	time_t		 gstart;
	time_t		 gblocked_until;
};

static void	make_key(const struct sockaddr *, unsigned char *);
static uint32_t	hash(const struct throttle *, const unsigned char *);
static uint32_t	lookup(struct throttle *, const unsigned char *);
static uint32_t	insert(struct throttle *, const unsigned char *);
static void	unlink_hash(struct throttle *, uint32_t);
static void	lru_unlink(struct throttle *, uint32_t);
static void	lru_push(struct throttle *, uint32_t);
static void	release(struct throttle *, uint32_t);
static void	expire(struct throttle *, struct tentry *, time_t);
static void	global_roll(struct throttle *, time_t);
static unsigned int client_delay(const struct throttle_conf *, unsigned int);

#define E(t, i)	(&(t)->e[(i) - 1])

void
throttle_conf_defaults(struct throttle_conf *c)
{
	c->max_failures = THROTTLE_DEF_MAX_FAILURES;
	c->window = THROTTLE_DEF_WINDOW;
	c->block = THROTTLE_DEF_BLOCK;
	c->delay_ms = THROTTLE_DEF_DELAY_MS;
	c->max_delay_ms = THROTTLE_DEF_MAX_DELAY_MS;
	c->global_failures = THROTTLE_DEF_GLOBAL_FAILURES;
	c->global_window = THROTTLE_DEF_GLOBAL_WINDOW;
	c->global_block = THROTTLE_DEF_GLOBAL_BLOCK;
	c->table_size = THROTTLE_DEF_TABLE_SIZE;
}

int
throttle_conf_check(const struct throttle_conf *c, char *err, size_t errlen)
{
	const char *bad = NULL;

	if (c->window == 0 || c->window > THROTTLE_MAX_SECONDS)
		bad = "window";
	else if (c->block > THROTTLE_MAX_SECONDS)
		bad = "block";
	else if (c->max_failures > 0 && c->block == 0)
		bad = "block";
	else if (c->max_delay_ms > THROTTLE_MAX_DELAY)
		bad = "max_delay";
	else if (c->delay_ms > c->max_delay_ms)
		bad = "delay";
	else if (c->global_failures > 0 && (c->global_window == 0 ||
	    c->global_window > THROTTLE_MAX_SECONDS))
		bad = "global_window";
	else if (c->global_failures > 0 && (c->global_block == 0 ||
	    c->global_block > THROTTLE_MAX_SECONDS))
		bad = "global_block";
	else if (c->table_size < THROTTLE_MIN_TABLE ||
	    c->table_size > THROTTLE_MAX_TABLE)
		bad = "table_size";
	if (bad == NULL)
		return 0;
	snprintf(err, errlen, "auth.throttle.%s: out of range (seconds "
	    "1..%d, delays 0..%d ms with delay <= max_delay, table_size "
	    "%d..%d)", bad, THROTTLE_MAX_SECONDS, THROTTLE_MAX_DELAY,
	    THROTTLE_MIN_TABLE, THROTTLE_MAX_TABLE);
	return -1;
}

struct throttle *
throttle_new(const struct throttle_conf *c, char *err, size_t errlen)
{
	struct throttle *t;
	uint32_t i, nb;

	if (throttle_conf_check(c, err, errlen) == -1)
		return NULL;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		goto nomem;
	t->c = *c;
	t->size = c->table_size;
	for (nb = 16; nb < t->size; nb <<= 1)
		;
	t->mask = nb - 1;
	if ((t->e = calloc(t->size, sizeof(*t->e))) == NULL ||
	    (t->bucket = calloc(nb, sizeof(*t->bucket))) == NULL)
		goto nomem;
	for (i = 1; i <= t->size; i++)
		E(t, i)->hnext = i < t->size ? i + 1 : 0;
	t->freelist = 1;
	if (gnutls_rnd(GNUTLS_RND_NONCE, &t->seed, sizeof(t->seed)) != 0)
		t->seed = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ULL;
	if (pthread_mutex_init(&t->mu, NULL) != 0)
		goto nomem;
	return t;
nomem:
	snprintf(err, errlen, "throttle: out of memory");
	if (t != NULL) {
		free(t->e);
		free(t->bucket);
		free(t);
	}
	return NULL;
}

int
throttle_configure(struct throttle *t, const struct throttle_conf *c,
    char *err, size_t errlen)
{
	if (throttle_conf_check(c, err, errlen) == -1)
		return -1;
	pthread_mutex_lock(&t->mu);
	t->c = *c;
	t->c.table_size = t->size;
	pthread_mutex_unlock(&t->mu);
	return 0;
}

void
throttle_free(struct throttle **tp)
{
	struct throttle *t = *tp;

	if (t == NULL)
		return;
	*tp = NULL;
	pthread_mutex_destroy(&t->mu);
	free(t->e);
	free(t->bucket);
	free(t);
}

time_t
throttle_now(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		return time(NULL);
	return ts.tv_sec;
}

static void
make_key(const struct sockaddr *sa, unsigned char *key)
{
	const struct sockaddr_in *sin;
	const struct sockaddr_in6 *sin6;

	memset(key, 0, KEYLEN);
	if (sa == NULL)
		return;
	if (sa->sa_family == AF_INET) {
		sin = (const struct sockaddr_in *)(const void *)sa;
		key[0] = 4;
		memcpy(key + 1, &sin->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		sin6 = (const struct sockaddr_in6 *)(const void *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			key[0] = 4;
			memcpy(key + 1, sin6->sin6_addr.s6_addr + 12, 4);
		} else {
			key[0] = 6;
			memcpy(key + 1, sin6->sin6_addr.s6_addr, 8);
		}
	}
}

/* FNV-1a over the seed and the key. */
static uint32_t
hash(const struct throttle *t, const unsigned char *key)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t i;

	for (i = 0; i < 8; i++) {
		h ^= (t->seed >> (8 * i)) & 0xff;
		h *= 0x100000001b3ULL;
	}
	for (i = 0; i < KEYLEN; i++) {
		h ^= key[i];
		h *= 0x100000001b3ULL;
	}
	return (uint32_t)(h ^ (h >> 32)) & t->mask;
}

static uint32_t
lookup(struct throttle *t, const unsigned char *key)
{
	uint32_t i;

	for (i = t->bucket[hash(t, key)]; i != 0; i = E(t, i)->hnext)
		if (memcmp(E(t, i)->key, key, KEYLEN) == 0)
			return i;
	return 0;
}

static void
unlink_hash(struct throttle *t, uint32_t i)
{
	uint32_t *pp = &t->bucket[hash(t, E(t, i)->key)];

	while (*pp != 0 && *pp != i)
		pp = &E(t, *pp)->hnext;
	if (*pp == i)
		*pp = E(t, i)->hnext;
	E(t, i)->hnext = 0;
}

static void
lru_unlink(struct throttle *t, uint32_t i)
{
	struct tentry *x = E(t, i);

	if (x->newer != 0)
		E(t, x->newer)->older = x->older;
	else
		t->newest = x->older;
	if (x->older != 0)
		E(t, x->older)->newer = x->newer;
	else
		t->oldest = x->newer;
	x->newer = x->older = 0;
}

static void
lru_push(struct throttle *t, uint32_t i)
{
	struct tentry *x = E(t, i);

	x->newer = 0;
	x->older = t->newest;
	if (t->newest != 0)
		E(t, t->newest)->newer = i;
	t->newest = i;
	if (t->oldest == 0)
		t->oldest = i;
}

/* A fresh entry for key; the least recently seen one makes room. */
static uint32_t
insert(struct throttle *t, const unsigned char *key)
{
	struct tentry *x;
	uint32_t i, h;

	if (t->freelist != 0) {
		i = t->freelist;
		t->freelist = E(t, i)->hnext;
		t->used++;
	} else {
		i = t->oldest;
		unlink_hash(t, i);
		lru_unlink(t, i);
	}
	x = E(t, i);
	memset(x, 0, sizeof(*x));
	memcpy(x->key, key, KEYLEN);
	h = hash(t, key);
	x->hnext = t->bucket[h];
	t->bucket[h] = i;
	lru_push(t, i);
	return i;
}

static void
release(struct throttle *t, uint32_t i)
{
	unlink_hash(t, i);
	lru_unlink(t, i);
	memset(E(t, i), 0, sizeof(*E(t, i)));
	E(t, i)->hnext = t->freelist;
	t->freelist = i;
	t->used--;
}

/* Forgets what has run out: an ended block, failures long ago. */
static void
expire(struct throttle *t, struct tentry *x, time_t now)
{
	if (x->blocked_until != 0 && now >= x->blocked_until) {
		x->blocked_until = 0;
		x->failures = 0;
	}
	if (x->blocked_until == 0 && x->failures > 0 &&
	    now - x->last >= (time_t)t->c.window)
		x->failures = 0;
}

static void
global_roll(struct throttle *t, time_t now)
{
	if (t->gblocked_until != 0 && now >= t->gblocked_until) {
		t->gblocked_until = 0;
		t->gfailures = 0;
		t->gstart = now;
	}
	if (t->gblocked_until == 0 &&
	    (now < t->gstart ||
	    now - t->gstart >= (time_t)t->c.global_window)) {
		t->gfailures = 0;
		t->gstart = now;
	}
}

/* delay_ms * 2^(n-1), capped. */
static unsigned int
client_delay(const struct throttle_conf *c, unsigned int n)
{
	unsigned long long d = c->delay_ms;

	if (n == 0 || d == 0)
		return 0;
	while (--n > 0 && d < c->max_delay_ms)
		d *= 2;
	return d > c->max_delay_ms ? c->max_delay_ms : (unsigned int)d;
}

enum throttle_state
throttle_check(struct throttle *t, const struct sockaddr *sa, time_t now,
    unsigned int *left)
{
	unsigned char key[KEYLEN];
	enum throttle_state st = THROTTLE_OK;
	struct tentry *x;
	uint32_t i;

	if (left != NULL)
		*left = 0;
	make_key(sa, key);
	pthread_mutex_lock(&t->mu);
	if (t->c.global_failures > 0) {
		global_roll(t, now);
		if (t->gblocked_until != 0) {
			st = THROTTLE_BLOCKED_GLOBAL;
			if (left != NULL)
				*left = (unsigned int)(t->gblocked_until - now);
		}
	}
	if ((i = lookup(t, key)) != 0) {
		x = E(t, i);
		expire(t, x, now);
		if (x->blocked_until != 0) {
			st = THROTTLE_BLOCKED;
			if (left != NULL)
				*left = (unsigned int)(x->blocked_until - now);
		}
		/* A client that keeps knocking stays in the table. */
		lru_unlink(t, i);
		lru_push(t, i);
	}
	pthread_mutex_unlock(&t->mu);
	return st;
}

unsigned int
throttle_fail(struct throttle *t, const struct sockaddr *sa, time_t now,
    int *blocked)
{
	unsigned char key[KEYLEN];
	unsigned int d, gd = 0;
	struct tentry *x;
	uint32_t i;
	int b = 0;

	make_key(sa, key);
	pthread_mutex_lock(&t->mu);
	if ((i = lookup(t, key)) == 0)
		i = insert(t, key);
	else {
		lru_unlink(t, i);
		lru_push(t, i);
	}
	x = E(t, i);
	expire(t, x, now);
	if (x->failures < UINT_MAX)
		x->failures++;
	x->last = now;
	d = client_delay(&t->c, x->failures);
	if (x->blocked_until != 0)
		b = 1;
	else if (t->c.max_failures > 0 && x->failures >= t->c.max_failures) {
		x->blocked_until = now + (time_t)t->c.block;
		b = 1;
	}
	if (t->c.global_failures > 0) {
		global_roll(t, now);
		if (t->gfailures < t->c.global_failures)
			t->gfailures++;
		/* Grows linearly with the pressure, up to the cap. */
		gd = (unsigned int)((unsigned long long)t->c.max_delay_ms *
		    t->gfailures / t->c.global_failures);
		if (t->gblocked_until != 0)
			b = 1;
		else if (t->gfailures >= t->c.global_failures) {
			t->gblocked_until = now + (time_t)t->c.global_block;
			b = 1;
		}
	}
	pthread_mutex_unlock(&t->mu);
	if (blocked != NULL)
		*blocked = b;
	return d > gd ? d : gd;
}

void
throttle_success(struct throttle *t, const struct sockaddr *sa)
{
	unsigned char key[KEYLEN];
	uint32_t i;

	make_key(sa, key);
	pthread_mutex_lock(&t->mu);
	/* A block stays: only a client that was let in can succeed. */
	if ((i = lookup(t, key)) != 0 && E(t, i)->blocked_until == 0)
		release(t, i);
	pthread_mutex_unlock(&t->mu);
}

unsigned int
throttle_failures(struct throttle *t, const struct sockaddr *sa, time_t now)
{
	unsigned char key[KEYLEN];
	unsigned int n = 0;
	uint32_t i;

	make_key(sa, key);
	pthread_mutex_lock(&t->mu);
	if ((i = lookup(t, key)) != 0) {
		expire(t, E(t, i), now);
		n = E(t, i)->failures;
	}
	pthread_mutex_unlock(&t->mu);
	return n;
}

size_t
throttle_clients(struct throttle *t)
{
	size_t n;

	pthread_mutex_lock(&t->mu);
	n = t->used;
	pthread_mutex_unlock(&t->mu);
	return n;
}
