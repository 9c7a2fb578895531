/*
 * parking: where the daemon's connections wait for a worker -- one epoll
 * set, and a slot per descriptor saying who may touch the connection.
 * The acceptor adds a new connection (ready at once); a worker waiting on
 * the set takes whatever is ready; a session idle between commands is
 * parked (its socket armed for input, one-shot) until the client speaks,
 * its deadline passes (parking_sweep()) or the server stops.
 *
 * A slot's word is gen << 32 | parks << 8 | state.  Whoever moves it to
 * PARK_RUN owns the connection: an event names gen and the descriptor, so
 * one that is not the connection's own takes nothing, and a sweep's
 * compare-and-swap fails on a session taken or parked again meanwhile.
 */
#ifndef PARKING_H
#define PARKING_H

#include <stddef.h>

struct parking;

/* What a connection was in when a worker took it. */
enum park_state {
	PARK_FREE = 0,
	PARK_NEW,		/* accepted, not greeted yet */
	PARK_RUN,		/* a worker has it */
	PARK_WAIT,		/* parked: waiting for input */
	PARK_TIMEOUT,		/* parked, and then its deadline passed */
	PARK_SHUT,		/* parked, and then the server stopped */
};

/* What a sweep does besides timing out the parked sessions due. */
enum park_sweep {
	SWEEP_DEADLINES,
	SWEEP_STOP,		/* and ends those between transactions */
	SWEEP_CUT,		/* and ends every parked session */
};

/* A slot for each descriptor below nslots.  NULL with errno. */
struct parking *parking_new(size_t nslots);
void	parking_free(struct parking **);
size_t	parking_slots(const struct parking *);
/* A new connection on fd, for a worker to take at once.  0, or -1. */
int	parking_add(struct parking *, int fd, void *conn);
/*
 * Waits up to ms for a connection to take.  1: *connp taken, in *statep;
 * 0: none (timed out, or an event that took nothing); -1: the set is
 * stopped (parking_stop()), leave.
 */
int	parking_take(struct parking *, int ms, void **connp, int *statep);
/*
 * Parks the connection on fd (its owner's) until input comes, with its
 * deadline (monotonic ms) and whether it is between transactions.  0, or
 * -1 when it could not be: it is still the caller's, and *statep says
 * whether a sweep interrupted it meanwhile (else PARK_WAIT).
 */
int	parking_park(struct parking *, int fd, long long deadline,
	    int between, int *statep);
/* The owner is done with fd: the slot is freed and fd closed. */
void	parking_close(struct parking *, int fd);
/*
 * Interrupts parked sessions whose deadline is before now (and others, as
 * how says): their sockets are shut for reading, which makes them ready
 * for a worker.  The earliest deadline still to come, or PARK_NEVER.
 */
long long parking_sweep(struct parking *, long long now, enum park_sweep how);
#define PARK_NEVER	(1LL << 62)
/* Shuts the sockets of the connections workers hold (cutting them off). */
void	parking_cut_running(struct parking *);
/* From now on parking_take() returns -1 in every worker. */
int	parking_stop(struct parking *);

#endif
