/*
 * frontconf: the settings of the daemon's front that are not about mail
 * policy -- listeners behind a load balancer (proxy { }) and the metrics
 * listener (metrics { }).  Compiled into struct policy like the rest.
 */
#ifndef FRONTCONF_H
#define FRONTCONF_H

#include <libconfig.h>
#include <stdio.h>

#include "lib/conf.h"

#include "cidr.h"

#define FRONT_LISTEN_MAX	16
#define FRONT_TRUSTED_MAX	256
#define DEF_PROXY_TIMEOUT	5	/* seconds for the whole header */

struct front_conf {
	/* proxy { }: listeners that take a PROXY header first. */
	char		*proxy_listen[FRONT_LISTEN_MAX];	/* plain SMTP */
	int		 nproxy_listen;
	char		*proxy_tls_listen[FRONT_LISTEN_MAX];	/* then TLS */
	int		 nproxy_tls_listen;
	struct cidr	 proxy_trusted[FRONT_TRUSTED_MAX];	/* balancers */
	size_t		 nproxy_trusted;
	unsigned int	 proxy_timeout;
	/* metrics { }: "" = no metrics listener. */
	char		 metrics_listen[300];
};

/*
 * Reads proxy { } and metrics { } from the root group, if there.  0, or
 * -1 with "file:line: message" in err.
 */
int	frontconf_load(struct front_conf *, const config_setting_t *root,
	    const struct conf_ctx *cx);
void	frontconf_free(struct front_conf *);
void	frontconf_print(const struct front_conf *, FILE *);

#endif
