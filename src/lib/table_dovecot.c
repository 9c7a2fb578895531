/*
 * table_dovecot: Dovecot's userdb as a table, "dovecot:/path" naming its
 * auth-userdb (or auth-master) socket.  A key is found when a USER
 * lookup finds that user; the value is empty.  Dovecot down, slow or
 * failing is TABLE_TEMP with the reason, so the caller defers and never
 * accepts on a guess.  The protocol is in dovecot_proto.c.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dovecot_proto.h"
#include "str.h"
#include "table.h"

struct dvtab {
	char	 path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

static int
dv_open(struct table *t, const char *arg, char *err, size_t errlen)
{
	struct dvtab *dv;

	if (arg[0] != '/') {
		snprintf(err, errlen, "%s: needs the absolute path of "
		    "Dovecot's auth-userdb socket", table_ref(t));
		return -1;
	}
	if ((dv = calloc(1, sizeof(*dv))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (str_lcpy(dv->path, arg, sizeof(dv->path)) >= sizeof(dv->path)) {
		snprintf(err, errlen, "%s: socket path too long", table_ref(t));
		free(dv);
		return -1;
	}
	table_set_priv(t, dv);
	return 0;
}

static enum table_result
dv_lookup(struct table *t, const char *key, char *val, size_t vallen,
    char *err, size_t errlen)
{
	struct dvtab *dv = table_priv(t);

	(void)val;
	(void)vallen;
	switch (dovecot_userdb_lookup(dv->path, key, err, errlen)) {
	case 1:
		return TABLE_FOUND;
	case 0:
		return TABLE_NOTFOUND;
	default:
		return TABLE_TEMP;
	}
}

static void
dv_close(struct table *t)
{
	free(table_priv(t));
}

const struct table_backend table_dovecot_backend = {
	"dovecot", dv_open, dv_lookup, dv_close
};
