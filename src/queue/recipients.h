/*
 * recipients: who exists.  The "users", "relay_recipients",
 * "recipient_delimiter" and table-valued "aliases" settings, recipient
 * verification at RCPT time, and subaddresses (user+tag).  Documented in
 * smtpd.conf(5), RECIPIENTS and TABLES.
 */
#ifndef RECIPIENTS_H
#define RECIPIENTS_H

#include <stddef.h>

#include <libconfig.h>

#include "queueconf.h"

enum qc_verdict {
	QV_OK,		/* a recipient we know, or not ours to check */
	QV_UNKNOWN,	/* no such user here: 550 5.1.1 */
	QV_TEMP,	/* a table could not be read now: 451 4.3.0 */
};

/* Compiles the keys above into qc.  0, or -1 with "file:line: ..." in err. */
int	qc_tables_parse(const config_setting_t *root, struct queue_conf *qc,
	    const char *file, char *err, size_t errlen);
void	qc_tables_free(struct queue_conf *);
/* Writes the tables in plain words (smtpq check, smtpd -t). */
void	qc_tables_print(const struct queue_conf *, FILE *);

/*
 * The alias targets of local@domain (lower case): the inline aliases,
 * then the alias table, each by "local@domain" then "local", then the
 * same for the base of a subaddress.  1 with a malloc'd list in *to
 * (queueconf_free_list), 0 when there is no alias, -1 when a table cannot
 * be read now, -2 on other errors (err says).
 */
int	qc_alias_targets(const struct queue_conf *, const char *local,
	    const char *domain, char ***to, size_t *nto, char *err,
	    size_t errlen);
/* local without its "+tag" (recipient_delimiter) into out.  1 if cut. */
int	qc_base_local(const struct queue_conf *, const char *local, char *out,
	    size_t outlen);

/*
 * Decides whether mailbox may be accepted (RCPT): for domains delivered
 * here (maildir and pipe routes) it must be a user, an alias, an
 * existing Maildir when the route does not create them, or on a
 * catch-all route; for relayed domains of ours (ours != 0) it must be in
 * relay_recipients when that is set.  why gets the reason for QV_TEMP.
 */
enum qc_verdict queueconf_verify(const struct queue_conf *,
	    const char *mailbox, const char *sender, const char *login,
	    int ours, char *why, size_t whylen);
/* The same with the policy's calling convention (arg: the queue_conf). */
int	queueconf_verify_hook(const void *arg, const char *mailbox,
	    const char *sender, const char *login, int ours, char *why,
	    size_t whylen);
/*
 * 1 if route r may make a Maildir for mailbox: the route is a catch-all,
 * or the (base) user is listed in users, or it is postmaster.  0 if
 * not, -1 when the users table cannot be read now.
 */
int	queueconf_may_create(const struct queue_conf *, const struct route *,
	    const char *mailbox, char *why, size_t whylen);

#endif
