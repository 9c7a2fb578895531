/*
 * sendmail: the sendmail-compatible local submission command (sendmail(8)).
 *
 * args.c parses the command line as callers of /usr/sbin/sendmail write
 * it; headers.c finds -t recipients and the From: address; local.c
 * submits to this host's queue through the maildrop and answers -bp, -q
 * and -bs there; smarthost.c sends through a smarthost account; offline.c
 * keeps what the smarthost could not take for later.
 */
#ifndef SENDMAIL_H
#define SENDMAIL_H

#include <stddef.h>
#include <time.h>

#include "lib/addr.h"
#include "lib/str.h"
#include "queue/maildrop.h"
#include "queue/envelope.h"

#define SM_RCPTS_MAX	10000
#define SM_ADDR_MAX	(ADDR_PATH_MAX + 1)

enum sm_action {
	SM_DELIVER,		/* -bm, the default */
	SM_SMTP,		/* -bs */
	SM_LIST,		/* -bp, mailq */
	SM_ALIASES,		/* -bi, newaliases */
	SM_FLUSH,		/* -q */
};

struct sm_opts {
	enum sm_action	 action;
	int		 tflag;		/* recipients from the header */
	int		 iflag;		/* a lone dot does not end the input */
	int		 verbose;
	const char	*sender;	/* -f / -r, or NULL */
	const char	*fullname;	/* -F, or NULL */
	int		 notify;	/* -N, ENV_NOTIFY_* bits, 0 unset */
	enum env_ret	 ret;		/* -R */
	const char	*envid;		/* -V, or NULL */
	const char	*conffile;	/* -C, or NULL */
	const char	*account;	/* -a, or NULL */
	char	       **rcpts;		/* the arguments left */
	int		 nrcpts;
};

/* A message on its way: the envelope as it will be sent. */
struct sm_msg {
	char		  sender[SM_ADDR_MAX];
	char		(*addrs)[SM_ADDR_MAX];
	struct env_rcpt	 *rcpts;	/* mailbox -> addrs[i], -N's bits */
	size_t		  nrcpts;
	struct str	  data;		/* converted: CRLF, From/Date/... added */
	int		  eightbit;
	int		  smtputf8;
	char		  from_hdr[SM_ADDR_MAX];	/* From: address, or "" */
};

/* args.c: parses argv into o (progname picks mailq/newaliases).  Exits
 * 64 with a usage line on an unknown option. */
void	sm_parse_args(int argc, char **argv, struct sm_opts *o);

/* headers.c: appends the To/Cc/Bcc (or their Resent- forms when any
 * is present) addresses of the message header to list (up to max), each
 * qualified with domain.  The count added, or -1 when there are too many
 * or one does not fit. */
int	sm_header_rcpts(const char *msg, size_t len, const char *domain,
	    char (*list)[SM_ADDR_MAX], size_t max);
/* headers.c: the first address of the From: field into out ("" if
 * none). */
void	sm_header_from(const char *msg, size_t len, char *out, size_t outlen);

/* main.c */
void	sm_die(int status, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3), noreturn));
void	sm_login(char *buf, size_t len);
/* The maildrop group (sendmail is setgid to it): taken only while
 * writing into the spool; dropped for good before anything else runs. */
void	sm_priv_on(void);
void	sm_priv_off(void);
void	sm_priv_drop(void);

/* local.c: the host's own queue.  Each returns an exit status. */
int	local_submit(const struct maildrop_conf *, const struct sm_opts *,
	    struct sm_msg *, const char *login);
int	local_list(const struct maildrop_conf *, const char *login);
int	local_flush(const struct maildrop_conf *, const char *login);
int	local_smtp(const struct maildrop_conf *);
/* local.c: the path of a program installed beside this one. */
int	sm_sibling(const char *name, char *buf, size_t len);

/* smarthost.c: sends msg through the chosen account; an unreachable
 * smarthost leaves it in the offline queue.  An exit status. */
int	smarthost_send(const struct sm_opts *, struct sm_msg *,
	    const char *login);
/* smarthost.c: -q: sends what the offline queue holds.  Quiet: only
 * problems on stderr. */
int	smarthost_flush(const char *login, int quiet);
/* smarthost.c: mailq without a local queue: the offline queue. */
int	smarthost_list(const char *login);
/* smarthost.c: the smtp.conf to read.  0 or -1. */
int	smarthost_conf_path(char *buf, size_t len);

/* offline.c: the queue of what an unreachable smarthost could not
 * take, one file per message (doc: sendmail(8), OFFLINE QUEUE). */
struct offline_msg {
	char		 name[64];
	char		 account[64];
	struct envelope	*env;
	const char	*data;		/* the message, CRLF */
	size_t		 datalen;
};
/* The directory: configured, else $XDG_STATE_HOME/smtp/queue, else
 * ~/.local/state/smtp/queue.  0 or -1. */
int	offline_dir(const char *configured, char *buf, size_t len);
/* Keeps the message for account, to rcpts (some of msg's).  0, or an
 * exit status (75 when the queue is full or cannot be written). */
int	offline_put(const char *dir, unsigned max, const char *account,
	    const struct sm_opts *, const struct sm_msg *,
	    const struct env_rcpt *rcpts, size_t nrcpts);
/*
 * Calls fn for each message, oldest first, under the queue's lock: its
 * EX_OK removes the message, EX_TEMPFAIL keeps it, anything else moves it
 * to failed/.  *left gets how many remain.  0; 1 when another process
 * holds the lock; -1 with errno (no such directory: 0 and *left 0).
 */
int	offline_each(const char *dir, int (*fn)(struct offline_msg *, void *),
	    void *arg, size_t *left);

#endif
