/*
 * client_int.h: what the client library's parts share -- the connection
 * (client.c: dial, MX, addresses, the command and reply I/O), its setup
 * (client_setup.c: EHLO, STARTTLS, AUTH) and the mail transaction
 * (client_trans.c: MAIL, RCPT, DATA, BDAT, LMTP, the results).  Not for
 * use outside src/client.
 */
#ifndef CLIENT_INT_H
#define CLIENT_INT_H

#include <gnutls/gnutls.h>

#include "client.h"
#include "clientext.h"
#include "reply.h"
#include "tlspolicy.h"
#include "lib/lineio.h"
#include "lib/net.h"
#include "lib/str.h"

#define CLIENT_LINE_MAX		4096	/* a reply line (RFC: 512) */
#define CLIENT_CMD_MAX		16384	/* a command line */
#define CLIENT_PIPE_GROUP	64	/* commands per pipelined write */
#define CLIENT_CHUNK		65536	/* message data sent at once */
#define CLIENT_TRIES_MAX	32	/* addresses tried per connect */
#define CLIENT_QUIT_WAIT	10	/* seconds to wait for QUIT's reply */
#define CLIENT_AUTH_LIST_MAX	256
#define CLIENT_EHLO_KEEP	2048	/* EHLO reply kept for smtp -p */

#define DEF_CONNECT_TIMEOUT	30	/* seconds */
#define DEF_COMMAND_TIMEOUT	300	/* RFC 5321 4.5.3.2: 5 minutes */
#define DEF_DATA_TIMEOUT	600	/* RFC 5321 4.5.3.2.6: 10 minutes */

#define CAP_PIPELINING	0x01
#define CAP_SIZE	0x02
#define CAP_8BITMIME	0x04
#define CAP_SMTPUTF8	0x08
#define CAP_STARTTLS	0x10
#define CAP_AUTH	0x20
#define CAP_DSN		0x40
#define CAP_REQUIRETLS	0x80

struct client_conn {
	struct client_opts	 opts;
	int			 fd;
	struct lineio		*io;
	gnutls_session_t	 tls;
	gnutls_certificate_credentials_t cred;
	int			 tls_inited;
	int			 literal;	/* host is an address */
	char			 host[CLIENT_HOST_MAX];	/* dialled */
	char			 addr[NET_ADDRSTR_MAX];
	/* "name [address]" */
	char			 peer[CLIENT_HOST_MAX];
	unsigned		 caps;
	unsigned long long	 size_max;
	struct clientext_limits	 limits;	/* RFC 9422 */
	char			 greeting[CLIENT_TEXT_MAX];
	char			 ehlo[CLIENT_EHLO_KEEP];	/* the last EHLO
							   reply's lines */
	char			 auth[CLIENT_AUTH_LIST_MAX];
	int			 ntrans;	/* transactions begun */
	int			 broken;	/* no more commands */
	int			 tls_failed;	/* the last try's STARTTLS
						   handshake failed */
	int			 cleartext;	/* this try skips STARTTLS */
	/* The first bytes the TLS layer read: a plain SMTP greeting there
	 * means the server does not speak TLS on connect. */
	char			 tls_first[4];
	size_t			 tls_seen;
	struct tlsplan		*plan;		/* TLS policy per host */
};

/* One connection attempt's verdict. */
enum try_result {
	TRY_OK,		/* ready for MAIL */
	TRY_NEXT,	/* failed here; another address may work */
	TRY_STOP,	/* failed in a way no other address changes */
};

/* client_trans.c */
void	client_set(struct client_result *, enum client_phase,
	    enum client_cause, int, const char *, const char *, ...)
	    __attribute__((format(printf, 6, 7)));
void	client_set_reply(struct client_result *, const char *,
	    enum client_phase, const struct reply *,
	    const char *, ...)
	    __attribute__((format(printf, 5, 6)));
void	client_merge(struct client_result *, const struct client_result *);

/* client.c */
void	client_debug(const struct client_conn *, const char *,
	    const char *, size_t);
int	client_cmd(struct client_conn *, const char *, const char *,
	    ...) __attribute__((format(printf, 3, 4)));
int	client_reply(struct client_conn *, struct reply *,
	    struct str *, unsigned);

/* client_setup.c */
enum try_result client_ehlo(struct client_conn *, struct client_result *);
enum try_result client_tls_start(struct client_conn *, int,
	    struct client_result *);
enum try_result client_auth(struct client_conn *, struct client_result *);

#endif
