/*
 * recipients: the tables that say who exists, and the RCPT-time check.
 *
 * An unknown recipient is refused while the client is still connected
 * (550 5.1.1), so the queue never has to bounce it to a sender that is
 * usually forged.  A table that cannot be read gives 451 4.3.0: never an
 * acceptance on a guess.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libconfig.h>

#include "lib/addr.h"
#include "lib/conf.h"
#include "lib/str.h"
#include "lib/table.h"
#include "queueconf.h"
#include "recipients.h"

#define KEY_MAX	(2 * ADDR_PATH_MAX + 2)

/*
 * A table-valued key: a reference string, or (when inline_ok) a list of
 * keys.  *t stays NULL when the key is absent.
 */
static int
get_table(const struct conf_ctx *cx, const config_setting_t *root,
    const char *name, int inline_ok, struct table **t)
{
	config_setting_t *g, *e;
	char why[512];
	const char *v;
	int i, n;

	if (root == NULL || (g = config_setting_get_member(root, name)) == NULL)
		return 0;
	if (config_setting_type(g) == CONFIG_TYPE_STRING) {
		v = config_setting_get_string(g);
		if ((*t = conf_table_open(cx->file, v, why, sizeof(why))) == NULL)
			return conf_err(cx, g, "%s", why);
		return 0;
	}
	if (!inline_ok || (!config_setting_is_array(g) &&
	    !config_setting_is_list(g))) {
		snprintf(why, sizeof(why), "%s must be a table (\"file:/path\", "
		    "\"cdb:/path\", \"socketmap:...\", \"dovecot:/path\")%s",
		    name, inline_ok ? " or a list of strings" : "");
		return conf_err(cx, g, "%s", why);
	}
	if ((*t = table_inline_new(name)) == NULL)
		return conf_err(cx, g, "%s", "out of memory");
	n = config_setting_length(g);
	if (n > TABLE_FILE_ENTRIES_MAX)
		return conf_err(cx, g, "%s: too many entries",
		    name);
	for (i = 0; i < n; i++) {
		e = config_setting_get_elem(g, (unsigned)i);
		if ((v = config_setting_get_string(e)) == NULL)
			return conf_err(cx, e, "%s entries must "
			    "be strings", name);
		if (table_inline_add(*t, v, "", why, sizeof(why)) == -1)
			return conf_err(cx, e, "%s", why);
	}
	if (table_inline_finish(*t, why, sizeof(why)) == -1) {
		/* "name:0: ..." from the table: say where the list is. */
		const char *m = strstr(why, ": ");

		return conf_err(cx, g, "%s", m ? m + 2 : why);
	}
	return 0;
}

int
qc_tables_parse(const config_setting_t *root, struct queue_conf *qc,
    const char *file, char *err, size_t errlen)
{
	struct conf_ctx cx = { file, err, errlen };
	config_setting_t *g;
	const char *v;

	if (get_table(&cx, root, "users", 1, &qc->users) == -1 ||
	    get_table(&cx, root, "relay_recipients", 1, &qc->relay_rcpts) == -1)
		return -1;
	if (root != NULL && (g = config_setting_get_member(root, "aliases")) &&
	    config_setting_type(g) == CONFIG_TYPE_STRING &&
	    get_table(&cx, root, "aliases", 0, &qc->alias_table) == -1)
		return -1;
	if (root != NULL && (g = config_setting_get_member(root,
	    "recipient_delimiter")) != NULL) {
		if ((v = config_setting_get_string(g)) == NULL ||
		    strlen(v) >= sizeof(qc->delimiter) ||
		    strpbrk(v, "@\"\\ \t.") != NULL)
			return conf_err(&cx, g, "%s",
			    "recipient_delimiter must be a few characters "
			    "such as \"+\" (not @, quotes, dots or spaces)");
		str_lcpy(qc->delimiter, v, sizeof(qc->delimiter));
	}
	return 0;
}

void
qc_tables_free(struct queue_conf *qc)
{
	table_free(&qc->users);
	table_free(&qc->relay_rcpts);
	table_free(&qc->alias_table);
}

static void
print_table(FILE *f, const char *what, struct table *t)
{
	if (t == NULL)
		return;
	if (table_is_ref(table_ref(t)))
		fprintf(f, "%s: %s\n", what, table_ref(t));
	else
		fprintf(f, "%s: inline, %zu entries\n", what, table_size(t));
}

void
qc_tables_print(const struct queue_conf *qc, FILE *f)
{
	print_table(f, "users", qc->users);
	print_table(f, "aliases", qc->alias_table);
	print_table(f, "relay recipients", qc->relay_rcpts);
	if (qc->delimiter[0] != '\0')
		fprintf(f, "recipient delimiter: %s\n", qc->delimiter);
}

int
qc_base_local(const struct queue_conf *qc, const char *local, char *out,
    size_t outlen)
{
	size_t n;

	str_lcpy(out, local, outlen);
	if (qc->delimiter[0] == '\0')
		return 0;
	n = strcspn(local, qc->delimiter);
	/* "+tag" alone has no user in front: leave it whole. */
	if (n == 0 || local[n] == '\0' || n >= outlen)
		return 0;
	out[n] = '\0';
	return 1;
}

/* Splits "a, b c" (a table value) into a list. */
static int
split_targets(const char *val, char ***to, size_t *nto)
{
	char buf[TABLE_VALUE_MAX + 1], *p, *w, **v = NULL;
	size_t n = 0;

	str_lcpy(buf, val, sizeof(buf));
	for (p = buf; (w = strsep(&p, ", \t")) != NULL;) {
		if (*w == '\0')
			continue;
		if (n >= QC_MAX_TARGETS)
			break;
		if ((n % 16) == 0) {
			char **nv = realloc(v, (n + 16) * sizeof(*v));

			if (nv == NULL)
				goto nomem;
			v = nv;
		}
		if ((v[n] = strdup(w)) == NULL)
			goto nomem;
		n++;
	}
	*to = v;
	*nto = n;
	return n > 0 ? 1 : 0;
nomem:
	queueconf_free_list(&v, n);
	return -1;
}

/* One name through the inline aliases, then the alias table. */
static int
alias_one(const struct queue_conf *qc, const char *name, char ***to,
    size_t *nto, char *err, size_t errlen)
{
	const struct alias *a;
	char val[TABLE_VALUE_MAX + 1];
	size_t i;

	if ((a = queueconf_alias(qc, name)) != NULL) {
		if ((*to = calloc(a->nto, sizeof(**to))) == NULL)
			goto nomem;
		for (i = 0; i < a->nto; i++)
			if (((*to)[i] = strdup(a->to[i])) == NULL) {
				queueconf_free_list(to, i);
				goto nomem;
			}
		*nto = a->nto;
		return 1;
	}
	if (qc->alias_table == NULL)
		return 0;
	switch (table_lookup(qc->alias_table, name, val, sizeof(val), err,
	    errlen)) {
	case TABLE_TEMP:
		return -1;
	case TABLE_NOTFOUND:
		return 0;
	case TABLE_FOUND:
		break;
	}
	switch (split_targets(val, to, nto)) {
	case 1:
		return 1;
	case 0:
		snprintf(err, errlen, "alias %.100s in %s has no targets",
		    name, table_ref(qc->alias_table));
		return -2;
	}
nomem:
	snprintf(err, errlen, "out of memory");
	return -2;
}

int
qc_alias_targets(const struct queue_conf *qc, const char *local,
    const char *domain, char ***to, size_t *nto, char *err, size_t errlen)
{
	char key[KEY_MAX], base[ADDR_PATH_MAX + 1];
	int rc, cut;

	*to = NULL;
	*nto = 0;
	cut = qc_base_local(qc, local, base, sizeof(base));
	snprintf(key, sizeof(key), "%s@%s", local, domain);
	if ((rc = alias_one(qc, key, to, nto, err, errlen)) != 0 ||
	    (rc = alias_one(qc, local, to, nto, err, errlen)) != 0 || !cut)
		return rc;
	snprintf(key, sizeof(key), "%s@%s", base, domain);
	if ((rc = alias_one(qc, key, to, nto, err, errlen)) != 0)
		return rc;
	return alias_one(qc, base, to, nto, err, errlen);
}

/* "local@domain" or "local" in t: 1, 0, or -1 (why says). */
static int
in_table(struct table *t, const char *local, const char *domain, char *why,
    size_t whylen)
{
	char key[KEY_MAX];
	enum table_result r;

	if (t == NULL)
		return 0;
	snprintf(key, sizeof(key), "%s@%s", local, domain);
	if ((r = table_lookup(t, key, NULL, 0, why, whylen)) == TABLE_NOTFOUND)
		r = table_lookup(t, local, NULL, 0, why, whylen);
	return r == TABLE_TEMP ? -1 : r == TABLE_FOUND;
}

/* 1 if the Maildir for user exists (path template %u %d %%). */
static int
maildir_exists(const struct route *r, const char *user, const char *domain)
{
	char path[PATH_MAX];
	struct stat st;
	const char *p;
	size_t n = 0;

	if (user[0] == '.' || strchr(user, '/') != NULL)
		return 0;
	for (p = r->path; *p != '\0' && n + 1 < sizeof(path); p++) {
		if (*p != '%') {
			path[n++] = *p;
			continue;
		}
		p++;
		n += str_lcpy(path + n, *p == 'u' ? user : *p == 'd' ? domain :
		    "%", sizeof(path) - n);
		if (*p == '\0' || n >= sizeof(path))
			return 0;
	}
	if (n >= sizeof(path))
		return 0;
	path[n] = '\0';
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

enum qc_verdict
queueconf_verify(const struct queue_conf *qc, const char *mailbox,
    const char *sender, const char *login, int ours, char *why,
    size_t whylen)
{
	char local[ADDR_PATH_MAX + 1], domain[ADDR_PATH_MAX + 1];
	char base[ADDR_PATH_MAX + 1], key[KEY_MAX];
	const struct route *r;
	char **to;
	size_t nto;
	int rc;

	why[0] = '\0';
	if ((r = queueconf_route_from(qc, mailbox, sender, login)) == NULL ||
	    queueconf_split_mailbox(qc, mailbox, local, sizeof(local),
	    domain, sizeof(domain)) == -1)
		return QV_OK;	/* the queue reports it; nothing to look up */
	(void)qc_base_local(qc, local, base, sizeof(base));
	/* postmaster is always a recipient (RFC 5321 4.5.1). */
	if (strcmp(base, "postmaster") == 0)
		return QV_OK;

	if (r->action == ROUTE_RELAY) {
		if (!ours || qc->relay_rcpts == NULL)
			return QV_OK;
		if ((rc = in_table(qc->relay_rcpts, local, domain, why,
		    whylen)) == 0 && strcmp(base, local) != 0)
			rc = in_table(qc->relay_rcpts, base, domain, why,
			    whylen);
		if (rc == 0) {
			/* "@domain": the whole domain is accepted. */
			snprintf(key, sizeof(key), "@%s", domain);
			switch (table_lookup(qc->relay_rcpts, key, NULL, 0, why,
			    whylen)) {
			case TABLE_FOUND:
				rc = 1;
				break;
			case TABLE_TEMP:
				rc = -1;
				break;
			case TABLE_NOTFOUND:
				break;
			}
		}
		return rc == -1 ? QV_TEMP : rc ? QV_OK : QV_UNKNOWN;
	}

	/* Delivered here: catch-alls and pattern pipes take anything. */
	if (r->catchall || (r->action == ROUTE_PIPE && r->local != NULL))
		return QV_OK;
	rc = qc_alias_targets(qc, local, domain, &to, &nto, why, whylen);
	if (rc == 1)
		queueconf_free_list(&to, nto);
	if (rc == -1)
		return QV_TEMP;
	if (rc != 0)
		return QV_OK;	/* an alias, even a broken one: the queue says */
	if ((rc = in_table(qc->users, base, domain, why, whylen)) != 0)
		return rc == -1 ? QV_TEMP : QV_OK;
	/* Another source of users (a directory service) goes here. */
	if (r->action == ROUTE_MAILDIR && !r->create &&
	    maildir_exists(r, base, domain))
		return QV_OK;
	return QV_UNKNOWN;
}

int
queueconf_verify_hook(const void *arg, const char *mailbox,
    const char *sender, const char *login, int ours, char *why,
    size_t whylen)
{
	return (int)queueconf_verify(arg, mailbox, sender, login, ours, why,
	    whylen);
}

int
queueconf_may_create(const struct queue_conf *qc, const struct route *r,
    const char *mailbox, char *why, size_t whylen)
{
	char local[ADDR_PATH_MAX + 1], domain[ADDR_PATH_MAX + 1];
	char base[ADDR_PATH_MAX + 1];

	why[0] = '\0';
	if (r->catchall)
		return 1;
	if (queueconf_split_mailbox(qc, mailbox, local, sizeof(local),
	    domain, sizeof(domain)) == -1)
		return 0;
	(void)qc_base_local(qc, local, base, sizeof(base));
	if (strcmp(base, "postmaster") == 0)
		return 1;
	return in_table(qc->users, base, domain, why, whylen);
}
