/*
 * alias: expansion of recipients through the "aliases" of smtpd.conf
 * (compiled by queueconf), in time linear in the addresses it gives.
 * Documented in smtpd.conf(5), ALIASES.
 */
#ifndef ALIAS_H
#define ALIAS_H

#include <stddef.h>

#include "queueconf.h"

/*
 * Expands mailbox through the aliases (recursively, for recipients whose
 * route delivers locally).  *out gets a malloc'd array of malloc'd
 * addresses (free with queueconf_free_list), duplicates removed.
 * 0 on success; -1 with a reason in err (an alias loop, too many
 * addresses, out of memory); -2 when an alias table cannot be read now.
 */
int	queueconf_expand(const struct queue_conf *, const char *mailbox,
	    char ***out, size_t *nout, char *err, size_t errlen);

/*
 * A set of addresses compared without regard to case (zeroed to start),
 * for removing duplicates in linear time.  add: 1 when s is new (a copy
 * is kept), 0 when it is there already, -1 when out of memory.
 */
struct qc_addrset {
	char	**slot;
	size_t	  cap, n;
};
int	queueconf_addrset_add(struct qc_addrset *, const char *s);
void	queueconf_addrset_free(struct qc_addrset *);

#endif
