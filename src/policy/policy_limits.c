/*
 * limits { } of smtpd.conf: sizes, counts, timeouts and rates.  Every
 * time takes units ("5m"), every size k, m or g ("10m"): see conf.h.
 */
#include "config.h"

#include <stddef.h>

#include <libconfig.h>

#include "lib/conf.h"
#include "policy.h"
#include "policy_int.h"

static const char *const limit_keys[] = {
	"message_size", "recipients", "sessions", "sessions_per_ip", "errors",
	"command_timeout", "data_timeout", "shutdown_timeout", "line_length",
	"header_size", "dump_size", "connections_per_minute",
	"messages_per_minute", "tarpit_after", "tarpit_delay",
	"sessions_per_net", "data_deadline", "data_rate", "data_rate_window",
	"dump_max_age", "dump_max_total", "user_messages", "user_recipients",
	"user_window", NULL
};

/* The sizes (size_t, bytes). */
static int
limit_sizes(struct policy *p, const config_setting_t *g,
    const struct conf_ctx *cx)
{
	size_t rate = p->data_rate;

	if (conf_get_size(cx, g, "message_size", 0, 0x7fffffffu,
	    &p->message_size) == -1 ||
	    conf_get_size(cx, g, "line_length", 0, 1000000,
	    &p->line_length) == -1 ||
	    conf_get_size(cx, g, "header_size", 1024, 64 * 1024 * 1024,
	    &p->header_size) == -1 ||
	    conf_get_size(cx, g, "dump_size", 0, 0x7fffffffu,
	    &p->dump_size) == -1 ||
	    conf_get_size(cx, g, "dump_max_total", 0, 0xffffffffu,
	    &p->dump_max_total) == -1 ||
	    conf_get_size(cx, g, "data_rate", 0, 100000000, &rate) == -1)
		return -1;
	p->data_rate = (unsigned int)rate;
	if (p->line_length != 0 && p->line_length < 998)
		return conf_err(cx, config_setting_get_member(g, "line_length"),
		    "line_length must be 0 (any) or at least 998 "
		    "(RFC 5322 2.1.1)");
	return 0;
}

/* The times (seconds; tarpit_delay is milliseconds). */
static int
limit_times(struct policy *p, const config_setting_t *g,
    const struct conf_ctx *cx)
{
	if (conf_get_duration(cx, g, "command_timeout", 1, 3600,
	    &p->command_timeout) == -1 ||
	    conf_get_duration(cx, g, "data_timeout", 1, 3600,
	    &p->data_timeout) == -1 ||
	    conf_get_duration(cx, g, "shutdown_timeout", 0, 3600,
	    &p->shutdown_timeout) == -1 ||
	    conf_get_duration(cx, g, "data_deadline", 1, 86400,
	    &p->data_deadline) == -1 ||
	    conf_get_duration(cx, g, "data_rate_window", 1, 3600,
	    &p->data_rate_window) == -1 ||
	    conf_get_duration(cx, g, "dump_max_age", 0, 3650 * 86400,
	    &p->dump_max_age) == -1 ||
	    conf_get_duration(cx, g, "user_window", 1, 7 * 86400,
	    &p->user_window) == -1 ||
	    conf_get_uint(cx, g, "tarpit_delay", 0, 60000,
	    &p->tarpit_delay) == -1)
		return -1;
	return 0;
}

int
policy_load_limits(struct policy *p, const config_setting_t *g,
    const struct conf_ctx *cx)
{
	if (!config_setting_is_group(g))
		return conf_err(cx, g, "limits must be a group { ... }");
	if (conf_check_keys(cx, g, limit_keys, NULL) == -1 ||
	    limit_sizes(p, g, cx) == -1 || limit_times(p, g, cx) == -1)
		return -1;
	if (conf_get_uint(cx, g, "recipients", MIN_RECIPIENTS, 100000,
	    &p->recipients) == -1 ||
	    conf_get_uint(cx, g, "sessions", 1, 100000, &p->sessions) == -1 ||
	    conf_get_uint(cx, g, "sessions_per_ip", 1, 100000,
	    &p->sessions_per_ip) == -1 ||
	    conf_get_uint(cx, g, "sessions_per_net", 1, 100000,
	    &p->sessions_per_net) == -1 ||
	    conf_get_uint(cx, g, "errors", 1, 1000, &p->errors) == -1 ||
	    conf_get_uint(cx, g, "connections_per_minute", 0, 1000000,
	    &p->connections_per_minute) == -1 ||
	    conf_get_uint(cx, g, "messages_per_minute", 0, 1000000,
	    &p->messages_per_minute) == -1 ||
	    conf_get_uint(cx, g, "tarpit_after", 0, 1000,
	    &p->tarpit_after) == -1 ||
	    conf_get_uint(cx, g, "user_messages", 0, 100000000,
	    &p->user_messages) == -1 ||
	    conf_get_uint(cx, g, "user_recipients", 0, 100000000,
	    &p->user_recipients) == -1)
		return -1;
	return 0;
}
