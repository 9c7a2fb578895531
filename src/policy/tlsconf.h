/*
 * tlsconf: tls.certificates in smtpd.conf -- more server certificates,
 * each with its key, beside tls.certificate (the default), chosen by the
 * name the client asks for (SNI, RFC 6066 section 3).
 *
 * Only paths and names are read here; the files are read where the
 * key is kept (tlscerts.c), so that the front never opens a key.
 */
#ifndef TLSCONF_H
#define TLSCONF_H

#include <limits.h>
#include <stdio.h>

#include <libconfig.h>

#define TLSCONF_CERTS_MAX	32	/* entries in tls.certificates */
#define TLSCONF_NAMES_MAX	64	/* names of one entry */
#define TLSCONF_NAME_MAX	253	/* a DNS name, without the final dot */

struct tlsconf_cert {
	char		 certificate[PATH_MAX];
	char		 key[PATH_MAX];
	char		 chain[PATH_MAX];	/* "" = none */
	/* Lower case; none: the DNS names in the certificate. */
	char		*names[TLSCONF_NAMES_MAX];
	int		 nnames;
	char		 where[PATH_MAX + 16];	/* "file:line", for errors */
};

struct tlsconf {
	struct tlsconf_cert	*certs;
	int			 ncerts;
};

struct conf_ctx;

/*
 * Reads tls.certificates from the tls group g into *c (emptied first);
 * relative paths are taken from the config file's directory.  0, or -1
 * with "file:line: message" in cx's err.
 */
int	tlsconf_load(struct tlsconf *c, const config_setting_t *g,
	    const struct conf_ctx *cx);
void	tlsconf_free(struct tlsconf *c);
void	tlsconf_print(const struct tlsconf *c, FILE *f);
/*
 * Whether name is a DNS name a certificate may be chosen by: letters,
 * digits and '-' in labels of 1 to 63, no final dot; with wildcard, a
 * first label "*" (as in "*.example.net") is allowed too.
 */
int	tlsconf_name_ok(const char *name, int wildcard);

#endif
