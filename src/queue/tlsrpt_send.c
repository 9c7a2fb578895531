/*
 * tlsrpt_send: the aggregate TLS reports of RFC 8460 -- where they go
 * (the policy domain's _smtp._tls record, section 3), the report mail
 * (multipart/report with a gzip'd JSON attachment, section 5.3), and
 * when they are made (once a day from the runner, or by smtpq tlsrpt).
 *
 * Reporters take SPOOL/tlsrpt/.lock, so two never report the same
 * records.  A day's file DOMAIN is first renamed .DOMAIN.sending (new
 * records of the same day then start a new file), reported, and removed;
 * a .sending file left by a crash or a DNS failure is reported next time.
 */
#include "config.h"

#include <sys/file.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <zlib.h>

#include "lib/dns.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/str.h"
#include "queueconf.h"
#include "spool.h"
#include "tlsrpt.h"

#define TLSRPT_RUA_MAX		4
#define TLSRPT_TXT_RECORDS	8
#define TLSRPT_MAIL_MAX		(2 * 1024 * 1024)
#define TLSRPT_READ_MAX		(TLSRPT_FILE_MAX + 4096)
#define TLSRPT_SUFFIX		".sending"
#define TLSRPT_STAMP		".last-run"

typedef char rua_t[DNS_NAME_MAX + 64];

/* One reporting run. */
struct rctx {
	struct spool	*sp;
	const char	*org, *sender, *submitter;
	time_t		 now;
	char		 today[16];
	char		*err;
	size_t		 errlen;
};

static int	find_rua(const char *, rua_t *, size_t *);
static int	gzip_buf(const char *, size_t, unsigned char **, size_t *);
static int	queue_report(struct rctx *, const char *, const char *,
		    time_t, time_t, const char *, const char *);
static int	report_file(struct rctx *, const char *, const char *,
		    const char *);
static int	report_day(struct rctx *, const char *, const char *);
static int	iso_time(time_t, char *, size_t);
static int	parse_day(const char *, time_t *);

/*
 * The mailto: addresses of domain's _smtp._tls record (RFC 8460 3).
 * 1 found, 0 none (no record, several, or no mailto:), -1 a temporary
 * DNS failure.
 */
static int
find_rua(const char *domain, rua_t *rua, size_t *n)
{
	char (*txt)[DNS_TXT_MAX], name[DNS_NAME_MAX + 16], *p, *e, *tok;
	char *save;
	enum dns_status st;
	size_t nt, i, found = 0;

	*n = 0;
	if ((size_t)snprintf(name, sizeof(name), "_smtp._tls.%s", domain) >=
	    sizeof(name))
		return 0;
	if ((txt = calloc(TLSRPT_TXT_RECORDS, sizeof(*txt))) == NULL)
		return -1;
	st = dns_txt(name, txt, TLSRPT_TXT_RECORDS, &nt);
	if (st == DNS_TEMPFAIL) {
		free(txt);
		return -1;
	}
	for (i = 0; st == DNS_OK && i < nt; i++) {
		if (strncmp(txt[i], "v=TLSRPTv1", 10) != 0 ||
		    (txt[i][10] != ';' && txt[i][10] != ' '))
			continue;
		if (++found > 1)
			break;
		if ((p = strstr(txt[i], "rua=")) == NULL)
			continue;
		p += 4;
		if ((e = strchr(p, ';')) != NULL)
			*e = '\0';
		for (tok = strtok_r(p, ",", &save); tok != NULL;
		    tok = strtok_r(NULL, ",", &save)) {
			tok += strspn(tok, " \t");
			tok[strcspn(tok, " \t")] = '\0';
			if (strncasecmp(tok, "https:", 6) == 0) {
				log_info("tlsrpt: %s: reporting address "
				    "%.200s skipped (reports go by mail "
				    "only)", domain, tok);
				continue;
			}
			if (strncasecmp(tok, "mailto:", 7) != 0 ||
			    *n >= TLSRPT_RUA_MAX)
				continue;
			tok += 7;
			tok[strcspn(tok, "?")] = '\0';
			if (tok[0] == '\0' || strchr(tok, '@') == NULL ||
			    strlen(tok) >= sizeof(rua[0]) ||
			    strpbrk(tok, "<>\"\\") != NULL)
				continue;
			str_lcpy(rua[(*n)++], tok, sizeof(rua[0]));
		}
	}
	free(txt);
	/* RFC 8460 3: exactly one record counts. */
	if (found > 1)
		*n = 0;
	return *n > 0;
}

/* gzip (RFC 1952) of in.  0, or -1. */
static int
gzip_buf(const char *in, size_t len, unsigned char **out, size_t *outlen)
{
	z_stream z;
	uLong bound;

	memset(&z, 0, sizeof(z));
	/* 15 + 16: the largest window, with a gzip header and trailer. */
	if (len > UINT_MAX || deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED,
	    15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -1;
	bound = deflateBound(&z, (uLong)len);
	if ((*out = malloc(bound)) == NULL) {
		deflateEnd(&z);
		return -1;
	}
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)len;
	z.next_out = *out;
	z.avail_out = (uInt)bound;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
		deflateEnd(&z);
		free(*out);
		*out = NULL;
		return -1;
	}
	*outlen = z.total_out;
	deflateEnd(&z);
	return 0;
}

static int
iso_time(time_t t, char *buf, size_t len)
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return -1;
	return 0;
}

/* Queues one report mail to rcpt (RFC 8460 5.3).  0 or -1. */
static int
queue_report(struct rctx *c, const char *rcpt, const char *domain,
    time_t start, time_t end, const char *json, const char *report_id)
{
	struct envelope env;
	struct env_rcpt r = { rcpt, 0, NULL };
	struct spool_msg *m;
	struct str s;
	gnutls_datum_t in, b64 = { NULL, 0 };
	unsigned char *gz = NULL, rnd[8];
	char date[64], bound[40];
	size_t i, gzlen;
	int rc = -1;

	memset(&env, 0, sizeof(env));
	env.sender = c->sender;
	env.rcpts = &r;
	env.nrcpts = 1;
	env.protocol = "LOCAL";
	env.arrival = c->now;
	if (gnutls_rnd(GNUTLS_RND_NONCE, rnd, sizeof(rnd)) < 0)
		memset(rnd, 0, sizeof(rnd));
	snprintf(bound, sizeof(bound), "tlsrpt-%02x%02x%02x%02x%02x%02x",
	    rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
	if (gzip_buf(json, strlen(json), &gz, &gzlen) == -1) {
		snprintf(c->err, c->errlen, "cannot compress the report");
		return -1;
	}
	in.data = gz;
	in.size = (unsigned)gzlen;
	if (gnutls_base64_encode2(&in, &b64) < 0) {
		free(gz);
		snprintf(c->err, c->errlen, "out of memory");
		return -1;
	}
	free(gz);
	fs_rfc5322_date(date, sizeof(date), c->now);
	str_init(&s, TLSRPT_MAIL_MAX);
	/* The file name: sender!policy-domain!begin!end.json.gz (5.1). */
	if (str_appendf(&s, "From: <%s>\r\nTo: <%s>\r\nDate: %s\r\n"
	    "Message-ID: <%s>\r\n"
	    "Subject: Report Domain: %s Submitter: %s Report-ID: <%s>\r\n"
	    "TLS-Report-Domain: %s\r\nTLS-Report-Submitter: %s\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/report; report-type=\"tlsrpt\";\r\n"
	    "\tboundary=\"%s\"\r\n\r\n"
	    "--%s\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
	    "The TLS report of %s from %s is attached.\r\n\r\n"
	    "--%s\r\nContent-Type: application/tlsrpt+gzip\r\n"
	    "Content-Transfer-Encoding: base64\r\n"
	    "Content-Disposition: attachment;\r\n"
	    "\tfilename=\"%s!%s!%lld!%lld.json.gz\"\r\n\r\n",
	    c->sender, rcpt, date, report_id, domain, c->submitter, report_id,
	    domain, c->submitter, bound, bound, domain, c->org, bound,
	    c->submitter, domain, (long long)start, (long long)end) == -1)
		goto toolarge;
	for (i = 0; i < b64.size; i += 76)
		if (str_append(&s, b64.data + i, b64.size - i < 76 ?
		    b64.size - i : 76) == -1 || str_appends(&s, "\r\n") == -1)
			goto toolarge;
	if (str_appendf(&s, "\r\n--%s--\r\n", bound) == -1)
		goto toolarge;
	if ((m = spool_begin(c->sp, &env)) == NULL) {
		snprintf(c->err, c->errlen, "cannot queue the report: %s",
		    strerror(errno));
		goto done;
	}
	if (spool_write(m, str_cstr(&s), s.len) == -1) {
		snprintf(c->err, c->errlen, "cannot queue the report: %s",
		    strerror(errno));
		spool_abort(&m);
		goto done;
	}
	if (spool_commit(&m) == -1) {
		snprintf(c->err, c->errlen, "cannot queue the report: %s",
		    strerror(errno));
		goto done;
	}
	log_info("tlsrpt: report %s for %s queued to %s", report_id, domain,
	    rcpt);
	rc = 0;
	goto done;
toolarge:
	snprintf(c->err, c->errlen, "the report of %s is too large", domain);
done:
	str_free(&s);
	gnutls_free(b64.data);
	return rc;
}

/*
 * Reports daydir/.DOMAIN.sending (name) and removes it.  The reports
 * queued, or -1 (err set).  A DNS failure leaves the file for next time.
 */
static int
report_file(struct rctx *c, const char *daydir, const char *day,
    const char *name)
{
	char path[PATH_MAX], domain[DNS_NAME_MAX + 1], id[DNS_NAME_MAX * 2];
	char start_s[32], end_s[32];
	rua_t rua[TLSRPT_RUA_MAX];
	char *buf = NULL, *json = NULL;
	size_t len = 0, n = 0, i, dl;
	time_t start, end;
	ssize_t k;
	int fd, found, sent = 0;

	dl = strlen(name) - 1 - strlen(TLSRPT_SUFFIX);
	if (dl >= sizeof(domain))
		return 0;
	memcpy(domain, name + 1, dl);
	domain[dl] = '\0';
	if (!tlsrpt_valid_domain(domain) || parse_day(day, &start) == -1 ||
	    (size_t)snprintf(path, sizeof(path), "%s/%s", daydir, name) >=
	    sizeof(path))
		return 0;
	end = strcmp(day, c->today) == 0 ? c->now : start + 86399;
	found = find_rua(domain, rua, &n);
	if (found == -1) {
		log_warn("tlsrpt: %s: DNS lookup of _smtp._tls failed; the "
		    "report of %s waits for the next run", domain, day);
		return 0;
	}
	if (found == 1) {
		if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) ==
		    -1)
			return errno == ENOENT ? 0 : -1;
		if ((buf = malloc(TLSRPT_READ_MAX + 1)) == NULL) {
			close(fd);
			snprintf(c->err, c->errlen, "out of memory");
			return -1;
		}
		while (len < TLSRPT_READ_MAX && (k = read(fd, buf + len,
		    TLSRPT_READ_MAX - len)) > 0)
			len += (size_t)k;
		close(fd);
		snprintf(id, sizeof(id), "%s.%s.%lld@%s", day, domain,
		    (long long)c->now, c->submitter);
		if (iso_time(start, start_s, sizeof(start_s)) == -1 ||
		    iso_time(end, end_s, sizeof(end_s)) == -1 ||
		    tlsrpt_json(buf, len, domain, start_s, end_s, c->org,
		    c->sender, id, &json) == -1) {
			free(buf);
			snprintf(c->err, c->errlen, "cannot build the report");
			return -1;
		}
		free(buf);
		for (i = 0; i < n; i++) {
			if (queue_report(c, rua[i], domain, start, end, json,
			    id) == -1) {
				free(json);
				return -1;
			}
			sent++;
		}
		free(json);
	} else
		log_info("tlsrpt: %s publishes no mailto: reporting address; "
		    "its records of %s are dropped", domain, day);
	if (unlink(path) == -1 && errno != ENOENT) {
		snprintf(c->err, c->errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	return sent;
}

/* Every domain's records of one day.  The reports queued, or -1. */
static int
report_day(struct rctx *c, const char *dir, const char *day)
{
	char daydir[PATH_MAX], from[PATH_MAX], to[PATH_MAX];
	char name[DNS_NAME_MAX + 16];
	struct dirent *fe;
	size_t nl, sl = strlen(TLSRPT_SUFFIX);
	DIR *dd;
	int total = 0, r;

	if ((size_t)snprintf(daydir, sizeof(daydir), "%s/%s", dir, day) >=
	    sizeof(daydir))
		return 0;
	if ((dd = opendir(daydir)) == NULL)
		return 0;
	while ((fe = readdir(dd)) != NULL) {
		nl = strlen(fe->d_name);
		if (fe->d_name[0] == '.') {
			/* Left by an earlier run. */
			if (nl <= sl + 1 || strcmp(fe->d_name + nl - sl,
			    TLSRPT_SUFFIX) != 0)
				continue;
			str_lcpy(name, fe->d_name, sizeof(name));
		} else {
			if (nl > DNS_NAME_MAX)
				continue;
			snprintf(name, sizeof(name), ".%s%s", fe->d_name,
			    TLSRPT_SUFFIX);
			if ((size_t)snprintf(from, sizeof(from), "%s/%s",
			    daydir, fe->d_name) >= sizeof(from) ||
			    (size_t)snprintf(to, sizeof(to), "%s/%s", daydir,
			    name) >= sizeof(to))
				continue;
			/* A link fails when a .sending file is left: that
			 * one goes first, this one next time. */
			if (link(from, to) == -1)
				continue;
			(void)unlink(from);
		}
		if ((r = report_file(c, daydir, day, name)) == -1) {
			closedir(dd);
			return -1;
		}
		total += r;
	}
	closedir(dd);
	if (strcmp(day, c->today) != 0)
		(void)rmdir(daydir);	/* fails while a file is left */
	return total;
}

/* "YYYY-MM-DD" to the time of its midnight UTC.  0 or -1. */
static int
parse_day(const char *s, time_t *t)
{
	struct tm tm;
	const char *e;
	char back[16];

	memset(&tm, 0, sizeof(tm));
	if (strlen(s) != 10 || (e = strptime(s, "%Y-%m-%d", &tm)) == NULL ||
	    *e != '\0' || (*t = timegm(&tm)) == (time_t)-1 ||
	    tlsrpt_day_name(*t, back, sizeof(back)) == -1 ||
	    strcmp(back, s) != 0)
		return -1;	/* not a real day (2025-02-30) */
	return 0;
}

int
tlsrpt_run(const char *dir, struct spool *sp, const char *org,
    const char *sender, const char *day, int today, time_t now, char *err,
    size_t errlen)
{
	struct rctx c;
	char lock[PATH_MAX];
	struct dirent *de;
	const char *at;
	DIR *d;
	int total = 0, r, lfd;

	err[0] = '\0';
	memset(&c, 0, sizeof(c));
	c.sp = sp;
	c.org = org;
	c.sender = sender;
	c.submitter = (at = strrchr(sender, '@')) != NULL ? at + 1 : sender;
	c.now = now;
	c.err = err;
	c.errlen = errlen;
	if (tlsrpt_day_name(now, c.today, sizeof(c.today)) == -1)
		return -1;
	if ((size_t)snprintf(lock, sizeof(lock), "%s/.lock", dir) >=
	    sizeof(lock))
		return -1;
	if ((lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
	    0600)) == -1) {
		if (errno == ENOENT)
			return 0;	/* no records ever */
		snprintf(err, errlen, "%s: %s", lock, strerror(errno));
		return -1;
	}
	if (flock(lfd, LOCK_EX) == -1) {
		snprintf(err, errlen, "%s: %s", lock, strerror(errno));
		close(lfd);
		return -1;
	}
	if (day != NULL) {
		total = report_day(&c, dir, day);
		close(lfd);
		return total;
	}
	if ((d = opendir(dir)) == NULL) {
		close(lfd);
		return 0;
	}
	while ((de = readdir(d)) != NULL) {
		if (strlen(de->d_name) != 10 || de->d_name[4] != '-' ||
		    strspn(de->d_name, "0123456789-") != 10)
			continue;
		/* Today's counts are still growing. */
		r = strcmp(de->d_name, c.today);
		if (r > 0 || (r == 0 && !today))
			continue;
		if ((r = report_day(&c, dir, de->d_name)) == -1) {
			total = -1;
			break;
		}
		total += r;
	}
	closedir(d);
	close(lfd);
	return total;
}

void
tlsrpt_daily(struct spool *sp, const struct queue_conf *qc, time_t now)
{
	char dir[PATH_MAX], stamp[PATH_MAX], tmp[PATH_MAX + 8], today[16];
	char last[16], err[512];
	ssize_t k;
	int fd, n;

	if (qc->tlsrpt_from[0] == '\0' ||
	    tlsrpt_day_name(now, today, sizeof(today)) == -1 ||
	    (size_t)snprintf(dir, sizeof(dir), "%s/tlsrpt", qc->spool) >=
	    sizeof(dir) ||
	    (size_t)snprintf(stamp, sizeof(stamp), "%s/%s", dir,
	    TLSRPT_STAMP) >= sizeof(stamp))
		return;
	if ((fd = open(stamp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) != -1) {
		k = read(fd, last, sizeof(last) - 1);
		close(fd);
		last[k > 0 ? k : 0] = '\0';
		if (strcmp(last, today) == 0)
			return;		/* done today */
	}
	if (access(dir, F_OK) == -1)
		return;		/* nothing recorded yet */
	n = tlsrpt_run(dir, sp, qc->tlsrpt_org, qc->tlsrpt_from, NULL, 0,
	    now, err, sizeof(err));
	if (n == -1)
		log_err("tlsrpt: %s; the records wait for tomorrow", err);
	else
		log_info("tlsrpt: daily run, %d report%s queued", n,
		    n == 1 ? "" : "s");
	/* Once a day, failed or not: a broken spool is not hammered. */
	snprintf(tmp, sizeof(tmp), "%s.new", stamp);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
	    O_NOFOLLOW, 0600)) == -1)
		return;
	if (fs_write_all(fd, today, strlen(today)) == -1 || close(fd) == -1 ||
	    rename(tmp, stamp) == -1)
		(void)unlink(tmp);
}

int
tlsrpt_main(int argc, char **argv, const struct queue_conf *qc)
{
	struct spool *sp;
	char dir[PATH_MAX], err[512], today[16];
	const char *day = NULL;
	time_t now = time(NULL), t;
	int i, with_today = 0, n;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--now") == 0)
			with_today = 1;
		else if (strcmp(argv[i], "--day") == 0 && i + 1 < argc)
			day = argv[++i];
		else {
			fprintf(stderr, "usage: smtpq tlsrpt [--now] "
			    "[--day YYYY-MM-DD]\n");
			return EX_USAGE;
		}
	}
	if (qc->tlsrpt_from[0] == '\0') {
		fprintf(stderr, "smtpq: TLS reports are off: %s sets no "
		    "queue.tlsrpt\n", qc->file);
		return EX_CONFIG;
	}
	if (tlsrpt_day_name(now, today, sizeof(today)) == -1)
		return EX_SOFTWARE;
	if (day != NULL && (parse_day(day, &t) == -1 ||
	    strcmp(day, today) > 0)) {
		fprintf(stderr, "smtpq: --day %.40s: not a day up to today "
		    "(YYYY-MM-DD, UTC)\n", day);
		return EX_USAGE;
	}
	if ((size_t)snprintf(dir, sizeof(dir), "%s/tlsrpt", qc->spool) >=
	    sizeof(dir))
		return EX_SOFTWARE;
	if ((sp = spool_open(qc->spool, 0, err, sizeof(err))) == NULL) {
		fprintf(stderr, "smtpq: %s\n", err);
		return EX_CANTCREAT;
	}
	n = tlsrpt_run(dir, sp, qc->tlsrpt_org, qc->tlsrpt_from, day,
	    with_today, now, err, sizeof(err));
	spool_close(&sp);
	if (n == -1) {
		fprintf(stderr, "smtpq: tlsrpt: %s\n", err[0] != '\0' ? err :
		    strerror(errno));
		return EX_TEMPFAIL;
	}
	printf("%d TLS report%s queued\n", n, n == 1 ? "" : "s");
	return EX_OK;
}
