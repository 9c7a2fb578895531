/*
 * The TLS unit tests' fixture (tlsfixture.c): throwaway certificates in
 * the suite's directory (tf_path: root.pem, inter.pem, mx.pem and mx.key,
 * client-ca.pem, alice.pem, ...; the list is in tlsfixture.c), and one
 * connection served by tls_handshake() to a GnuTLS client in a thread.
 */
#ifndef TLSFIXTURE_H
#define TLSFIXTURE_H

#include <sys/types.h>

#include <gnutls/gnutls.h>

#include "core/tls.h"

/* The client side, run in a thread with an independent GnuTLS session. */
struct tf_client {
	int		 rfd, wfd;	/* closed by the client when done */
	const char	*priority;	/* NULL: NORMAL */
	const char	*cert, *key;	/* client certificate, or NULL */
	const char	*raw;		/* sent instead of a handshake */
	int		 silent;	/* sends nothing, waits for EOF */
	int		 hold;		/* reads a second line before "bye" */
	gnutls_datum_t	 resume;	/* session data to resume */
	const char	*sni;		/* the name asked for; NULL: mx.test */
	/* Results. */
	int		 handshake;	/* 0 or the GnuTLS error */
	int		 resumed;
	char		 server_cn[64];
	char		 got[64];	/* the lines the server sent */
	gnutls_datum_t	 data;		/* session data for the next one */
};

/* What the server side of tf_serve() saw. */
struct tf_served {
	int		 r;		/* tls_handshake()'s result */
	char		 err[256];
	struct tls_info	 ti;
	int		 nonblock;	/* an fd was left non-blocking */
	char		 bye[16];	/* what the client said after */
};

/* The client's thread: handshake, one line, "bye" (c is its argument). */
void	*tf_client_main(void *c);
/* CU_add_suite()'s setup and teardown. */
int	tf_setup(void);
int	tf_teardown(void);
/* name in the suite's directory; one of eight rotating buffers. */
char	*tf_path(const char *name);
/* A server from files in the suite's directory (NULL: not set). */
struct tls_server *tf_server(const char *cert, const char *key,
	    const char *chain, const char *prio, int tickets, const char *ca,
	    char *err, size_t errlen);
/* One line over TLS into buf; 0 or -1. */
int	tf_line(gnutls_session_t s, char *buf, size_t len);
int	tf_send(gnutls_session_t s, const char *line);
/*
 * One connection: the client in a thread, tls_handshake() here, over a
 * socketpair or over two pipes as in stdio mode.
 */
void	tf_serve(struct tls_server *srv, struct tf_client *c, int pipes,
	    int timeout, struct tf_served *sv);
void	tf_client_done(struct tf_client *c);

#endif
