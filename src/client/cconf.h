/*
 * cconf: the SMTP client's settings (smtp.conf, libconfig syntax, and
 * -o key=value), shared by smtp(1) and sendmail(8).
 *
 * Global settings come first, then those of the "hosts" entries naming
 * the destination host, then, for sendmail, those of the chosen entry of
 * "accounts": a smarthost with its own TLS, AUTH user and credentials,
 * chosen by name or by the sender address (its "from" patterns).
 * Documented in smtp(1), CONFIGURATION.
 */
#ifndef CCONF_H
#define CCONF_H

#include <stddef.h>

#include "client/client.h"

#define CCONF_NAME_MAX	64

struct cconf {
	char			*keyfile, *netrc, *password_command;
	char			*tls_cafile, *tls_pin;
	int			 tls_verify;
	enum client_tls_policy	 tls_policy;
	char			*sts_cache;	/* MTA-STS policy cache directory */
	int			 auth_cleartext;
	enum client_auth_mech	 auth_mech;
	unsigned		 connect_timeout, command_timeout;
	unsigned		 data_timeout, password_timeout;
	unsigned long long	 max_message_size;
	/* sendmail's offline queue */
	char			*queue_dir;	/* NULL: the default */
	unsigned		 queue_max;	/* messages */
};

/* A smarthost account (sendmail). */
struct cconf_account {
	char		 name[CCONF_NAME_MAX];
	char		 host[CLIENT_HOST_MAX];	/* dial string */
	char		 server[CLIENT_HOST_MAX];	/* its host, for the
							   credentials */
	enum client_tls	 tls;
	int		 auth;			/* AUTH as user */
	char		 user[256];		/* "" : the login name */
};

/* The defaults. */
void	cconf_init(struct cconf *);
void	cconf_free(struct cconf *);
/* One setting (a file key or -o).  0, or -1 with err. */
int	cconf_set(struct cconf *, const char *key, const char *value,
	    char *err, size_t errlen);
/*
 * The user's config file: $XDG_CONFIG_HOME/smtp/smtp.conf, else
 * ~/.config/smtp/smtp.conf.  0, or -1 when neither can be named.
 */
int	cconf_user_path(char *buf, size_t len);
/*
 * Reads path: global settings, then the "hosts" entries whose host is
 * dest_host.  0; 1 if the file does not exist (and !must); -1 with err.
 */
int	cconf_load(struct cconf *, const char *path, int must,
	    const char *dest_host, char *err, size_t errlen);
/*
 * Reads path as cconf_load() does for the account chosen: the one named
 * name if not NULL; else the first whose "from" patterns (fnmatch(3),
 * case-insensitive) match sender, else one matching from_hdr (the
 * From: address, may be NULL); else the one named by "account"; else the
 * only one.  Its settings are applied last.  0; 1 if the file does not
 * exist; -1 with err (no such account, none matches, syntax).
 */
int	cconf_load_account(struct cconf *, const char *path, const char *name,
	    const char *sender, const char *from_hdr, struct cconf_account *,
	    char *err, size_t errlen);

#endif
