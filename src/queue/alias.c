#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/addr.h"
#include "lib/str.h"
#include "alias.h"
#include "recipients.h"

static unsigned long
addr_hash(const char *s)
{
	unsigned long h = 2166136261UL;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)tolower((unsigned char)*s)) *
		    16777619UL;
	return h;
}

/* Open addressing, kept at most half full. */
int
queueconf_addrset_add(struct qc_addrset *set, const char *s)
{
	char **nslot, **old;
	size_t i, j, ncap;

	if (set->slot != NULL)
		for (i = addr_hash(s) & (set->cap - 1); set->slot[i] != NULL;
		    i = (i + 1) & (set->cap - 1))
			if (strcasecmp(set->slot[i], s) == 0)
				return 0;
	if (2 * (set->n + 1) > set->cap) {
		ncap = set->cap ? set->cap * 2 : 64;
		if ((nslot = calloc(ncap, sizeof(*nslot))) == NULL)
			return -1;
		for (j = 0; j < set->cap; j++) {
			if (set->slot[j] == NULL)
				continue;
			for (i = addr_hash(set->slot[j]) & (ncap - 1);
			    nslot[i] != NULL; i = (i + 1) & (ncap - 1))
				;
			nslot[i] = set->slot[j];
		}
		old = set->slot;
		set->slot = nslot;
		set->cap = ncap;
		free(old);
	}
	for (i = addr_hash(s) & (set->cap - 1); set->slot[i] != NULL;
	    i = (i + 1) & (set->cap - 1))
		;
	if ((set->slot[i] = strdup(s)) == NULL)
		return -1;
	set->n++;
	return 1;
}

void
queueconf_addrset_free(struct qc_addrset *set)
{
	size_t i;

	for (i = 0; i < set->cap; i++)
		free(set->slot[i]);
	free(set->slot);
	memset(set, 0, sizeof(*set));
}

struct expansion {
	char		**out;
	size_t		  n, cap;
	struct qc_addrset seen;		/* what out holds */
	const char	 *chain[QC_ALIAS_DEPTH + 1];
	size_t		  depth;
	int		  temp;		/* an alias table could not be read */
	char		 *err;
	size_t		  errlen;
};

static int
same_address(const char *a, const char *b)
{
	const char *ap = strrchr(a, '@'), *bp = strrchr(b, '@');

	if (ap == NULL || bp == NULL)
		return strcasecmp(a, b) == 0;
	/* Local parts compare case-insensitively here too: aliases do. */
	return ap - a == bp - b && strncasecmp(a, b, (size_t)(ap - a)) == 0 &&
	    strcasecmp(ap, bp) == 0;
}

static int
expand_add(struct expansion *x, const char *mailbox)
{
	char **nv;
	int rc;

	if ((rc = queueconf_addrset_add(&x->seen, mailbox)) == -1)
		goto nomem;
	if (rc == 0)
		return 0;
	if (x->n >= QC_MAX_EXPANSION) {
		snprintf(x->err, x->errlen, "alias expansion gives more than "
		    "%d addresses", QC_MAX_EXPANSION);
		return -1;
	}
	if (x->n == x->cap) {
		x->cap = x->cap ? x->cap * 2 : 16;
		if ((nv = realloc(x->out, x->cap * sizeof(*nv))) == NULL)
			goto nomem;
		x->out = nv;
	}
	if ((x->out[x->n] = strdup(mailbox)) == NULL)
		goto nomem;
	x->n++;
	return 0;
nomem:
	snprintf(x->err, x->errlen, "out of memory");
	return -1;
}

static int
expand_one(const struct queue_conf *qc, struct expansion *x,
    const char *mailbox)
{
	char local[ADDR_PATH_MAX + 1], domain[ADDR_PATH_MAX + 1];
	char target[2 * ADDR_PATH_MAX + 2], **to;
	const struct route *r;
	size_t i, j, nto;
	int loop, rc;

	r = queueconf_route(qc, mailbox);
	if (r == NULL || r->action == ROUTE_RELAY)
		return expand_add(x, mailbox);
	(void)queueconf_split_mailbox(qc, mailbox, local, sizeof(local),
	    domain, sizeof(domain));
	rc = qc_alias_targets(qc, local, domain, &to, &nto, x->err, x->errlen);
	if (rc == -1) {
		x->temp = 1;
		return -1;
	}
	if (rc == -2)
		return -1;
	if (rc == 0)
		return expand_add(x, mailbox);
	if (x->depth >= QC_ALIAS_DEPTH) {
		snprintf(x->err, x->errlen, "aliases nest deeper than %d "
		    "levels at %.100s", QC_ALIAS_DEPTH, mailbox);
		queueconf_free_list(&to, nto);
		return -1;
	}
	x->chain[x->depth++] = mailbox;
	for (i = 0; i < nto; i++) {
		if (strchr(to[i], '@') != NULL)
			str_lcpy(target, to[i], sizeof(target));
		else
			snprintf(target, sizeof(target), "%s@%s", to[i],
			    domain);
		/* "root: root, backup" delivers to root itself. */
		for (loop = 0, j = 0; j < x->depth; j++)
			if (same_address(x->chain[j], target))
				loop = 1;
		if ((loop ? expand_add(x, target) :
		    expand_one(qc, x, target)) == -1) {
			x->depth--;
			queueconf_free_list(&to, nto);
			/* chain[depth] is dead once depth is back down. */
			/* NOLINTNEXTLINE: as below */
			return -1;
		}
	}
	x->depth--;
	queueconf_free_list(&to, nto);
	/* NOLINTNEXTLINE(clang-analyzer-core.StackAddressEscape) */
	return 0;
}

int
queueconf_expand(const struct queue_conf *qc, const char *mailbox,
    char ***out, size_t *nout, char *err, size_t errlen)
{
	struct expansion x;
	int rc;

	memset(&x, 0, sizeof(x));
	x.err = err;
	x.errlen = errlen;
	rc = expand_one(qc, &x, mailbox);
	queueconf_addrset_free(&x.seen);
	if (rc == -1) {
		queueconf_free_list(&x.out, x.n);
		return x.temp ? -2 : -1;
	}
	*out = x.out;
	*nout = x.n;
	return 0;
}
