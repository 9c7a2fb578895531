/*
 * keygen: smtpq dkim-keygen -- a DKIM key pair and its DNS record.
 */
#ifndef KEYGEN_H
#define KEYGEN_H

/*
 * smtpq dkim-keygen [-t rsa|ed25519] [-b bits] domain selector keyfile:
 * writes the private key to keyfile (which must not exist) and prints
 * the TXT record to publish.  Returns a sysexits code.
 */
int	keygen_main(int argc, char **argv);

#endif
