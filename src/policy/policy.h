/*
 * policy: the SMTP front's sections of smtpd.conf (the top-level
 * settings, limits, listeners, TLS, the policy modules' lists and rules)
 * compiled into one immutable struct policy, and the policy modules that
 * sessions consult at each step of a conversation.
 *
 * The file is read by conf/conffile.c, which hands each owner its
 * section; the policy is one part of the configuration snapshot a
 * session keeps from start to end.  What must outlive a reload
 * (greylisting state, rate counters) lives in a struct policy_state that
 * the server keeps.  Depends on lib only: what it needs to know of the
 * queue (recipient verification) it asks through a function.
 */
#ifndef POLICY_H
#define POLICY_H

#include <sys/socket.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>

#include <libconfig.h>

#include "cidr.h"
#include "frontconf.h"
#include "listenconf.h"
#include "tlsconf.h"
#include "lib/reply.h"

struct delegate_conf;
struct milter_conf;
struct dkim_conf;
struct table;

#define POLICY_LISTEN_MAX	16
#ifndef SMTPD_USER
#define SMTPD_USER		"_smtpd"
#endif
#define POLICY_HOST_MAX		255
#define POLICY_LIST_MAX		4096	/* entries in any one list */

/* Defaults; each has a config key and a line in smtpd.conf(5). */
#define DEF_MESSAGE_SIZE	(35 * 1024 * 1024)
#define DEF_RECIPIENTS		1000
#define DEF_SESSIONS		500
#define DEF_SESSIONS_PER_IP	50
#define DEF_SESSIONS_PER_NET	100	/* per IPv4 /24, IPv6 /64 */
#define DEF_ERRORS		20
#define DEF_COMMAND_TIMEOUT	300	/* RFC 5321 4.5.3.2.7 */
#define DEF_DATA_TIMEOUT	600
#define DEF_DATA_DEADLINE	3600	/* a whole DATA or BDAT transfer */
#define DEF_DATA_RATE		500	/* bytes/s, as Postfix's floor */
#define DEF_DATA_RATE_WINDOW	30	/* seconds; the first is the grace */
#define DEF_SHUTDOWN_TIMEOUT	30
#define DEF_LINE_LENGTH		0	/* 0: text lines of any length */
#define DEF_HEADER_SIZE		(256 * 1024)
#define DEF_DUMP_SIZE		(1024 * 1024)
#define DEF_DUMP_MAX_AGE	(7 * 24 * 3600)
#define DEF_DUMP_MAX_TOTAL	(100 * 1024 * 1024)
#define DEF_TARPIT_AFTER	3	/* errors before replies slow down */
#define DEF_TARPIT_DELAY	1000	/* ms per error beyond that */
#define DEF_GREY_DELAY		300	/* RFC 6647: minutes, not hours */
#define DEF_GREY_RETRY		(24 * 3600)
#define DEF_GREY_EXPIRE		(36 * 24 * 3600)
#define DEF_GREY_ENTRIES	100000
#define MIN_RECIPIENTS		100	/* RFC 5321 4.5.3.1.8 */
#define DEF_USER_WINDOW		3600	/* user_messages, user_recipients */

/* What rcpt_check answers. */
#define POLICY_RCPT_OK		0
#define POLICY_RCPT_UNKNOWN	1	/* 550 5.1.1 */
#define POLICY_RCPT_TEMP	2	/* 451 4.3.0 */

/* Plan 9's verbs for client addresses and sender accounts. */
enum access_action {
	ACCESS_NONE = 0,	/* no rule matched */
	ACCESS_ALLOW,		/* accept */
	ACCESS_BLOCK,		/* take the message, refuse it at the end (554) */
	ACCESS_DENY,		/* refuse the sender (554) */
	ACCESS_DIAL,		/* refuse every command (554) */
	ACCESS_DELAY,		/* take the message, answer 450 at the end */
};

/* What a line ending in a bare LF does to a message (bare_newline). */
enum bare_newline {
	BARE_NEWLINE_NORMALIZE = 0,	/* taken as CRLF */
	BARE_NEWLINE_REJECT,		/* the message is refused */
};

struct access_rule {
	enum access_action	 action;
	int			 is_ip;
	struct cidr		 net;		/* is_ip */
	char			*domain;	/* sender pattern: "*", "*.dom", "dom" */
	char			*user;		/* "*", "prefix*", "user" */
};

enum rule_target { RULE_HELO, RULE_SENDER, RULE_RCPT, RULE_HEADER };

struct rule {
	enum rule_target	 target;
	void			*re;		/* pcre2_code * */
	char			*pattern;
	int			 line;		/* in the config, for logs */
	int			 action;	/* enum verdict_kind */
	int			 code;
	char			 status[REPLY_STATUS_LEN + 1];
	char			*text;		/* reply text, or header to add */
};

struct policy {
	char		 conffile[PATH_MAX];
	int		 have_file;	/* 0: no conffile, built-in defaults */
	char		 hostname[POLICY_HOST_MAX + 1];
	char		 spool[PATH_MAX];
	int		 spool_files;	/* spool_durability = "files" */
	char		 user[64];	/* the SMTP front runs as */
	char		*listen[POLICY_LISTEN_MAX];
	int		 nlisten;
	int		 reverse_lookup;
	int		 log_stderr;	/* log = "stderr": lines to fd 2 */
	enum bare_newline bare_newline;

	/* Plan 9's keywords (and flags). */
	int		 norelay;	/* -f: tag spoofed mail */
	int		 verifysenderdom;	/* -r: sender domain must exist */
	int		 saveblockedmsg;	/* -s: keep refused messages */
	char		 dump[PATH_MAX];
	struct cidr	*ournets;
	size_t		 nournets;
	char		**ourdomains;	/* lower case; "*.x" for subdomains */
	size_t		 nourdomains;
	struct table	*ourdomains_table;	/* virtual domains, or NULL */
	struct cidr	*block;		/* -k and block: dropped at accept */
	size_t		 nblock;
	struct access_rule *access;
	size_t		 naccess;
	struct table	*access_table;	/* access_table = ..., or NULL */

	int		 helo_checks;
	int		 greylist;
	unsigned int	 grey_delay, grey_retry, grey_expire, grey_entries;
	char		 grey_file[PATH_MAX];
	struct rule	*rules;
	size_t		 nrules;

	/* tls { } */
	char		 tls_certificate[PATH_MAX];	/* "" = no TLS */
	char		 tls_key[PATH_MAX];
	char		 tls_chain[PATH_MAX];
	char		 tls_priority[512];		/* "" = the default */
	int		 tls_tickets;
	char		 tls_client_ca[PATH_MAX];
	int		 tls_client_cert_trusted;
	unsigned int	 tls_handshake_timeout;		/* seconds */
	char		*tls_listen[POLICY_LISTEN_MAX];	/* implicit TLS */
	int		 ntls_listen;
	struct tlsconf	 tls_sni;	/* tls.certificates, chosen by SNI */

	struct front_conf front;	/* proxy { }, metrics { } */
	/* Every listener with its settings, the forms above included. */
	struct listen_table listeners;
	struct delegate_conf *delegate;	/* policy_services, or NULL */
	struct dkim_conf *dkim;		/* dkim { }, or NULL */
	struct milter_conf *milters;	/* milters, or NULL */

	/*
	 * Recipient verification (POLICY_RCPT_*): the queue's knowledge of
	 * users and aliases, reached through this function only.
	 */
	int		(*rcpt_check)(const void *arg, const char *rcpt,
			    const char *sender, const char *login, int ours,
			    char *why, size_t whylen);
	const void	*rcpt_check_arg;

	size_t		 message_size;	/* bytes, 0 = no limit */
	unsigned int	 recipients;	/* per transaction */
	unsigned int	 sessions;	/* at once, in total */
	unsigned int	 sessions_per_ip;	/* an IPv6 client is its /64 */
	unsigned int	 sessions_per_net;	/* IPv4 /24, IPv6 /64 */
	unsigned int	 connections_per_minute;	/* per IP, 0 = any */
	unsigned int	 messages_per_minute;	/* per IP, 0 = any */
	unsigned int	 errors;	/* then 421 and close */
	unsigned int	 tarpit_after;
	unsigned int	 tarpit_delay;	/* ms */
	unsigned int	 command_timeout;	/* seconds */
	unsigned int	 data_timeout;
	unsigned int	 data_deadline;	/* seconds for a whole transfer */
	unsigned int	 data_rate;	/* bytes/s, 0 = any */
	unsigned int	 data_rate_window;	/* seconds */
	unsigned int	 shutdown_timeout;
	size_t		 line_length;	/* longest text line, 0 = any */
	size_t		 header_size;	/* header bytes examined */
	size_t		 dump_size;	/* bytes kept of a refused message */
	unsigned int	 dump_max_age;	/* seconds a saved message is kept */
	size_t		 dump_max_total;	/* bytes under dump, 0 = any */
	unsigned int	 user_messages;	/* per login (or trusted sender) */
	unsigned int	 user_recipients;	/* ... and user_window */
	unsigned int	 user_window;	/* seconds */
};

/* What the command line says; it wins over the file.  NULL/0 = unset. */
struct policy_overrides {
	const char	*hostname;		/* -h */
	const char	*listen[POLICY_LISTEN_MAX];	/* -l */
	int		 nlisten;
	int		 norelay;		/* -f */
	int		 verifysenderdom;	/* -r */
	int		 saveblockedmsg;	/* -s */
	const char	*block[POLICY_LISTEN_MAX];	/* -k */
	int		 nblock;
};

/*
 * Compiles the policy's part of a file read by conf_read(): root is its
 * root setting, or NULL for no file (the built-in defaults); path names
 * it in errors.  NULL on error, with "file:line: message" in err.
 */
struct policy *policy_compile(config_setting_t *root, const char *path,
	    const struct policy_overrides *, char *err, size_t errlen);
void	policy_free(struct policy *);
/*
 * Recipient verification (policy_rcpt) asks check, with arg, whether a
 * recipient exists; set once, before the policy is shared.
 */
void	policy_set_rcpt_check(struct policy *, int (*check)(const void *arg,
	    const char *rcpt, const char *sender, const char *login, int ours,
	    char *why, size_t whylen), const void *arg);
/*
 * Writes the effective policy in plain words (smtpd -t); ld: each
 * listener's fallbacks (conf_file_listen_defaults()).
 */
void	policy_print(const struct policy *, const struct listen_defaults *ld,
	    FILE *);
/*
 * Writes one "smtpd: warning: ..." line for each thing that loads but
 * would not work as meant (smtpd -t): a hostname that is not fully
 * qualified, an address in both listen and tls.listen, a spool that
 * cannot be used.  Returns how many.
 */
int	policy_warnings(const struct policy *, FILE *);
/*
 * The policy's part of the settings each listener falls back on
 * (listenconf.c); the AUTH ones are the caller's to fill.
 */
void	policy_listen_defaults(const struct policy *, struct listen_defaults *);

/* The policy sessions run with is in the snapshot (core/confsnap.h). */

/*
 * Verdicts.  A module answers CONTINUE to let the next one decide; the
 * first other answer is final for that step.
 */
enum verdict_kind {
	VERDICT_CONTINUE = 0,
	VERDICT_ACCEPT,		/* final yes: skip the remaining modules */
	VERDICT_REJECT,		/* 5xx */
	VERDICT_DEFER,		/* 4xx */
	VERDICT_DROP,		/* close the connection, say nothing */
	VERDICT_TAG,		/* accept, with a header added */
};

struct verdict {
	enum verdict_kind kind;
	struct reply	 reply;		/* text may hold '\n' for a
					   multi-line reply */
	int		 save;		/* keep the refused message (-s) */
};

/* Sets v to kind k with the reply code, status and text; returns k. */
enum verdict_kind verdict_set(struct verdict *v, enum verdict_kind k,
	    int code, const char *status, const char *fmt, ...)
	    __attribute__((format(printf, 5, 6)));

/* State that outlives a reload: greylisting, per-client rates. */
struct policy_state;
struct policy_state *policy_state_new(void);
void	policy_state_free(struct policy_state **);
/*
 * Writes the greylist and user-limits files now (also done by the checks
 * and the writer as needed).
 */
void	policy_state_flush(struct policy_state *, const struct policy *);
/*
 * The daemon's per-user counts go to spool/user-limits (state.c), at most
 * once a second, from a thread policy_state_free() stops.  0 or -1.
 */
int	policy_state_user_file(struct policy_state *, const char *spool,
	    char *err, size_t errlen);

/*
 * What a session can say about itself to a policy service (delegate.c).
 * Strings are "" when unknown, never NULL.
 */
struct policy_facts {
	const char	*protocol;	/* "ESMTP", "ESMTPSA", ... */
	const char	*client_addr;
	const char	*client_name;	/* verified reverse name */
	const char	*reverse_name;	/* PTR name, even unverified */
	const char	*helo;
	const char	*sasl_method;
	const char	*sasl_username;
	const char	*tls_version;	/* "TLS1.3" */
	const char	*tls_cipher;
	unsigned int	 tls_bits;
	const char	*ccert_subject;
	const char	*ccert_issuer;
	const char	*ccert_fingerprint;	/* SHA-256, hex */
	const char	*server_addr;
	int		 server_port;
	long long	 size;		/* SIZE given, then the message's */
	size_t		 nrcpts;	/* recipients accepted so far */
	const char	*rcpt;		/* the one recipient, or "" */
	const char	*queue_id;	/* "" before the data */
};

#define POLICY_PREPEND_MAX	4096	/* header bytes services may add */

/* One session's view: what it has learnt so far. */
struct policy_session {
	const struct policy	*pol;
	struct policy_state	*state;		/* may be NULL */
	struct sockaddr_storage	 peer;		/* AF_UNSPEC when unknown */
	const char		*id;		/* session id, for logs */
	int			 trusted;	/* ournets, or authenticated */
	int			 authenticated;
	enum access_action	 ip_action;	/* from the client address */
	enum access_action	 sender_action;	/* this transaction's sender */
	int			 hardreject;	/* dial: refuse everything */
	int			 single;	/* one session per process (stdio) */
	char			 sender[257];
	char			 login[256];	/* AUTH login, "" without */
	int			 access_temp;	/* access_table unreadable */

	/* Fills in what the session knows, for policy services. */
	void			(*describe)(void *, struct policy_facts *);
	void			*describe_arg;
	/* What policy services asked of this transaction (delegate.c). */
	char			*prepend;	/* CRLF lines, made at the first;
						   POLICY_PREPEND_MAX bytes */
	size_t			 prependlen;
	size_t			 prepended;	/* of those, written already */
	int			 hold;		/* queue it on hold */
	int			 discard;	/* accept it, then drop it */
	unsigned int		 transaction;	/* counts MAIL commands */
};

/* 1 if the client address is on the block list (-k): drop, unlogged. */
int	policy_blocked_peer(const struct policy *, const struct sockaddr *);
/* 1 if the address is one of ournets. */
int	policy_trusted_peer(const struct policy *, const struct sockaddr *);
/* 1 if the domain is one of ourdomains (case-insensitive). */
int	policy_our_domain(const struct policy *, const char *domain);

void	policy_session_init(struct policy_session *, const struct policy *,
	    struct policy_state *, const struct sockaddr_storage *peer,
	    const char *id);
/* The session is over: frees what its policy state holds. */
void	policy_session_end(struct policy_session *);
/* The session authenticated (or has a trusted client certificate). */
void	policy_session_trust(struct policy_session *, int authenticated);

/* The AUTH login, for per-user limits and sender-dependent routes. */
void	policy_session_login(struct policy_session *, const char *login);

/* Each step; fills v and returns v->kind. */
enum verdict_kind policy_connect(struct policy_session *, struct verdict *);
enum verdict_kind policy_helo(struct policy_session *, const char *helo,
	    struct verdict *);
enum verdict_kind policy_mail(struct policy_session *, const char *sender,
	    struct verdict *);
enum verdict_kind policy_rcpt(struct policy_session *, const char *rcpt,
	    struct verdict *);
/*
 * The message header (raw, CRLF lines, up to limits.header_size).  Header
 * lines to add go to tags (each ends in CRLF); a refusal is reported in v
 * and applies when the data ends.
 */
struct str;
enum verdict_kind policy_headers(struct policy_session *, const char *hdr,
	    size_t len, struct str *tags, struct verdict *);
/* The end of the data: Plan 9's block and delay verbs act here. */
enum verdict_kind policy_data_end(struct policy_session *, struct verdict *);
/*
 * Header lines policy services asked for after the header was written
 * (END-OF-MESSAGE): the caller puts them in front of the message.
 */
const char *policy_late_headers(struct policy_session *, size_t *len);
/* A transaction ended (RSET, a new MAIL, or after DATA). */
void	policy_reset(struct policy_session *);

/* For the tests and smtpd -t. */
const char *access_action_name(enum access_action);
/* "allow", "block", ... as a verb; ACCESS_NONE if it is none. */
enum access_action access_action_parse(const char *);

#endif
