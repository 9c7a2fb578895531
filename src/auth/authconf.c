/*
 * The auth { } section: compiled into struct auth_conf, and said in
 * words for smtpd -t (what a client may use, who may send as whom, and
 * when guessing is slowed down and stopped).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/str.h"
#include "lib/table.h"
#include "authconf.h"
#include "dovecot.h"
#include "sasl.h"
#include "senders.h"

static const char *const auth_keys[] = {
	"secrets", "mechanisms", "senders", "throttle", "required",
	"cleartext", "backend", "dovecot_socket", NULL
};
static const char *const throttle_keys[] = {
	"failures", "window", "block", "delay", "max_delay",
	"global_failures", "global_window", "global_block", "table_size",
	"file", NULL
};

static int	load_backend(struct auth_conf *, const config_setting_t *,
		    const struct conf_ctx *);
static void	print_mechanisms(const struct auth_conf *, FILE *);
static void	print_senders(const struct auth_conf *, FILE *);
static void	print_throttle(const struct auth_conf *, FILE *);

void
authconf_defaults(struct auth_conf *ac)
{
	memset(ac, 0, sizeof(*ac));
	ac->mechs = SASL_M_DEFAULT;
	throttle_conf_defaults(&ac->throttle);
}

int
authconf_finish(struct auth_conf *ac, const char *spool, char *err,
    size_t errlen)
{
	if (ac->throttle_file[0] == '\0' &&
	    (size_t)snprintf(ac->throttle_file, sizeof(ac->throttle_file),
	    "%s/auth-throttle", spool) >= sizeof(ac->throttle_file)) {
		snprintf(err, errlen, "auth-throttle path too long");
		return -1;
	}
	return 0;
}

int
authconf_enabled(const struct auth_conf *ac)
{
	return ac->secrets[0] != '\0' || ac->dovecot[0] != '\0';
}

void
authconf_clear(struct auth_conf *ac)
{
	senders_free(&ac->senders);
}

/* auth.backend: "file" (auth.secrets) or "dovecot" (its auth socket). */
static int
load_backend(struct auth_conf *ac, const config_setting_t *g,
    const struct conf_ctx *cx)
{
	const char *v = NULL;

	if (conf_get_string(cx, g, "backend", &v) == -1 ||
	    conf_get_path(cx, g, "dovecot_socket", ac->dovecot,
	    sizeof(ac->dovecot)) == -1)
		return -1;
	if (v == NULL || strcmp(v, "file") == 0) {
		if (ac->dovecot[0] != '\0')
			return conf_err(cx, config_setting_get_member(g,
			    "dovecot_socket"),
			    "auth.dovecot_socket needs auth.backend = "
			    "\"dovecot\"");
		return 0;
	}
	if (strcmp(v, "dovecot") != 0)
		return conf_err(cx, config_setting_get_member(g, "backend"),
		    "auth.backend must be \"file\" or \"dovecot\"");
	if (ac->secrets[0] != '\0')
		return conf_err(cx, g, "auth.secrets and "
		    "auth.backend = \"dovecot\" exclude each other");
	if (ac->dovecot[0] == '\0')
		str_lcpy(ac->dovecot, DOVECOT_DEF_SOCKET,
		    sizeof(ac->dovecot));
	return 0;
}

/* auth { ... } */
int
authconf_load(struct auth_conf *ac, const config_setting_t *g,
    const struct conf_ctx *cx)
{
	config_setting_t *s, *t, *e;
	struct throttle_conf *tc = &ac->throttle;
	char msg[256];
	unsigned int bit;
	int i, j;

	if (!config_setting_is_group(g))
		return conf_err(cx, g, "auth must be a group { ... }");
	if (conf_check_keys(cx, g, auth_keys, NULL) == -1 ||
	    conf_get_path(cx, g, "secrets", ac->secrets,
	    sizeof(ac->secrets)) == -1 ||
	    conf_get_bool(cx, g, "required", &ac->required) == -1 ||
	    conf_get_bool(cx, g, "cleartext", &ac->cleartext) == -1 ||
	    load_backend(ac, g, cx) == -1)
		return -1;
	if ((s = config_setting_get_member(g, "mechanisms")) != NULL) {
		if (!config_setting_is_aggregate(s))
			return conf_err(cx, s,
			    "auth.mechanisms must be a list of names");
		ac->mechs = 0;
		for (i = 0; i < config_setting_length(s); i++) {
			e = config_setting_get_elem(s, (unsigned)i);
			if (config_setting_type(e) != CONFIG_TYPE_STRING ||
			    (bit =
			    sasl_mech_bit(config_setting_get_string(e))) == 0)
				return conf_err(cx, e,
				    "auth.mechanisms: PLAIN, LOGIN or CRAM-MD5");
			ac->mechs |= bit;
		}
		if (ac->mechs == 0)
			return conf_err(cx, s,
			    "auth.mechanisms: name at least one mechanism");
	}
	if ((s = config_setting_get_member(g, "senders")) != NULL &&
	    config_setting_type(s) == CONFIG_TYPE_STRING) {
		/* A table: login -> sender patterns. */
		struct table *tb;

		if ((tb = conf_table_open(cx->file, config_setting_get_string(s),
		    msg, sizeof(msg))) == NULL)
			return conf_err(cx, s, "auth.senders: %s",
			    msg);
		if ((ac->senders = senders_new()) == NULL) {
			table_free(&tb);
			return conf_err(cx, s, "out of memory");
		}
		senders_use_table(ac->senders, tb);
	} else if (s != NULL) {
		if (!config_setting_is_list(s))
			return conf_err(cx, s,
			    "auth.senders must be a list ( { login = ...; "
			    "senders = [ ... ]; }, ... )");
		if ((ac->senders = senders_new()) == NULL)
			return conf_err(cx, s, "out of memory");
		for (i = 0; i < config_setting_length(s); i++) {
			const char *login = NULL;

			e = config_setting_get_elem(s, (unsigned)i);
			if (!config_setting_is_group(e) ||
			    conf_get_string(cx, e, "login", &login) == -1)
				return conf_err(cx, e,
				    "auth.senders entries are { login = \"user\"; "
				    "senders = [ ... ]; }");
			t = config_setting_get_member(e, "senders");
			if (login == NULL || t == NULL ||
			    !config_setting_is_aggregate(t))
				return conf_err(cx, e,
				    "auth.senders entries need login and senders");
			for (j = 0; j < config_setting_length(t); j++) {
				config_setting_t *pe =
				    config_setting_get_elem(t, (unsigned)j);

				if (config_setting_type(pe) != CONFIG_TYPE_STRING ||
				    senders_add(ac->senders, login,
				    config_setting_get_string(pe), msg,
				    sizeof(msg)) == -1)
					return conf_err(cx, pe,
					    "auth.senders: %s",
					    config_setting_type(pe) ==
					    CONFIG_TYPE_STRING ? msg :
					    "patterns are strings");
			}
		}
		if (senders_finish(ac->senders) == -1)
			return conf_err(cx, s, "auth.senders: out of memory");
	}
	if ((t = config_setting_get_member(g, "throttle")) != NULL) {
		if (!config_setting_is_group(t))
			return conf_err(cx, t,
			    "auth.throttle must be a group { ... }");
		if (conf_check_keys(cx, t, throttle_keys, NULL) == -1 ||
		    conf_get_uint(cx, t, "failures", 0, 1000000,
		    &tc->max_failures) == -1 ||
		    conf_get_duration(cx, t, "window", 1, 86400 * 30,
		    &tc->window) == -1 ||
		    conf_get_duration(cx, t, "block", 1, 86400 * 30,
		    &tc->block) == -1 ||
		    conf_get_uint(cx, t, "delay", 0, 60000,
		    &tc->delay_ms) == -1 ||
		    conf_get_uint(cx, t, "max_delay", 0, 60000,
		    &tc->max_delay_ms) == -1 ||
		    conf_get_uint(cx, t, "global_failures", 0, 100000000,
		    &tc->global_failures) == -1 ||
		    conf_get_duration(cx, t, "global_window", 1, 86400,
		    &tc->global_window) == -1 ||
		    conf_get_duration(cx, t, "global_block", 1, 86400,
		    &tc->global_block) == -1 ||
		    conf_get_uint(cx, t, "table_size", 16, 1000000,
		    &tc->table_size) == -1 ||
		    conf_get_path(cx, t, "file", ac->throttle_file,
		    sizeof(ac->throttle_file)) == -1)
			return -1;
		if (throttle_conf_check(tc, msg, sizeof(msg)) == -1)
			return conf_err(cx, t, "auth.throttle: %s", msg);
	}
	return 0;
}

static void
print_mechanisms(const struct auth_conf *ac, FILE *f)
{
	static const char *const names[] = { "PLAIN", "LOGIN", "CRAM-MD5" };
	size_t i;

	fprintf(f, "AUTH mechanisms (auth.mechanisms):");
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (ac->mechs & sasl_mech_bit(names[i]))
			fprintf(f, " %s", names[i]);
	fprintf(f, "%s\n", ac->mechs & SASL_M_CRAM_MD5 ?
	    " (CRAM-MD5 only for {PLAIN} accounts)" : "");
}

static void
print_senders(const struct auth_conf *ac, FILE *f)
{
	const char *login, *pattern, *prev = NULL;
	size_t i;

	if (ac->senders == NULL) {
		fprintf(f, "AUTH senders (auth.senders): no map; a login may "
		    "use any sender\n");
		return;
	}
	fprintf(f, "AUTH senders (auth.senders): a login not listed may use "
	    "only itself, if it is an address\n");
	for (i = 0; senders_get(ac->senders, i, &login, &pattern) == 0;
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
print_throttle(const struct auth_conf *ac, FILE *f)
{
	const struct throttle_conf *c = &ac->throttle;

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
	    "share %s\n", c->table_size, ac->throttle_file);
}

void
authconf_print(const struct auth_conf *ac, FILE *f)
{
	if (!authconf_enabled(ac)) {
		fprintf(f, "AUTH: off (no secrets file)%s\n", ac->required ?
		    "; -a: MAIL will be refused to everyone" : "");
		return;
	}
	fprintf(f, "AUTH: %s %s; PLAIN and LOGIN %s; %s\n",
	    ac->dovecot[0] != '\0' ? "checked by Dovecot at" : "secrets",
	    ac->dovecot[0] != '\0' ? ac->dovecot : ac->secrets,
	    ac->cleartext ?
	    "also without TLS (-p)" : "only under TLS",
	    ac->required ? "required before MAIL (-a)" : "optional");
	print_mechanisms(ac, f);
	print_senders(ac, f);
	print_throttle(ac, f);
}
