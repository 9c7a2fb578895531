/*
 * smtpd -t: the policy in plain words.
 */
#include "config.h"

#include <stdio.h>

#include "lib/table.h"
#include "delegate.h"
#include "dkimconf.h"
#include "milterconf.h"
#include "policy.h"
#include "policy_int.h"

/* The policy part of smtpd -t. */
static void
print_policy_modules(const struct policy *p, FILE *f)
{
	static const char *targets[] = { "HELO name", "sender", "recipient",
	    "header line" };
	char buf[80];
	size_t i;

	if (p->nournets == 0)
		fprintf(f, "trusted networks (ournets): none\n");
	for (i = 0; i < p->nournets; i++) {
		cidr_format(&p->ournets[i], buf, sizeof(buf));
		fprintf(f, "trusted network (ournets): %s\n", buf);
	}
	for (i = 0; i < p->nourdomains; i++)
		fprintf(f, "our domain (ourdomains): %s\n", p->ourdomains[i]);
	if (p->ourdomains_table != NULL)
		fprintf(f, "our domains (ourdomains): the keys of %s\n",
		    table_ref(p->ourdomains_table));
	fprintf(f, "relaying: only from trusted networks or after AUTH\n");
	fprintf(f, "spoofed-domain tagging (norelay, -f): %s\n",
	    p->norelay ? "on" : "off");
	fprintf(f, "sender domain must exist (verifysenderdom, -r): %s\n",
	    p->verifysenderdom ? "on" : "off");
	fprintf(f, "refused messages saved (saveblockedmsg, -s): %s\n",
	    p->saveblockedmsg ? p->dump : "off");
	fprintf(f, "saved messages: %zu bytes of each, kept %u s, at most "
	    "%zu bytes in all (0: no bound)\n", p->dump_size, p->dump_max_age,
	    p->dump_max_total);
	for (i = 0; i < p->nblock; i++) {
		cidr_format(&p->block[i], buf, sizeof(buf));
		fprintf(f, "dropped at connect (block, -k): %s\n", buf);
	}
	for (i = 0; i < p->naccess; i++) {
		const struct access_rule *a = &p->access[i];

		if (a->is_ip) {
			cidr_format(&a->net, buf, sizeof(buf));
			fprintf(f, "access: %s client %s\n",
			    access_action_name(a->action), buf);
		} else
			fprintf(f, "access: %s sender %s!%s\n",
			    access_action_name(a->action), a->domain, a->user);
	}
	if (p->access_table != NULL)
		fprintf(f, "access: table %s\n", table_ref(p->access_table));
	if (p->tls_certificate[0] != '\0') {
		fprintf(f, "TLS: certificate %s, key %s%s%s\n",
		    p->tls_certificate, p->tls_key,
		    p->tls_chain[0] ? ", chain " : "", p->tls_chain);
		fprintf(f, "TLS priority: %s; session tickets %s; handshake "
		    "within %u s\n", p->tls_priority[0] ? p->tls_priority :
		    "default (TLS 1.2 and 1.3)", p->tls_tickets ? "on" : "off",
		    p->tls_handshake_timeout);
		if (p->tls_client_ca[0] != '\0')
			fprintf(f,
			    "TLS client certificates checked against %s%s\n",
			    p->tls_client_ca, p->tls_client_cert_trusted ?
			    "; a verified one is trusted" : "");
		tlsconf_print(&p->tls_sni, f);
	} else
		fprintf(f, "TLS: off (no certificate)\n");
	fprintf(f, "HELO checks: %s\n", p->helo_checks ? "on" : "off");
	if (p->greylist)
		fprintf(f, "greylisting: on, retry after %u s within %u s, "
		    "remembered %u s, at most %u entries, in %s\n",
		    p->grey_delay, p->grey_retry, p->grey_expire,
		    p->grey_entries, p->grey_file);
	else
		fprintf(f, "greylisting: off\n");
	for (i = 0; i < p->nrules; i++) {
		const struct rule *r = &p->rules[i];
		int act = r->action & 0xff;

		fprintf(f, "rule (line %d): %s matching /%s/: ", r->line,
		    targets[r->target], r->pattern);
		if (act == VERDICT_TAG)
			fprintf(f, "add \"%s\"\n", r->text);
		else if (act == VERDICT_DROP)
			fprintf(f, "drop the connection\n");
		else if (act == VERDICT_ACCEPT)
			fprintf(f, "accept, skip later rules\n");
		else
			fprintf(f, "%d %s %s%s\n", r->code, r->status, r->text,
			    r->action & 0x100 ? " (saved)" : "");
	}
}

void
policy_print(const struct policy *p, const struct listen_defaults *ld,
    FILE *f)
{
	if (p->have_file)
		fprintf(f, "config file: %s\n", p->conffile);
	else
		fprintf(f, "config file: none (%s does not exist); built-in "
		    "defaults\n", p->conffile);
	fprintf(f, "hostname: %s\n", p->hostname);
	listenconf_print(&p->listeners, ld, f);
	frontconf_print(&p->front, f);
	delegate_print(p->delegate, f);
	dkimconf_print(p->dkim, f);
	milterconf_print(p->milters, f);
	fprintf(f, "spool: %s\n", p->spool);
	fprintf(f, "spool durability: %s\n", p->spool_files ?
	    "a file per message (files)" : "commit journal (journal)");
	fprintf(f, "log: %s\n", p->log_stderr ? "standard error" :
	    "syslog (facility mail)");
	fprintf(f, "reverse DNS lookups of clients: %s\n",
	    p->reverse_lookup ? "on" : "off");
	fprintf(f, "lines ending in a bare LF: %s\n",
	    p->bare_newline == BARE_NEWLINE_REJECT ? "message refused (reject)" :
	    "taken as CRLF (normalize)");
	if (p->message_size)
		fprintf(f, "largest message: %zu bytes\n", p->message_size);
	else
		fprintf(f, "largest message: no limit\n");
	fprintf(f, "recipients per message: %u\n", p->recipients);
	fprintf(f, "sessions: %u at once, %u per client address (IPv6: per "
	    "/64), %u per client network (IPv4 /24, IPv6 /64)\n",
	    p->sessions, p->sessions_per_ip, p->sessions_per_net);
	fprintf(f, "errors before disconnect: %u\n", p->errors);
	fprintf(f, "timeouts: %u s per command, %u s for message data, "
	    "%u s to finish sessions at shutdown\n", p->command_timeout,
	    p->data_timeout, p->shutdown_timeout);
	fprintf(f, "deadlines: %u s for a whole command line, %u s for a "
	    "whole message transfer\n", p->command_timeout, p->data_deadline);
	if (p->data_rate)
		fprintf(f, "message data: at least %u bytes/s over each %u s\n",
		    p->data_rate, p->data_rate_window);
	else
		fprintf(f, "message data: no minimum rate\n");
	if (p->line_length)
		fprintf(f, "longest text line: %zu octets\n", p->line_length);
	else
		fprintf(f, "longest text line: any length accepted\n");
	fprintf(f, "header examined: up to %zu bytes\n", p->header_size);
	if (p->connections_per_minute)
		fprintf(f, "connections per client and minute: %u\n",
		    p->connections_per_minute);
	if (p->messages_per_minute)
		fprintf(f, "messages per client and minute: %u\n",
		    p->messages_per_minute);
	if (p->user_messages || p->user_recipients)
		fprintf(f, "per login (or trusted sender) and %u s: %u "
		    "messages, %u recipients (0: any)\n", p->user_window,
		    p->user_messages, p->user_recipients);
	if (p->tarpit_delay && p->tarpit_after)
		fprintf(f, "tarpit: %u ms more per error after %u errors\n",
		    p->tarpit_delay, p->tarpit_after);
	print_policy_modules(p, f);
}

