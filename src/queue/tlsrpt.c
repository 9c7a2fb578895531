/*
 * tlsrpt: TLS outcome records and the daily aggregate reports of RFC 8460.
 *
 * A record is one line, fields split by tabs: S or F, the policy type,
 * the policy's strings ("|" between them), the result type ("" for a
 * success), the MX host, its address, and what happened.  Lines are
 * written with one write(2) on an O_APPEND file, so concurrent relays do
 * not mix them up.
 */
#include "config.h"

#include <sys/stat.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>

#include "lib/dns.h"
#include "lib/fsutil.h"
#include "lib/str.h"
#include "spool.h"
#include "tlsrpt.h"

#define TLSRPT_LINE_MAX		4096
#define TLSRPT_POLICIES_MAX	32
#define TLSRPT_DETAILS_MAX	128
#define TLSRPT_RUA_MAX		4
#define TLSRPT_JSON_MAX		(1024 * 1024)
#define TLSRPT_MAIL_MAX		(2 * 1024 * 1024)

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
static int	day_name(time_t, char *, size_t);
static int	valid_domain(const char *);
static int	json_str(struct str *, const char *);
static int	split_fields(char *, char **, size_t);
static int	find_rua(const char *, char (*)[DNS_NAME_MAX + 64], size_t *,
		    int *);
static int	queue_report(struct spool *, const char *, const char *,
		    const char *, const char *, const char *, const char *,
		    const char *, char *, size_t);
static int	report_domain(const char *, const char *, const char *,
		    struct spool *, const char *, const char *, char *, size_t);

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

static int
day_name(time_t t, char *buf, size_t len)
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%d", &tm) == 0)
		return -1;
	return 0;
}

static int
valid_domain(const char *d)
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

	if (!valid_domain(ev->domain) || day_name(now, day, sizeof(day)) == -1) {
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
    const char *day, const char *org, const char *contact,
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
	    str_appendf(&s, ",\"date-range\":{\"start-datetime\":"
	    "\"%sT00:00:00Z\",\"end-datetime\":\"%sT23:59:59Z\"},"
	    "\"contact-info\":", day, day) == -1 ||
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

/*
 * The mailto: addresses of domain's _smtp._tls record (RFC 8460 3).
 * 1 found, 0 no record (or none with mailto:), -1 a temporary failure.
 */
static int
find_rua(const char *domain, char (*rua)[DNS_NAME_MAX + 64], size_t *n,
    int *temp)
{
	char (*txt)[DNS_TXT_MAX], name[DNS_NAME_MAX + 16], *p, *e, *tok;
	char *save;
	enum dns_status st;
	size_t nt, i, found = 0;

	*n = 0;
	*temp = 0;
	if ((size_t)snprintf(name, sizeof(name), "_smtp._tls.%s", domain) >=
	    sizeof(name))
		return 0;
	if ((txt = calloc(8, sizeof(*txt))) == NULL) {
		*temp = 1;
		return -1;
	}
	st = dns_txt(name, txt, 8, &nt);
	if (st == DNS_TEMPFAIL) {
		free(txt);
		*temp = 1;
		return -1;
	}
	for (i = 0; st == DNS_OK && i < nt; i++) {
		if (strncmp(txt[i], "v=TLSRPTv1", 10) != 0)
			continue;
		found++;
		if ((p = strstr(txt[i], "rua=")) == NULL)
			continue;
		p += 4;
		if ((e = strchr(p, ';')) != NULL)
			*e = '\0';
		for (tok = strtok_r(p, ",", &save); tok != NULL;
		    tok = strtok_r(NULL, ",", &save)) {
			while (*tok == ' ')
				tok++;
			if (strncasecmp(tok, "mailto:", 7) != 0 ||
			    *n >= TLSRPT_RUA_MAX)
				continue;
			tok += 7;
			tok[strcspn(tok, " ?")] = '\0';
			if (tok[0] == '\0' || strchr(tok, '@') == NULL ||
			    strlen(tok) >= sizeof(rua[0]))
				continue;
			str_lcpy(rua[(*n)++], tok, sizeof(rua[0]));
		}
	}
	free(txt);
	/* RFC 8460 3: exactly one record counts. */
	return found == 1 && *n > 0;
}

/* Queues one report mail (RFC 8460 5.3). */
static int
queue_report(struct spool *sp, const char *sender, const char *rcpt,
    const char *org, const char *domain, const char *day, const char *json,
    const char *report_id, char *err, size_t errlen)
{
	struct spool_envelope env;
	struct spool_rcpt r = { rcpt, NULL, NULL };
	struct spool_msg *m;
	struct str s;
	gnutls_datum_t in, b64 = { NULL, 0 };
	char date[64], bound[40];
	unsigned char rnd[8];
	size_t i;
	time_t now = time(NULL);
	int rc = -1;

	memset(&env, 0, sizeof(env));
	env.sender = sender;
	env.rcpts = &r;
	env.nrcpts = 1;
	env.protocol = "LOCAL";
	env.arrival = now;
	if (gnutls_rnd(GNUTLS_RND_NONCE, rnd, sizeof(rnd)) < 0)
		memset(rnd, 0, sizeof(rnd));
	snprintf(bound, sizeof(bound), "tlsrpt-%02x%02x%02x%02x%02x%02x",
	    rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
	in.data = (unsigned char *)(uintptr_t)json;
	in.size = (unsigned)strlen(json);
	if (gnutls_base64_encode2(&in, &b64) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	fs_rfc5322_date(date, sizeof(date), now);
	str_init(&s, TLSRPT_MAIL_MAX);
	if (str_appendf(&s, "From: <%s>\r\nTo: <%s>\r\nDate: %s\r\n"
	    "Message-ID: <%s@%s>\r\n"
	    "Subject: Report Domain: %s Submitter: %s Report-ID: <%s>\r\n"
	    "TLS-Report-Domain: %s\r\nTLS-Report-Submitter: %s\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/report; report-type=\"tlsrpt\";\r\n"
	    "\tboundary=\"%s\"\r\n\r\n"
	    "--%s\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
	    "TLS report for %s, %s, from %s.\r\n\r\n"
	    "--%s\r\nContent-Type: application/tlsrpt+json\r\n"
	    "Content-Transfer-Encoding: base64\r\n"
	    "Content-Disposition: attachment;\r\n"
	    "\tfilename=\"%s!%s!%sT00:00:00Z!%sT23:59:59Z.json\"\r\n\r\n",
	    sender, rcpt, date, report_id, org, domain, org, report_id,
	    domain, org, bound, bound, domain, day, org, bound, org, domain,
	    day, day) == -1)
		goto out;
	for (i = 0; i < b64.size; i += 76)
		if (str_append(&s, b64.data + i, b64.size - i < 76 ?
		    b64.size - i : 76) == -1 || str_appends(&s, "\r\n") == -1)
			goto out;
	if (str_appendf(&s, "\r\n--%s--\r\n", bound) == -1)
		goto out;
	if ((m = spool_begin(sp, &env)) == NULL) {
		snprintf(err, errlen, "cannot queue the report: %s",
		    strerror(errno));
		goto done;
	}
	if (spool_write(m, str_cstr(&s), s.len) == -1) {
		snprintf(err, errlen, "cannot queue the report: %s",
		    strerror(errno));
		spool_abort(&m);
		goto done;
	}
	if (spool_commit(&m) == -1) {
		snprintf(err, errlen, "cannot queue the report: %s",
		    strerror(errno));
		goto done;
	}
	rc = 0;
	goto done;
out:
	snprintf(err, errlen, "the report is too large");
done:
	str_free(&s);
	gnutls_free(b64.data);
	return rc;
}

/* One day's file of one domain: reported (or not wanted) and removed. */
static int
report_domain(const char *daydir, const char *day, const char *domain,
    struct spool *sp, const char *org, const char *sender, char *err,
    size_t errlen)
{
	char path[4096], rua[TLSRPT_RUA_MAX][DNS_NAME_MAX + 64], id[600];
	char *buf = NULL, *json = NULL;
	size_t len = 0, n, i;
	ssize_t k;
	int fd, temp, found, sent = 0;

	if (!valid_domain(domain) || (size_t)snprintf(path, sizeof(path),
	    "%s/%s", daydir, domain) >= sizeof(path))
		return 0;
	found = find_rua(domain, rua, &n, &temp);
	if (found == -1)
		return 0;	/* DNS trouble: next time */
	if (found == 1) {
		if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) ==
		    -1 || (buf = malloc(TLSRPT_FILE_MAX + TLSRPT_LINE_MAX)) ==
		    NULL) {
			if (fd != -1)
				close(fd);
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			return -1;
		}
		while (len < TLSRPT_FILE_MAX + TLSRPT_LINE_MAX - 1 &&
		    (k = read(fd, buf + len, TLSRPT_FILE_MAX +
		    TLSRPT_LINE_MAX - 1 - len)) > 0)
			len += (size_t)k;
		close(fd);
		snprintf(id, sizeof(id), "%s.%s@%s", day, domain, org);
		if (tlsrpt_json(buf, len, domain, day, org, sender, id,
		    &json) == -1) {
			free(buf);
			snprintf(err, errlen, "cannot build the report");
			return -1;
		}
		for (i = 0; i < n; i++) {
			if (queue_report(sp, sender, rua[i], org, domain, day,
			    json, id, err, errlen) == -1) {
				free(json);
				free(buf);
				return -1;
			}
			sent++;
		}
		free(json);
		free(buf);
	}
	(void)unlink(path);
	return sent;
}

int
tlsrpt_run(const char *dir, struct spool *sp, const char *org,
    const char *sender, time_t now, int everything, char *err, size_t errlen)
{
	char today[16], daydir[4096];
	DIR *d, *dd;
	struct dirent *de, *fe;
	int total = 0, r;

	err[0] = '\0';
	if (day_name(now, today, sizeof(today)) == -1)
		return -1;
	if ((d = opendir(dir)) == NULL)
		return errno == ENOENT ? 0 : -1;
	while ((de = readdir(d)) != NULL) {
		if (strlen(de->d_name) != 10 || de->d_name[4] != '-' ||
		    strspn(de->d_name, "0123456789-") != 10)
			continue;
		/* Today's counts are still growing. */
		if (!everything && strcmp(de->d_name, today) >= 0)
			continue;
		if ((size_t)snprintf(daydir, sizeof(daydir), "%s/%s", dir,
		    de->d_name) >= sizeof(daydir) ||
		    (dd = opendir(daydir)) == NULL)
			continue;
		while ((fe = readdir(dd)) != NULL) {
			if (fe->d_name[0] == '.')
				continue;
			r = report_domain(daydir, de->d_name, fe->d_name, sp,
			    org, sender, err, errlen);
			if (r == -1) {
				closedir(dd);
				closedir(d);
				return -1;
			}
			total += r;
		}
		closedir(dd);
		(void)rmdir(daydir);	/* fails while a file is left */
	}
	closedir(d);
	return total;
}
