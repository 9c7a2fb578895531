/*
 * The installed configuration snapshot.  See confsnap.h.
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>

#include "auth/secrets.h"
#include "conf/conffile.h"
#include "lib/log.h"
#include "lib/refcnt.h"
#include "confsnap.h"
#include "tls.h"

static pthread_mutex_t	 current_mu = PTHREAD_MUTEX_INITIALIZER;
static struct config	*current;

struct config *
config_new(struct conf_file *file, struct tls_server *tls,
    struct secrets *secrets)
{
	struct config *c;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		conf_file_unref(&file);
		tls_server_unref(&tls);
		secrets_unref(&secrets);
		return NULL;
	}
	c->refs = 1;
	c->file = file;
	c->policy = file->policy;
	c->auth = &file->auth;
	c->queue = file->queue;
	c->tls = tls;
	c->secrets = secrets;
	return c;
}

struct config *
config_ref(struct config *c)
{
	refcnt_take(&c->refs);
	return c;
}

void
config_unref(struct config **cp)
{
	struct config *c = *cp;

	if (c == NULL)
		return;
	*cp = NULL;
	if (!refcnt_drop(&c->refs))
		return;
	tls_server_unref(&c->tls);
	secrets_unref(&c->secrets);
	conf_file_unref(&c->file);
	free(c);
}

void
config_install(struct config *c)
{
	struct config *old;

	pthread_mutex_lock(&current_mu);
	old = current;
	current = c;
	pthread_mutex_unlock(&current_mu);
	config_unref(&old);
}

/*
 * c again, or a snapshot like c with the table of its changed secrets
 * file, installed unless another snapshot was meanwhile.
 */
static struct config *
with_new_secrets(struct config *c)
{
	const struct auth_conf *ac = c->auth;
	struct secrets *t;
	struct config *n, *old = NULL;
	char err[1024];

	if (ac->secrets[0] == '\0' || ac->dovecot[0] != '\0')
		return c;
	switch (secrets_reload(ac->secrets, c->secrets, &t, err,
	    sizeof(err))) {
	case -1:
		log_err("auth: %s; keeping the old secrets", err);
		return c;
	case 0:
		return c;
	}
	n = config_new(conf_file_ref(c->file), c->tls != NULL ?
	    tls_server_ref(c->tls) : NULL, t);
	if (n == NULL)
		return c;
	pthread_mutex_lock(&current_mu);
	if (current == c) {
		old = current;
		current = config_ref(n);
	}
	pthread_mutex_unlock(&current_mu);
	config_unref(&old);
	config_unref(&c);
	return n;
}

struct config *
config_current(void)
{
	struct config *c;

	pthread_mutex_lock(&current_mu);
	c = current != NULL ? config_ref(current) : NULL;
	pthread_mutex_unlock(&current_mu);
	return c;
}

struct config *
config_session(void)
{
	struct config *c = config_current();

	return c != NULL ? with_new_secrets(c) : NULL;
}
