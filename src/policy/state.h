/*
 * state: the long-lived part of the policy (internal to src/policy).
 */
#ifndef STATE_H
#define STATE_H

#include <sys/socket.h>

#include "policy.h"

enum grey_result {
	GREY_PASS,	/* seen before, waited long enough */
	GREY_NEW,	/* first time: defer */
	GREY_EARLY,	/* retried too soon: defer */
	GREY_ERROR,	/* could not record: defer, never accept */
};

/* Looks up and updates a triplet.  stdio: re-read and write the file now. */
enum grey_result state_greylist(struct policy_state *, const struct policy *,
	    const struct sockaddr_storage *peer, const char *sender,
	    const char *rcpt, int stdio);

#define RATE_CONN	0
#define RATE_MSG	1
#define STATE_RATE_MAX	65536	/* clients (IPv4 addresses, IPv6 /64s) tracked */
/*
 * Counts one more event for the client (an IPv4 address, or an IPv6 /64);
 * 1 if it is over limit per minute.
 */
int	state_rate(struct policy_state *, const struct sockaddr_storage *peer,
	    int what, unsigned int limit);

#define USER_MSG	0
#define USER_RCPT	1
#define STATE_USER_MAX	65536	/* logins and senders counted at once */
/*
 * Counts one message or recipient for who ("login:..." or "sender:...")
 * in the current window of window seconds, unless that count has reached
 * limit (0: none): then 1 and nothing counted.  *msgs and *rcpts get the
 * window's counts.
 */
int	state_user_count(struct policy_state *, const char *who, int what,
	    unsigned int limit, unsigned int window, unsigned int *msgs,
	    unsigned int *rcpts);

/* How many clients the rate table holds (for tests); the oldest go. */
void	state_set_rate_max(struct policy_state *, size_t);

/*
 * The access verb of the client's address or of a sender in
 * access_table (*a is ACCESS_NONE when absent).  0, or -1 when the table
 * cannot be read or holds no verb (why says).  accesstab.c.
 */
int	access_table_ip(const struct policy *, const struct sockaddr *,
	    enum access_action *a, char *why, size_t whylen);
int	access_table_sender(const struct policy *, const char *sender,
	    enum access_action *a, char *why, size_t whylen);

#endif
