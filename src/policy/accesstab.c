/*
 * accesstab: Plan 9's access verbs looked up in a table (access_table):
 * the client's address, or the sender as "user@domain", "@domain",
 * "domain" or "<>", mapped to allow, block, deny, dial or delay.
 */
#include "config.h"

#include <sys/socket.h>

#include <stdio.h>
#include <string.h>

#include "lib/addr.h"
#include "lib/net.h"
#include "lib/table.h"
#include "policy.h"
#include "state.h"

static int
lookup(const struct policy *p, const char *key, enum access_action *a,
    char *why, size_t whylen)
{
	char val[TABLE_VALUE_MAX + 1];

	switch (table_lookup(p->access_table, key, val, sizeof(val), why,
	    whylen)) {
	case TABLE_TEMP:
		return -1;
	case TABLE_NOTFOUND:
		return 0;
	case TABLE_FOUND:
		break;
	}
	if ((*a = access_action_parse(val)) == ACCESS_NONE) {
		snprintf(why, whylen, "%s: \"%.50s\" for %.100s is not allow, "
		    "block, deny, dial or delay", table_ref(p->access_table),
		    val, key);
		return -1;
	}
	return 1;
}

int
access_table_ip(const struct policy *p, const struct sockaddr *sa,
    enum access_action *a, char *why, size_t whylen)
{
	char ip[NET_ADDRSTR_MAX];

	*a = ACCESS_NONE;
	if (p->access_table == NULL ||
	    net_ntop(sa, ip, sizeof(ip), NULL) == -1)
		return 0;
	return lookup(p, ip, a, why, whylen) == -1 ? -1 : 0;
}

int
access_table_sender(const struct policy *p, const char *sender,
    enum access_action *a, char *why, size_t whylen)
{
	char key[ADDR_PATH_MAX + 2];
	const char *at;
	int rc;

	*a = ACCESS_NONE;
	if (p->access_table == NULL)
		return 0;
	if (sender[0] == '\0')
		return lookup(p, "<>", a, why, whylen) == -1 ? -1 : 0;
	if ((rc = lookup(p, sender, a, why, whylen)) != 0 ||
	    (at = strrchr(sender, '@')) == NULL)
		return rc == -1 ? -1 : 0;
	snprintf(key, sizeof(key), "@%s", at + 1);
	if ((rc = lookup(p, key, a, why, whylen)) != 0)
		return rc == -1 ? -1 : 0;
	return lookup(p, at + 1, a, why, whylen) == -1 ? -1 : 0;
}
