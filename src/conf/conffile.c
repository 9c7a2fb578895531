/*
 * smtpd.conf read once, each section compiled by its owner.  See
 * conffile.h.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/addr.h"
#include "lib/conf.h"
#include "lib/refcnt.h"
#include "queue/maildrop.h"
#include "queue/queueconf.h"
#include "queue/recipients.h"
#include "conffile.h"

_Static_assert((int)QV_OK == POLICY_RCPT_OK &&
    (int)QV_UNKNOWN == POLICY_RCPT_UNKNOWN &&
    (int)QV_TEMP == POLICY_RCPT_TEMP, "recipient verdicts differ");

/* Keys the file may hold at the top level, whoever compiles them. */
static const char *const top_keys[] = {
	/* the policy's */
	"hostname", "defaultdomain", "listen", "spool", "spool_durability",
	"reverse_lookup", "limits", "norelay", "verifysenderdom",
	"saveblockedmsg", "dump", "ournets", "ourdomains", "block", "access",
	"access_file", "helo_checks", "greylist", "rules", "tls", "log",
	"bare_newline", "proxy", "metrics", "access_table", "policy_services",
	"dkim", "milters", "user",
	/* auth's */
	"auth",
	/* the queue's */
	"routes", "aliases", "queue", "users", "relay_recipients",
	"recipient_delimiter",
	/* sendmail's (maildrop.c) */
	"sendmail", NULL
};

static int	check_sendmail(const config_setting_t *, const char *, char *,
		    size_t);
static int	pattern_covers(const char *, const char *);
static int	domain_routed(const struct queue_conf *, const char *);
static void	conf_file_free(struct conf_file *);

/* The sendmail group is read by sendmail and the pickup; -t checks it too. */
static int
check_sendmail(const config_setting_t *root, const char *path, char *err,
    size_t errlen)
{
	struct maildrop_conf *mc;
	int r;

	if (config_setting_get_member(root, "sendmail") == NULL)
		return 0;
	if ((mc = calloc(1, sizeof(*mc))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	r = maildrop_conf_load(path, mc, err, errlen);
	free(mc);
	return r;
}

struct conf_file *
conf_file_load(const char *path, int missing_ok,
    const struct conf_overrides *ov, char *err, size_t errlen)
{
	struct conf_ctx cx = { path, err, errlen };
	struct listen_defaults d;
	struct conf_file *c;
	config_setting_t *root = NULL, *g;
	config_t cf;
	int have_file = 0;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	c->refs = 1;
	authconf_defaults(&c->auth);
	config_init(&cf);
	if (conf_read(&cf, path, missing_ok, &have_file, err, errlen) == -1)
		goto fail;
	if (have_file) {
		root = config_root_setting(&cf);
		if (conf_check_keys(&cx, root, top_keys, NULL) == -1 ||
		    check_sendmail(root, path, err, errlen) == -1)
			goto fail;
	}
	if ((c->policy = policy_compile(root, path, ov != NULL ?
	    &ov->policy : NULL, err, errlen)) == NULL)
		goto fail;
	if (root != NULL && (g = config_setting_get_member(root, "auth")) !=
	    NULL && authconf_load(&c->auth, g, &cx) == -1)
		goto fail;
	if (ov != NULL) {
		c->auth.required |= ov->auth_required;
		c->auth.cleartext |= ov->auth_cleartext;
	}
	if (authconf_finish(&c->auth, c->policy->spool, err, errlen) == -1)
		goto fail;
	/* Listeners against TLS, AUTH and proxy settings. */
	conf_file_listen_defaults(c, &d);
	if (listenconf_check(&c->policy->listeners, &d, &cx) == -1)
		goto fail;
	if ((c->queue = queueconf_parse(root, path, c->policy->hostname,
	    c->policy->spool, err, errlen)) == NULL)
		goto fail;
	/* RCPT verification asks the queue's tables, through a function. */
	policy_set_rcpt_check(c->policy, queueconf_verify_hook, c->queue);
	config_destroy(&cf);
	return c;
fail:
	config_destroy(&cf);
	conf_file_free(c);
	return NULL;
}

static void
conf_file_free(struct conf_file *c)
{
	policy_free(c->policy);
	authconf_clear(&c->auth);
	queueconf_unref(&c->queue);
	free(c);
}

struct conf_file *
conf_file_ref(struct conf_file *c)
{
	refcnt_take(&c->refs);
	return c;
}

void
conf_file_unref(struct conf_file **cp)
{
	struct conf_file *c = *cp;

	if (c == NULL)
		return;
	*cp = NULL;
	if (refcnt_drop(&c->refs))
		conf_file_free(c);
}

void
conf_file_listen_defaults(const struct conf_file *c,
    struct listen_defaults *d)
{
	policy_listen_defaults(c->policy, d);
	d->have_secrets = c->auth.secrets[0] != '\0';
	d->auth_required = c->auth.required;
	d->auth_cleartext = c->auth.cleartext;
}

void
conf_file_print(const struct conf_file *c, FILE *f)
{
	const struct policy *p = c->policy;
	struct listen_defaults ld;

	conf_file_listen_defaults(c, &ld);
	policy_print(p, &ld, f);
	fprintf(f, "user: %s (the SMTP front; queue runner: %s)\n", p->user,
	    c->queue->user[0] != '\0' ? c->queue->user : p->user);
	authconf_print(&c->auth, f);
	queueconf_print(c->queue, f);
}

/* Does the route pattern rp take every domain the ourdomains entry od names? */
static int
pattern_covers(const char *rp, const char *od)
{
	if (od[0] == '*' && od[1] == '.') {
		/* "*.x" is covered by "*", "*.x", or "*.y" with x below y. */
		if (strcmp(rp, "*") == 0)
			return 1;
		if (rp[0] != '*' || rp[1] != '.')
			return 0;
		return strcasecmp(rp + 2, od + 2) == 0 ||
		    addr_domain_match(rp, od + 2);
	}
	return addr_domain_match(rp, od);
}

static int
domain_routed(const struct queue_conf *qc, const char *od)
{
	size_t i, j;

	for (i = 0; i < qc->nroutes; i++)
		for (j = 0; j < qc->routes[i].ndomains; j++)
			if (pattern_covers(qc->routes[i].domains[j], od))
				return 1;
	return 0;
}

int
conf_file_warnings(const struct conf_file *c, FILE *f)
{
	const struct policy *p = c->policy;
	int n = policy_warnings(p, f);
	size_t k;

	for (k = 0; k < p->nourdomains; k++)
		if (!domain_routed(c->queue, p->ourdomains[k])) {
			fprintf(f, "smtpd: warning: our domain %s is accepted "
			    "but no route covers it: its mail would stay "
			    "queued until it bounces\n", p->ourdomains[k]);
			n++;
		}
	return n;
}
