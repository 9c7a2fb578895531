/*
 * dkimconf: the dkim { } section of smtpd.conf -- which keys sign the
 * mail of which sender domains, and which header fields are signed.
 * Keys are read when the configuration is loaded, so a bad key is an
 * error of smtpd -t, not of the first message.
 */
#ifndef DKIMCONF_H
#define DKIMCONF_H

#include <libconfig.h>
#include <stdio.h>

#include "lib/conf.h"

#define DKIM_KEYS_MAX		64
#define DKIM_HEADERS_MAX	40
#define DKIM_SIGNERS_MAX	4	/* signatures on one message */

struct dkim_key;

struct dkim_entry {
	char		 domain[256];	/* lower case */
	char		 selector[64];
	char		 keyfile[4096];
	struct dkim_key	*key;
};

struct dkim_conf {
	struct dkim_entry	 keys[DKIM_KEYS_MAX];
	size_t			 nkeys;
	/* NULL-terminated: the signer's list of field names. */
	const char		*headers[DKIM_HEADERS_MAX + 1];
	char			*owned[DKIM_HEADERS_MAX];
	size_t			 nheaders;
};

/*
 * Reads dkim { } from the root group into *out (NULL when absent);
 * relative key paths are taken from the config file's directory.  0, or
 * -1 with "file:line: message" in err.
 */
int	dkimconf_load(struct dkim_conf **out, const config_setting_t *root,
	    const struct conf_ctx *cx);
void	dkimconf_free(struct dkim_conf **);
void	dkimconf_print(const struct dkim_conf *, FILE *);
/*
 * The entries that sign mail from domain (up to max, e.g. an RSA and an
 * Ed25519 key); how many.
 */
size_t	dkimconf_find(const struct dkim_conf *, const char *domain,
	    const struct dkim_entry **out, size_t max);

#endif
