/*
 * proxyio: reading a PROXY header off a freshly accepted socket, before
 * the greeting, and noticing one sent where none is expected.
 */
#ifndef PROXYIO_H
#define PROXYIO_H

#include "proxy.h"

/*
 * Reads the header from fd within timeout_ms, taking exactly its bytes
 * off the socket (what follows is the client's).  0 with *pi filled, or
 * -1 with *why: malformed (pi->error), truncated, too slow, a read error.
 */
int	proxy_read(int fd, int timeout_ms, struct proxy_info *pi,
	    const char **why);
/*
 * 1 when bytes already waiting on fd start like a PROXY header; never
 * waits.  0 otherwise.
 */
int	proxy_sniff(int fd);

#endif
