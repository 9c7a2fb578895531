/*
 * policy: smtpd.conf (libconfig) compiled into one immutable,
 * reference-counted struct policy.
 *
 * A session takes a reference when it starts and keeps it to the end;
 * SIGHUP compiles a new policy and swaps the current pointer, so sessions
 * never see a half-updated configuration.
 */
#ifndef POLICY_H
#define POLICY_H

#include <limits.h>
#include <stddef.h>
#include <stdio.h>

#define POLICY_LISTEN_MAX	16
#define POLICY_HOST_MAX		255

/* Defaults; each has a config key and a line in smtpd.conf(5). */
#define DEF_MESSAGE_SIZE	(35 * 1024 * 1024)
#define DEF_RECIPIENTS		1000
#define DEF_SESSIONS		500
#define DEF_SESSIONS_PER_IP	50
#define DEF_ERRORS		20
#define DEF_COMMAND_TIMEOUT	300	/* RFC 5321 4.5.3.2.7 */
#define DEF_DATA_TIMEOUT	600
#define DEF_SHUTDOWN_TIMEOUT	30
#define DEF_LINE_LENGTH		0	/* 0: text lines of any length */
#define MIN_RECIPIENTS		100	/* RFC 5321 4.5.3.1.8 */

struct policy {
	int		 refs;		/* atomic; see policy_ref() */
	char		 conffile[PATH_MAX];
	char		 hostname[POLICY_HOST_MAX + 1];
	char		 spool[PATH_MAX];
	char		*listen[POLICY_LISTEN_MAX];
	int		 nlisten;
	int		 reverse_lookup;

	size_t		 message_size;	/* bytes, 0 = no limit */
	unsigned int	 recipients;	/* per transaction */
	unsigned int	 sessions;	/* at once, in total */
	unsigned int	 sessions_per_ip;
	unsigned int	 errors;	/* then 421 and close */
	unsigned int	 command_timeout;	/* seconds */
	unsigned int	 data_timeout;
	unsigned int	 shutdown_timeout;
	size_t		 line_length;	/* longest text line, 0 = any */
};

/* What the command line says; it wins over the file.  NULL/0 = unset. */
struct policy_overrides {
	const char	*hostname;		/* -h */
	const char	*listen[POLICY_LISTEN_MAX];	/* -l */
	int		 nlisten;
};

/*
 * Reads and compiles path.  NULL on error, with "file:line: message" in
 * err.  A path that does not exist is an error unless missing_ok, in which
 * case the built-in defaults are used.
 */
struct policy *policy_load(const char *path, int missing_ok,
	    const struct policy_overrides *, char *err, size_t errlen);
/* Writes the effective policy in plain words (smtpd -t). */
void	policy_print(const struct policy *, FILE *);

struct policy *policy_ref(struct policy *);
void	policy_unref(struct policy **);

/* The policy new sessions start with: a new reference, never NULL once set. */
struct policy *policy_current(void);
/* Installs p (taking over the caller's reference) and drops the old one. */
void	policy_install(struct policy *p);

#endif
