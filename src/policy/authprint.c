/*
 * The AUTH part of `smtpd -t`: what a client may use, who may send as
 * whom, and when guessing is slowed down and stopped.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "auth/sasl.h"
#include "auth/senders.h"
#include "auth/throttle.h"
#include "policy.h"

static void	print_mechanisms(const struct policy *, FILE *);
static void	print_senders(const struct policy *, FILE *);
static void	print_throttle(const struct policy *, FILE *);

static void
print_mechanisms(const struct policy *p, FILE *f)
{
	static const char *const names[] = { "PLAIN", "LOGIN", "CRAM-MD5" };
	size_t i;

	fprintf(f, "AUTH mechanisms (auth.mechanisms):");
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (p->auth_mechs & sasl_mech_bit(names[i]))
			fprintf(f, " %s", names[i]);
	fprintf(f, "%s\n", p->auth_mechs & SASL_M_CRAM_MD5 ?
	    " (CRAM-MD5 only for {PLAIN} accounts)" : "");
}

static void
print_senders(const struct policy *p, FILE *f)
{
	const char *login, *pattern, *prev = NULL;
	size_t i;

	if (p->auth_senders == NULL) {
		fprintf(f, "AUTH senders (auth.senders): no map; a login may "
		    "use any sender\n");
		return;
	}
	fprintf(f, "AUTH senders (auth.senders): a login not listed may use "
	    "only itself, if it is an address\n");
	for (i = 0; senders_get(p->auth_senders, i, &login, &pattern) == 0;
	    i++) {
		if (prev == NULL || strcmp(prev, login) != 0)
			fprintf(f, "%sAUTH senders: %s may use %s",
			    prev != NULL ? "\n" : "", login, pattern);
		else
			fprintf(f, ", %s", pattern);
		prev = login;
	}
	if (prev != NULL)
		fprintf(f, "\n");
}

static void
print_throttle(const struct policy *p, FILE *f)
{
	const struct throttle_conf *c = &p->auth_throttle;

	if (c->max_failures > 0)
		fprintf(f, "AUTH throttle: a client (IPv4 address, IPv6 /64) "
		    "is blocked for %u s after %u failures; failures are "
		    "forgotten after %u s\n", c->block, c->max_failures,
		    c->window);
	else
		fprintf(f, "AUTH throttle: clients are never blocked "
		    "(failures = 0)\n");
	fprintf(f, "AUTH throttle: delay %u ms after a failure, doubling up "
	    "to %u ms\n", c->delay_ms, c->max_delay_ms);
	if (c->global_failures > 0)
		fprintf(f, "AUTH throttle: global lock-out for %u s when %u "
		    "networks (IPv4 /24, IPv6 /64) fail within %u s\n",
		    c->global_block, c->global_failures, c->global_window);
	else
		fprintf(f, "AUTH throttle: no global lock-out "
		    "(global_failures = 0)\n");
	fprintf(f, "AUTH throttle: %u clients remembered; stdio sessions "
	    "share %s\n", c->table_size, p->auth_throttle_file);
}

void
policy_print_auth(const struct policy *p, FILE *f)
{
	if (p->auth_secrets[0] == '\0' && p->auth_dovecot[0] == '\0') {
		fprintf(f, "AUTH: off (no secrets file)%s\n", p->auth_required ?
		    "; -a: MAIL will be refused to everyone" : "");
		return;
	}
	fprintf(f, "AUTH: %s %s; PLAIN and LOGIN %s; %s\n",
	    p->auth_dovecot[0] != '\0' ? "checked by Dovecot at" : "secrets",
	    p->auth_dovecot[0] != '\0' ? p->auth_dovecot : p->auth_secrets,
	    p->auth_cleartext ?
	    "also without TLS (-p)" : "only under TLS",
	    p->auth_required ? "required before MAIL (-a)" : "optional");
	print_mechanisms(p, f);
	print_senders(p, f);
	print_throttle(p, f);
}
