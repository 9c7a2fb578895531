/*
 * The relay agent: SMTP to the domain's MX hosts or to a smarthost.
 *
 * The SMTP client library (src/client) drives it once it is part of the
 * build: open() = client_connect(dest, opts), deliver() = client_send()
 * with the message, its DSN parameters and per-recipient results,
 * close() = client_quit().  Until then every attempt fails temporarily
 * with a clear reason, so relayed mail waits in the queue (and expires
 * with a bounce after the lifetime) instead of vanishing.
 */
#include "config.h"

#include <stdio.h>

#include "lib/log.h"
#include "agent.h"

static void	*relay_open(const struct route *, const char *,
		    const struct queue_conf *, struct agent_result *);
static int	 relay_deliver(void *, const struct route *,
		    const struct agent_msg *, struct agent_rcpt *, size_t);
static void	 relay_close(void **);

const struct agent_ops agent_relay_ops = {
	"relay", relay_open, relay_deliver, relay_close
};

static void *
relay_open(const struct route *r, const char *dest,
    const struct queue_conf *qc, struct agent_result *res)
{
	log_warn("queue relay to %.200s (route %u): relay delivery is not "
	    "available in this build (no SMTP client library)", dest,
	    r->index + 1);
	agent_set(res, AGENT_TEMP, 451, "4.3.0", "relay delivery is not "
	    "available in this build (no SMTP client library)");
	return NULL;
}

static int
relay_deliver(void *sess, const struct route *r, const struct agent_msg *m,
    struct agent_rcpt *rcpts, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		agent_set(&rcpts[i].res, AGENT_TEMP, 451, "4.3.0", "relay "
		    "delivery is not available in this build");
	return -1;
}

static void
relay_close(void **sessp)
{
	*sessp = NULL;
}
