/*
 * struct config: one immutable snapshot of smtpd.conf as smtpd runs it --
 * the compiled file (conf/conffile.h: policy with its listeners, auth,
 * queue), the TLS credentials and the AUTH secrets table -- reference
 * counted, and swapped whole on SIGHUP or when the secrets file changes.
 *
 * A session takes one reference at its start (config_current()) and uses
 * it to its end, so it sees one consistent configuration: a reload in the
 * middle changes nothing for it, and never half of it.
 */
#ifndef CONFSNAP_H
#define CONFSNAP_H

#include <stddef.h>

struct auth_conf;
struct conf_file;
struct policy;
struct queue_conf;
struct secrets;
struct tls_server;

struct config {
	int			 refs;		/* atomic */
	struct conf_file	*file;		/* the compiled smtpd.conf */
	/* Its sections, for short. */
	struct policy		*policy;
	const struct auth_conf	*auth;
	struct queue_conf	*queue;
	struct tls_server	*tls;		/* NULL: no certificate */
	struct secrets		*secrets;	/* auth.secrets' table; NULL:
						   none, or another process's */
};

/*
 * A snapshot of its parts, taking over the caller's references to them
 * (tls and secrets may be NULL).  NULL if out of memory (the parts are
 * then released).
 */
struct config	*config_new(struct conf_file *file, struct tls_server *tls,
		    struct secrets *secrets);
struct config	*config_ref(struct config *);
/* Drops a reference and sets *cp to NULL; the last one frees. */
void		 config_unref(struct config **cp);
/* The installed snapshot, a new reference (NULL before the first one). */
struct config	*config_current(void);
/*
 * What a session starts with: config_current(), except that when
 * auth.secrets' file changed since the snapshot was made, a new one with
 * the new table is installed and returned (a file that does not load is
 * logged once and the last good table stays).
 */
struct config	*config_session(void);
/* Installs c, taking over the caller's reference; drops the old one. */
void		 config_install(struct config *c);

#endif
