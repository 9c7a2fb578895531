/*
 * check: what smtpd -t warns about in a configuration that loads but
 * would not work as meant.  See policy.h.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "lib/net.h"
#include "lib/str.h"
#include "policy.h"

/* 1 if a and b are the same addr:port, as written or in the same form. */
static int
same_listen(const char *a, const char *b)
{
	char ha[256], pa[32], hb[256], pb[32];

	if (net_split_hostport(a, ha, sizeof(ha), pa, sizeof(pa)) == -1 ||
	    net_split_hostport(b, hb, sizeof(hb), pb, sizeof(pb)) == -1)
		return strcmp(a, b) == 0;
	return strcasecmp(ha, hb) == 0 && strcmp(pa, pb) == 0;
}

/*
 * Can the spool be used: an accessible directory, or one that can be
 * made under its nearest existing parent?  0, or -1 with why.
 */
static int
spool_usable(const char *spool, char *why, size_t len)
{
	char dir[PATH_MAX], *slash;
	struct stat st;

	if (stat(spool, &st) == 0) {
		if (!S_ISDIR(st.st_mode)) {
			snprintf(why, len, "it is not a directory");
			return -1;
		}
		if (access(spool, R_OK | W_OK | X_OK) == -1) {
			snprintf(why, len, "%s", strerror(errno));
			return -1;
		}
		return 0;
	}
	if (errno != ENOENT && errno != ENOTDIR) {
		snprintf(why, len, "%s", strerror(errno));
		return -1;
	}
	if (str_lcpy(dir, spool, sizeof(dir)) >= sizeof(dir)) {
		snprintf(why, len, "path too long");
		return -1;
	}
	/* The nearest existing parent must let us create what is missing. */
	while ((slash = strrchr(dir, '/')) != NULL) {
		slash[slash == dir ? 1 : 0] = '\0';
		if (stat(dir, &st) == 0)
			break;
		if ((errno != ENOENT && errno != ENOTDIR) || slash == dir) {
			snprintf(why, len, "%s: %s", dir, strerror(errno));
			return -1;
		}
	}
	if (slash == NULL && (str_lcpy(dir, ".", sizeof(dir)) == 0 ||
	    stat(dir, &st) == -1)) {
		snprintf(why, len, "%s: %s", dir, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode) || access(dir, W_OK | X_OK) == -1) {
		snprintf(why, len, "cannot be created in %s: %s", dir,
		    S_ISDIR(st.st_mode) ? strerror(errno) : "not a directory");
		return -1;
	}
	return 0;
}

int
policy_warnings(const struct policy *p, FILE *f)
{
	char why[PATH_MAX + 128];
	int i, j, n = 0;

	if (strchr(p->hostname, '.') == NULL) {
		fprintf(f, "smtpd: warning: hostname \"%s\" is not a "
		    "fully-qualified domain name (RFC 5321 4.1.1.1); set "
		    "hostname or -h\n", p->hostname);
		n++;
	}
	for (i = 0; i < p->nlisten; i++)
		for (j = 0; j < p->ntls_listen; j++)
			if (same_listen(p->listen[i], p->tls_listen[j])) {
				fprintf(f, "smtpd: warning: %s is in both "
				    "listen and tls.listen: the second bind "
				    "fails\n", p->listen[i]);
				n++;
			}
	if (spool_usable(p->spool, why, sizeof(why)) == -1) {
		fprintf(f, "smtpd: warning: spool %s: %s\n", p->spool, why);
		n++;
	}
	return n;
}
