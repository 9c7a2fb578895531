/*
 * tlsrpt: TLS outcome records and the daily aggregate reports of RFC 8460.
 *
 * A record is one line, fields split by tabs: S or F, the policy type,
 * the policy's strings ("|" between them), the result type ("" for a
 * success), the MX host, its address, and what happened.  Lines are
 * written with one write(2) on an O_APPEND file, so concurrent relays do
 * not mix them up.  tlsrpt_send.c turns a day's records into reports.
 */
#include "config.h"

#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "lib/dns.h"
#include "lib/fsutil.h"
#include "lib/str.h"
#include "tlsrpt.h"

#define TLSRPT_LINE_MAX		4096
#define TLSRPT_POLICIES_MAX	32
#define TLSRPT_DETAILS_MAX	128
#define TLSRPT_JSON_MAX		(1024 * 1024)

struct rpt_detail {
	char		*result, *mx, *addr, *why;
	unsigned long	 count;
};

struct rpt_policy {
	char		*type, *policy;
	unsigned long	 ok, failed;
	struct rpt_detail d[TLSRPT_DETAILS_MAX];
	size_t		 nd;
};

static void	clean_field(char *, size_t, const char *, int);
static int	json_str(struct str *, const char *);
static int	split_fields(char *, char **, size_t);

/* Copies s, tabs and line ends made spaces (and "\n" made "|" if bar). */
static void
clean_field(char *out, size_t len, const char *s, int bar)
{
	size_t i;

	str_lcpy(out, s != NULL ? s : "", len);
	for (i = 0; out[i] != '\0'; i++) {
		if (out[i] == '\n' && bar)
			out[i] = '|';
		else if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f ||
		    (out[i] == '|' && bar))
			out[i] = ' ';
	}
}

int
tlsrpt_day_name(time_t t, char *buf, size_t len)
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%d", &tm) == 0)
		return -1;
	return 0;
}

int
tlsrpt_valid_domain(const char *d)
{
	size_t i;

	if (d[0] == '\0' || d[0] == '.' || strlen(d) > DNS_NAME_MAX)
		return 0;
	for (i = 0; d[i] != '\0'; i++)
		if (!isalnum((unsigned char)d[i]) && d[i] != '-' &&
		    d[i] != '.')
			return 0;
	return 1;
}

int
tlsrpt_record(const char *dir, const struct client_tls_event *ev, time_t now)
{
	char day[16], path[4096], line[TLSRPT_LINE_MAX];
	char policy[2048], mx[DNS_NAME_MAX + 1], addr[64], why[512];
	struct stat sb;
	int fd, n, e;

	if (!tlsrpt_valid_domain(ev->domain) ||
	    tlsrpt_day_name(now, day, sizeof(day)) == -1) {
		errno = EINVAL;
		return -1;
	}
	clean_field(policy, sizeof(policy), ev->policy, 1);
	clean_field(mx, sizeof(mx), ev->mx_host, 0);
	clean_field(addr, sizeof(addr), ev->addr, 0);
	clean_field(why, sizeof(why), ev->detail, 0);
	n = snprintf(line, sizeof(line), "%c\t%s\t%s\t%s\t%s\t%s\t%s\n",
	    ev->failure != NULL ? 'F' : 'S', ev->policy_type, policy,
	    ev->failure != NULL ? ev->failure : "", mx, addr, why);
	if (n < 0 || (size_t)n >= sizeof(line)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, day) >=
	    sizeof(path) || fs_mkdirs(path, 0700) == -1)
		return -1;
	if ((size_t)snprintf(path, sizeof(path), "%s/%s/%s", dir, day,
	    ev->domain) >= sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC |
	    O_NOFOLLOW, 0600)) == -1)
		return -1;
	/* Bounded: past the limit a day's counts stop growing. */
	if (fstat(fd, &sb) == 0 && (unsigned long)sb.st_size >
	    TLSRPT_FILE_MAX) {
		close(fd);
		return 0;
	}
	if (write(fd, line, (size_t)n) != n) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return close(fd);
}

static int
json_str(struct str *s, const char *v)
{
	const unsigned char *p;

	if (str_appendc(s, '"') == -1)
		return -1;
	for (p = (const unsigned char *)v; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\') {
			if (str_appendc(s, '\\') == -1 ||
			    str_appendc(s, *p) == -1)
				return -1;
		} else if (*p < 0x20) {
			if (str_appendf(s, "\\u%04x", *p) == -1)
				return -1;
		} else if (str_appendc(s, *p) == -1)
			return -1;
	}
	return str_appendc(s, '"');
}

/* Splits a record line at tabs.  The number of fields. */
static int
split_fields(char *line, char **f, size_t max)
{
	size_t n = 0;
	char *t;

	while (n < max) {
		f[n++] = line;
		if ((t = strchr(line, '\t')) == NULL)
			break;
		*t = '\0';
		line = t + 1;
	}
	return (int)n;
}

int
tlsrpt_json(const char *records, size_t len, const char *domain,
    const char *start, const char *end, const char *org, const char *contact,
    const char *report_id, char **out)
{
	struct rpt_policy *pol;
	struct str s;
	char *copy, *line, *next, *f[7], *tok, *save;
	size_t np = 0, i, j, k;
	int rc = -1, first;

	*out = NULL;
	if ((pol = calloc(TLSRPT_POLICIES_MAX, sizeof(*pol))) == NULL)
		return -1;
	if ((copy = malloc(len + 1)) == NULL) {
		free(pol);
		return -1;
	}
	memcpy(copy, records, len);
	copy[len] = '\0';
	for (line = copy; line != NULL && *line != '\0'; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		if (split_fields(line, f, 7) != 7 ||
		    (f[0][0] != 'S' && f[0][0] != 'F'))
			continue;	/* a torn or foreign line */
		for (i = 0; i < np; i++)
			if (strcmp(pol[i].type, f[1]) == 0 &&
			    strcmp(pol[i].policy, f[2]) == 0)
				break;
		if (i == np) {
			if (np == TLSRPT_POLICIES_MAX)
				continue;
			pol[np].type = f[1];
			pol[np].policy = f[2];
			np++;
		}
		if (f[0][0] == 'S') {
			pol[i].ok++;
			continue;
		}
		pol[i].failed++;
		for (j = 0; j < pol[i].nd; j++)
			if (strcmp(pol[i].d[j].result, f[3]) == 0 &&
			    strcmp(pol[i].d[j].mx, f[4]) == 0 &&
			    strcmp(pol[i].d[j].addr, f[5]) == 0)
				break;
		if (j == pol[i].nd) {
			if (j == TLSRPT_DETAILS_MAX)
				continue;
			pol[i].d[j].result = f[3];
			pol[i].d[j].mx = f[4];
			pol[i].d[j].addr = f[5];
			pol[i].d[j].why = f[6];
			pol[i].nd++;
		}
		pol[i].d[j].count++;
	}

	str_init(&s, TLSRPT_JSON_MAX);
	if (str_appends(&s, "{\"organization-name\":") == -1 ||
	    json_str(&s, org) == -1 ||
	    str_appends(&s, ",\"date-range\":{\"start-datetime\":") == -1 ||
	    json_str(&s, start) == -1 ||
	    str_appends(&s, ",\"end-datetime\":") == -1 ||
	    json_str(&s, end) == -1 ||
	    str_appends(&s, "},\"contact-info\":") == -1 ||
	    json_str(&s, contact) == -1 ||
	    str_appends(&s, ",\"report-id\":") == -1 ||
	    json_str(&s, report_id) == -1 ||
	    str_appends(&s, ",\"policies\":[") == -1)
		goto out;
	for (i = 0; i < np; i++) {
		if (str_appends(&s, i > 0 ? ",{\"policy\":{\"policy-type\":" :
		    "{\"policy\":{\"policy-type\":") == -1 ||
		    json_str(&s, pol[i].type) == -1)
			goto out;
		if (pol[i].policy[0] != '\0') {
			if (str_appends(&s, ",\"policy-string\":[") == -1)
				goto out;
			first = 1;
			for (tok = strtok_r(pol[i].policy, "|", &save);
			    tok != NULL; tok = strtok_r(NULL, "|", &save)) {
				if ((!first && str_appendc(&s, ',') == -1) ||
				    json_str(&s, tok) == -1)
					goto out;
				first = 0;
			}
			if (str_appendc(&s, ']') == -1)
				goto out;
		}
		if (str_appends(&s, ",\"policy-domain\":") == -1 ||
		    json_str(&s, domain) == -1 ||
		    str_appendf(&s, "},\"summary\":{"
		    "\"total-successful-session-count\":%lu,"
		    "\"total-failure-session-count\":%lu}", pol[i].ok,
		    pol[i].failed) == -1)
			goto out;
		if (pol[i].nd > 0 &&
		    str_appends(&s, ",\"failure-details\":[") == -1)
			goto out;
		for (k = 0; k < pol[i].nd; k++) {
			const struct rpt_detail *d = &pol[i].d[k];

			if (str_appends(&s, k > 0 ? ",{\"result-type\":" :
			    "{\"result-type\":") == -1 ||
			    json_str(&s, d->result) == -1)
				goto out;
			if (d->addr[0] != '\0' && (str_appends(&s,
			    ",\"receiving-ip\":") == -1 ||
			    json_str(&s, d->addr) == -1))
				goto out;
			if (d->mx[0] != '\0' && (str_appends(&s,
			    ",\"receiving-mx-hostname\":") == -1 ||
			    json_str(&s, d->mx) == -1))
				goto out;
			if (str_appendf(&s, ",\"failed-session-count\":%lu",
			    d->count) == -1)
				goto out;
			if (d->why[0] != '\0' && (str_appends(&s,
			    ",\"failure-reason-code\":") == -1 ||
			    json_str(&s, d->why) == -1))
				goto out;
			if (str_appendc(&s, '}') == -1)
				goto out;
		}
		if ((pol[i].nd > 0 && str_appendc(&s, ']') == -1) ||
		    str_appendc(&s, '}') == -1)
			goto out;
	}
	if (str_appends(&s, "]}") == -1)
		goto out;
	if ((*out = strdup(str_cstr(&s))) == NULL)
		goto out;
	rc = 0;
out:
	str_free(&s);
	free(copy);
	free(pol);
	return rc;
}
