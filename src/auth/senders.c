/*
 * senders: the login-to-sender map.  See senders.h.
 *
 * (login, pattern) pairs in one array, sorted by login by
 * senders_finish(), so a lookup is a binary search and a short scan.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/table.h"
#include "senders.h"

struct pair {
	char	*login;
	char	*pattern;
	size_t	 seq;		/* keeps sorting stable */
};

struct senders {
	struct pair	*p;
	size_t		 n, cap;
	int		 sorted;
	struct table	*table;		/* instead of p: login -> patterns */
};

static int	pattern_ok(const char *);
static int	pair_cmp(const void *, const void *);
static int	matches(const char *, const char *);

struct senders *
senders_new(void)
{
	return calloc(1, sizeof(struct senders));
}

void
senders_free(struct senders **mp)
{
	struct senders *m = *mp;
	size_t i;

	if (m == NULL)
		return;
	*mp = NULL;
	for (i = 0; i < m->n; i++)
		free(m->p[i].login);
	free(m->p);
	table_free(&m->table);
	free(m);
}

size_t
senders_count(const struct senders *m)
{
	return m->n;
}

/* "*", "<>", "@domain" or "local@domain", printable, no spaces. */
static int
pattern_ok(const char *s)
{
	const char *at, *p;

	if (strcmp(s, "*") == 0 || strcmp(s, "<>") == 0)
		return 1;
	for (p = s; *p != '\0'; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '<' ||
		    *p == '>')
			return 0;
	/* Exactly one '@', with a domain after it. */
	if ((at = strchr(s, '@')) == NULL || at[1] == '\0' ||
	    strchr(at + 1, '@') != NULL)
		return 0;
	return 1;
}

int
senders_add(struct senders *m, const char *login, const char *pattern,
    char *err, size_t errlen)
{
	struct pair *np;
	size_t ll, pl, ncap;

	ll = strlen(login);
	pl = strlen(pattern);
	if (ll == 0 || ll > SENDERS_LOGIN_MAX) {
		snprintf(err, errlen, "login name empty or too long");
		return -1;
	}
	if (pl == 0 || pl > SENDERS_PATTERN_MAX || !pattern_ok(pattern)) {
		snprintf(err, errlen, "bad sender pattern \"%.100s\" (want "
		    "user@domain, @domain, * or <>)", pattern);
		return -1;
	}
	if (m->n == SENDERS_ENTRIES_MAX) {
		snprintf(err, errlen, "more than %d login/sender pairs",
		    SENDERS_ENTRIES_MAX);
		return -1;
	}
	if (m->n == m->cap) {
		ncap = m->cap == 0 ? 16 : m->cap * 2;
		if ((np = reallocarray(m->p, ncap, sizeof(*np))) == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		m->p = np;
		m->cap = ncap;
	}
	/* One allocation holds both strings. */
	if ((m->p[m->n].login = malloc(ll + 1 + pl + 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	memcpy(m->p[m->n].login, login, ll + 1);
	m->p[m->n].pattern = m->p[m->n].login + ll + 1;
	memcpy(m->p[m->n].pattern, pattern, pl + 1);
	m->p[m->n].seq = m->n;
	m->n++;
	m->sorted = 0;
	return 0;
}

static int
pair_cmp(const void *a, const void *b)
{
	const struct pair *x = a, *y = b;
	int c;

	if ((c = strcmp(x->login, y->login)) != 0)
		return c;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int
senders_finish(struct senders *m)
{
	if (m->n > 0)
		qsort(m->p, m->n, sizeof(*m->p), pair_cmp);
	m->sorted = 1;
	return 0;
}

int
senders_get(const struct senders *m, size_t i, const char **login,
    const char **pattern)
{
	if (m == NULL || i >= m->n)
		return -1;
	*login = m->p[i].login;
	*pattern = m->p[i].pattern;
	return 0;
}

/* Does sender (never "") match pattern? */
static int
matches(const char *pattern, const char *sender)
{
	const char *at;

	if (strcmp(pattern, "*") == 0)
		return 1;
	if (pattern[0] == '@') {
		if ((at = strrchr(sender, '@')) == NULL)
			return 0;
		return strcasecmp(at + 1, pattern + 1) == 0;
	}
	return strcasecmp(pattern, sender) == 0;
}

/* Does one pattern let sender ("" for <>) through? */
static int
allows(const char *pattern, const char *sender)
{
	if (sender[0] == '\0')
		return strcmp(pattern, "<>") == 0 || strcmp(pattern, "*") == 0;
	return strcmp(pattern, "<>") != 0 && matches(pattern, sender);
}

void
senders_use_table(struct senders *m, struct table *t)
{
	m->table = t;
	m->sorted = 1;
}

/* The table's value for login: patterns separated by commas or blanks. */
static int
table_allowed(const struct senders *m, const char *login, const char *sender)
{
	char val[TABLE_VALUE_MAX + 1], err[256], *p, *w;

	switch (table_lookup(m->table, login, val, sizeof(val), err,
	    sizeof(err))) {
	case TABLE_TEMP:
		return -1;
	case TABLE_NOTFOUND:
		return sender[0] != '\0' && strchr(login, '@') != NULL &&
		    strcasecmp(login, sender) == 0;
	case TABLE_FOUND:
		break;
	}
	for (p = val; (w = strsep(&p, ", \t")) != NULL;)
		if (*w != '\0' && pattern_ok(w) && allows(w, sender))
			return 1;
	return 0;
}

int
senders_allowed(const struct senders *m, const char *login,
    const char *sender)
{
	size_t lo, hi, mid, i;
	int found = 0;

	if (m == NULL)
		return 1;
	if (m->table != NULL && login != NULL && sender != NULL)
		return table_allowed(m, login, sender);
	if (!m->sorted || login == NULL || sender == NULL)
		return 0;
	/* The first pair for login, by binary search. */
	lo = 0;
	hi = m->n;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (strcmp(m->p[mid].login, login) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (i = lo; i < m->n && strcmp(m->p[i].login, login) == 0; i++) {
		found = 1;
		if (allows(m->p[i].pattern, sender))
			return 1;
	}
	/* Not in the map: only as itself, if it is an address. */
	if (!found && sender[0] != '\0' && strchr(login, '@') != NULL)
		return strcasecmp(login, sender) == 0;
	return 0;
}
