/*
 * dovecot: password checks by Dovecot's auth-client socket.  See
 * dovecot.h; the protocol itself is in src/lib/dovecot_proto.c.
 *
 * auth-client:	C: VERSION 1 1, CPID id
 *		S: VERSION, MECH name..., SPID, CUID, COOKIE, DONE
 *		C: AUTH id PLAIN service=smtp secured nologin resp=BASE64
 *		S: OK id ... | FAIL id [temp] [code=temp_fail] ... | CONT id
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

#include "lib/log.h"
#include "lib/dovecot_proto.h"
#include "lib/str.h"
#include "dovecot.h"

/* Reads the handshake up to DONE; 1 if PLAIN is offered, 0 if not, -1. */
static int
auth_handshake(struct dconn *dc)
{
	char *line;
	int i, r, plain = 0, version = 0;

	for (i = 0; i < DOVECOT_HANDSHAKE_LINES; i++) {
		if ((r = dc_getline(dc, &line)) != 1) {
			log_err("dovecot auth %.200s: %s during the handshake",
			    dc->path, r == 0 ? "connection closed" : r == -2 ?
			    "line too long" : strerror(errno));
			return -1;
		}
		if (strncmp(line, "VERSION\t", 8) == 0) {
			if (strncmp(line + 8, "1\t", 2) != 0) {
				log_err("dovecot auth %.200s: protocol "
				    "version %.20s, want 1", dc->path,
				    line + 8);
				return -1;
			}
			version = 1;
		} else if (strncmp(line, "MECH\t", 5) == 0) {
			if (strncasecmp(line + 5, "PLAIN", 5) == 0 &&
			    (line[10] == '\0' || line[10] == '\t'))
				plain = 1;
		} else if (strcmp(line, "DONE") == 0) {
			if (!version) {
				log_err("dovecot auth %.200s: no VERSION "
				    "before DONE", dc->path);
				return -1;
			}
			return plain;
		}
	}
	log_err("dovecot auth %.200s: handshake longer than %d lines",
	    dc->path, DOVECOT_HANDSHAKE_LINES);
	return -1;
}

enum secrets_status
dovecot_auth_verify(const char *path, const char *user, const void *pass,
    size_t passlen)
{
	struct dconn *dc;
	gnutls_datum_t in, b64 = { NULL, 0 };
	enum secrets_status st = SECRETS_TEMPFAIL;
	static const char head[] = "AUTH\t" DOVECOT_REQ_ID "\tPLAIN"
	    "\tservice=smtp\tsecured\tnologin\tresp=";
	char hello[64], *line, *msg = NULL, *req = NULL;
	size_t ulen = strlen(user), mlen = 0, reqlen = 0;
	int n, r;

	if (ulen == 0 || ulen > SECRETS_USER_MAX || passlen == 0 ||
	    passlen > SECRETS_PASS_MAX)
		return SECRETS_FAIL;
	if ((dc = malloc(sizeof(*dc))) == NULL)
		return SECRETS_TEMPFAIL;
	if (dc_open(dc, path, DOVECOT_TIMEOUT) == -1) {
		log_err("dovecot auth %.200s: connect: %s", path,
		    strerror(errno));
		goto out;
	}
	n = snprintf(hello, sizeof(hello), "VERSION\t1\t1\nCPID\t%u\n",
	    dc_cpid());
	if (dc_write(dc, hello, (size_t)n) == -1) {
		log_err("dovecot auth %.200s: %s", path, strerror(errno));
		goto out;
	}
	if ((r = auth_handshake(dc)) != 1) {
		if (r == 0)
			log_err("dovecot auth %.200s: PLAIN is not among "
			    "Dovecot's auth_mechanisms", path);
		goto out;
	}
	/* RFC 4616: an empty authzid, the user, the password. */
	mlen = 1 + ulen + 1 + passlen;
	if ((msg = malloc(mlen)) == NULL)
		goto out;
	msg[0] = '\0';
	memcpy(msg + 1, user, ulen + 1);
	memcpy(msg + 2 + ulen, pass, passlen);
	in.data = (unsigned char *)msg;
	in.size = (unsigned int)mlen;
	if (gnutls_base64_encode2(&in, &b64) != 0)
		goto out;
	/* One buffer of the right size: no copies of it left behind. */
	reqlen = sizeof(head) - 1 + b64.size + 1;
	if ((req = malloc(reqlen)) == NULL)
		goto out;
	memcpy(req, head, sizeof(head) - 1);
	memcpy(req + sizeof(head) - 1, b64.data, b64.size);
	req[reqlen - 1] = '\n';
	if (dc_write(dc, req, reqlen) == -1) {
		log_err("dovecot auth %.200s: %s", path, strerror(errno));
		goto out;
	}
	if ((r = dc_getline(dc, &line)) != 1) {
		log_err("dovecot auth %.200s: %s waiting for the verdict", path,
		    r == 0 ? "connection closed" : r == -2 ? "line too long" :
		    strerror(errno));
		goto out;
	}
	if (strncmp(line, "OK\t" DOVECOT_REQ_ID, 4) == 0 &&
	    (line[4] == '\0' || line[4] == '\t'))
		st = SECRETS_OK;
	else if (strncmp(line, "FAIL\t" DOVECOT_REQ_ID, 6) == 0 &&
	    (line[6] == '\0' || line[6] == '\t')) {
		/* "temp" (2.3) or "code=temp_fail" (2.4): not the user's. */
		if (dc_field(line, "temp") ||
		    dc_field(line, "code=temp_fail")) {
			log_err("dovecot auth %.200s: temporary failure in "
			    "Dovecot's passdb", path);
			st = SECRETS_TEMPFAIL;
		} else
			st = SECRETS_FAIL;
	} else
		log_err("dovecot auth %.200s: unexpected reply \"%.40s\"", path,
		    line);
out:
	if (b64.data != NULL) {
		str_wipe(b64.data, b64.size);
		gnutls_free(b64.data);
	}
	if (msg != NULL) {
		str_wipe(msg, mlen);
		free(msg);
	}
	if (req != NULL) {
		str_wipe(req, reqlen);
		free(req);
	}
	dc_close(dc);
	free(dc);
	return st;
}
