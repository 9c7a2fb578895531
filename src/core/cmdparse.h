/*
 * cmdparse: the SMTP command-line grammar (RFC 5321 4.1, with the ESMTP
 * parameters of RFC 1870, 6152, 6531).  Pure: bytes in, structs out.
 */
#ifndef CMDPARSE_H
#define CMDPARSE_H

#include <stddef.h>

#include "lib/addr.h"
#include "queue/envelope.h"

/* RFC 5321 4.5.3.1.4: 512 octets with CRLF; MAIL and RCPT may grow by
 * what their parameters need (RFC 1870 6, RFC 3461 5), AUTH by its
 * initial response (RFC 4954 4). */
#define CMD_LINE_MAX		512
#define CMD_PATH_LINE_MAX	1024
#define CMD_AUTH_LINE_MAX	12288

enum cmd_verb {
	CMD_UNKNOWN = 0,
	CMD_HELO, CMD_EHLO, CMD_MAIL, CMD_RCPT, CMD_DATA, CMD_BDAT,
	CMD_RSET, CMD_NOOP, CMD_QUIT, CMD_VRFY, CMD_EXPN, CMD_HELP,
	CMD_STARTTLS, CMD_AUTH,
	CMD_HTTP,		/* a web request sent to the mail port */
	CMD_NVERBS
};

struct cmd {
	enum cmd_verb	 verb;
	const char	*arg;	/* after the verb and its space, NUL-ended */
	size_t		 arglen;
};

#define ENVID_MAX	100	/* RFC 3461 4.4 */
#define ORCPT_MAX	500	/* RFC 3461 4.2 */
#define AUTHPARAM_MAX	500

struct mail_params {
	long long	 size;		/* SIZE=, -1 when not given */
	enum env_body	 body;
	int		 smtputf8;
	int		 requiretls;	/* RFC 8689 REQUIRETLS */
	enum env_ret	 ret;		/* RFC 3461 RET= */
	char		 envid[ENVID_MAX + 1];	/* RFC 3461 ENVID=, as xtext */
	char		 auth[AUTHPARAM_MAX + 1];	/* RFC 4954 AUTH=, as xtext */
};

struct rcpt_params {
	int		 notify;	/* ENV_NOTIFY_* bits, 0 when not given */
	char		 orcpt[ORCPT_MAX + 1];	/* "type;xtext" as sent, or "" */
};

enum path_status {
	PATH_OK = 0,
	PATH_SYNTAX,		/* 501 5.1.7 / 5.1.3 */
	PATH_UTF8,		/* 553 5.6.7 non-ASCII without SMTPUTF8 */
	PATH_TOOLONG,		/* 501 5.1.7 / 5.1.3, part too long */
	PATH_PARAM_SYNTAX,	/* 501 5.5.4 bad parameter value */
	PATH_PARAM_UNKNOWN,	/* 555 5.5.4 unknown parameter */
};

/*
 * Splits a command line (CRLF or LF already removed, NUL-terminated at
 * line[len]).  0, or -1 when the line holds a NUL or a bare CR.
 */
int	cmd_split(char *line, size_t len, struct cmd *);
const char *cmd_name(enum cmd_verb);

/*
 * Takes the name from a HELO or EHLO argument: the first word (words a
 * client adds after it are ignored).  0; -1 when there is no name or the
 * argument holds a control character (*why says which); -2 when the name
 * does not fit in namelen.
 */
int	cmd_parse_helo(const char *arg, size_t len, char *name,
	    size_t namelen, const char **why);

/*
 * Parses the argument of MAIL ("FROM:<path> params") or RCPT
 * ("TO:<path> params").  utf8_ok: the client may use SMTPUTF8 addresses
 * (for MAIL: ignored, the SMTPUTF8 parameter decides).  *why gets a short
 * reason on failure.
 */
enum path_status cmd_parse_mail(const char *arg, struct addr *,
	    struct mail_params *, const char **why);
enum path_status cmd_parse_rcpt(const char *arg, int utf8_ok, struct addr *,
	    struct rcpt_params *, const char **why);
/* Parses "BDAT size [LAST]".  0 or -1. */
int	cmd_parse_bdat(const char *arg, unsigned long long *size, int *last);

#endif
