/*
 * tls: the server side of TLS for smtpd (STARTTLS, RFC 3207, and
 * implicit TLS, RFC 8314), with GnuTLS.
 *
 * A struct tls_server holds what every handshake needs: the certificate,
 * its chain and key, those chosen by the name the client asks for (SNI;
 * tls.certificates), the priority string, the session-ticket key and,
 * optionally, the CAs that client certificates are checked against.  It
 * is immutable and reference-counted.  On SIGHUP the server loads a new
 * one and installs it (tls_server_install()); sessions already running
 * keep the one they started with, because every gnutls_session_t made
 * here holds a reference until tls_session_free().
 *
 * Before a STARTTLS handshake the session must throw away every byte the
 * client sent after the STARTTLS line (lineio_drop_input()): such bytes
 * were sent in clear and must not be taken as commands after TLS is up
 * (CVE-2011-0411).  Afterwards it forgets HELO/EHLO and AUTH state.
 */
#ifndef TLS_H
#define TLS_H

#include <stddef.h>

#include <gnutls/gnutls.h>

/* TLS 1.2 and 1.3 only; everything else as GnuTLS's NORMAL. */
#define TLS_DEFAULT_PRIORITY	"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
#define TLS_HANDSHAKE_TIMEOUT	30000	/* ms, for the whole handshake */
#define TLS_FILE_MAX		(1024 * 1024)	/* a certificate/key file */
#define TLS_CERTSET_MAX		(4 * 1024 * 1024) /* all certificates */
#define TLS_DN_MAX		256
#define TLS_DESC_MAX		160

/* One of tls.certificates, chosen by the name a client asks for (SNI). */
struct tls_named {
	const char	*certificate;	/* PEM, as tls_conf's */
	const char	*key;
	const char	*chain;		/* NULL: none */
	char *const	*names;		/* lower case, "*.example.net" too */
	int		 nnames;	/* 0: the certificate's DNS names */
	const char	*where;		/* "file:line" of the entry, or NULL */
};

struct tls_certset;

struct tls_conf {
	const char	*certificate;	/* PEM, the server's certificate; it
					 * may be followed by its chain */
	const char	*key;		/* PEM private key */
	const char	*chain;		/* PEM intermediate CAs, or NULL */
	const char	*priority;	/* GnuTLS priority string, or NULL */
	int		 tickets;	/* offer session tickets (resumption) */
	const char	*client_ca;	/* PEM CAs: ask clients for a
					 * certificate and check it against
					 * these; NULL: do not ask */
	const struct tls_named *named;	/* more certificates, by name */
	int		 nnamed;
	/*
	 * NULL: the certificates and the keys are read from the files
	 * named above.  Else nothing is read here: fetch() gets the
	 * certificates (without keys, see tlscerts.h) and add_key()
	 * installs in cred one of them (pem) with a key whose operations
	 * run elsewhere.  0 or -1.
	 */
	int		(*fetch)(struct tls_certset *set, char *err,
			    size_t errlen);
	int		(*add_key)(gnutls_certificate_credentials_t cred,
			    const gnutls_datum_t *pem, char *err,
			    size_t errlen);
};

struct tls_server;

/*
 * Loads everything in conf.  NULL on error, with the file or the place in
 * the priority string and GnuTLS's reason in err.  gnutls_global_init()
 * must have run.
 */
struct tls_server *tls_server_new(const struct tls_conf *, char *err,
	    size_t errlen);
struct tls_server *tls_server_ref(struct tls_server *);
void	tls_server_unref(struct tls_server **);
/*
 * One line about the server certificate for logs and smtpd -t:
 * "subject CN=mx.example.org, expires 2026-03-01 12:00:00 UTC".
 * Returns 1 when it has expired, else 0.
 */
int	tls_server_describe(const struct tls_server *, char *buf, size_t len);
/* How many names select a certificate other than the default. */
size_t	tls_server_names(const struct tls_server *);
/* A problem to log, such as a key that others may read; "" if none. */
const char *tls_server_warning(const struct tls_server *);

/* The process-wide server new handshakes use: a reference, or NULL. */
struct tls_server *tls_server_current(void);
/* Installs srv (taking over the caller's reference); drops the old one. */
void	tls_server_install(struct tls_server *srv);

/*
 * Runs the server handshake on rfd/wfd (the same socket, or the two ends
 * in stdio mode), waiting at most timeout_ms in all.  The fds are made
 * non-blocking during the handshake and put back as they were.  0 with
 * *sessp set (free it with tls_session_free()), or -1 with the reason in
 * err, e.g. "TLS handshake failed: An unexpected TLS packet was received."
 * or "TLS handshake timed out".
 */
int	tls_handshake(struct tls_server *, int rfd, int wfd, int timeout_ms,
	    gnutls_session_t *sessp, char *err, size_t errlen);
/*
 * Ends a session: with notify, sends close_notify first (bounded by the
 * socket's send timeout); then frees it and drops its tls_server
 * reference.  *sessp = NULL.
 */
void	tls_session_free(gnutls_session_t *sessp, int notify);

struct tls_info {
	char		 version[16];	/* "TLS1.3" */
	char		 cipher[64];	/* "TLS_AES_256_GCM_SHA384" */
	unsigned int	 bits;		/* the cipher's key size: 256 */
	char		 group[32];	/* key exchange group: "X25519", "" */
	/* For Received and the log:
	 * "TLS1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)" */
	char		 desc[TLS_DESC_MAX];
	int		 resumed;	/* the session was resumed */
	int		 client_cert;	/* the client sent a certificate */
	int		 client_verified; /* ... and it checked out against
					 * tls.client_ca */
	char		 client_subject[TLS_DN_MAX];	/* RFC 4514, "" */
	char		 client_issuer[TLS_DN_MAX];
	char		 client_sha256[65];	/* fingerprint, hex */
	char		 client_error[160];	/* why it did not verify */
};

/* Describes an established session.  0, or -1 if it is not one. */
int	tls_session_info(gnutls_session_t, struct tls_info *);

#endif
