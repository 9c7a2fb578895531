/*
 * DKIM signing of accepted messages.  See signing.h.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/dkim.h"
#include "lib/log.h"
#include "lib/str.h"
#include "policy/dkimconf.h"
#include "signing.h"

struct signing {
	struct dkim_sign	*s[DKIM_SIGNERS_MAX];
	const struct dkim_entry	*e[DKIM_SIGNERS_MAX];
	size_t			 n;
	char			 id[17];	/* the session's, for logs */
};

struct signing *
signing_start(const struct policy *p, const struct policy_session *ps,
    const char *sender, const char *id)
{
	const struct dkim_entry *e[DKIM_SIGNERS_MAX];
	const char *at = strrchr(sender, '@');
	struct signing *g;
	size_t n, i;

	if (p->dkim == NULL || !ps->trusted || at == NULL ||
	    (n = dkimconf_find(p->dkim, at + 1, e, DKIM_SIGNERS_MAX)) == 0)
		return NULL;
	if ((g = calloc(1, sizeof(*g))) == NULL)
		goto nomem;
	str_lcpy(g->id, id, sizeof(g->id));
	for (i = 0; i < n; i++) {
		/* The header held by the signer, as by the header checks. */
		g->s[i] = dkim_sign_new(e[i]->key, e[i]->domain, e[i]->selector,
		    p->dkim->headers, p->header_size + 64 * 1024);
		if (g->s[i] == NULL) {
			signing_free(&g);
			goto nomem;
		}
		g->e[i] = e[i];
		g->n++;
	}
	return g;
nomem:
	log_err("%s dkim: out of memory, message not signed", id);
	return NULL;
}

void
signing_feed(void *arg, const char *p, size_t n)
{
	struct signing *g = arg;
	size_t i;

	for (i = 0; i < g->n; i++)
		dkim_sign_update(g->s[i], p, n);
}

int
signing_finish(struct signing *g, struct spool_msg *m, size_t *added)
{
	char err[256];
	struct str out;
	time_t now = time(NULL);
	size_t i;
	int rc = 0;

	str_init(&out, 64 * 1024);
	for (i = 0; i < g->n; i++) {
		if (dkim_sign_final(g->s[i], now, &out, err, sizeof(err)) == -1)
			log_err("%s dkim: not signed for %s (selector %s): %s",
			    g->id, g->e[i]->domain, g->e[i]->selector, err);
		else
			log_info("%s dkim signed d=%s s=%s a=%s", g->id,
			    g->e[i]->domain, g->e[i]->selector,
			    dkim_key_algorithm(g->e[i]->key));
	}
	if (out.len > 0) {
		if (spool_insert(m, out.s, out.len) == -1)
			rc = -1;
		else
			*added += out.len;
	}
	str_free(&out);
	return rc;
}

void
signing_free(struct signing **gp)
{
	struct signing *g = *gp;
	size_t i;

	if (g == NULL)
		return;
	*gp = NULL;
	for (i = 0; i < g->n; i++)
		dkim_sign_free(&g->s[i]);
	free(g);
}
