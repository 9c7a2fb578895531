/*
 * creds: where the SMTP client finds the secret for AUTH.
 *
 * Sources, in order, the first that knows the server and user wins:
 *
 *  1. A factotum-style key file, one key per line:
 *         key proto=pass service=smtp server=HOST user=USER !password=SECRET
 *         key proto=oauth2 service=smtp server=HOST user=USER !token=TOKEN
 *     ("key" is optional; '#' starts a comment; values with spaces are
 *     quoted 'like this', a quote inside doubled).  server, service and
 *     user match when absent.  The file is refused if group or others
 *     may read it.
 *  2. ~/.netrc: "machine HOST login USER password SECRET" (or "default");
 *     refused, like ftp does, if others may read it.
 *  3. A password command run with /bin/sh -c; the first line of its
 *     output is the secret.  It gets SMTP_SERVER and SMTP_USER in its
 *     environment.
 */
#ifndef CREDS_H
#define CREDS_H

#include <stddef.h>

#define CREDS_SECRET_MAX	8192	/* OAuth tokens can be long */
#define CREDS_LINE_MAX		(CREDS_SECRET_MAX + 1024)

enum creds_status {
	CREDS_OK,	/* found */
	CREDS_NOTFOUND,	/* no source knows this server and user */
	CREDS_ERROR,	/* a source is unsafe or broken; err says which */
};

struct creds_query {
	const char	*service;	/* "smtp" */
	const char	*server;	/* the host name to match */
	const char	*user;
	const char	*keyfile;	/* NULL: no key file */
	const char	*netrc;		/* NULL: no netrc */
	const char	*command;	/* NULL: no password command */
	int		 command_token;	/* the command prints an OAuth token */
	unsigned	 command_timeout;	/* seconds */
};

struct creds {
	char	secret[CREDS_SECRET_MAX];
	int	is_token;	/* an OAuth 2.0 bearer token (XOAUTH2) */
	char	source[80];	/* where the secret came from */
};

enum creds_status creds_lookup(const struct creds_query *, struct creds *,
	    char *err, size_t errlen);
/*
 * The user to log in as when none was given (q->user is ignored): the
 * user of the key file's key for the server when exactly one key there is
 * for it, else the login of the netrc's "machine" entry for the server,
 * else that of its "default" entry.  CREDS_OK with user filled and from
 * naming the source, CREDS_NOTFOUND, or CREDS_ERROR with err (an unsafe
 * key file, a login too long).
 */
enum creds_status creds_find_user(const struct creds_query *q, char *user,
	    size_t userlen, const char **from, char *err, size_t errlen);
/*
 * The key labelled label=LABEL in the key file path (the format above;
 * such a key also needs user=USER), for the queue's relay routes.  The
 * file must exist and be private.  CREDS_OK with user and secret filled,
 * CREDS_NOTFOUND, or CREDS_ERROR with err saying why.
 */
enum creds_status creds_label_lookup(const char *path, const char *label,
	    char *user, size_t userlen, struct creds *, char *err,
	    size_t errlen);
/* Clears the secret. */
void	creds_wipe(struct creds *);
/*
 * The default key file: $SMTP_KEYFILE, else $XDG_CONFIG_HOME/smtp/keys,
 * else ~/.config/smtp/keys.  0 or -1 (no home).
 */
int	creds_default_keyfile(char *buf, size_t len);
/* ~/.netrc (or $NETRC).  0 or -1. */
int	creds_default_netrc(char *buf, size_t len);

/*
 * The pure parts, exposed for tests.
 */
/* Matches one key file line: 1 (secret filled), 0 no match, -1 syntax. */
int	creds_key_match(const char *line, const struct creds_query *,
	    struct creds *);
/* Matches one key file line by its label: 1 (user and secret filled),
 * 0 no match, -1 syntax (or the key lacks user or secret). */
int	creds_label_match(const char *line, const char *label, char *user,
	    size_t userlen, struct creds *);
/* Whether a key file line is a key for q's service and server, whatever
 * its user: 1 (its user copied, "" if it names none), 0 no, -1 syntax or
 * the user does not fit. */
int	creds_key_user(const char *line, const struct creds_query *q,
	    char *user, size_t userlen);
/* The login of host's first "machine" entry in netrc text that has one,
 * else of the "default" entry: 1 (copied), 0 none, -1 it does not fit. */
int	creds_netrc_login(const char *text, size_t len, const char *host,
	    char *login, size_t loginlen);
/* Finds host/user in netrc text: 1 (password copied), 0 no entry, -1 the
 * password does not fit. */
int	creds_netrc_find(const char *text, size_t len, const char *host,
	    const char *user, char *pw, size_t pwlen);

#endif
