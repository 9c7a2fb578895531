/*
 * The policy state that outlives a reload: greylisting triplets and
 * per-client rate counters.  Fixed upper bounds on both; one mutex.
 */
#include "config.h"

#include <sys/file.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/net.h"
#include "lib/str.h"
#include "policy.h"
#include "state.h"

#define GREY_BUCKETS	65536
#define GREY_KEY_MAX	600
#define GREY_SAVE_SECS	60	/* the daemon writes the file this often */
#define RATE_BUCKETS	4096
#define RATE_WINDOW	60
#define USER_BUCKETS	1024
#define USER_FILE_MAX	1000	/* the busiest users written to the file */

struct grey {
	struct grey	*next;
	time_t		 first, last;
	int		 passed;
	char		 key[];
};

struct rate {
	struct rate	*next;		/* in its hash bucket */
	struct rate	*newer, *older;	/* by last use */
	unsigned char	 key[NET_KEY_LEN];	/* IPv4 address, IPv6 /64 */
	time_t		 start;		/* of the current minute */
	unsigned int	 conns, msgs;
};

/* Per-user counts: one AUTH login or trusted sender, one window. */
struct ucount {
	struct ucount	*next;
	time_t		 start;
	unsigned int	 msgs, rcpts;
	char		 key[];
};

struct policy_state {
	pthread_mutex_t	 mu;
	struct grey	*grey[GREY_BUCKETS];
	size_t		 ngrey;
	int		 grey_loaded;
	int		 grey_dirty;
	time_t		 grey_saved;
	struct rate	*rate[RATE_BUCKETS];
	struct rate	*rate_newest, *rate_oldest;
	size_t		 nrate, rate_max;
	struct ucount	*user[USER_BUCKETS];
	size_t		 nuser;
	/* The counts as the daemon last saw the limits, for user_save(). */
	unsigned int	 user_mlimit, user_rlimit, user_window;
	char		 user_file[PATH_MAX];	/* "": not written */
	int		 user_dirty;
	int		 saver_on, saver_stop;
	pthread_t	 saver;
	pthread_cond_t	 saver_cv;
};

static unsigned int
hash(const void *p, size_t n)
{
	const unsigned char *c = p;
	unsigned int h = 2166136261u;

	while (n-- > 0)
		h = (h ^ *c++) * 16777619u;
	return h;
}

struct policy_state *
policy_state_new(void)
{
	struct policy_state *st;

	if ((st = calloc(1, sizeof(*st))) == NULL)
		return NULL;
	pthread_mutex_init(&st->mu, NULL);
	pthread_cond_init(&st->saver_cv, NULL);
	st->rate_max = STATE_RATE_MAX;
	return st;
}

static void
grey_clear(struct policy_state *st)
{
	struct grey *g, *n;
	size_t i;

	for (i = 0; i < GREY_BUCKETS; i++) {
		for (g = st->grey[i]; g != NULL; g = n) {
			n = g->next;
			free(g);
		}
		st->grey[i] = NULL;
	}
	st->ngrey = 0;
}

/* Forgets the users whose window ended before horizon (0: all). */
static void
user_drop(struct policy_state *st, time_t horizon)
{
	struct ucount **up, *u;
	size_t i;

	for (i = 0; i < USER_BUCKETS; i++)
		for (up = &st->user[i]; (u = *up) != NULL;) {
			if (horizon != 0 && u->start >= horizon) {
				up = &u->next;
				continue;
			}
			*up = u->next;
			free(u);
			st->nuser--;
		}
}

int
state_user_count(struct policy_state *st, const struct policy *p,
    const char *who, int what, unsigned int *msgs, unsigned int *rcpts)
{
	struct ucount *u;
	time_t now = time(NULL);
	size_t n = strlen(who);
	unsigned int h = hash(who, n) % USER_BUCKETS, *c;
	unsigned int window = p->user_window;
	unsigned int limit = what == USER_MSG ? p->user_messages :
	    p->user_recipients;
	int over = 0;

	*msgs = *rcpts = 0;
	pthread_mutex_lock(&st->mu);
	st->user_mlimit = p->user_messages;
	st->user_rlimit = p->user_recipients;
	st->user_window = window;
	for (u = st->user[h]; u != NULL; u = u->next)
		if (strcmp(u->key, who) == 0)
			break;
	if (u == NULL) {
		if (st->nuser >= STATE_USER_MAX)
			user_drop(st, now - (time_t)window);
		/* Still full: this one goes uncounted rather than grow. */
		if (st->nuser >= STATE_USER_MAX ||
		    (u = calloc(1, sizeof(*u) + n + 1)) == NULL) {
			pthread_mutex_unlock(&st->mu);
			return 0;
		}
		memcpy(u->key, who, n + 1);
		u->start = now;
		u->next = st->user[h];
		st->user[h] = u;
		st->nuser++;
	}
	if (now - u->start >= (time_t)window || now < u->start) {
		u->start = now;
		u->msgs = u->rcpts = 0;
	}
	c = what == USER_MSG ? &u->msgs : &u->rcpts;
	if (limit != 0 && *c >= limit)
		over = 1;
	else {
		(*c)++;
		st->user_dirty = 1;
	}
	*msgs = u->msgs;
	*rcpts = u->rcpts;
	pthread_mutex_unlock(&st->mu);
	return over;
}

/* Busiest first: messages, then recipients, then the name. */
static int
ucount_cmp(const void *a, const void *b)
{
	const struct ucount *x = *(const struct ucount *const *)a;
	const struct ucount *y = *(const struct ucount *const *)b;

	if (x->msgs != y->msgs)
		return x->msgs < y->msgs ? 1 : -1;
	if (x->rcpts != y->rcpts)
		return x->rcpts < y->rcpts ? 1 : -1;
	return strcmp(x->key, y->key);
}

/*
 * Writes the counts of the current window (the busiest USER_FILE_MAX) to
 * a new file renamed over the old, for `smtpq stats`.  Locked.  A line:
 * "start window messages limit recipients limit who"; who is last and
 * may hold spaces.
 */
static void
user_save(struct policy_state *st, time_t now)
{
	char tmp[PATH_MAX + 16];
	struct ucount **all, *u;
	size_t i, n = 0;
	FILE *f;
	int fd, ok;

	st->user_dirty = 0;
	if (st->user_file[0] == '\0')
		return;
	/* An array of pointers: sizeof(*all) is meant. */
	/* NOLINTNEXTLINE(bugprone-sizeof-expression) */
	if ((all = calloc(st->nuser + 1, sizeof(*all))) == NULL)
		return;
	for (i = 0; i < USER_BUCKETS; i++)
		for (u = st->user[i]; u != NULL && n < st->nuser; u = u->next)
			if (now >= u->start &&
			    now - u->start < (time_t)st->user_window)
				all[n++] = u;
	qsort(all, n, sizeof(*all), ucount_cmp); /* NOLINT(bugprone-sizeof-expression) */
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", st->user_file) >=
	    sizeof(tmp) || (fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC |
	    O_CLOEXEC, 0600)) == -1) {
		log_warn("user limits: %s: %s", tmp, strerror(errno));
		free(all);
		return;
	}
	if ((f = fdopen(fd, "w")) == NULL) {
		close(fd);
		(void)unlink(tmp);
		free(all);
		return;
	}
	ok = fprintf(f, "# start window messages limit recipients limit "
	    "who\n") > 0;
	for (i = 0; i < n && i < USER_FILE_MAX && ok; i++) {
		const char *c;

		ok = fprintf(f, "%lld %u %u %u %u %u ",
		    (long long)all[i]->start, st->user_window, all[i]->msgs,
		    st->user_mlimit, all[i]->rcpts, st->user_rlimit) > 0;
		/* One line each, whatever the login holds. */
		for (c = all[i]->key; *c != '\0' && ok; c++)
			ok = putc(iscntrl((unsigned char)*c) ? '?' : *c,
			    f) != EOF;
		ok = ok && putc('\n', f) != EOF;
	}
	free(all);
	if (fclose(f) != 0 || !ok || rename(tmp, st->user_file) == -1) {
		log_warn("user limits: cannot write %s: %s", st->user_file,
		    strerror(errno));
		(void)unlink(tmp);
	}
}

/* Writes the file at most once a second, when a count changed. */
static void *
user_saver(void *arg)
{
	struct policy_state *st = arg;
	struct timespec ts;

	pthread_mutex_lock(&st->mu);
	while (!st->saver_stop) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec++;
		(void)pthread_cond_timedwait(&st->saver_cv, &st->mu, &ts);
		if (st->user_dirty)
			user_save(st, time(NULL));
	}
	pthread_mutex_unlock(&st->mu);
	return NULL;
}

int
policy_state_user_file(struct policy_state *st, const char *spool,
    char *err, size_t errlen)
{
	int e;

	if ((size_t)snprintf(st->user_file, sizeof(st->user_file),
	    "%s/user-limits", spool) >= sizeof(st->user_file)) {
		st->user_file[0] = '\0';
		snprintf(err, errlen, "%s/user-limits: path too long", spool);
		return -1;
	}
	/* What an earlier daemon counted is not this one's. */
	if (unlink(st->user_file) == -1 && errno != ENOENT) {
		snprintf(err, errlen, "%s: %s", st->user_file,
		    strerror(errno));
		return -1;
	}
	if ((e = pthread_create(&st->saver, NULL, user_saver, st)) != 0) {
		snprintf(err, errlen, "user limits writer: %s", strerror(e));
		return -1;
	}
	st->saver_on = 1;
	return 0;
}

void
policy_state_free(struct policy_state **stp)
{
	struct policy_state *st = *stp;
	struct rate *r, *n;
	size_t i;

	if (st == NULL)
		return;
	*stp = NULL;
	if (st->saver_on) {
		pthread_mutex_lock(&st->mu);
		st->saver_stop = 1;
		pthread_cond_signal(&st->saver_cv);
		pthread_mutex_unlock(&st->mu);
		pthread_join(st->saver, NULL);
	}
	grey_clear(st);
	user_drop(st, 0);
	for (i = 0; i < RATE_BUCKETS; i++)
		for (r = st->rate[i]; r != NULL; r = n) {
			n = r->next;
			free(r);
		}
	pthread_cond_destroy(&st->saver_cv);
	pthread_mutex_destroy(&st->mu);
	free(st);
}

/* Drops triplets that have expired; makes room when the table is full. */
static void
grey_prune(struct policy_state *st, const struct policy *p, time_t now)
{
	struct grey **gp, *g;
	size_t i;
	time_t horizon = 0;

	for (;;) {
		for (i = 0; i < GREY_BUCKETS; i++) {
			for (gp = &st->grey[i]; (g = *gp) != NULL;) {
				time_t limit = g->passed ? p->grey_expire :
				    p->grey_retry;

				if (now - g->last > (time_t)limit ||
				    g->last < horizon) {
					*gp = g->next;
					free(g);
					st->ngrey--;
					st->grey_dirty = 1;
				} else
					gp = &g->next;
			}
		}
		if (st->ngrey < p->grey_entries)
			return;
		/* Still full: forget the oldest part of the window. */
		horizon = horizon == 0 ? now - (time_t)p->grey_expire / 2 :
		    horizon + (now - horizon) / 2;
		if (now - horizon < 2)
			return;
	}
}

static struct grey *
grey_insert(struct policy_state *st, const char *key, time_t first,
    time_t last, int passed)
{
	size_t n = strlen(key);
	struct grey *g;
	unsigned int b = hash(key, n) % GREY_BUCKETS;

	if ((g = malloc(sizeof(*g) + n + 1)) == NULL)
		return NULL;
	memcpy(g->key, key, n + 1);
	g->first = first;
	g->last = last;
	g->passed = passed;
	g->next = st->grey[b];
	st->grey[b] = g;
	st->ngrey++;
	return g;
}

static struct grey *
grey_find(struct policy_state *st, const char *key)
{
	struct grey *g;

	for (g = st->grey[hash(key, strlen(key)) % GREY_BUCKETS]; g != NULL;
	    g = g->next)
		if (strcmp(g->key, key) == 0)
			return g;
	return NULL;
}

/* The file: one triplet a line, "first last passed key". */
static void
grey_load(struct policy_state *st, const struct policy *p)
{
	char line[GREY_KEY_MAX + 64], key[GREY_KEY_MAX + 1];
	long long first, last;
	int passed;
	FILE *f;
	int fd;

	st->grey_loaded = 1;
	if ((fd = open(p->grey_file, O_RDONLY | O_CLOEXEC)) == -1)
		return;
	(void)flock(fd, LOCK_SH);
	if ((f = fdopen(fd, "r")) == NULL) {
		close(fd);
		return;
	}
	grey_clear(st);
	while (fgets(line, sizeof(line), f) != NULL &&
	    st->ngrey < p->grey_entries) {
		if (sscanf(line, "%lld %lld %d %600s", &first, &last, &passed,
		    key) != 4)
			continue;
		if (grey_find(st, key) == NULL)
			(void)grey_insert(st, key, (time_t)first, (time_t)last,
			    passed != 0);
	}
	fclose(f);
}

/* Writes the table to a new file and renames it over the old.  Locked. */
static void
grey_save(struct policy_state *st, const struct policy *p, time_t now)
{
	char tmp[PATH_MAX + 16];
	struct grey *g;
	FILE *f;
	size_t i;
	int fd, ok = 1;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.%ld", p->grey_file,
	    (long)getpid()) >= sizeof(tmp))
		return;
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) == -1) {
		log_warn("greylist: %s: %s", tmp, strerror(errno));
		return;
	}
	if ((f = fdopen(fd, "w")) == NULL) {
		close(fd);
		(void)unlink(tmp);
		return;
	}
	for (i = 0; i < GREY_BUCKETS && ok; i++)
		for (g = st->grey[i]; g != NULL && ok; g = g->next)
			ok = fprintf(f, "%lld %lld %d %s\n", (long long)g->first,
			    (long long)g->last, g->passed, g->key) > 0;
	if (fclose(f) != 0 || !ok || rename(tmp, p->grey_file) == -1) {
		log_warn("greylist: cannot write %s: %s", p->grey_file,
		    strerror(errno));
		(void)unlink(tmp);
		return;
	}
	st->grey_dirty = 0;
	st->grey_saved = now;
}

void
policy_state_flush(struct policy_state *st, const struct policy *p)
{
	if (st == NULL)
		return;
	pthread_mutex_lock(&st->mu);
	if (p->greylist && st->grey_dirty)
		grey_save(st, p, time(NULL));
	if (st->user_dirty)
		user_save(st, time(NULL));
	pthread_mutex_unlock(&st->mu);
}

/*
 * The greylist key: the client's network (/24 for IPv4, /64 for IPv6, as
 * big senders retry from a neighbouring address), the sender and the
 * recipient, lower case, without spaces.
 */
static void
grey_key(char *buf, size_t len, const struct sockaddr_storage *peer,
    const char *sender, const char *rcpt)
{
	struct sockaddr_storage net = *peer;
	char addr[NET_ADDRSTR_MAX];
	size_t i;

	net_unmap(&net);
	if (net.ss_family == AF_INET)
		((unsigned char *)&((struct sockaddr_in *)&net)->sin_addr)[3] = 0;
	else if (net.ss_family == AF_INET6)
		memset(((struct sockaddr_in6 *)&net)->sin6_addr.s6_addr + 8, 0, 8);
	if (net_ntop((struct sockaddr *)&net, addr, sizeof(addr), NULL) == -1)
		str_lcpy(addr, "unknown", sizeof(addr));
	snprintf(buf, len, "%s|%.256s|%.256s", addr, sender[0] ? sender : "<>",
	    rcpt);
	for (i = 0; buf[i] != '\0'; i++)
		buf[i] = isspace((unsigned char)buf[i]) ? '_' :
		    (char)tolower((unsigned char)buf[i]);
}

enum grey_result
state_greylist(struct policy_state *st, const struct policy *p,
    const struct sockaddr_storage *peer, const char *sender,
    const char *rcpt, int stdio)
{
	char key[GREY_KEY_MAX + 1];
	enum grey_result r;
	struct grey *g;
	time_t now = time(NULL);

	grey_key(key, sizeof(key), peer, sender, rcpt);
	pthread_mutex_lock(&st->mu);
	/* One process per session re-reads what the others wrote. */
	if (!st->grey_loaded || stdio)
		grey_load(st, p);
	if ((g = grey_find(st, key)) == NULL) {
		if (st->ngrey >= p->grey_entries)
			grey_prune(st, p, now);
		g = grey_insert(st, key, now, now, 0);
		r = g == NULL ? GREY_ERROR : GREY_NEW;
	} else if (g->passed) {
		g->last = now;
		r = GREY_PASS;
	} else if (now - g->first > (time_t)p->grey_retry) {
		/* Came back too late: start over. */
		g->first = g->last = now;
		r = GREY_NEW;
	} else if (now - g->first < (time_t)p->grey_delay) {
		g->last = now;
		r = GREY_EARLY;
	} else {
		g->passed = 1;
		g->last = now;
		r = GREY_PASS;
	}
	st->grey_dirty = 1;
	if (stdio || now - st->grey_saved >= GREY_SAVE_SECS)
		grey_save(st, p, now);
	pthread_mutex_unlock(&st->mu);
	return r;
}

static void
rate_unlink(struct policy_state *st, struct rate *r)
{
	if (r->newer != NULL)
		r->newer->older = r->older;
	else
		st->rate_newest = r->older;
	if (r->older != NULL)
		r->older->newer = r->newer;
	else
		st->rate_oldest = r->newer;
	r->newer = r->older = NULL;
}

static void
rate_push_newest(struct policy_state *st, struct rate *r)
{
	r->older = st->rate_newest;
	r->newer = NULL;
	if (st->rate_newest != NULL)
		st->rate_newest->newer = r;
	st->rate_newest = r;
	if (st->rate_oldest == NULL)
		st->rate_oldest = r;
}

/* Forgets the client seen least recently, to make room for a new one. */
static void
rate_evict_oldest(struct policy_state *st)
{
	struct rate *old = st->rate_oldest, **rp;

	if (old == NULL)
		return;
	/* rate_unlink() moves rate_oldest on; the analyzer loses that. */
	/* NOLINTNEXTLINE(clang-analyzer-unix.Malloc) */
	rate_unlink(st, old);
	for (rp = &st->rate[hash(old->key, sizeof(old->key)) % RATE_BUCKETS];
	    *rp != NULL; rp = &(*rp)->next)
		if (*rp == old) {
			*rp = old->next;
			break;
		}
	free(old);
	st->nrate--;
}

/*
 * Finds or makes a client's counters.  A full table forgets its least
 * recently seen client rather than stop counting (failing open would let
 * a flood of new addresses switch the limits off).  NULL only when out
 * of memory or for an address of no known family.
 */
static struct rate *
rate_get(struct policy_state *st, const struct sockaddr_storage *peer,
    time_t now)
{
	unsigned char key[NET_KEY_LEN];
	struct rate *r;
	unsigned int b;

	if (net_prefix_key(peer, 32, 64, key) == -1)
		return NULL;
	b = hash(key, sizeof(key)) % RATE_BUCKETS;
	for (r = st->rate[b]; r != NULL; r = r->next)
		if (memcmp(r->key, key, sizeof(key)) == 0)
			break;
	if (r != NULL)
		rate_unlink(st, r);
	else {
		while (st->nrate >= st->rate_max && st->rate_oldest != NULL)
			rate_evict_oldest(st);
		if ((r = calloc(1, sizeof(*r))) == NULL)
			return NULL;
		memcpy(r->key, key, sizeof(key));
		r->start = now;
		r->next = st->rate[b];
		st->rate[b] = r;
		st->nrate++;
	}
	rate_push_newest(st, r);
	if (now - r->start >= RATE_WINDOW) {
		r->start = now;
		r->conns = r->msgs = 0;
	}
	return r;
}

void
state_set_rate_max(struct policy_state *st, size_t max)
{
	pthread_mutex_lock(&st->mu);
	st->rate_max = max > 0 ? max : 1;
	while (st->nrate > st->rate_max)
		rate_evict_oldest(st);
	pthread_mutex_unlock(&st->mu);
}

int
state_rate(struct policy_state *st, const struct sockaddr_storage *peer,
    int what, unsigned int limit)
{
	struct rate *r;
	int over = 0;
	time_t now = time(NULL);

	if (limit == 0)
		return 0;
	pthread_mutex_lock(&st->mu);
	if ((r = rate_get(st, peer, now)) != NULL) {
		unsigned int *c = what == RATE_CONN ? &r->conns : &r->msgs;

		if (*c >= limit)
			over = 1;
		else
			(*c)++;
	}
	pthread_mutex_unlock(&st->mu);
	return over;
}
