/*
 * authconf: the auth { } section of smtpd.conf, compiled: where passwords
 * are checked (the secrets file or Dovecot), the mechanisms offered,
 * whether AUTH is required or allowed without TLS, who may send as whom,
 * and the failure throttle.  Part of the configuration snapshot; never
 * changed once compiled.
 */
#ifndef AUTHCONF_H
#define AUTHCONF_H

#include <limits.h>
#include <stdio.h>

#include <libconfig.h>

#include "lib/conf.h"
#include "throttle.h"

struct senders;

struct auth_conf {
	char		 secrets[PATH_MAX];	/* "" = no AUTH ... */
	char		 dovecot[PATH_MAX];	/* ... unless Dovecot's
						   auth-client socket */
	unsigned int	 mechs;			/* SASL_M_* */
	int		 required;		/* -a */
	int		 cleartext;		/* -p */
	struct senders	*senders;		/* NULL: any sender */
	struct throttle_conf throttle;
	char		 throttle_file[PATH_MAX];	/* stdio mode's table */
};

/* The built-in settings: no AUTH. */
void	authconf_defaults(struct auth_conf *);
/* Compiles auth { ... } (g) into ac.  0, or -1 with "file:line: ..." */
int	authconf_load(struct auth_conf *ac, const config_setting_t *g,
	    const struct conf_ctx *cx);
/*
 * What follows from the rest of the file: the throttle's state file
 * defaults to spool/auth-throttle.  0, or -1 with the error in err.
 */
int	authconf_finish(struct auth_conf *ac, const char *spool, char *err,
	    size_t errlen);
/* 1 when AUTH can be offered at all (a secrets file or Dovecot). */
int	authconf_enabled(const struct auth_conf *);
/* Frees what ac holds (not ac itself). */
void	authconf_clear(struct auth_conf *ac);
/* The AUTH part of smtpd -t. */
void	authconf_print(const struct auth_conf *, FILE *);

#endif
