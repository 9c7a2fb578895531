/*
 * Between the files that compile smtpd.conf's queue settings: queueconf.c
 * (queue { }, aliases, the whole load) and queueconf_route.c (routes).
 */
#ifndef QUEUECONF_INT_H
#define QUEUECONF_INT_H

#include <libconfig.h>

#include "lib/conf.h"
#include "queueconf.h"

/* One routes entry into r; qc holds the queue { } defaults.  0 or -1. */
int	qc_parse_route(struct conf_ctx *cx, const config_setting_t *g,
	    struct route *r, const struct queue_conf *qc);

/* Lower-cases s in place (ASCII). */
void	qc_lower(char *s);

#endif
