/*
 * throttle: AUTH failure counting.  See throttle.h.
 *
 * A fixed array of entries, found through a chained hash table (keyed
 * with a random seed, so nobody can aim addresses at one chain) and kept
 * on a least-recently-used list for eviction.  Indexes are 1-based so
 * that 0 can mean "none".  An entry is a client (an IPv4 address, an
 * IPv6 /64) or, for the global count, an IPv4 /24; an IPv6 /64 is both.
 *
 * With a state file (throttle_attach_file()) every call reads the table
 * from the file under an fcntl() lock, works on it, and writes it back
 * before the lock is dropped, so that processes share one count
 * (throttle_file.c).
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
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>

#include "throttle_int.h"

static void	make_key(const struct sockaddr *, unsigned char *);
static void	net_key(const unsigned char *, unsigned char *);
static uint32_t	hash(const struct throttle *, const unsigned char *);
static uint32_t	lookup(struct throttle *, const unsigned char *);
static uint32_t	insert(struct throttle *, const unsigned char *);
static void	unlink_hash(struct throttle *, uint32_t);
static void	lru_unlink(struct throttle *, uint32_t);
static void	lru_push(struct throttle *, uint32_t);
static void	release(struct throttle *, uint32_t);
static void	expire(struct throttle *, struct tentry *, time_t);
static void	global_roll(struct throttle *, time_t);
static enum throttle_state global_state(struct throttle *, time_t,
		    unsigned int *);
static unsigned int global_count(struct throttle *, const unsigned char *,
		    time_t, int *);
static unsigned int client_delay(const struct throttle_conf *, unsigned int);
static int	enter(struct throttle *, time_t *);
static void	leave(struct throttle *, time_t);

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

/* Empties the table and the global count. */
void
throttle_table_reset(struct throttle *t)
{
	uint32_t i;

	memset(t->e, 0, t->size * sizeof(*t->e));
	memset(t->bucket, 0, (t->mask + 1) * sizeof(*t->bucket));
	for (i = 1; i <= t->size; i++)
		E(t, i)->hnext = i < t->size ? i + 1 : 0;
	t->freelist = 1;
	t->used = 0;
	t->newest = t->oldest = 0;
	t->gfailures = 0;
	t->gstart = 0;
	t->gblocked_until = 0;
	t->gseq = 1;
}

struct throttle *
throttle_new(const struct throttle_conf *c, char *err, size_t errlen)
{
	struct throttle *t;
	uint32_t nb;

	if (throttle_conf_check(c, err, errlen) == -1)
		return NULL;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		goto nomem;
	t->fd = -1;
	t->c = *c;
	t->size = c->table_size;
	for (nb = 16; nb < t->size; nb <<= 1)
		;
	t->mask = nb - 1;
	if ((t->e = calloc(t->size, sizeof(*t->e))) == NULL ||
	    (t->bucket = calloc(nb, sizeof(*t->bucket))) == NULL)
		goto nomem;
	throttle_table_reset(t);
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
	if (t->fd >= 0)
		(void)close(t->fd);
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
		key[0] = KEY_V4;
		memcpy(key + 1, &sin->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		sin6 = (const struct sockaddr_in6 *)(const void *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			key[0] = KEY_V4;
			memcpy(key + 1, sin6->sin6_addr.s6_addr + 12, 4);
		} else {
			key[0] = KEY_V6;
			memcpy(key + 1, sin6->sin6_addr.s6_addr, 8);
		}
	}
}

/*
 * The network a client key belongs to for the global count: the /24 of
 * an IPv4 address; an IPv6 key is its /64 already.
 */
static void
net_key(const unsigned char *key, unsigned char *net)
{
	memcpy(net, key, KEYLEN);
	if (key[0] == KEY_V4) {
		net[0] = KEY_NET4;
		net[4] = 0;
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

/* The entry for key, made the most recently seen; created if need be. */
uint32_t
throttle_touch(struct throttle *t, const unsigned char *key)
{
	uint32_t i;

	if ((i = lookup(t, key)) == 0)
		return insert(t, key);
	lru_unlink(t, i);
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

/*
 * Forgets what has run out: an ended block, failures long ago.  A
 * reservation older than the window belongs to an exchange that never
 * ended (a process that died), so it goes too.
 */
static void
expire(struct throttle *t, struct tentry *x, time_t now)
{
	if (x->blocked_until != 0 && now >= x->blocked_until) {
		x->blocked_until = 0;
		x->failures = 0;
		x->inflight = 0;
	}
	if (x->blocked_until == 0 && x->failures > 0 &&
	    (now < x->last || now - x->last >= (time_t)t->c.window)) {
		x->failures = 0;
		x->inflight = 0;
	}
}

static void
global_roll(struct throttle *t, time_t now)
{
	if (t->gblocked_until != 0 && now >= t->gblocked_until) {
		t->gblocked_until = 0;
		t->gfailures = 0;
		t->gstart = now;
		t->gseq++;
		t->news = THROTTLE_NEWS_GLOBAL_END;
	}
	if (t->gblocked_until == 0 &&
	    (now < t->gstart ||
	    now - t->gstart >= (time_t)t->c.global_window)) {
		t->gfailures = 0;
		t->gstart = now;
		t->gseq++;
	}
}

static enum throttle_state
global_state(struct throttle *t, time_t now, unsigned int *left)
{
	if (t->c.global_failures == 0)
		return THROTTLE_OK;
	global_roll(t, now);
	if (t->gblocked_until == 0)
		return THROTTLE_OK;
	if (left != NULL)
		*left = (unsigned int)(t->gblocked_until - now);
	return THROTTLE_BLOCKED_GLOBAL;
}

/*
 * Counts a failure from the network of client key into the global count,
 * once per network and window: many addresses of one network weigh what
 * one does.  Returns the global delay; sets *blocked when everyone is.
 */
static unsigned int
global_count(struct throttle *t, const unsigned char *key, time_t now,
    int *blocked)
{
	unsigned char net[KEYLEN];
	struct tentry *n;

	if (t->c.global_failures == 0)
		return 0;
	global_roll(t, now);
	net_key(key, net);
	n = E(t, throttle_touch(t, net));
	if (n->gseq != t->gseq) {
		n->gseq = t->gseq;
		if (t->gfailures < t->c.global_failures)
			t->gfailures++;
	}
	if (t->gblocked_until != 0)
		*blocked = 1;
	else if (t->gfailures >= t->c.global_failures) {
		t->gblocked_until = now + (time_t)t->c.global_block;
		t->news = THROTTLE_NEWS_GLOBAL_START;
		t->news_count = t->gfailures;
		*blocked = 1;
	}
	/* Grows linearly with the pressure, up to the cap. */
	return (unsigned int)((unsigned long long)t->c.max_delay_ms *
	    t->gfailures / t->c.global_failures);
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

/*
 * Takes the lock (and the file's, reading the table from it).  *offp
 * gets the wall clock's offset from the monotonic one.  0, or -1 when
 * the file failed (the mutex is then not held).
 */
static int
enter(struct throttle *t, time_t *offp)
{
	pthread_mutex_lock(&t->mu);
	*offp = 0;
	if (t->fd == -1 || throttle_file_lock(t, offp) == 0)
		return 0;
	pthread_mutex_unlock(&t->mu);
	return -1;
}

/* Writes the table back (with a file) and drops the locks. */
static void
leave(struct throttle *t, time_t off)
{
	if (t->fd >= 0)
		throttle_file_unlock(t, off);
	pthread_mutex_unlock(&t->mu);
}

enum throttle_state
throttle_check(struct throttle *t, const struct sockaddr *sa, time_t now,
    unsigned int *left)
{
	unsigned char key[KEYLEN];
	enum throttle_state st;
	struct tentry *x;
	uint32_t i;
	time_t off;

	if (left != NULL)
		*left = 0;
	make_key(sa, key);
	if (enter(t, &off) == -1)
		return THROTTLE_ERROR;
	st = global_state(t, now, left);
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
	leave(t, off);
	return st;
}

enum throttle_state
throttle_reserve(struct throttle *t, const struct sockaddr *sa, time_t now,
    unsigned int *left)
{
	unsigned char key[KEYLEN];
	enum throttle_state st;
	struct tentry *x;
	time_t off;

	if (left != NULL)
		*left = 0;
	make_key(sa, key);
	if (enter(t, &off) == -1)
		return THROTTLE_ERROR;
	st = global_state(t, now, left);
	x = E(t, throttle_touch(t, key));
	expire(t, x, now);
	if (x->blocked_until != 0) {
		st = THROTTLE_BLOCKED;
		if (left != NULL)
			*left = (unsigned int)(x->blocked_until - now);
	} else if (st == THROTTLE_OK && t->c.max_failures > 0 &&
	    x->failures >= t->c.max_failures) {
		/* Attempts still running hold every allowed try. */
		st = THROTTLE_BLOCKED;
		if (left != NULL)
			*left = t->c.block;
	}
	if (st == THROTTLE_OK) {
		if (x->failures < UINT_MAX)
			x->failures++;
		x->inflight++;
		x->last = now;
	}
	leave(t, off);
	return st;
}

unsigned int
throttle_fail(struct throttle *t, const struct sockaddr *sa, time_t now,
    int *blocked)
{
	unsigned char key[KEYLEN];
	unsigned int d, gd;
	struct tentry *x;
	time_t off;
	int b = 0;

	make_key(sa, key);
	if (enter(t, &off) == -1) {
		if (blocked != NULL)
			*blocked = 1;
		return t->c.max_delay_ms;
	}
	x = E(t, throttle_touch(t, key));
	expire(t, x, now);
	/* A reserved attempt was counted when it began. */
	if (x->inflight > 0)
		x->inflight--;
	else if (x->failures < UINT_MAX)
		x->failures++;
	x->last = now;
	d = client_delay(&t->c, x->failures);
	if (x->blocked_until != 0)
		b = 1;
	else if (t->c.max_failures > 0 && x->failures >= t->c.max_failures) {
		x->blocked_until = now + (time_t)t->c.block;
		b = 1;
	}
	gd = global_count(t, key, now, &b);
	leave(t, off);
	if (blocked != NULL)
		*blocked = b;
	return d > gd ? d : gd;
}

int
throttle_success(struct throttle *t, const struct sockaddr *sa, time_t now)
{
	unsigned char key[KEYLEN];
	struct tentry *x;
	uint32_t i;
	time_t off;
	int blocked;

	make_key(sa, key);
	if (enter(t, &off) == -1)
		return 1;
	blocked = global_state(t, now, NULL) != THROTTLE_OK;
	if ((i = lookup(t, key)) != 0) {
		x = E(t, i);
		expire(t, x, now);
		/* A block stays, and this success is answered as a failure. */
		if (x->blocked_until != 0)
			blocked = 1;
		else if (!blocked && x->inflight > 1) {
			/* Forget the failures, not the other running tries. */
			x->inflight--;
			x->failures = x->inflight;
		} else if (!blocked)
			release(t, i);
	}
	leave(t, off);
	return blocked;
}

unsigned int
throttle_release(struct throttle *t, const struct sockaddr *sa, time_t now)
{
	unsigned char key[KEYLEN];
	unsigned int n = 0, gd = 0, d;
	struct tentry *x;
	uint32_t i;
	time_t off;

	make_key(sa, key);
	if (enter(t, &off) == -1)
		return t->c.max_delay_ms;
	if ((i = lookup(t, key)) != 0) {
		x = E(t, i);
		expire(t, x, now);
		if (x->inflight > 0) {
			x->inflight--;
			if (x->failures > 0)
				x->failures--;
		}
		n = x->failures;
	}
	if (t->c.global_failures > 0)
		gd = (unsigned int)((unsigned long long)t->c.max_delay_ms *
		    t->gfailures / t->c.global_failures);
	leave(t, off);
	/* What a failure would have waited. */
	d = client_delay(&t->c, n + 1);
	return d > gd ? d : gd;
}

enum throttle_news
throttle_news(struct throttle *t, unsigned int *networks)
{
	enum throttle_news n;

	pthread_mutex_lock(&t->mu);
	n = t->news;
	if (networks != NULL)
		*networks = t->news_count;
	t->news = THROTTLE_NEWS_NONE;
	pthread_mutex_unlock(&t->mu);
	return n;
}

unsigned int
throttle_failures(struct throttle *t, const struct sockaddr *sa, time_t now)
{
	unsigned char key[KEYLEN];
	unsigned int n = 0;
	uint32_t i;
	time_t off;

	make_key(sa, key);
	if (enter(t, &off) == -1)
		return 0;
	if ((i = lookup(t, key)) != 0) {
		expire(t, E(t, i), now);
		n = E(t, i)->failures;
	}
	leave(t, off);
	return n;
}

size_t
throttle_clients(struct throttle *t)
{
	size_t n;
	time_t off;

	if (enter(t, &off) == -1)
		return 0;
	n = t->used;
	leave(t, off);
	return n;
}

