/*
 * signing: DKIM signatures on the mail of trusted and authenticated
 * senders, made while the message is received.
 *
 * The message streams into the spool as it arrives, but a signature is
 * a header field that needs the hash of the whole body.  The signer is a
 * tap on the bytes data.c spools: it keeps the header (bounded by
 * limits.header_size) and hashes the body as it passes.  At the end of
 * the data the DKIM-Signature field is made and put in front of the
 * message with spool_insert(): a small message is still in memory (the
 * journal's), a large one is copied once into a new file.  Holding the
 * header back instead would not do: the spool file is written in order,
 * and the body would have to wait in memory behind it.
 */
#ifndef SIGNING_H
#define SIGNING_H

#include <stddef.h>

#include "policy/policy.h"
#include "queue/spool.h"

struct signing;

/*
 * A signing run for this message, or NULL when it is not to be signed
 * (no dkim { }, an untrusted client, no key for the sender's domain, or
 * no memory: logged).
 */
struct signing *signing_start(const struct policy *, const struct
	    policy_session *, const char *sender, const char *id);
/* A datain tap: arg is the struct signing. */
void	signing_feed(void *arg, const char *, size_t);
/*
 * Puts the signatures in front of message m; *added grows by their
 * size.  A signature that cannot be made is logged and left out; -1 only
 * when the message cannot be written (errno set).
 */
int	signing_finish(struct signing *, struct spool_msg *m, size_t *added);
void	signing_free(struct signing **);

#endif
