#include "config.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "parking.h"

#define WORD(gen, parks, st)	((uint64_t)(gen) << 32 | \
				 ((uint64_t)(parks) & 0xffffff) << 8 | (st))
#define WORD_GEN(w)		((uint32_t)((w) >> 32))
#define WORD_PARKS(w)		((uint32_t)((w) >> 8) & 0xffffff)
#define WORD_STATE(w)		((int)((w) & 0xff))
#define WITH_STATE(w, st)	(((w) & ~(uint64_t)0xff) | (uint64_t)(st))
#define TOKEN(gen, fd)		((uint64_t)(gen) << 32 | (uint32_t)(fd))
#define STOP_TOKEN		UINT64_MAX

struct slot {
	_Atomic uint64_t	 word;
	_Atomic long long	 deadline;	/* parked: monotonic ms */
	atomic_int		 between;	/* parked between transactions */
	void			*conn;		/* for the owner to take */
};

struct parking {
	int			 epfd;
	int			 stopfd;	/* eventfd, readable once stopped */
	struct slot		*slots;
	size_t			 nslots;
	atomic_int		 maxfd;		/* the highest ever added */
	uint32_t		 gen;		/* parking_add()'s, one caller */
	pthread_mutex_t		 closing;	/* close against cut_running */
};

struct parking *
parking_new(size_t nslots)
{
	struct parking *p;
	struct epoll_event ev;
	int e;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->epfd = p->stopfd = -1;
	p->nslots = nslots;
	atomic_init(&p->maxfd, -1);
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;	/* level: every worker sees it */
	ev.data.u64 = STOP_TOKEN;
	/* calloc: pages of slots never used are never touched. */
	if ((p->slots = calloc(nslots, sizeof(*p->slots))) == NULL ||
	    (p->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) == -1 ||
	    (p->epfd = epoll_create1(EPOLL_CLOEXEC)) == -1 ||
	    epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->stopfd, &ev) == -1) {
		e = errno;
		if (p->stopfd != -1)
			close(p->stopfd);
		if (p->epfd != -1)
			close(p->epfd);
		free(p->slots);
		free(p);
		errno = e;
		return NULL;
	}
	pthread_mutex_init(&p->closing, NULL);
	return p;
}

void
parking_free(struct parking **pp)
{
	struct parking *p = *pp;

	if (p == NULL)
		return;
	*pp = NULL;
	close(p->stopfd);
	close(p->epfd);
	pthread_mutex_destroy(&p->closing);
	free(p->slots);
	free(p);
}

size_t
parking_slots(const struct parking *p)
{
	return p->nslots;
}

int
parking_add(struct parking *p, int fd, void *conn)
{
	struct epoll_event ev;
	struct slot *sl;
	uint32_t gen;

	if (fd < 0 || (size_t)fd >= p->nslots) {
		errno = EMFILE;
		return -1;
	}
	sl = &p->slots[fd];
	gen = ++p->gen;
	sl->conn = conn;
	if (fd > atomic_load(&p->maxfd))
		atomic_store(&p->maxfd, fd);
	atomic_store_explicit(&sl->word, WORD(gen, 0, PARK_NEW),
	    memory_order_release);
	memset(&ev, 0, sizeof(ev));
	/* A new socket is writable: some worker takes it at once. */
	ev.events = EPOLLOUT | EPOLLONESHOT;
	ev.data.u64 = TOKEN(gen, fd);
	if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev) == 0)
		return 0;
	atomic_store_explicit(&sl->word, WORD(gen, 0, PARK_FREE),
	    memory_order_release);
	return -1;
}

int
parking_take(struct parking *p, int ms, void **connp, int *statep)
{
	struct epoll_event ev;
	struct slot *sl;
	uint64_t w;
	size_t fd;
	int n, st;

	n = epoll_wait(p->epfd, &ev, 1, ms);
	if (n <= 0)
		return 0;
	if (ev.data.u64 == STOP_TOKEN)
		return -1;
	if ((fd = (size_t)(ev.data.u64 & 0xffffffffu)) >= p->nslots)
		return 0;
	sl = &p->slots[fd];
	w = atomic_load_explicit(&sl->word, memory_order_acquire);
	do {
		st = WORD_STATE(w);
		if (WORD_GEN(w) != (uint32_t)(ev.data.u64 >> 32) ||
		    st == PARK_FREE || st == PARK_RUN)
			return 0;
	} while (!atomic_compare_exchange_weak_explicit(&sl->word, &w,
	    WITH_STATE(w, PARK_RUN), memory_order_acq_rel,
	    memory_order_acquire));
	*connp = sl->conn;
	*statep = st;
	return 1;
}

int
parking_park(struct parking *p, int fd, long long deadline, int between,
    int *statep)
{
	struct slot *sl = &p->slots[fd];
	struct epoll_event ev;
	uint64_t w;

	w = atomic_load_explicit(&sl->word, memory_order_relaxed);
	w = WORD(WORD_GEN(w), WORD_PARKS(w) + 1, PARK_WAIT);
	atomic_store_explicit(&sl->deadline, deadline, memory_order_relaxed);
	atomic_store_explicit(&sl->between, between, memory_order_relaxed);
	atomic_store_explicit(&sl->word, w, memory_order_release);
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLONESHOT;
	ev.data.u64 = TOKEN(WORD_GEN(w), fd);
	/* From here on the connection may be another worker's. */
	if (epoll_ctl(p->epfd, EPOLL_CTL_MOD, fd, &ev) == 0)
		return 0;
	/* Not armed: nobody else can take it; a sweep may have marked it. */
	w = atomic_exchange_explicit(&sl->word, WITH_STATE(w, PARK_RUN),
	    memory_order_acq_rel);
	*statep = WORD_STATE(w);
	return -1;
}

void
parking_close(struct parking *p, int fd)
{
	struct slot *sl = &p->slots[fd];

	pthread_mutex_lock(&p->closing);
	atomic_store_explicit(&sl->word, WITH_STATE(atomic_load_explicit(
	    &sl->word, memory_order_relaxed), PARK_FREE),
	    memory_order_release);
	close(fd);
	pthread_mutex_unlock(&p->closing);
}

long long
parking_sweep(struct parking *p, long long now, enum park_sweep how)
{
	long long next = PARK_NEVER, dl;
	int fd, maxfd = atomic_load(&p->maxfd), st;
	struct slot *sl;
	uint64_t w;

	for (fd = 0; fd <= maxfd; fd++) {
		sl = &p->slots[fd];
		w = atomic_load_explicit(&sl->word, memory_order_acquire);
		if (WORD_STATE(w) != PARK_WAIT)
			continue;
		dl = atomic_load_explicit(&sl->deadline, memory_order_relaxed);
		if (how == SWEEP_CUT || (how == SWEEP_STOP &&
		    atomic_load_explicit(&sl->between, memory_order_relaxed)))
			st = PARK_SHUT;
		else if (dl <= now)
			st = PARK_TIMEOUT;
		else {
			if (dl < next)
				next = dl;
			continue;
		}
		/*
		 * Fails if it was taken or parked again meanwhile.  Marked, it
		 * stays open until a worker takes it: fd is still its socket.
		 */
		if (atomic_compare_exchange_strong_explicit(&sl->word, &w,
		    WITH_STATE(w, st), memory_order_acq_rel,
		    memory_order_relaxed))
			(void)shutdown(fd, SHUT_RD);
	}
	return next;
}

void
parking_cut_running(struct parking *p)
{
	int fd, maxfd = atomic_load(&p->maxfd), st;

	pthread_mutex_lock(&p->closing);
	for (fd = 0; fd <= maxfd; fd++) {
		st = WORD_STATE(atomic_load_explicit(&p->slots[fd].word,
		    memory_order_acquire));
		if (st == PARK_RUN || st == PARK_NEW)
			(void)shutdown(fd, SHUT_RDWR);
	}
	pthread_mutex_unlock(&p->closing);
}

int
parking_stop(struct parking *p)
{
	uint64_t one = 1;

	return write(p->stopfd, &one, sizeof(one)) == sizeof(one) ? 0 : -1;
}
