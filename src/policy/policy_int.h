/*
 * Between the files that compile smtpd.conf's policy section: policy.c
 * (the whole load, TLS and AUTH), policy_lists.c (networks, domains,
 * access rules, rules), policy_limits.c (limits { }) and policy_print.c
 * (smtpd -t).  Each returns 0, or -1 with "file:line: message" in cx.
 */
#ifndef POLICY_INT_H
#define POLICY_INT_H

#include <libconfig.h>

#include "lib/conf.h"

struct policy;

/* Calls fn for each string of a list (or a lone string). */
int	policy_each_string(config_setting_t *s, const char *name,
	    int (*fn)(struct policy *, const char *, const config_setting_t *,
	    const struct conf_ctx *), struct policy *p,
	    const struct conf_ctx *cx);
int	policy_add_ournet(struct policy *, const char *,
	    const config_setting_t *, const struct conf_ctx *);
int	policy_add_block(struct policy *, const char *,
	    const config_setting_t *, const struct conf_ctx *);
int	policy_add_ourdomain(struct policy *, const char *,
	    const config_setting_t *, const struct conf_ctx *);
/* Everything beyond the basic settings: the policy modules' keys. */
int	policy_load_lists(struct policy *, config_setting_t *root,
	    const struct conf_ctx *);
int	policy_load_tls(struct policy *, config_setting_t *g,
	    const struct conf_ctx *);
int	policy_load_limits(struct policy *, const config_setting_t *g,
	    const struct conf_ctx *);

#endif
