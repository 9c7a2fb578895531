/*
 * queueconf: the "routes", "aliases" and "queue" settings of smtpd.conf,
 * compiled into one immutable, reference-counted struct queue_conf.
 *
 * The config loader (conf/conffile.c, for smtpd and smtpq) hands the
 * parsed libconfig root to queueconf_parse(); sendmail, which runs as any
 * user and needs no other section, reads the file with queueconf_load().
 * Documented in smtpd.conf(5), ROUTES, ALIASES and QUEUE.
 */
#ifndef QUEUECONF_H
#define QUEUECONF_H

#include <sys/types.h>

#include <limits.h>
#include <stddef.h>
#include <stdio.h>

#include <libconfig.h>

#include "lib/addr.h"
#include "lib/spawn.h"

struct table;

/* Defaults; each has a key in queue { } and a line in smtpd.conf(5). */
#define QC_DEF_RETRY_MIN	300		/* 5 minutes */
#define QC_DEF_RETRY_MAX	3600		/* 1 hour */
#define QC_DEF_LIFETIME		(5 * 86400)	/* 5 days */
#define QC_DEF_DELAY_WARNING	0		/* off */
#define QC_DEF_CONCURRENCY	20
#define QC_DEF_DEST_CONCURRENCY	5
#define QC_DEF_SCAN_INTERVAL	60
#define QC_DEF_BOUNCE_SIZE	(64 * 1024)
#define QC_DEF_PIPE_TIMEOUT	600
#define QC_DEF_PIPE_USER	"nobody"
#define QC_DEF_MAILER_USER	"nobody"
#define QC_DEF_SESSION_MESSAGES	100

#define QC_MAX_CONCURRENCY	1000
#define QC_MAX_ROUTES		1000
#define QC_MAX_ALIASES		100000
#define QC_MAX_TARGETS		1000	/* addresses one alias may name */
#define QC_MAX_EXPANSION	1000	/* addresses one recipient may become */
#define QC_ALIAS_DEPTH		10
#define QC_MAX_ARGS		64	/* pipe command words */

enum route_action {
	ROUTE_MAILDIR,
	ROUTE_PIPE,
	ROUTE_RELAY,
	ROUTE_LMTP,
};

enum route_tls {
	ROUTE_TLS_OPPORTUNISTIC,	/* STARTTLS when offered */
	ROUTE_TLS_REQUIRE,		/* no TLS, no delivery */
	ROUTE_TLS_NONE,			/* never */
	ROUTE_TLS_DANE,			/* DANE where validated, else may */
	ROUTE_TLS_MTA_STS,		/* MTA-STS where published */
	ROUTE_TLS_AUTO,			/* DANE, else MTA-STS, else may */
};

/* A user to run programs as (or to own maildir files), resolved at load. */
struct qc_user {
	char			 name[64];
	struct spawn_cred	 cred;
};

struct route {
	unsigned int	 index;		/* position in routes, from 0 */
	unsigned int	 line;		/* in the config file */
	char		**domains;	/* "example.com", "*.example.com", "*" */
	size_t		 ndomains;
	struct table	*domain_table;	/* virtual domains: its keys, or NULL */
	char		*local;		/* fnmatch(3) pattern, NULL = any */
	char		*sender;	/* fnmatch(3) on the envelope sender */
	char		*login;		/* fnmatch(3) on the AUTH login */
	int		 catchall;	/* any local part is a recipient */
	enum route_action action;
	unsigned int	 concurrency;	/* per destination */

	/* maildir */
	char		*path;		/* template: %u %d %% */
	int		 create;	/* make missing maildirs */
	int		 has_owner;
	struct qc_user	 owner;		/* chown what we create */

	/* pipe */
	char		**argv;		/* template: %s %r %u %d %i %% */
	size_t		 argc;
	struct qc_user	 user;		/* run as */
	unsigned int	 timeout;	/* seconds */
	int		 batch;		/* all recipients in one run */
	int		 from_line;	/* prepend a Unix "From " line */

	/* relay */
	char		*host;		/* smarthost dial string, NULL = MX */
	enum route_tls	 tls;
	int		 tls_verify;	/* check the certificate (require) */
	char		*tls_cafile;	/* CAs trusted besides the system's */
	char		*tls_pin;	/* "sha256:HEX" instead of CAs */
	char		*auth;		/* credential label, NULL = none */

	/* lmtp */
	char		*lmtp;		/* "unix:/path" or "inet:host:port" */
};

struct alias {
	char	 *name;		/* "local" or "local@domain", lower case */
	char	**to;
	size_t	  nto;
	unsigned int line;
};

struct queue_conf {
	int		 refs;		/* atomic; see queueconf_ref() */
	char		 file[PATH_MAX];
	int		 have_file;	/* 0: file missing, built-in defaults */
	char		 hostname[256];
	char		 spool[PATH_MAX];

	struct route	*routes;
	size_t		 nroutes;
	struct alias	*aliases;	/* sorted by name */
	size_t		 naliases;
	struct table	*alias_table;	/* aliases = "cdb:...", or NULL */
	struct table	*users;		/* users = ..., or NULL */
	struct table	*relay_rcpts;	/* relay_recipients = ..., or NULL */
	char		 delimiter[8];	/* recipient_delimiter, "" = off */

	unsigned int	 retry_min;	/* seconds */
	unsigned int	 retry_max;
	unsigned int	 lifetime;
	unsigned int	 delay_warning;	/* 0 = off */
	unsigned int	 concurrency;	/* deliveries at once */
	unsigned int	 dest_concurrency;	/* ... per destination */
	unsigned int	 session_messages;	/* per connection */
	unsigned int	 scan_interval;
	size_t		 bounce_size;	/* largest message returned whole */
	unsigned int	 pipe_timeout;
	struct qc_user	 pipe_user;
	struct qc_user	 mailer_user;	/* smtpd -m runs the mailer as;
					   name "" if it does not exist */
	int		 runner;	/* smtpd runs the queue runner itself */
	char		 relay_keys[PATH_MAX];	/* relay credentials, "" if none */
	char		 user[64];	/* the runner runs as; "" = smtpd's */
	char		 tlsrpt_from[ADDR_PATH_MAX + 1];	/* TLS reports'
						   sender, "" = no reports */
	char		 tlsrpt_org[256];	/* organization-name */
};

/*
 * Compiles the "routes", "aliases" and "queue" members of root (other keys
 * are left to the caller).  file names the config in messages; hostname
 * and spool are copied in (the caller owns those keys).  NULL on error,
 * with "file:line: message" in err.
 */
struct queue_conf *queueconf_parse(const config_setting_t *root,
	    const char *file, const char *hostname, const char *spool,
	    char *err, size_t errlen);
/*
 * Reads path with libconfig and compiles it as above, taking hostname and
 * spool from the same file ("hostname", "spool"; defaults as smtpd's).
 * Other top-level keys are ignored.  A missing file gives the defaults when
 * missing_ok.
 */
struct queue_conf *queueconf_load(const char *path, int missing_ok,
	    char *err, size_t errlen);
/* Writes the effective settings in plain words (smtpq check). */
void	queueconf_print(const struct queue_conf *, FILE *);

struct queue_conf *queueconf_ref(struct queue_conf *);
void	queueconf_unref(struct queue_conf **);

/*
 * The first route matching mailbox ("local@domain"; a bare "postmaster"
 * counts as being in hostname's domain), or NULL.  With no routes at all
 * configured, every recipient is relayed by MX through a built-in route.
 */
const struct route *queueconf_route(const struct queue_conf *,
	    const char *mailbox);

/*
 * The same, for a message from sender (NULL: unknown) sent by an AUTH
 * login (NULL: none).  Routes naming a sender or login pattern match only
 * when it does.
 */
const struct route *queueconf_route_from(const struct queue_conf *,
	    const char *mailbox, const char *sender, const char *login);

/*
 * The alias named name ("local@domain" or "local", lower case), or NULL.
 * Expansion through it (and through alias tables): alias.h.
 */
const struct alias *queueconf_alias(const struct queue_conf *,
	    const char *name);
/*
 * mailbox's local part and domain (hostname's for a bare local part),
 * lower case, the domain without a trailing dot: 0, or -1 if the local
 * part is empty or either is cut to fit (both are set all the same).
 */
int	queueconf_split_mailbox(const struct queue_conf *, const char *mailbox,
	    char *local, size_t llen, char *domain, size_t dlen);
void	queueconf_free_list(char ***list, size_t n);

/* Parses "90", "90s", "15m", "2h", "5d", "1w" into seconds.  0 or -1. */
int	queueconf_duration(const char *s, unsigned int *out);
/* Resolves a user name (or "#uid").  0 or -1 with err. */
int	queueconf_user(const char *name, struct qc_user *, char *err,
	    size_t errlen);
/* The name of a route action ("maildir", ...). */
const char *queueconf_action_name(enum route_action);

#endif
