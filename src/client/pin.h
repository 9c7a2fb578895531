/*
 * pin: certificate pins, checked instead of (or besides) the trust store
 * by smtp's tls_pin and the relay routes' tls_pin.
 *
 * A pin list is one or more pins separated by commas; the server passes
 * when one of them matches, so the key that will replace the current one
 * can be pinned ahead of time.  A pin is either
 *
 *   sha256:HEX        the SHA-256 of the certificate's DER encoding, 64 hex
 *                     digits, colons between them allowed (certtool -i,
 *                     openssl x509 -fingerprint -sha256); it changes with
 *                     every new certificate;
 *   pin-sha256:B64    the SHA-256 of the DER SubjectPublicKeyInfo, in 44
 *                     base64 digits (RFC 7469, as HPKP and curl write it;
 *                     curl's sha256//B64 is accepted too); it survives a
 *                     renewal that keeps the key.
 */
#ifndef PIN_H
#define PIN_H

#include <stddef.h>

#define PIN_LIST_MAX	1024	/* a tls_pin setting */
/* What a certificate has, in the forms a pin list uses. */
#define PIN_HAVE_MAX	256

/* 1 if s is a valid pin list, else 0. */
int	pin_valid(const char *s);
/*
 * Checks a certificate (DER) against a pin list: 1 one pin matches, 0 none
 * does, -1 the certificate cannot be read.  On 0 and 1, have gets what the
 * certificate has, in the forms the list uses ("sha256:AB:..." and/or
 * "pin-sha256:...").
 */
int	pin_check(const char *pins, const unsigned char *der, size_t derlen,
	    char *have, size_t havelen);
/* The SPKI pin ("pin-sha256:B64") of a certificate (DER).  0 or -1. */
int	pin_spki(const unsigned char *der, size_t derlen, char *out,
	    size_t outlen);

#endif
