/*
 * perip: how many sessions each client (an IPv4 address, an IPv6 /64) and
 * each client network (an IPv4 /24, an IPv6 /64) has open, against
 * limits.sessions_per_ip and limits.sessions_per_net.  Not locked: the
 * server holds its own lock around every call.
 */
#ifndef PERIP_H
#define PERIP_H

#include <sys/socket.h>

struct perip;

#define PERIP_CLIENT	1	/* the client's own limit is reached */
#define PERIP_NET	2	/* its network's */

struct perip *perip_new(void);
void	perip_free(struct perip **);
/*
 * Counts one more session for the client and its network: 0, or the limit
 * that is reached (PERIP_*; nothing counted then; out of memory counts as
 * PERIP_CLIENT).  A peer of no known family is not counted.
 */
int	perip_add(struct perip *, const struct sockaddr_storage *,
	    unsigned int max_client, unsigned int max_net);
/* One session less for the client and its network. */
void	perip_del(struct perip *, const struct sockaddr_storage *);

#endif
