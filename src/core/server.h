/*
 * server: the daemon -- an acceptor thread that owns the listening
 * sockets and enforces connection limits, and a pool of worker threads
 * that run the sessions; a session idle between commands waits without a
 * thread (parking.h) until its client speaks.
 */
#ifndef SERVER_H
#define SERVER_H

#include "queue/spool.h"

struct server;

/* Starts accepting on the given sockets (the server takes them over). */
struct session_conf;
/* What a listener does before SMTP starts: flags[i] for fds[i]. */
#define LISTEN_TLS	0x01	/* TLS before the greeting */
#define LISTEN_PROXY	0x02	/* a PROXY header before anything */
/* The listener's own settings (listeners.c); unset bits follow the policy. */
#define LISTEN_NO_STARTTLS	0x04	/* tls = "none" */
#define LISTEN_AUTH_SET		0x08	/* these two replace auth.required: */
#define LISTEN_AUTH_REQUIRED	0x10
#define LISTEN_AUTH_OFF		0x20	/* AUTH not offered here */
#define LISTEN_CLEARTEXT_SET	0x40	/* this one replaces auth.cleartext: */
#define LISTEN_CLEARTEXT	0x80
/* 1 + the listener's index in the policy's table (its milters); 0: none. */
#define LISTEN_INDEX_SHIFT	8
#define LISTEN_INDEX_MASK	0xff
/*
 * Sessions get a copy of tmpl (spool, shared state) with their own
 * connection filled in.
 */
struct server *server_start(const int *fds, const int *flags, int nfds,
	    const struct session_conf *tmpl, char *err, size_t errlen);
/*
 * Stops accepting, gives running sessions up to grace seconds to finish,
 * then cuts the rest off.  Frees the server.  0, or -1 when some worker
 * never finished (the server is then left allocated for it).
 */
int	server_stop(struct server **, unsigned int grace);

#endif
