/*
 * secrets: the AUTH secrets file (config auth.secrets), loaded into an
 * immutable, reference-counted table.
 *
 * The file holds one account per line:
 *
 *	user:{SCHEME}value
 *
 * Empty lines and lines whose first character is '#' are ignored.  The
 * user name is 1..SECRETS_USER_MAX bytes without ':', white space or
 * control characters, compared exactly (case matters).  The value is the
 * rest of the line, taken verbatim (only the CR of a CRLF is dropped).
 * Scheme names are case-insensitive:
 *
 *	{PLAIN}	the password in clear.  Serves PLAIN, LOGIN and CRAM-MD5.
 *	{CRYPT}	a crypt(3) hash as libcrypt's crypt_r() understands it:
 *		yescrypt ($y$, the default for new entries), SHA-512 ($6$),
 *		SHA-256 ($5$), bcrypt ($2b$), ...  Serves PLAIN and LOGIN only.
 *
 * CRAM-MD5 (RFC 2195) needs the clear secret, so only {PLAIN} entries can
 * use it.  There is no precomputed CRAM-MD5 form: it would be MD5's
 * internal state after the HMAC pads, which no library we use exposes.
 *
 * The file must be a regular file, owned by root or by the user smtpd
 * runs as, that neither the group nor others may read or write; anything
 * else is refused.  A bad line makes the whole load
 * fail with "file:line: message", so a typo never locks out everyone else
 * silently.
 */
#ifndef SECRETS_H
#define SECRETS_H

#include <stddef.h>

#define SECRETS_LINE_MAX	2048	/* bytes per line, without the LF */
#define SECRETS_USER_MAX	255	/* RFC 4616 section 2: authcid */
#define SECRETS_PASS_MAX	1024	/* longest password ever checked */
#define SECRETS_ENTRIES_MAX	100000
#define SECRETS_FILE_MAX	(16 * 1024 * 1024)
/* crypt_r() runs at most this many at once (yescrypt takes 16 MB each). */
#define SECRETS_HASH_CONCURRENCY 4
#define SECRETS_HASH_WAIT	30	/* seconds to wait for a turn */

enum secrets_status {
	SECRETS_OK = 0,		/* the credentials are right */
	SECRETS_FAIL,		/* unknown user or wrong password */
	SECRETS_TEMPFAIL,	/* cannot check now (454 4.7.0) */
	SECRETS_NO_CLEAR,	/* CRAM-MD5 for a user without a clear secret */
};

struct secrets;

/*
 * Reads and parses path.  NULL on error, with "path:line: message" (or
 * "path: message") in err.
 */
struct secrets *secrets_load(const char *path, char *err, size_t errlen);
struct secrets *secrets_ref(struct secrets *);
/* Drops a reference; the last one wipes and frees the table.  *tp = NULL. */
void	secrets_unref(struct secrets **tp);

const char *secrets_path(const struct secrets *);
size_t	secrets_count(const struct secrets *);
/*
 * 1 when the file on disk is no longer the one the table was read from
 * (inode, size, mtime or ctime differ, or it is gone), else 0.  One stat().
 */
int	secrets_changed(const struct secrets *);

/*
 * Checks a password (passlen bytes, need not be NUL-terminated).  Every
 * call computes exactly one crypt(3) hash: the account's for {CRYPT}, a
 * dummy one of the same kind for {PLAIN} accounts (then compared in
 * constant time) and for unknown users, so that the time taken does not
 * tell the three apart.
 */
enum secrets_status secrets_verify(const struct secrets *, const char *user,
	    const void *pass, size_t passlen);
/*
 * Checks a CRAM-MD5 answer: digest must be HMAC-MD5(secret, challenge).
 * A known user without a clear secret gives SECRETS_NO_CLEAR (after the
 * same work), an unknown user SECRETS_FAIL.
 */
enum secrets_status secrets_verify_cram(const struct secrets *,
	    const char *user, const void *challenge, size_t chlen,
	    const unsigned char digest[16]);
/* How many crypt(3) hashes this process has computed (for tests). */
unsigned long secrets_hash_calls(void);
/* 1 when at least one entry has a clear secret (CRAM-MD5 can work). */
int	secrets_any_clear(const struct secrets *);
/*
 * Copies user's clear secret into buf (NUL-terminated, length in *lenp).
 * 1 copied, 0 unknown user or no clear secret, -1 buf too small.
 * The caller wipes buf (str_wipe) when done.
 */
int	secrets_get_clear(const struct secrets *, const char *user, char *buf,
	    size_t len, size_t *lenp);

/*
 * Writes "user:{CRYPT}$y$..." (no newline) for a new yescrypt hash of
 * pass into buf; the line that an admin tool appends to the file.
 * 0, or -1 with a message in err (bad user name, buf too small, ...).
 */
int	secrets_crypt_line(const char *user, const char *pass, char *buf,
	    size_t len, char *err, size_t errlen);
/* 0 when name is a valid user name for the file, else -1. */
int	secrets_check_user(const char *name);

/*
 * Where the table lives in another process (the key and secrets process
 * of smtpd): the checks are asked of it.  Each function must be safe
 * from any thread and answer SECRETS_TEMPFAIL when it cannot ask.
 */
struct secrets_remote {
	enum secrets_status (*verify)(const char *user, const void *pass,
	    size_t passlen);
	enum secrets_status (*verify_cram)(const char *user,
	    const void *challenge, size_t chlen,
	    const unsigned char digest[16]);
	int	(*any_clear)(void);
	int	(*available)(void);	/* 0: it has no table (454) */
};
/*
 * From now on secrets_current() returns a table whose checks go to r,
 * and secrets_refresh() does nothing (the other process reloads).
 */
void	secrets_set_remote(const struct secrets_remote *r);

/*
 * The process-wide table that AUTH uses: a new reference, or NULL when
 * none could be loaded (AUTH then answers 454 4.7.0).
 */
struct secrets *secrets_current(void);
/* Installs t (taking over the caller's reference); drops the old one. */
void	secrets_install(struct secrets *t);
/*
 * Loads path and installs it if it differs from the current table (other
 * path, or changed on disk).  1 reloaded, 0 nothing to do, -1 error (in
 * err; the current table stays).  A file that failed is not retried until
 * it changes again, so a broken file is reported once, not per session.
 * Safe to call from every session before AUTH and from the SIGHUP path.
 */
int	secrets_refresh(const char *path, char *err, size_t errlen);
/*
 * The same without installing: 1 with *out a new table read from path
 * when have is not path's table as it is on disk now (other path, changed
 * file, or have NULL); 0 with *out NULL when have is still right (or the
 * file failed before and has not changed since, or another thread is
 * reloading, or the table is another process's); -1 with err when the
 * file does not load.
 */
int	secrets_reload(const char *path, const struct secrets *have,
	    struct secrets **out, char *err, size_t errlen);

#endif
