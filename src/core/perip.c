#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "lib/net.h"
#include "perip.h"

#define PERIP_BUCKETS	1024

/* key[0] says which of the two counts it is: PERIP_CLIENT or PERIP_NET. */
struct perip_entry {
	struct perip_entry	*next;
	unsigned char		 key[1 + NET_KEY_LEN];
	unsigned int		 count;
};

struct perip {
	struct perip_entry	*bucket[PERIP_BUCKETS];
};

struct perip *
perip_new(void)
{
	return calloc(1, sizeof(struct perip));
}

void
perip_free(struct perip **pp)
{
	struct perip_entry *e, *next;
	size_t i;

	if (*pp == NULL)
		return;
	for (i = 0; i < PERIP_BUCKETS; i++)
		for (e = (*pp)->bucket[i]; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	free(*pp);
	*pp = NULL;
}

static int
perip_key(const struct sockaddr_storage *ss, int which, unsigned char *key)
{
	key[0] = (unsigned char)which;
	return which == PERIP_CLIENT ? net_prefix_key(ss, 32, 64, key + 1) :
	    net_prefix_key(ss, 24, 64, key + 1);
}

static struct perip_entry **
perip_find(struct perip *t, const unsigned char *key)
{
	struct perip_entry **pp;
	unsigned int h = 2166136261u;
	size_t i;

	for (i = 0; i < 1 + NET_KEY_LEN; i++)
		h = (h ^ key[i]) * 16777619u;
	for (pp = &t->bucket[h % PERIP_BUCKETS]; *pp != NULL;
	    pp = &(*pp)->next)
		if (memcmp((*pp)->key, key, sizeof((*pp)->key)) == 0)
			return pp;
	return pp;
}

/* One session less for a key; the entry goes at zero. */
static void
perip_drop(struct perip *t, const unsigned char *key)
{
	struct perip_entry **pp = perip_find(t, key), *e;

	if ((e = *pp) == NULL)
		return;
	if (--e->count == 0) {
		*pp = e->next;
		free(e);
	}
}

/* One session more for a key; -1 if it has max already or out of memory. */
static int
perip_inc(struct perip *t, const unsigned char *key, unsigned int max)
{
	struct perip_entry **pp = perip_find(t, key), *e;

	if (*pp != NULL) {
		if ((*pp)->count >= max)
			return -1;
		(*pp)->count++;
		return 0;
	}
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return -1;
	memcpy(e->key, key, sizeof(e->key));
	e->count = 1;
	*pp = e;
	return 0;
}

int
perip_add(struct perip *t, const struct sockaddr_storage *ss,
    unsigned int max_client, unsigned int max_net)
{
	unsigned char ck[1 + NET_KEY_LEN], nk[1 + NET_KEY_LEN];

	if (perip_key(ss, PERIP_CLIENT, ck) == -1 ||
	    perip_key(ss, PERIP_NET, nk) == -1)
		return 0;
	if (perip_inc(t, ck, max_client) == -1)
		return PERIP_CLIENT;
	if (perip_inc(t, nk, max_net) == -1) {
		perip_drop(t, ck);
		return PERIP_NET;
	}
	return 0;
}

void
perip_del(struct perip *t, const struct sockaddr_storage *ss)
{
	unsigned char ck[1 + NET_KEY_LEN], nk[1 + NET_KEY_LEN];

	if (perip_key(ss, PERIP_CLIENT, ck) == -1 ||
	    perip_key(ss, PERIP_NET, nk) == -1)
		return;
	perip_drop(t, ck);
	perip_drop(t, nk);
}
