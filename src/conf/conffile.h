/*
 * conffile: smtpd.conf read once and handed to the owner of each
 * section, which compiles it: the policy (top-level settings, limits,
 * listeners, TLS, the policy modules), auth { } and the queue (routes,
 * aliases, users, queue { }).  The result is one immutable, reference-
 * counted struct conf_file; the checks that need two sections (a
 * listener that requires AUTH, a domain accepted but routed nowhere) are
 * made here.
 *
 * smtpd's processes compile the file through conf_file_load() alone;
 * core/confsnap.h adds the TLS credentials and the secrets table to make
 * the snapshot sessions run with.
 */
#ifndef CONFFILE_H
#define CONFFILE_H

#include <stddef.h>
#include <stdio.h>

#include "auth/authconf.h"
#include "policy/policy.h"

struct queue_conf;

/* What the command line says; it wins over the file.  0/NULL = unset. */
struct conf_overrides {
	struct policy_overrides	 policy;	/* -h -l -f -r -s -k */
	int			 auth_required;		/* -a */
	int			 auth_cleartext;	/* -p */
};

struct conf_file {
	int			 refs;		/* see conf_file_ref() */
	struct policy		*policy;
	struct auth_conf	 auth;
	struct queue_conf	*queue;
};

/*
 * Reads and compiles path.  NULL on error, with "file:line: message" in
 * err.  A path that does not exist is an error unless missing_ok, in
 * which case the built-in defaults are used.
 */
struct conf_file *conf_file_load(const char *path, int missing_ok,
		    const struct conf_overrides *, char *err, size_t errlen);
struct conf_file *conf_file_ref(struct conf_file *);
/* Drops a reference and sets *cp to NULL; the last one frees. */
void		 conf_file_unref(struct conf_file **cp);
/* The settings each listener falls back on. */
void		 conf_file_listen_defaults(const struct conf_file *,
		    struct listen_defaults *);
/* smtpd -t: everything in plain words. */
void		 conf_file_print(const struct conf_file *, FILE *);
/*
 * smtpd -t's warnings (policy_warnings(), and each accepted domain no
 * route takes), one "smtpd: warning: ..." line each.  Returns how many.
 */
int		 conf_file_warnings(const struct conf_file *, FILE *);

#endif
