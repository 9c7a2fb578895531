/*
 * The milters list of smtpd.conf: content filters that speak the
 * Sendmail/Postfix milter protocol (src/core/milter.c is the client).
 */
#ifndef MILTERCONF_H
#define MILTERCONF_H

#include <libconfig.h>
#include <stdio.h>

#include "lib/conf.h"

#define MILTERS_MAX		8
#define DEF_MILTER_TIMEOUT	10	/* seconds for a reply */
#define DEF_MILTER_CONNECT	5	/* seconds to connect */
#define DEF_MILTER_EOM		60	/* seconds for the end-of-message answer */
#define MILTER_NAME_MAX		32	/* letters, digits, '-', '_' */

struct milter_def {
	char		 address[300];	/* as configured, for logs */
	char		 name[MILTER_NAME_MAX + 1];	/* "" = none */
	int		 unix_socket;
	char		 path[108];	/* unix: */
	char		 host[256];	/* inet: */
	char		 port[16];
	unsigned int	 timeout;
	unsigned int	 connect_timeout;
	unsigned int	 eom_timeout;	/* the answer to the end of a message */
	int		 accept_on_fail; /* default_action = "accept" */
};

struct milter_conf {
	struct milter_def m[MILTERS_MAX];
	int		 n;
};

/*
 * Reads milters from the root group into *out (NULL when there are
 * none).  0, or -1 with "file:line: message" in err.
 */
int	milterconf_load(struct milter_conf **out, const config_setting_t *root,
	    const struct conf_ctx *cx);
void	milterconf_free(struct milter_conf **);
/* The index of the milter called name in c, or -1. */
int	milterconf_find(const struct milter_conf *c, const char *name);
void	milterconf_print(const struct milter_conf *, FILE *);

#endif
