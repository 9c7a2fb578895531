#include "config.h"

#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/net.h"
#include "lib/privs.h"
#include "lib/str.h"
#include "lib/thread.h"
#include "policy/policy.h"
#include "confsnap.h"
#include "parking.h"
#include "perip.h"
#include "proxyio.h"
#include "server.h"
#include "session.h"

/* plain and TLS, direct and behind a balancer */
#define SERVER_MAX_LISTEN	(2 * POLICY_LISTEN_MAX + 2 * FRONT_LISTEN_MAX)
#define WORKER_STACK		(256 * 1024)
#define WORKER_IDLE_MS		(60 * 1000)	/* an idle worker this long exits */
#define NOFILE_WANT		(1 << 20)	/* as many as the system allows */
#define NOFILE_SPARE		256	/* listeners, spool, DNS, logs */
#define WORKER_SPARE		8	/* more waiting than this: leave sooner */
#define WORKER_SPARE_MS		(5 * 1000)
#define STOP_POLL_MS		10	/* how often a draining stop looks */
/*
 * A session is parked after this long without a command: a busy client's
 * next command comes sooner and is read in place, with no hand-over.
 */
#define SESSION_PARK_MS		100
/*
 * With this many workers serving sessions, a session with nothing to read
 * is parked at once: the threads stay bounded under a flood of clients
 * that connect and say nothing, well above the sessions a busy server has
 * talking at a time.
 */
#define SESSION_PARK_BUSY	256

/*
 * How sessions are served.  The acceptor accepts, applies the connection
 * limits and hands each socket to the workers through the parking set
 * (parking.h).  The worker that takes it greets the client and runs its
 * commands, reading each where it is (a busy client's next command comes
 * within SESSION_PARK_MS); a session idle that long is parked and the
 * worker goes back to the set (at once, with SESSION_PARK_BUSY workers
 * busy).  So an idle client costs memory, not a thread.  One worker
 * always waits on the set (the last one to leave it starts another), up
 * to limits.sessions + 8; one idle for a while leaves, unless it is the
 * last one waiting.  The acceptor also times out the parked sessions
 * (parking_sweep()), at their earliest deadline.
 */

/* One accepted connection. */
struct conn {
	struct server		*sv;
	int			 fd;
	int			 flags;		/* LISTEN_* */
	int			 released;	/* no longer counted */
	int			 counted;	/* per client, as peer */
	/* The worker's, and the acceptor's until it counts the end. */
	atomic_int		 refs;
	struct conn		*next_ended;
	struct sockaddr_storage	 peer;
	struct session_conf	 sc;
	struct session		*s;
	char			*via;		/* behind a balancer: for the log */
};

struct server {
	int			 lfds[SERVER_MAX_LISTEN];
	int			 lflags[SERVER_MAX_LISTEN];
	int			 nlfds;
	int			 wake[2];	/* tells the acceptor to stop */
	int			 tick;		/* eventfd: a sooner deadline */
	struct parking		*park;		/* where workers find work */
	pthread_t		 acceptor;
	struct session_conf	 tmpl;
	atomic_int		 stopping;	/* read by sessions unlocked */
	atomic_int		 quitting;	/* no more workers */

	_Atomic long long	 next_sweep;	/* the acceptor looks then */

	atomic_uint		 nwaiting;	/* workers at the set */
	atomic_uint		 nbusy;		/* workers with a session */
	atomic_uint		 maxthreads;
	/* Pushed by sessions without a lock; taken whole by the acceptor. */
	_Atomic(struct conn *)	 ended_push;

	pthread_mutex_t		 mu;
	pthread_cond_t		 gone;		/* a worker left */
	unsigned int		 nsessions;	/* running, as last counted */
	unsigned int		 nthreads;
	struct perip		*perip;
};

static void	*acceptor_main(void *);
static void	*worker_main(void *);

static void
conn_unref(struct conn *c)
{
	if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1) {
		free(c->via);
		free(c);
	}
}

/* Over a limit: one line, without waiting on the client. */
static void
refuse_line(int fd, const char *host, const char *why)
{
	char line[512];
	int n;

	n = snprintf(line, sizeof(line), "421 4.7.0 %s %s, try again later\r\n",
	    host, why);
	if (n > 0)
		(void)send(fd, line, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
}

static void
refuse(int fd, const char *host, const char *why)
{
	refuse_line(fd, host, why);
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
	struct server *sv = c->sv;

	if (c->released)
		return;
	c->released = 1;
	c->next_ended = atomic_load_explicit(&sv->ended_push,
	    memory_order_relaxed);
	while (!atomic_compare_exchange_weak_explicit(&sv->ended_push,
	    &c->next_ended, c, memory_order_release, memory_order_relaxed))
		;
}

/* Counts the sessions that ended since last time.  Under sv->mu. */
static void
take_ended(struct server *sv)
{
	struct conn *c, *next;

	c = atomic_exchange_explicit(&sv->ended_push, NULL,
	    memory_order_acquire);
	for (; c != NULL; c = next) {
		next = c->next_ended;
		if (c->counted)
			perip_del(sv->perip, &c->peer);
		sv->nsessions--;
		conn_unref(c);
	}
}

/*
 * Starts a worker, counted as waiting from now on.  -1 when stopping, at
 * the limit, or the thread cannot be made.
 */
static int
spawn_worker(struct server *sv)
{
	pthread_attr_t attr;
	pthread_t t;
	int e;

	pthread_mutex_lock(&sv->mu);
	if (atomic_load(&sv->quitting) ||
	    sv->nthreads >= atomic_load_explicit(&sv->maxthreads,
	    memory_order_relaxed)) {
		pthread_mutex_unlock(&sv->mu);
		return -1;
	}
	atomic_fetch_add(&sv->nwaiting, 1);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, WORKER_STACK);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	e = pthread_create(&t, &attr, worker_main, sv);
	pthread_attr_destroy(&attr);
	if (e != 0) {
		atomic_fetch_sub(&sv->nwaiting, 1);
		pthread_mutex_unlock(&sv->mu);
		log_err("cannot start a worker thread: %s", strerror(e));
		return -1;
	}
	sv->nthreads++;
	pthread_mutex_unlock(&sv->mu);
	return 0;
}

/* Brings the acceptor's next look forward to deadline.  1 if it did. */
static int
sweep_by(struct server *sv, long long deadline)
{
	long long cur = atomic_load(&sv->next_sweep);

	while (deadline < cur)
		if (atomic_compare_exchange_weak(&sv->next_sweep, &cur,
		    deadline))
			return 1;
	return 0;
}

/* A parked session's deadline: the acceptor is woken if it is sooner. */
static void
want_sweep(struct server *sv, long long deadline)
{
	uint64_t one = 1;

	if (sweep_by(sv, deadline) &&
	    write(sv->tick, &one, sizeof(one)) != sizeof(one) &&
	    errno != EAGAIN)
		log_err("cannot wake the acceptor: %s", strerror(errno));
}

/*
 * A connection on a proxy listener: only a trusted balancer may use one,
 * and the client its header names takes the balancer's place -- in the
 * per-client session counts too, so those limits still mean one client.
 * 0, or -1 when the connection is to be closed (logged).
 */
static int
take_proxy_header(struct server *sv, struct conn *c)
{
	struct config *cfg = config_current();
	struct policy *pol = cfg->policy;
	struct proxy_info pi;
	char real[NET_ADDRSTR_MAX], client[NET_ADDRSTR_MAX], desc[512], via[768];
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
	(void)snprintf(via, sizeof(via), " proxy=%s proxy_port=%d %s", real,
	    port, desc);
	/* Without it the log lines lack the balancer; the session goes on. */
	c->via = strdup(via);
	if (!pi.has_addr) {
		/* LOCAL (a health check) or no address: the balancer's own. */
		config_unref(&cfg);
		return 0;
	}
	net_unmap(&pi.src);
	pthread_mutex_lock(&sv->mu);
	perip_del(sv->perip, &c->peer);
	over = perip_add(sv->perip, &pi.src, pol->sessions_per_ip,
	    pol->sessions_per_net);
	if (over == 0)
		c->peer = pi.src;
	else
		c->counted = 0;	/* the balancer's count is gone too */
	pthread_mutex_unlock(&sv->mu);
	if (over != 0) {
		(void)net_ntop((struct sockaddr *)&pi.src, client,
		    sizeof(client), NULL);
		log_warn("refused %s (through %s): %u sessions per client%s is "
		    "the limit", client, real, over == PERIP_CLIENT ?
		    pol->sessions_per_ip : pol->sessions_per_net,
		    over == PERIP_CLIENT ? "" : " network");
		refuse_line(c->fd, pol->hostname, over == PERIP_CLIENT ?
		    "Too many connections from your address" :
		    "Too many connections from your network");
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

/* The connection's first turn: PROXY header, then the greeting.  0 or -1. */
static int
open_conn(struct server *sv, struct conn *c)
{
	c->sc = sv->tmpl;
	c->sc.config = NULL;	/* taken below, once the client is known */
	if (c->flags & LISTEN_PROXY) {
		if (take_proxy_header(sv, c) == -1)
			return -1;
	} else if (proxy_sniff(c->fd)) {
		log_stray_header(c);
		return -1;
	}
	c->sc.rfd = c->sc.wfd = c->fd;
	c->sc.peer = c->peer;
	c->sc.implicit_tls = (c->flags & LISTEN_TLS) != 0;
	c->sc.listen_flags = c->flags;
	c->sc.via = c->via;
	/* One snapshot for the whole session. */
	c->sc.config = config_session();
	c->sc.policy = c->sc.config->policy;
	c->sc.stopping = &sv->stopping;
	c->sc.park_ms = SESSION_PARK_MS;
	c->sc.busy = &sv->nbusy;
	c->sc.park_busy = SESSION_PARK_BUSY;
	c->sc.release = release_conn;
	c->sc.release_arg = c;
	c->s = session_open(&c->sc);
	return c->s != NULL ? 0 : -1;
}

/* The session is over: log, count, close. */
static void
finish_conn(struct server *sv, struct conn *c)
{
	(void)session_finish(&c->s);
	if (c->sc.config != NULL)
		config_unref(&c->sc.config);
	release_conn(c);
	parking_close(sv->park, c->fd);
	conn_unref(c);
}

/* What a parked session's interruption means to it. */
static enum session_end
interruption(int st)
{
	return st == PARK_TIMEOUT ? END_TIMEOUT : END_SHUTDOWN;
}

/*
 * Sets the session aside until its socket is readable.  0, or -1 if it
 * could not be (then it is the caller's again, perhaps interrupted).
 */
static int
park_conn(struct server *sv, struct conn *c, const struct session_park *pk)
{
	int st;

	want_sweep(sv, pk->deadline);
	if (parking_park(sv->park, c->fd, pk->deadline, pk->between, &st) == 0)
		return 0;
	log_err("cannot park a session: %s", strerror(errno));
	if (st != PARK_WAIT)
		session_interrupt(c->s, interruption(st));
	return -1;
}

/* A worker's turn with a connection it has taken in state st. */
static void
run_conn(struct server *sv, struct conn *c, int st)
{
	struct session_park pk;

	if (st == PARK_NEW) {
		if (open_conn(sv, c) == -1) {
			finish_conn(sv, c);
			return;
		}
	} else if (st != PARK_WAIT)
		session_interrupt(c->s, interruption(st));
	if (session_continue(c->s, 0, &pk) == SESSION_PARK) {
		if (park_conn(sv, c, &pk) == 0)
			return;
		/* It cannot wait parked: this worker serves it to the end. */
		(void)session_continue(c->s, 1, NULL);
	}
	finish_conn(sv, c);
}

static void *
worker_main(void *arg)
{
	struct server *sv = arg;
	void *c;
	int n, st;

	(void)thread_batch();
	for (;;) {
		n = parking_take(sv->park, atomic_load(&sv->nwaiting) >
		    WORKER_SPARE ? WORKER_SPARE_MS : WORKER_IDLE_MS, &c, &st);
		if (n == -1) {
			atomic_fetch_sub(&sv->nwaiting, 1);
			break;
		}
		if (n == 0) {
			/* Idle: leave, unless the last one waiting. */
			if (atomic_fetch_sub(&sv->nwaiting, 1) > 1)
				break;
			atomic_fetch_add(&sv->nwaiting, 1);
			continue;
		}
		/* Someone must be waiting while this one works. */
		if (atomic_fetch_sub(&sv->nwaiting, 1) == 1)
			(void)spawn_worker(sv);
		atomic_fetch_add(&sv->nbusy, 1);
		run_conn(sv, c, st);
		atomic_fetch_sub(&sv->nbusy, 1);
		atomic_fetch_add(&sv->nwaiting, 1);
	}
	pthread_mutex_lock(&sv->mu);
	sv->nthreads--;
	pthread_cond_broadcast(&sv->gone);
	pthread_mutex_unlock(&sv->mu);
	return NULL;
}

/*
 * Gives the connection to the workers.  Under sv->mu, with the session
 * counted; unlocks.  0, or -1 (uncounted, refused, closed).
 */
static int
hand_off(struct server *sv, int fd, int flags,
    const struct sockaddr_storage *peer, const char *host)
{
	unsigned int busy;
	struct conn *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		goto fail;
	c->sv = sv;
	c->fd = fd;
	c->flags = flags;
	c->peer = *peer;
	c->counted = 1;
	atomic_init(&c->refs, 2);
	/*
	 * With no worker waiting and no more allowed, the busy ones take it
	 * as they come back (those finishing sessions already released).
	 */
	busy = sv->nthreads;
	pthread_mutex_unlock(&sv->mu);
	if ((atomic_load(&sv->nwaiting) > 0 || spawn_worker(sv) == 0 ||
	    busy > 0) && parking_add(sv->park, fd, c) == 0)
		return 0;
	free(c);
	pthread_mutex_lock(&sv->mu);
fail:
	sv->nsessions--;
	perip_del(sv->perip, peer);
	pthread_mutex_unlock(&sv->mu);
	log_err("cannot serve a connection: %s", strerror(errno));
	refuse(fd, host, "Out of resources");
	return -1;
}

static void
accept_one(struct server *sv, int lfd, int flags)
{
	struct sockaddr_storage peer;
	socklen_t plen = sizeof(peer);
	struct config *cfg;
	struct policy *pol;
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
	take_ended(sv);
	if (sv->nsessions >= pol->sessions) {
		pthread_mutex_unlock(&sv->mu);
		(void)net_ntop((struct sockaddr *)&peer, addr, sizeof(addr), NULL);
		log_warn("refused %s: %u sessions at once is the limit", addr,
		    pol->sessions);
		refuse(fd, pol->hostname, "Too many connections");
		config_unref(&cfg);
		return;
	}
	if ((over = perip_add(sv->perip, &peer, pol->sessions_per_ip,
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
	sv->nsessions++;
	/*
	 * Each session may hold a worker, and so may a few ending ones (no
	 * longer counted: released before their last reply).
	 */
	atomic_store_explicit(&sv->maxthreads, pol->sessions + WORKER_SPARE,
	    memory_order_relaxed);
	(void)hand_off(sv, fd, flags, &peer, pol->hostname);
	config_unref(&cfg);
}

static void *
acceptor_main(void *arg)
{
	struct server *sv = arg;
	struct pollfd pfd[SERVER_MAX_LISTEN + 2];
	long long now, next;
	uint64_t n64;
	int i, n, ms;

	(void)thread_batch();
	for (i = 0; i < sv->nlfds; i++) {
		pfd[i].fd = sv->lfds[i];
		pfd[i].events = POLLIN;
	}
	pfd[sv->nlfds].fd = sv->wake[0];
	pfd[sv->nlfds].events = POLLIN;
	pfd[sv->nlfds + 1].fd = sv->tick;
	pfd[sv->nlfds + 1].events = POLLIN;
	for (;;) {
		/* Parked sessions whose wait is over; the next to come. */
		now = net_now_ms();
		if (atomic_load(&sv->next_sweep) <= now) {
			atomic_store(&sv->next_sweep, PARK_NEVER);
			(void)sweep_by(sv, parking_sweep(sv->park, now,
			    SWEEP_DEADLINES));
		}
		next = atomic_load(&sv->next_sweep);
		ms = next >= PARK_NEVER ? -1 : next <= now ? 0 :
		    next - now > 60000 ? 60000 : (int)(next - now) + 1;
		n = poll(pfd, (nfds_t)sv->nlfds + 2, ms);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			log_err("poll: %s", strerror(errno));
			usleep(100 * 1000);
			continue;
		}
		if (pfd[sv->nlfds].revents)
			break;
		if (pfd[sv->nlfds + 1].revents &&
		    read(sv->tick, &n64, sizeof(n64)) == -1 && errno != EAGAIN)
			log_err("read: %s", strerror(errno));
		for (i = 0; i < sv->nlfds; i++)
			if (pfd[i].revents & POLLIN)
				accept_one(sv, pfd[i].fd, sv->lflags[i]);
	}
	for (i = 0; i < sv->nlfds; i++)
		close(sv->lfds[i]);
	return NULL;
}

struct server *
server_start(const int *fds, const int *flags, int nfds,
    const struct session_conf *tmpl, char *err, size_t errlen)
{
	struct server *sv;
	struct config *cfg;
	size_t nfiles;
	int i;

	if (nfds > SERVER_MAX_LISTEN) {
		snprintf(err, errlen, "too many listening sockets");
		return NULL;
	}
	if ((sv = calloc(1, sizeof(*sv))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	sv->wake[0] = sv->wake[1] = sv->tick = -1;
	for (i = 0; i < nfds; i++) {
		sv->lfds[i] = fds[i];
		sv->lflags[i] = flags[i];
		/* accept() must never block the acceptor on a vanished client. */
		(void)fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
	}
	sv->nlfds = nfds;
	sv->tmpl = *tmpl;
	/*
	 * Every session holds a socket: as many descriptors as allowed, a
	 * slot for each.  Too few for the sessions: say so once rather than
	 * fail accept() later.
	 */
	nfiles = privs_raise_nofile(NOFILE_WANT);
	cfg = config_current();
	if (nfiles < (size_t)cfg->policy->sessions + NOFILE_SPARE)
		log_warn("limits.sessions = %u, but only %zu open files are "
		    "allowed (RLIMIT_NOFILE): some sessions will be refused",
		    cfg->policy->sessions, nfiles);
	config_unref(&cfg);
	pthread_mutex_init(&sv->mu, NULL);
	pthread_cond_init(&sv->gone, NULL);
	atomic_init(&sv->ended_push, NULL);
	atomic_init(&sv->next_sweep, PARK_NEVER);
	if ((sv->park = parking_new(nfiles)) == NULL ||
	    (sv->perip = perip_new()) == NULL ||
	    pipe2(sv->wake, O_CLOEXEC) == -1 ||
	    (sv->tick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) == -1) {
		snprintf(err, errlen, "cannot set up the server: %s",
		    strerror(errno));
		goto fail;
	}
	if (pthread_create(&sv->acceptor, NULL, acceptor_main, sv) != 0) {
		snprintf(err, errlen, "cannot start the acceptor thread");
		goto fail;
	}
	return sv;
fail:
	parking_free(&sv->park);
	perip_free(&sv->perip);
	for (i = 0; i < 2; i++)
		if (sv->wake[i] != -1)
			close(sv->wake[i]);
	if (sv->tick != -1)
		close(sv->tick);
	pthread_mutex_destroy(&sv->mu);
	pthread_cond_destroy(&sv->gone);
	free(sv);
	return NULL;
}

/*
 * Waits up to ms for the sessions to end, sweeping the parked ones as how
 * says.  The sessions left.
 */
static unsigned int
drain(struct server *sv, long long ms, enum park_sweep how)
{
	long long end = net_now_ms() + ms, now;
	unsigned int n;

	for (;;) {
		now = net_now_ms();
		(void)parking_sweep(sv->park, now, how);
		pthread_mutex_lock(&sv->mu);
		take_ended(sv);
		n = sv->nsessions;
		pthread_mutex_unlock(&sv->mu);
		if (n == 0 || now >= end)
			return n;
		usleep(STOP_POLL_MS * 1000);
	}
}

int
server_stop(struct server **svp, unsigned int grace)
{
	struct server *sv = *svp;
	struct timespec deadline;
	unsigned int n;
	int i;

	*svp = NULL;
	/* The acceptor closes the listeners: new clients are refused by the kernel. */
	if (write(sv->wake[1], "x", 1) != 1)
		log_err("cannot wake the acceptor: %s", strerror(errno));
	pthread_join(sv->acceptor, NULL);
	/*
	 * Sessions between transactions are told now (parked) or at their
	 * next command; a transaction under way may finish within grace.
	 */
	atomic_store(&sv->stopping, 1);
	if ((n = drain(sv, 1000LL * grace, SWEEP_STOP)) > 0) {
		log_warn("shutdown: cutting off %u sessions", n);
		parking_cut_running(sv->park);
		(void)drain(sv, 10 * 1000, SWEEP_CUT);
	}
	/* The workers leave; wait for them before the memory goes. */
	atomic_store(&sv->quitting, 1);
	if (parking_stop(sv->park) == -1)
		log_err("cannot stop the workers: %s", strerror(errno));
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 10;
	pthread_mutex_lock(&sv->mu);
	while (sv->nthreads > 0 && pthread_cond_timedwait(&sv->gone, &sv->mu,
	    &deadline) != ETIMEDOUT)
		;
	i = (int)sv->nthreads;
	take_ended(sv);
	pthread_mutex_unlock(&sv->mu);
	if (i > 0) {
		/* Stuck workers still use the server: leave it to exit(). */
		log_warn("shutdown: %d workers did not finish", i);
		return -1;
	}
	close(sv->wake[0]);
	close(sv->wake[1]);
	close(sv->tick);
	parking_free(&sv->park);
	perip_free(&sv->perip);
	pthread_mutex_destroy(&sv->mu);
	pthread_cond_destroy(&sv->gone);
	free(sv);
	return 0;
}
