/*
 * tlscerts: the server certificates of smtpd as one set -- the default
 * (tls.certificate) first, then tls.certificates, each with the names
 * that choose it -- read from their files with their keys, or carried
 * without keys from the key process to the front as one block of text.
 */
#ifndef TLSCERTS_H
#define TLSCERTS_H

#include <stddef.h>
#include <sys/types.h>

#include <gnutls/gnutls.h>

#include "policy/policy.h"
#include "tls.h"

struct tls_certent {
	gnutls_datum_t	 pem;		/* the certificate, then its chain */
	gnutls_datum_t	 key;		/* PEM; data NULL: kept elsewhere */
	char		*names[TLSCONF_NAMES_MAX];	/* lower case */
	int		 nnames;	/* 0 for the default */
};

struct tls_certset {
	struct tls_certent ent[1 + TLSCONF_CERTS_MAX];	/* [0]: default */
	int		 n;
};

/*
 * Reads the certificates, chains and keys conf names, checks that each
 * key belongs to its certificate, and takes the DNS names of the
 * certificates of entries without names.  0, or -1 with err (the
 * entry's file:line first).  Problems that do not stop the load (a key
 * that group or others may read, an expired certificate of an entry) go
 * to warn ("" if none).
 */
int	tlscerts_read(const struct tls_conf *conf, struct tls_certset *set,
	    char *warn, size_t warnlen, char *err, size_t errlen);
/* Frees what set holds, the keys wiped; set is empty after. */
void	tlscerts_free(struct tls_certset *set);
/* The set without its keys as one block (malloc'd).  0 or -1. */
int	tlscerts_encode(const struct tls_certset *set, gnutls_datum_t *out);
/* The reverse: 0, or -1 with err. */
int	tlscerts_decode(const unsigned char *data, size_t len,
	    struct tls_certset *set, char *err, size_t errlen);
/*
 * conf's certificate fields from p (pointers into p); named must have
 * room for TLSCONF_CERTS_MAX.  Priority and the rest are left alone.
 */
void	tlscerts_conf(const struct policy *p, struct tls_conf *conf,
	    struct tls_named *named);

#endif
