/*
 * listeners: the daemon's listening sockets, bound from the listener
 * table of the policy or taken over from systemd (socket activation:
 * LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES), each with the LISTEN_* flags
 * (server.h) that give its sessions the listener's settings.
 */
#ifndef LISTENERS_H
#define LISTENERS_H

#include <stddef.h>

#include "policy/policy.h"

#define LISTENERS_MAX	LISTEN_TABLE_MAX

/*
 * 1 if systemd passed this process listening sockets.  The first call
 * takes systemd's variables out of the environment: make it before any
 * thread starts.
 */
int	listeners_activated(void);
/*
 * Takes over systemd's sockets (each gets the settings of the listener
 * with its FileDescriptorName as name, else with its address, else the
 * defaults) and binds every configured listener systemd did not pass;
 * those listen at once with listen_now, else listeners_listen() does it
 * later.  Fills fds[] and flags[]; returns how many, or -1 with a
 * message in err (nothing left open).
 */
int	listeners_open(const struct policy *, int *fds, int *flags, int max,
	    int listen_now, char *err, size_t errlen);
/* Makes the sockets of fds[] listen that do not yet.  0, or -1 (errno). */
int	listeners_listen(const int *fds, int n);
/*
 * The listener of p a socket with these flags was bound for (found by
 * address and name, so a reload that moved it in the list still finds
 * it), or NULL: not bound from the table, or no longer in p.
 */
const struct listen_conf *listeners_conf(const struct policy *p, int flags);
/* The LISTEN_* flags for one listener. */
int	listeners_flags(const struct listen_conf *);
/* Logs that changed listeners take a restart (a reload keeps the old). */
void	listeners_reload_check(const struct policy *running,
	    const struct policy *loaded);

#endif
