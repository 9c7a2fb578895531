#include "config.h"

#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <netinet/in.h>
#ifdef __linux__
#include <sys/syscall.h>
#include <linux/futex.h>
#define WORKER_FUTEX	1	/* idle workers wait on a futex of their own */
#endif

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/net.h"
#include "lib/str.h"
#include "policy/policy.h"
#include "confsnap.h"
#include "proxyio.h"
#include "server.h"
#include "session.h"

/* plain and TLS, direct and behind a balancer */
#define SERVER_MAX_LISTEN	(2 * POLICY_LISTEN_MAX + 2 * FRONT_LISTEN_MAX)
#define WORKER_STACK		(256 * 1024)
#define WORKER_IDLE_SECS	60	/* an idle worker this long exits */
#define PERIP_BUCKETS		1024
#define NOFILE_WANT		(1 << 20)	/* as many as the system allows */
#define NOFILE_SPARE		256	/* listeners, spool, DNS, logs */

/*
 * How many sessions a client (IPv4 address, IPv6 /64) or a client network
 * (IPv4 /24, IPv6 /64) has open.  key[0] says which of the two it counts.
 */
#define PERIP_CLIENT	1
#define PERIP_NET	2
struct perip {
	struct perip		*next;
	unsigned char		 key[1 + NET_KEY_LEN];
	unsigned int		 count;
};
/* One accepted connection, served by a worker. */
struct conn {
	struct worker		*w;
	int			 released;	/* no longer counted */
	int			 flags;		/* LISTEN_* */
	int			 fd;
	struct sockaddr_storage	 peer;
};

/*
 * A session that ended, still counted against the limits until the
 * acceptor takes it off (before it looks at the limits again).
 */
struct ended {
	struct ended		*next;
	struct sockaddr_storage	 peer;
};

/*
 * A worker thread.  An idle one is on the server's idle stack and sleeps
 * on its own state; the acceptor takes it off, puts the connection in its
 * slot and wakes exactly that worker.  A session's way back takes no lock:
 * the worker pushes what ended onto one stack and itself onto the other,
 * and the acceptor does the counting when it next accepts.
 */
enum { W_IDLE, W_RUN, W_EXIT, W_STOP };
struct worker {
	struct worker		*next_idle;	/* on the idle stack */
	struct worker		*next;		/* every worker, under sv->mu */
	struct server		*sv;
	atomic_int		 state;		/* W_*; the futex word */
	struct conn		 c;		/* the slot: valid in W_RUN */
	struct ended		 ended;		/* pushed once per session */
	pthread_mutex_t		 fdmu;		/* cfd against server_stop */
	int			 cfd;		/* the session's socket or -1 */
#ifndef WORKER_FUTEX
	pthread_mutex_t		 mu;
	pthread_cond_t		 cv;
#endif
};

struct server {
	int			 lfds[SERVER_MAX_LISTEN];
	int			 lflags[SERVER_MAX_LISTEN];
	int			 nlfds;
	int			 wake[2];	/* tells the acceptor to stop */
	pthread_t		 acceptor;
	struct session_conf	 tmpl;
	atomic_int		 stopping;	/* read by sessions unlocked */

	/* Pushed by workers without a lock; taken whole by the acceptor. */
	_Atomic(struct worker *) idle_push;
	_Atomic(struct ended *)	 ended_push;
	struct worker		*idle;		/* the acceptor's, unlocked */

	pthread_mutex_t		 mu;
	pthread_cond_t		 gone;		/* a worker stopped */
	struct worker		*workers;	/* all of them */
	unsigned int		 nsessions;	/* running, as last counted */
	unsigned int		 nthreads;
	struct perip		*perip[PERIP_BUCKETS];
};

static void	*acceptor_main(void *);
static void	*worker_main(void *);
static int	perip_key(const struct sockaddr_storage *, int which,
		    unsigned char *);
static struct perip **perip_find(struct server *, const unsigned char *);
static int	perip_add(struct server *, const struct sockaddr_storage *,
		    unsigned int max_client, unsigned int max_net);
static void	perip_del(struct server *, const struct sockaddr_storage *);
static void	refuse(int fd, const char *host, const char *why);
static int	take_proxy_header(struct server *, struct conn *, char *via,
		    size_t vialen);

static int
perip_key(const struct sockaddr_storage *ss, int which, unsigned char *key)
{
	key[0] = (unsigned char)which;
	return which == PERIP_CLIENT ? net_prefix_key(ss, 32, 64, key + 1) :
	    net_prefix_key(ss, 24, 64, key + 1);
}

static struct perip **
perip_find(struct server *sv, const unsigned char *key)
{
	struct perip **pp;
	unsigned int h = 2166136261u;
	size_t i;

	for (i = 0; i < 1 + NET_KEY_LEN; i++)
		h = (h ^ key[i]) * 16777619u;
	for (pp = &sv->perip[h % PERIP_BUCKETS]; *pp != NULL; pp = &(*pp)->next)
		if (memcmp((*pp)->key, key, sizeof((*pp)->key)) == 0)
			return pp;
	return pp;
}

/* One session less for a key; the entry goes at zero. */
static void
perip_drop(struct server *sv, const unsigned char *key)
{
	struct perip **pp = perip_find(sv, key), *p;

	if ((p = *pp) == NULL)
		return;
	if (--p->count == 0) {
		*pp = p->next;
		free(p);
	}
}

/* One session more for a key; -1 if it has max already or out of memory. */
static int
perip_inc(struct server *sv, const unsigned char *key, unsigned int max)
{
	struct perip **pp = perip_find(sv, key), *p;

	if (*pp != NULL) {
		if ((*pp)->count >= max)
			return -1;
		(*pp)->count++;
		return 0;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return -1;
	memcpy(p->key, key, sizeof(p->key));
	p->count = 1;
	*pp = p;
	return 0;
}

/*
 * Counts one more session for the client and its network.  0, or the
 * limit that is reached: PERIP_CLIENT or PERIP_NET.  A peer of no known
 * family (none over TCP) is not counted.
 */
static int
perip_add(struct server *sv, const struct sockaddr_storage *ss,
    unsigned int max_client, unsigned int max_net)
{
	unsigned char ck[1 + NET_KEY_LEN], nk[1 + NET_KEY_LEN];

	if (perip_key(ss, PERIP_CLIENT, ck) == -1 ||
	    perip_key(ss, PERIP_NET, nk) == -1)
		return 0;
	if (perip_inc(sv, ck, max_client) == -1)
		return PERIP_CLIENT;
	if (perip_inc(sv, nk, max_net) == -1) {
		perip_drop(sv, ck);
		return PERIP_NET;
	}
	return 0;
}

static void
perip_del(struct server *sv, const struct sockaddr_storage *ss)
{
	unsigned char ck[1 + NET_KEY_LEN], nk[1 + NET_KEY_LEN];

	if (perip_key(ss, PERIP_CLIENT, ck) == -1 ||
	    perip_key(ss, PERIP_NET, nk) == -1)
		return;
	perip_drop(sv, ck);
	perip_drop(sv, nk);
}

/* Over a limit: one line, without waiting on the client, then close. */
static void
refuse(int fd, const char *host, const char *why)
{
	char line[512];
	int n;

	n = snprintf(line, sizeof(line), "421 4.7.0 %s %s, try again later\r\n",
	    host, why);
	if (n > 0)
		(void)send(fd, line, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
	close(fd);
}

/*
 * The session is over: it stops counting against the limits.  Pushed, not
 * counted here: the push is seen by the acceptor's next accept (a client
 * that reconnects on reading the last reply comes after it), and the
 * session takes no lock shared with the other sessions.
 */
static void
release_conn(void *arg)
{
	struct conn *c = arg;
	struct worker *w = c->w;
	struct server *sv = w->sv;
	struct ended *e = &w->ended;

	if (c->released)
		return;
	c->released = 1;
	e->peer = c->peer;
	e->next = atomic_load_explicit(&sv->ended_push, memory_order_relaxed);
	while (!atomic_compare_exchange_weak_explicit(&sv->ended_push,
	    &e->next, e, memory_order_release, memory_order_relaxed))
		;
}

/* Counts the sessions that ended since last time.  Under sv->mu. */
static void
take_ended(struct server *sv)
{
	struct ended *e;

	e = atomic_exchange_explicit(&sv->ended_push, NULL,
	    memory_order_acquire);
	for (; e != NULL; e = e->next) {
		perip_del(sv, &e->peer);
		sv->nsessions--;
	}
}

#ifdef WORKER_FUTEX
static void
worker_wake(struct worker *w)
{
	(void)syscall(SYS_futex, &w->state, FUTEX_WAKE_PRIVATE, 1, NULL,
	    NULL, 0);
}

/* Sleeps while w is idle, up to secs.  The state then. */
static int
worker_sleep(struct worker *w, int secs)
{
	struct timespec dl;
	int st;

	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += secs;
	while ((st = atomic_load_explicit(&w->state,
	    memory_order_acquire)) == W_IDLE)
		if (syscall(SYS_futex, &w->state, FUTEX_WAIT_BITSET_PRIVATE,
		    W_IDLE, &dl, NULL, FUTEX_BITSET_MATCH_ANY) == -1 &&
		    errno == ETIMEDOUT)
			return atomic_load_explicit(&w->state,
			    memory_order_acquire);
	return st;
}
#else
static void
worker_wake(struct worker *w)
{
	pthread_mutex_lock(&w->mu);
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static int
worker_sleep(struct worker *w, int secs)
{
	struct timespec dl;
	int st;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += secs;
	pthread_mutex_lock(&w->mu);
	while ((st = atomic_load_explicit(&w->state,
	    memory_order_acquire)) == W_IDLE)
		if (pthread_cond_timedwait(&w->cv, &w->mu, &dl) ==
		    ETIMEDOUT) {
			st = atomic_load_explicit(&w->state,
			    memory_order_acquire);
			break;
		}
	pthread_mutex_unlock(&w->mu);
	return st;
}
#endif

/*
 * Gives an idle worker something to do (W_RUN with its slot filled, or
 * W_STOP) and wakes it.  -1 if it had left meanwhile (W_EXIT).
 */
static int
worker_give(struct worker *w, int st)
{
	int idle = W_IDLE;

	if (!atomic_compare_exchange_strong_explicit(&w->state, &idle, st,
	    memory_order_acq_rel, memory_order_acquire))
		return -1;
	worker_wake(w);
	return 0;
}

/* The session's socket is about to be closed: not to be cut off then. */
static void
forget_fd(struct worker *w)
{
	pthread_mutex_lock(&w->fdmu);
	w->cfd = -1;
	pthread_mutex_unlock(&w->fdmu);
}

/* Forgets a worker that has left.  Under sv->mu. */
static void
worker_free(struct server *sv, struct worker *w)
{
	struct worker **wp;

	for (wp = &sv->workers; *wp != NULL; wp = &(*wp)->next)
		if (*wp == w) {
			*wp = w->next;
			break;
		}
	pthread_mutex_destroy(&w->fdmu);
#ifndef WORKER_FUTEX
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
#endif
	free(w);
}

/*
 * A connection on a proxy listener: only a trusted balancer may use one,
 * and the client its header names takes the balancer's place -- in the
 * per-client session counts too, so those limits still mean one client.
 * 0, or -1 when the connection is to be closed (logged).
 */
static int
take_proxy_header(struct server *sv, struct conn *c, char *via,
    size_t vialen)
{
	struct config *cfg = config_current();
	struct policy *pol = cfg->policy;
	struct proxy_info pi;
	char real[NET_ADDRSTR_MAX], client[NET_ADDRSTR_MAX], desc[512];
	const char *why;
	int port = 0, over;

	if (net_ntop((struct sockaddr *)&c->peer, real, sizeof(real),
	    &port) == -1)
		str_lcpy(real, "unknown", sizeof(real));
	if (!cidr_list_match(pol->front.proxy_trusted,
	    pol->front.nproxy_trusted, (struct sockaddr *)&c->peer)) {
		log_warn("refused %s port %d: PROXY listener, not a trusted "
		    "balancer", real, port);
		config_unref(&cfg);
		return -1;
	}
	if (proxy_read(c->fd, (int)pol->front.proxy_timeout * 1000, &pi,
	    &why) == -1) {
		log_warn("refused %s port %d: bad PROXY header: %s", real, port,
		    why);
		config_unref(&cfg);
		return -1;
	}
	proxy_describe(&pi, desc, sizeof(desc));
	snprintf(via, vialen, " proxy=%s proxy_port=%d %s", real, port, desc);
	if (!pi.has_addr) {
		/* LOCAL (a health check) or no address: the balancer's own. */
		config_unref(&cfg);
		return 0;
	}
	net_unmap(&pi.src);
	pthread_mutex_lock(&sv->mu);
	perip_del(sv, &c->peer);
	over = perip_add(sv, &pi.src, pol->sessions_per_ip,
	    pol->sessions_per_net);
	if (over == 0)
		c->peer = pi.src;
	else {
		c->released = 1;
		sv->nsessions--;
	}
	pthread_mutex_unlock(&sv->mu);
	if (over != 0) {
		(void)net_ntop((struct sockaddr *)&pi.src, client,
		    sizeof(client), NULL);
		log_warn("refused %s (through %s): %u sessions per client%s is "
		    "the limit", client, real, over == PERIP_CLIENT ?
		    pol->sessions_per_ip : pol->sessions_per_net,
		    over == PERIP_CLIENT ? "" : " network");
		forget_fd(c->w);
		refuse(c->fd, pol->hostname, over == PERIP_CLIENT ?
		    "Too many connections from your address" :
		    "Too many connections from your network");
		c->fd = -1;
		config_unref(&cfg);
		return -1;
	}
	config_unref(&cfg);
	return 0;
}

/* A header already waiting on a listener that takes none. */
static void
log_stray_header(const struct conn *c)
{
	char a[NET_ADDRSTR_MAX];
	int port = 0;

	if (net_ntop((const struct sockaddr *)&c->peer, a, sizeof(a),
	    &port) == -1)
		str_lcpy(a, "unknown", sizeof(a));
	log_warn("refused %s port %d: PROXY header on a listener not "
	    "configured for it", a, port);
}

/* Serves the connection in w's slot. */
static void
serve(struct server *sv, struct worker *w)
{
	struct session_conf sc;
	struct conn *c = &w->c;
	char via[768];

	sc = sv->tmpl;
	via[0] = '\0';
	if (c->flags & LISTEN_PROXY) {
		if (take_proxy_header(sv, c, via, sizeof(via)) == -1)
			goto closed;
	} else if (proxy_sniff(c->fd)) {
		log_stray_header(c);
		goto closed;
	}
	sc.rfd = sc.wfd = c->fd;
	sc.peer = c->peer;
	sc.implicit_tls = (c->flags & LISTEN_TLS) != 0;
	sc.listen_flags = c->flags;
	sc.via = via[0] != '\0' ? via : NULL;
	/* One snapshot for the whole session. */
	sc.config = config_session();
	sc.policy = sc.config->policy;
	sc.stopping = &sv->stopping;
	sc.release = release_conn;
	sc.release_arg = c;
	(void)session_run(&sc);
	config_unref(&sc.config);
closed:
	release_conn(c);
	forget_fd(w);
	if (c->fd != -1)
		close(c->fd);
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct server *sv = w->sv;
	int st = W_RUN, idle;

	while (st == W_RUN) {
		serve(sv, w);
		atomic_store_explicit(&w->state, W_IDLE, memory_order_relaxed);
		w->next_idle = atomic_load_explicit(&sv->idle_push,
		    memory_order_relaxed);
		while (!atomic_compare_exchange_weak_explicit(&sv->idle_push,
		    &w->next_idle, w, memory_order_seq_cst,
		    memory_order_relaxed))
			;
		/* server_stop sets stopping before it looks at the stack. */
		st = atomic_load(&sv->stopping) ? W_IDLE :
		    worker_sleep(w, WORKER_IDLE_SECS);
		if (st != W_IDLE)
			continue;
		/* Idle too long, or stopping: leave, unless given work. */
		idle = W_IDLE;
		if (!atomic_compare_exchange_strong(&w->state, &idle, W_EXIT))
			st = idle;
	}
	/*
	 * W_EXIT: w stays on the idle stack for whoever takes it off to
	 * free; W_STOP: server_stop frees it.  Either way, hands off w.
	 */
	pthread_mutex_lock(&sv->mu);
	sv->nthreads--;
	pthread_cond_broadcast(&sv->gone);
	pthread_mutex_unlock(&sv->mu);
	return NULL;
}

/*
 * Takes the workers that became idle since last time onto the acceptor's
 * own list, and counts the sessions that ended.  Under sv->mu.
 */
static void
take_idle(struct server *sv)
{
	struct worker *w, *next;

	/* Workers first: a worker's ended session was pushed before it. */
	w = atomic_exchange_explicit(&sv->idle_push, NULL,
	    memory_order_seq_cst);
	for (; w != NULL; w = next) {
		next = w->next_idle;
		w->next_idle = sv->idle;
		sv->idle = w;
	}
	take_ended(sv);
}

/*
 * Hands a connection to an idle worker, or to a new one.  Under sv->mu;
 * *wakep is the worker to wake once unlocked.  0 or -1.
 */
static int
hand_off(struct server *sv, const struct conn *c, struct worker **wakep)
{
	pthread_attr_t attr;
	struct worker *w;
	pthread_t t;
	int e;

	*wakep = NULL;
	while ((w = sv->idle) != NULL) {
		sv->idle = w->next_idle;
		if (atomic_load_explicit(&w->state, memory_order_acquire) ==
		    W_EXIT) {
			worker_free(sv, w);
			continue;
		}
		w->c = *c;
		w->c.w = w;
		pthread_mutex_lock(&w->fdmu);
		w->cfd = c->fd;
		pthread_mutex_unlock(&w->fdmu);
		*wakep = w;
		return 0;
	}
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return -1;
	w->sv = sv;
	w->c = *c;
	w->c.w = w;
	w->cfd = c->fd;
	atomic_init(&w->state, W_RUN);
	pthread_mutex_init(&w->fdmu, NULL);
#ifndef WORKER_FUTEX
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
#endif
	w->next = sv->workers;
	sv->workers = w;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, WORKER_STACK);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	e = pthread_create(&t, &attr, worker_main, w);
	pthread_attr_destroy(&attr);
	if (e != 0) {
		worker_free(sv, w);
		return -1;
	}
	sv->nthreads++;
	return 0;
}

static void
accept_one(struct server *sv, int lfd, int flags)
{
	struct sockaddr_storage peer;
	socklen_t plen = sizeof(peer);
	struct config *cfg;
	struct policy *pol;
	struct worker *w;
	struct conn c;
	char addr[NET_ADDRSTR_MAX];
	int fd, over;

	fd = accept4(lfd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC);
	if (fd == -1) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM) {
			log_err("accept: %s", strerror(errno));
			/* Let descriptors free up rather than spin. */
			usleep(100 * 1000);
		}
		return;
	}
	net_unmap(&peer);
	cfg = config_current();
	pol = cfg->policy;
	/* -k and block: closed before any reply, and not logged. */
	if (policy_blocked_peer(pol, (struct sockaddr *)&peer)) {
		close(fd);
		config_unref(&cfg);
		return;
	}
	pthread_mutex_lock(&sv->mu);
	take_idle(sv);
	if (sv->nsessions >= pol->sessions) {
		pthread_mutex_unlock(&sv->mu);
		(void)net_ntop((struct sockaddr *)&peer, addr, sizeof(addr), NULL);
		log_warn("refused %s: %u sessions at once is the limit", addr,
		    pol->sessions);
		refuse(fd, pol->hostname, "Too many connections");
		config_unref(&cfg);
		return;
	}
	if ((over = perip_add(sv, &peer, pol->sessions_per_ip,
	    pol->sessions_per_net)) != 0) {
		pthread_mutex_unlock(&sv->mu);
		(void)net_ntop((struct sockaddr *)&peer, addr, sizeof(addr), NULL);
		if (over == PERIP_CLIENT) {
			log_warn("refused %s: %u sessions per client is the "
			    "limit", addr, pol->sessions_per_ip);
			refuse(fd, pol->hostname,
			    "Too many connections from your address");
		} else {
			log_warn("refused %s: %u sessions per client network "
			    "is the limit", addr, pol->sessions_per_net);
			refuse(fd, pol->hostname,
			    "Too many connections from your network");
		}
		config_unref(&cfg);
		return;
	}
	memset(&c, 0, sizeof(c));
	c.fd = fd;
	c.peer = peer;
	c.flags = flags;
	sv->nsessions++;
	for (;;) {
		if (hand_off(sv, &c, &w) == -1) {
			sv->nsessions--;
			perip_del(sv, &peer);
			pthread_mutex_unlock(&sv->mu);
			log_err("cannot start a worker thread");
			refuse(fd, pol->hostname, "Out of resources");
			config_unref(&cfg);
			return;
		}
		pthread_mutex_unlock(&sv->mu);
		/* Woken outside the lock, it has nothing to wait for. */
		if (w == NULL || worker_give(w, W_RUN) == 0)
			break;
		/* It left on its own just now: the next one, or a new one. */
		pthread_mutex_lock(&sv->mu);
		worker_free(sv, w);
	}
	config_unref(&cfg);
}

static void *
acceptor_main(void *arg)
{
	struct server *sv = arg;
	struct pollfd pfd[SERVER_MAX_LISTEN + 1];
	int i, n;

	for (i = 0; i < sv->nlfds; i++) {
		pfd[i].fd = sv->lfds[i];
		pfd[i].events = POLLIN;
	}
	pfd[sv->nlfds].fd = sv->wake[0];
	pfd[sv->nlfds].events = POLLIN;
	for (;;) {
		n = poll(pfd, (nfds_t)sv->nlfds + 1, -1);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			log_err("poll: %s", strerror(errno));
			usleep(100 * 1000);
			continue;
		}
		if (pfd[sv->nlfds].revents)
			break;
		for (i = 0; i < sv->nlfds; i++)
			if (pfd[i].revents & POLLIN)
				accept_one(sv, pfd[i].fd, sv->lflags[i]);
	}
	for (i = 0; i < sv->nlfds; i++)
		close(sv->lfds[i]);
	return NULL;
}

/*
 * Every session holds a socket, so the soft limit on open files is raised
 * as far as the hard limit allows; if even that is too low for the
 * configured sessions, say so once rather than fail accept() later.
 */
static void
raise_nofile(unsigned int sessions)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < NOFILE_WANT &&
	    rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ||
		    rl.rlim_max > NOFILE_WANT ? NOFILE_WANT : rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1 ||
		    getrlimit(RLIMIT_NOFILE, &rl) == -1)
			return;
	}
	if (rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < (rlim_t)sessions + NOFILE_SPARE)
		log_warn("limits.sessions = %u, but only %llu open files are "
		    "allowed (RLIMIT_NOFILE): some sessions will be refused",
		    sessions, (unsigned long long)rl.rlim_cur);
}

struct server *
server_start(const int *fds, const int *flags, int nfds,
    const struct session_conf *tmpl, char *err, size_t errlen)
{
	struct server *sv;
	struct config *cfg;
	int i;

	if (nfds > SERVER_MAX_LISTEN) {
		snprintf(err, errlen, "too many listening sockets");
		return NULL;
	}
	if ((sv = calloc(1, sizeof(*sv))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (i = 0; i < nfds; i++) {
		sv->lfds[i] = fds[i];
		sv->lflags[i] = flags[i];
		/* accept() must never block the acceptor on a vanished client. */
		(void)fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
	}
	sv->nlfds = nfds;
	sv->tmpl = *tmpl;
	cfg = config_current();
	raise_nofile(cfg->policy->sessions);
	config_unref(&cfg);
	pthread_mutex_init(&sv->mu, NULL);
	pthread_cond_init(&sv->gone, NULL);
	atomic_init(&sv->idle_push, NULL);
	atomic_init(&sv->ended_push, NULL);
	if (pipe2(sv->wake, O_CLOEXEC) == -1) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		free(sv);
		return NULL;
	}
	if (pthread_create(&sv->acceptor, NULL, acceptor_main, sv) != 0) {
		snprintf(err, errlen, "cannot start the acceptor thread");
		close(sv->wake[0]);
		close(sv->wake[1]);
		free(sv);
		return NULL;
	}
	return sv;
}

/*
 * Stops the workers that are idle; those that leave on their own stay
 * listed until the end.  Under sv->mu.
 */
static void
stop_idle(struct server *sv)
{
	struct worker *w;

	take_idle(sv);
	while ((w = sv->idle) != NULL) {
		sv->idle = w->next_idle;
		(void)worker_give(w, W_STOP);
	}
}

int
server_stop(struct server **svp, unsigned int grace)
{
	struct server *sv = *svp;
	struct timespec deadline;
	struct worker *w;
	int i;

	*svp = NULL;
	/* The acceptor closes the listeners: new clients are refused by the kernel. */
	if (write(sv->wake[1], "x", 1) != 1)
		log_err("cannot wake the acceptor: %s", strerror(errno));
	pthread_join(sv->acceptor, NULL);

	pthread_mutex_lock(&sv->mu);
	/* Before the idle stack is looked at: see worker_main. */
	atomic_store(&sv->stopping, 1);
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += grace;
	/* A worker that leaves says so on gone; its session ended before. */
	for (;;) {
		stop_idle(sv);
		if (sv->nsessions == 0 || pthread_cond_timedwait(&sv->gone,
		    &sv->mu, &deadline) == ETIMEDOUT)
			break;
	}
	stop_idle(sv);
	if (sv->nsessions > 0) {
		log_warn("shutdown: cutting off %u sessions", sv->nsessions);
		for (w = sv->workers; w != NULL; w = w->next) {
			pthread_mutex_lock(&w->fdmu);
			if (w->cfd != -1)
				(void)shutdown(w->cfd, SHUT_RDWR);
			pthread_mutex_unlock(&w->fdmu);
		}
	}
	/* Wait for every worker to leave before the memory goes. */
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 10;
	while (sv->nthreads > 0) {
		stop_idle(sv);
		if (sv->nthreads > 0 && pthread_cond_timedwait(&sv->gone,
		    &sv->mu, &deadline) == ETIMEDOUT)
			break;
	}
	i = (int)sv->nthreads;
	pthread_mutex_unlock(&sv->mu);
	close(sv->wake[0]);
	close(sv->wake[1]);
	if (i > 0) {
		/* Stuck workers still use the server: leave it to exit(). */
		log_warn("shutdown: %d workers did not finish", i);
		return -1;
	}
	while (sv->workers != NULL)
		worker_free(sv, sv->workers);
	for (i = 0; i < PERIP_BUCKETS; i++) {
		struct perip *p, *n;

		for (p = sv->perip[i]; p != NULL; p = n) {
			n = p->next;
			free(p);
		}
	}
	pthread_mutex_destroy(&sv->mu);
	pthread_cond_destroy(&sv->gone);
	free(sv);
	return 0;
}
