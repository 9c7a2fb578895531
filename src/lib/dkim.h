/*
 * dkim: DomainKeys Identified Mail signatures (RFC 6376 rsa-sha256,
 * RFC 8463 ed25519-sha256) with relaxed/relaxed canonicalisation, made by
 * GnuTLS.  A signer is fed the message as it is stored (CRLF lines, the
 * header then the body) in pieces of any size; the body is hashed as it
 * streams, the header is kept (bounded) until the end.
 */
#ifndef DKIM_H
#define DKIM_H

#include <stddef.h>
#include <time.h>

#include "str.h"

struct dkim_key;
struct dkim_sign;

/* Reads a PEM private key (RSA or Ed25519).  NULL with a message in err. */
struct dkim_key *dkim_key_load(const char *path, char *err, size_t errlen);
void	dkim_key_free(struct dkim_key **);
/* "rsa-sha256" or "ed25519-sha256". */
const char *dkim_key_algorithm(const struct dkim_key *);
/*
 * The DNS TXT record for the key: "v=DKIM1; k=rsa; p=...".  0 or -1.
 */
int	dkim_key_record(const struct dkim_key *, struct str *out);
/*
 * Makes a new key ("rsa" with bits, or "ed25519") and writes it as PEM
 * (PKCS #8) to path, which must not exist, mode 0600.  0 or -1 with a
 * message in err.
 */
int	dkim_keygen(const char *type, unsigned int bits, const char *path,
	    char *err, size_t errlen);

/*
 * A signer for domain and selector over the header fields named in
 * headers (NULL-terminated; each is signed as often as it appears, From
 * once more so that none can be added).  header_max bounds the header
 * kept: a longer header is not signed.  NULL when out of memory.
 */
struct dkim_sign *dkim_sign_new(const struct dkim_key *, const char *domain,
	    const char *selector, const char *const *headers,
	    size_t header_max);
void	dkim_sign_update(struct dkim_sign *, const char *, size_t);
/*
 * Appends the DKIM-Signature header field (folded, CRLF-terminated) to
 * out.  0, or -1 with a message in err.
 */
int	dkim_sign_final(struct dkim_sign *, time_t now, struct str *out,
	    char *err, size_t errlen);
void	dkim_sign_free(struct dkim_sign **);

/* For tests: relaxed canonical forms (RFC 6376 3.4.2, 3.4.4). */
void	dkim_relax_header(const char *field, size_t len, struct str *out);
int	dkim_relax_body(const char *body, size_t len, struct str *out);

#endif
