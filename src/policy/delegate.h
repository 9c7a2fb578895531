/*
 * delegate: policy delegation to external services that speak the
 * Postfix SMTPD access policy protocol (postgrey, policyd-spf, ...).
 *
 * A request is lines of name=value ending in an empty line; the reply is
 * "action=..." and an empty line.  Services are asked at RCPT and, when
 * configured, at the end of the message; connections are kept for reuse
 * in a small pool per service, shared by the session threads.
 */
#ifndef DELEGATE_H
#define DELEGATE_H

#include <libconfig.h>
#include <stdio.h>

#include "lib/conf.h"

#include "policy.h"

#define DELEGATE_SERVICES_MAX	16
#define DELEGATE_POOL_MAX	8	/* idle connections kept per service */
#define DEF_DELEGATE_TIMEOUT	10	/* seconds for a reply */
#define DEF_DELEGATE_CONNECT	5	/* seconds to connect */
#define DEF_DELEGATE_IDLE	60	/* seconds an idle connection is kept */

/* When a service is asked (stage = ...). */
#define DELEGATE_RCPT		0x01
#define DELEGATE_EOM		0x02	/* protocol_state=END-OF-MESSAGE */

struct delegate_service;

struct delegate_conf {
	struct delegate_service	*svc[DELEGATE_SERVICES_MAX];
	int			 nsvc;
};

/*
 * Reads policy_services from the root group into *out (NULL when there
 * are none).  0, or -1 with "file:line: message" in err.
 */
int	delegate_load(struct delegate_conf **out, const config_setting_t *root,
	    const struct conf_ctx *cx);
/* Closes the pooled connections and frees the services; *cp = NULL. */
void	delegate_free(struct delegate_conf **cp);
void	delegate_print(const struct delegate_conf *, FILE *);

/* The module's hooks (modules.c lists them). */
enum verdict_kind delegate_rcpt(struct policy_session *, const char *rcpt,
	    struct verdict *);
enum verdict_kind delegate_data_end(struct policy_session *,
	    struct verdict *);
/* Header lines asked for at RCPT go with the header, into tags. */
void	delegate_tags(struct policy_session *, struct str *tags);

/*
 * The reply parser, also for the fuzz target.  buf holds got bytes read so
 * far, NUL-terminated: 1 when a whole reply is there (up to its first empty
 * line; buf is cut after it, *extra set when more bytes followed), 0 when
 * more must come, -1 if a NUL byte came.
 */
int	delegate_reply_end(char *buf, size_t got, int *extra);
/* The action of a whole reply into act; 0, or -1 if it is not a reply. */
int	delegate_reply_action(char *buf, char *act, size_t actlen);
/*
 * What the action of service svc means for this transaction: fills v and
 * returns its kind, or -1 for an action it does not know.
 */
enum verdict_kind delegate_apply(struct policy_session *, const char *svc,
	    const char *act, struct verdict *);

#endif
