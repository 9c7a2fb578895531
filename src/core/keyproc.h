/*
 * keyproc: the process of smtpd that holds the TLS private keys and the
 * AUTH secrets, and the front's side of talking to it.
 *
 * The front never has a key or the secrets in its memory: during a TLS
 * handshake GnuTLS calls back into a key whose sign and decrypt
 * operations are requests to the key process (naming the key by the
 * SHA-256 id of its public key), and AUTH's password checks
 * (secrets_verify(), secrets_verify_cram()) go there too.  Requests and
 * answers are fixed-size messages on SOCK_SEQPACKET socket pairs, one
 * request at a time per pair; the front has KEYPROC_CHANNELS pairs and
 * the key process a thread for each.  The parent keeps both ends of
 * every pair open, so that either process can be restarted and find the
 * channels where they were; each request carries a sequence number and
 * an answer to an earlier one is dropped.
 */
#ifndef KEYPROC_H
#define KEYPROC_H

#include <gnutls/gnutls.h>

#include "conf/conffile.h"

struct tls_certset;

#define KEYPROC_CHANNELS	4	/* = SECRETS_HASH_CONCURRENCY */
#define KEYPROC_TIMEOUT		35000	/* ms an answer may take */

/*
 * The key process: serves fds[0..n-1] until SIGTERM.  On SIGHUP it reads
 * the config again and reloads the key and the secrets it names.  Writes
 * a byte to notify_fd (unless -1) once started and after each reload.
 * Does not return.
 */
void	keyproc_main(const int *fds, int n, const char *conffile,
	    int missing_ok, const struct conf_overrides *ov, int notify_fd);

/*
 * The front: sends key operations and password checks over fds[0..n-1]
 * from now on (installs the secrets_remote of secrets.h).  0 or -1.
 */
int	keyproc_client(const int *fds, int n);
/*
 * For tls_conf.fetch in the front: the certificates the key process
 * loaded, with their names, without keys.  0 or -1 with err.
 */
int	keyproc_fetch_certs(struct tls_certset *set, char *err,
	    size_t errlen);
/*
 * For tls_conf.add_key: installs in cred the certificate (and chain) pem
 * with a key whose operations go to the key process.  0 or -1.
 */
int	keyproc_add_key(gnutls_certificate_credentials_t cred,
	    const gnutls_datum_t *pem, char *err, size_t errlen);

#endif
