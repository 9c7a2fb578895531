/*
 * probe: smtp -p, what a server offers and how its TLS looks.
 *
 * It connects as smtp(1) would, says EHLO, starts TLS when offered, and
 * prints the greeting, the extensions, the TLS version and cipher, the
 * certificate chain and its check (the trust store or tls_cafile, and
 * DANE or MTA-STS when the policy says so), and the AUTH mechanisms,
 * with advice for classic mistakes.  Nothing is sent.
 */
#ifndef PROBE_H
#define PROBE_H

#include <stddef.h>

#include "client.h"
#include "dial.h"

/*
 * Probes dest with o (changed: TLS as the probe needs it, no AUTH).
 * tflag: implicit TLS was asked for (-t).  Output on standard output.
 * EX_OK when the probe completed, else the connection's status (a line
 * on standard error says why).
 */
int	probe_run(const char *dest, const struct dial *d,
	    struct client_opts *o, int tflag);
/*
 * What to try after a failed connection, in smtp's options, into tip
 * ("" when nothing comes to mind).
 */
void	probe_tip(const struct client_result *res, int tflag,
	    const struct dial *d, char *tip, size_t len);

#endif
