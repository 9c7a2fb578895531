/*
 * listenconf: every listener of the daemon in one table, each with its
 * own TLS mode, AUTH settings and PROXY trust -- so that one daemon with
 * one spool serves 25, 587 and 465.  Compiled from the listen list
 * (strings and groups), tls.listen, proxy.listen and proxy.tls_listen,
 * or from -l.
 */
#ifndef LISTENCONF_H
#define LISTENCONF_H

#include <libconfig.h>
#include <stdio.h>

#include "lib/conf.h"
#include "milterconf.h"

#define LISTEN_TABLE_MAX	64
#define LISTEN_NAME_MAX		63

enum listen_tls {
	LTLS_STARTTLS = 0,	/* offered when there is a certificate */
	LTLS_IMPLICIT,		/* TLS from the first byte (465) */
	LTLS_NONE,		/* plain text only, STARTTLS not offered */
};

enum listen_auth {
	LAUTH_DEFAULT = 0,	/* as auth.required and -a say */
	LAUTH_OPTIONAL,		/* offered, not required */
	LAUTH_REQUIRED,		/* MAIL before AUTH: 530 5.7.0 */
	LAUTH_OFF,		/* not offered on this listener */
};

struct listen_conf {
	char		 address[300];
	char		 name[LISTEN_NAME_MAX + 1];	/* "" = none */
	enum listen_tls	 tls;
	int		 tls_explicit;	/* tls = "..." given: needs a cert */
	enum listen_auth auth;
	int		 cleartext;	/* -1: as auth.cleartext and -p say */
	int		 proxy;		/* a PROXY header comes first */
	/*
	 * milters = [ "name", ... ]: the milters its sessions use, in this
	 * order, as indexes into the policy's milters; unset: all of them.
	 */
	int		 milters_set;
	int		 nmilters;
	int		 milter[MILTERS_MAX];
	char		 milter_name[MILTERS_MAX][MILTER_NAME_MAX + 1];
	int		 milter_line[MILTERS_MAX];
	const char	*origin;	/* "listen", "-l", "tls.listen", ... */
	int		 line;		/* in the config; 0 for -l */
};

struct listen_table {
	struct listen_conf l[LISTEN_TABLE_MAX];
	int		 n;
};

/* What a listener falls back on: the global settings. */
struct listen_defaults {
	int		 have_certificate;
	int		 have_secrets;
	int		 have_trusted;	/* proxy.trusted is not empty */
	int		 auth_required;	/* auth.required, -a */
	int		 auth_cleartext;	/* auth.cleartext, -p */
	int		 nmilters;	/* in the top-level milters list */
};

/*
 * Appends one listener of the given kind (a string entry).  0, or -1 with
 * "file:line: message" in err.
 */
int	listenconf_add(struct listen_table *, const char *address,
	    enum listen_tls, int proxy, const char *origin,
	    const struct conf_ctx *cx, int line);
/*
 * The top-level listen setting: a string, or a list whose entries are
 * strings or groups { address; name; tls; auth; proxy; }.  0 or -1.
 */
int	listenconf_load(struct listen_table *, const config_setting_t *s,
	    const struct conf_ctx *cx);
/*
 * Once the whole file is read: what each listener asks for exists (a
 * certificate for TLS, secrets for required AUTH, proxy.trusted for
 * PROXY), names are unique.  0 or -1.
 */
int	listenconf_check(const struct listen_table *,
	    const struct listen_defaults *, const struct conf_ctx *cx);
/*
 * Once the milters are read: each listener's milters names become
 * indexes into c.  0, or -1 for a name c does not have.
 */
int	listenconf_milters(struct listen_table *, const struct milter_conf *c,
	    const struct conf_ctx *cx);
/* The listener's effective settings. */
int	listenconf_auth_required(const struct listen_conf *,
	    const struct listen_defaults *);
int	listenconf_auth_cleartext(const struct listen_conf *,
	    const struct listen_defaults *);
/* One line per listener with its effective settings (smtpd -t). */
void	listenconf_print(const struct listen_table *,
	    const struct listen_defaults *, FILE *);
/*
 * 1 if a and b describe the same listeners with the same settings (the
 * ones of their sockets: milters follow a reload).
 */
int	listenconf_equal(const struct listen_table *,
	    const struct listen_table *);

#endif
