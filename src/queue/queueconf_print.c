/*
 * The queue's settings in plain words (smtpq check, smtpd -t).
 */
#include "config.h"

#include <stdio.h>

#include "lib/table.h"
#include "queueconf.h"
#include "recipients.h"

static const char *route_tls_name(const struct route *);

void
queueconf_print(const struct queue_conf *qc, FILE *f)
{
	const struct route *r;
	size_t i, j;

	fprintf(f, "spool: %s\n", qc->spool);
	fprintf(f, "retry: from %u s, doubling up to %u s\n", qc->retry_min,
	    qc->retry_max);
	fprintf(f, "lifetime: %u s\n", qc->lifetime);
	if (qc->delay_warning)
		fprintf(f, "delay warning: after %u s\n", qc->delay_warning);
	else
		fprintf(f, "delay warning: none\n");
	fprintf(f, "deliveries at once: %u, %u per destination, %u messages "
	    "per connection\n", qc->concurrency, qc->dest_concurrency,
	    qc->session_messages);
	fprintf(f, "queue scan: every %u s\n", qc->scan_interval);
	fprintf(f, "bounces return messages up to %zu bytes whole\n",
	    qc->bounce_size);
	fprintf(f, "smtpd -m runs the mailer as: %s\n",
	    qc->mailer_user.name[0] ? qc->mailer_user.name : "(no such user)");
	if (qc->tlsrpt_from[0] != '\0')
		fprintf(f, "TLS reports: from %s, organization %s\n",
		    qc->tlsrpt_from, qc->tlsrpt_org);
	else
		fprintf(f, "TLS reports: off\n");
	for (i = 0; i < qc->nroutes; i++) {
		r = &qc->routes[i];
		if (r->line)
			fprintf(f, "route %zu (line %u):", i + 1, r->line);
		else
			fprintf(f, "route %zu (built in):", i + 1);
		for (j = 0; j < r->ndomains; j++)
			fprintf(f, " %s", r->domains[j]);
		if (r->local)
			fprintf(f, " local=%s", r->local);
		if (r->sender)
			fprintf(f, " sender=%s", r->sender);
		if (r->login)
			fprintf(f, " login=%s", r->login);
		if (r->catchall)
			fprintf(f, " catchall");
		fprintf(f, " -> %s", queueconf_action_name(r->action));
		switch (r->action) {
		case ROUTE_MAILDIR:
			fprintf(f, " %s%s", r->path, r->create ?
			    " (created as needed)" : "");
			break;
		case ROUTE_PIPE:
			for (j = 0; j < r->argc; j++)
				fprintf(f, " %s", r->argv[j]);
			fprintf(f, " (as %s, %u s)", r->user.name, r->timeout);
			break;
		case ROUTE_RELAY:
			fprintf(f, " %s tls=%s", r->host ? r->host : "by MX",
			    route_tls_name(r));
			if (r->tls_cafile != NULL)
				fprintf(f, " tls_cafile=%s", r->tls_cafile);
			if (r->tls_pin != NULL)
				fprintf(f, " tls_pin=%s", r->tls_pin);
			if (r->auth != NULL)
				fprintf(f, " auth=%s (from %s)", r->auth,
				    qc->relay_keys);
			break;
		case ROUTE_LMTP:
			fprintf(f, " %s", r->lmtp);
			break;
		}
		fprintf(f, "\n");
	}
	qc_tables_print(qc, f);
	for (i = 0; i < qc->naliases; i++) {
		fprintf(f, "alias %s ->", qc->aliases[i].name);
		for (j = 0; j < qc->aliases[i].nto; j++)
			fprintf(f, " %s", qc->aliases[i].to[j]);
		fprintf(f, "\n");
	}
}

static const char *
route_tls_name(const struct route *r)
{
	switch (r->tls) {
	case ROUTE_TLS_OPPORTUNISTIC:
		return "opportunistic";
	case ROUTE_TLS_REQUIRE:
		return r->tls_verify ? "require (certificate checked)" :
		    "require (certificate not checked)";
	case ROUTE_TLS_NONE:
		return "none";
	case ROUTE_TLS_DANE:
		return "dane";
	case ROUTE_TLS_MTA_STS:
		return "mta-sts";
	case ROUTE_TLS_AUTO:
		return "auto";
	}
	return "?";
}
