/*
 * keyproto: the messages between the front and the key process (see
 * keyproc.h).  Private to keyproc.c and keyclient.c.
 */
#ifndef KEYPROTO_H
#define KEYPROTO_H

#include <stdint.h>

#include "auth/secrets.h"

#define KP_DATA_MAX	4096	/* a signature's input or output, an RSA
				 * ciphertext, a password, a challenge */
#define KP_ID_MAX	32	/* SHA-256 key id */
#define KP_CERTS_MAX	16	/* certificates in a chain */
#define KP_F_BAD	0x01	/* the password was too long to send */

enum kp_op {
	KP_SIGN_DATA = 1,
	KP_SIGN_HASH,
	KP_DECRYPT,
	KP_VERIFY,
	KP_CRAM,
	KP_INFO,
	KP_CERT,	/* a piece of the certificates (PEM) */
};

struct kp_req {
	uint64_t	 seq;
	uint32_t	 op;
	uint32_t	 algo;		/* gnutls_sign_algorithm_t */
	uint32_t	 flags;		/* GnuTLS's, or KP_F_* for KP_VERIFY */
	uint32_t	 idlen;
	uint32_t	 len;
	unsigned char	 id[KP_ID_MAX];
	unsigned char	 digest[16];	/* KP_CRAM */
	char		 user[SECRETS_USER_MAX + 1];
	unsigned char	 data[KP_DATA_MAX];
};

struct kp_resp {
	uint64_t	 seq;
	int32_t		 status;	/* enum secrets_status; 0 or -1 */
	uint32_t	 any_clear;
	uint32_t	 len;
	uint32_t	 total;		/* KP_CERT: the whole length */
	uint32_t	 gen;		/* KP_CERT: which load */
	unsigned char	 data[KP_DATA_MAX];
};

#endif
