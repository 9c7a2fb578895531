/*
 * mtasts: MTA-STS policy discovery, fetch, cache and MX matching
 * (RFC 8461 3 and 5).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "lib/dns.h"
#include "lib/fsutil.h"
#include "lib/str.h"
#include "mtasts.h"

#define STS_TXT_RECORDS	8
#define STS_CACHE_MAX	(STS_BODY_MAX + 256)
#define STS_DEF_TIMEOUT	30	/* seconds */

struct sts_body {
	char	*buf;
	size_t	 len;
	int	 too_big;
};

static int	sts_find_txt(const char *, char *, size_t, int *);
static int	sts_fetch(const char *, const char *, unsigned, struct sts_body *,
		    const char **, char *, size_t);
static size_t	sts_write(char *, size_t, size_t, void *);
static int	sts_cache_path(const char *, const char *, char *, size_t);
static int	sts_cache_load(const char *, const char *, struct sts_policy *);
static void	sts_cache_store(const char *, const char *,
		    const struct sts_policy *, const char *, size_t);
static void	sts_curl_init(void);

static pthread_once_t	sts_curl_once = PTHREAD_ONCE_INIT;
static int		sts_curl_ok;

int
sts_pattern_match(const char *pattern, const char *host)
{
	size_t pl = strlen(pattern), hl = strlen(host);
	const char *dot;

	if (pl > 0 && pattern[pl - 1] == '.')
		pl--;
	if (hl > 0 && host[hl - 1] == '.')
		hl--;
	if (pl >= 2 && pattern[0] == '*' && pattern[1] == '.') {
		/* RFC 8461 4.1: the wildcard stands for one whole label. */
		if ((dot = memchr(host, '.', hl)) == NULL || dot == host)
			return 0;
		return (size_t)(host + hl - dot) == pl - 1 &&
		    strncasecmp(dot, pattern + 1, pl - 1) == 0;
	}
	return pl == hl && pl > 0 && strncasecmp(pattern, host, pl) == 0;
}

int
sts_mx_match(const struct sts_policy *p, const char *host)
{
	size_t i;

	for (i = 0; i < p->nmx; i++)
		if (sts_pattern_match(p->mx[i], host))
			return 1;
	return 0;
}

int
sts_txt_id(const char *txt, char *id, size_t idlen)
{
	const char *s = txt, *e;
	size_t n;
	int have_id = 0;

	/* RFC 8461 3.1: "v=STSv1" first, then fields split by ";". */
	if (strncmp(s, "v=STSv1", 7) != 0 ||
	    (s[7] != ';' && s[7] != ' ' && s[7] != '\t' && s[7] != '\0'))
		return -1;
	s += 7;
	while (*s != '\0') {
		while (*s == ';' || *s == ' ' || *s == '\t')
			s++;
		if (*s == '\0')
			break;
		e = s + strcspn(s, ";");
		if (strncmp(s, "id=", 3) == 0) {
			s += 3;
			for (n = 0; s + n < e && isalnum((unsigned char)s[n]);
			    n++)
				;
			/* Only blanks may follow the id. */
			if (n == 0 || n > STS_ID_MAX || n >= idlen ||
			    s + n + strspn(s + n, " \t") != e)
				return -1;
			memcpy(id, s, n);
			id[n] = '\0';
			have_id = 1;
		}
		s = e;
	}
	return have_id ? 0 : -1;
}

int
sts_parse(const char *text, size_t len, struct sts_policy *p, char *err,
    size_t errlen)
{
	const char *s = text, *end = text + len, *nl, *colon, *v;
	size_t kl, vl, tl = 0;
	int have_version = 0, have_mode = 0, have_age = 0;
	char num[16];

	memset(p, 0, sizeof(*p));
	while (s < end) {
		nl = memchr(s, '\n', (size_t)(end - s));
		if (nl == NULL)
			nl = end;
		vl = (size_t)(nl - s);
		while (vl > 0 && (s[vl - 1] == '\r' || s[vl - 1] == ' ' ||
		    s[vl - 1] == '\t'))
			vl--;
		if (vl == 0) {
			s = nl + 1;
			continue;
		}
		if ((colon = memchr(s, ':', vl)) == NULL) {
			snprintf(err, errlen, "a line without \":\"");
			return -1;
		}
		kl = (size_t)(colon - s);
		v = colon + 1;
		while (v < s + vl && (*v == ' ' || *v == '\t'))
			v++;
		vl = (size_t)(s + vl - v);
#define KEY(k)	(kl == sizeof(k) - 1 && strncmp(s, k, kl) == 0)
#define VAL(x)	(vl == sizeof(x) - 1 && strncmp(v, x, vl) == 0)
		if (KEY("version")) {
			if (!VAL("STSv1")) {
				snprintf(err, errlen, "version is not STSv1");
				return -1;
			}
			have_version = 1;
		} else if (KEY("mode")) {
			if (VAL("enforce"))
				p->mode = STS_MODE_ENFORCE;
			else if (VAL("testing"))
				p->mode = STS_MODE_TESTING;
			else if (VAL("none"))
				p->mode = STS_MODE_NONE;
			else {
				snprintf(err, errlen, "unknown mode");
				return -1;
			}
			have_mode = 1;
		} else if (KEY("max_age")) {
			if (vl == 0 || vl > 10 || vl >= sizeof(num)) {
				snprintf(err, errlen, "bad max_age");
				return -1;
			}
			/* Copied first: the body need not end in a NUL. */
			memcpy(num, v, vl);
			num[vl] = '\0';
			if (strspn(num, "0123456789") < vl) {
				snprintf(err, errlen, "bad max_age");
				return -1;
			}
			p->max_age = strtoul(num, NULL, 10);
			if (p->max_age > STS_MAX_AGE_MAX)
				p->max_age = STS_MAX_AGE_MAX;
			have_age = 1;
		} else if (KEY("mx")) {
			if (vl == 0 || vl > DNS_NAME_MAX) {
				snprintf(err, errlen, "bad mx");
				return -1;
			}
			if (p->nmx < STS_MX_MAX) {
				memcpy(p->mx[p->nmx], v, vl);
				p->mx[p->nmx][vl] = '\0';
				p->nmx++;
			}
		}
		/* Other keys are extensions: ignored (RFC 8461 3.2). */
#undef KEY
#undef VAL
		if (tl + (size_t)(v + vl - s) + 2 < sizeof(p->text)) {
			memcpy(p->text + tl, s, (size_t)(v + vl - s));
			tl += (size_t)(v + vl - s);
			p->text[tl++] = '\n';
			p->text[tl] = '\0';
		}
		s = nl + 1;
	}
	if (tl > 0)
		p->text[tl - 1] = '\0';
	if (!have_version || !have_mode || !have_age) {
		snprintf(err, errlen, "version, mode or max_age missing");
		return -1;
	}
	if (p->mode != STS_MODE_NONE && p->nmx == 0) {
		snprintf(err, errlen, "no mx");
		return -1;
	}
	return 0;
}

/*
 * The TXT record's id.  1 one v=STSv1 record (id set), 0 none, -1 the
 * lookup failed (*temp) or the records are unusable.
 */
static int
sts_find_txt(const char *domain, char *id, size_t idlen, int *temp)
{
	char (*txt)[DNS_TXT_MAX];
	char name[DNS_NAME_MAX + 16];
	enum dns_status st;
	size_t n, i, found = 0;
	int r;

	*temp = 0;
	r = snprintf(name, sizeof(name), "_mta-sts.%s", domain);
	if (r < 0 || (size_t)r >= sizeof(name))
		return 0;
	if ((txt = calloc(STS_TXT_RECORDS, sizeof(*txt))) == NULL) {
		*temp = 1;
		return -1;
	}
	st = dns_txt(name, txt, STS_TXT_RECORDS, &n);
	if (st == DNS_TEMPFAIL) {
		free(txt);
		*temp = 1;
		return -1;
	}
	for (i = 0; st == DNS_OK && i < n; i++) {
		if (strncmp(txt[i], "v=STSv1", 7) != 0)
			continue;
		found++;
		if (sts_txt_id(txt[i], id, idlen) == -1)
			found = 99;
	}
	free(txt);
	/* RFC 8461 3.1: more than one record, or a bad one: no policy. */
	if (found == 0)
		return 0;
	return found == 1 ? 1 : -1;
}

static void
sts_curl_init(void)
{
	sts_curl_ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

static size_t
sts_write(char *data, size_t size, size_t nmemb, void *arg)
{
	struct sts_body *b = arg;
	size_t n = size * nmemb;

	if (n > STS_BODY_MAX - b->len) {
		b->too_big = 1;
		return 0;	/* makes curl stop with an error */
	}
	memcpy(b->buf + b->len, data, n);
	b->len += n;
	return n;
}

/* GET the policy.  0, or -1 with *failure and note set. */
static int
sts_fetch(const char *domain, const char *cafile, unsigned timeout,
    struct sts_body *b, const char **failure, char *note, size_t notelen)
{
	char url[DNS_NAME_MAX + 64], cerr[CURL_ERROR_SIZE];
	char *ctype = NULL;
	CURL *h;
	CURLcode r;
	long code = 0;
	int rc = -1;

	*failure = "sts-policy-fetch-error";
	if (pthread_once(&sts_curl_once, sts_curl_init) != 0 || !sts_curl_ok) {
		snprintf(note, notelen, "cannot start libcurl");
		return -1;
	}
	if ((size_t)snprintf(url, sizeof(url),
	    "https://mta-sts.%s/.well-known/mta-sts.txt", domain) >=
	    sizeof(url)) {
		snprintf(note, notelen, "domain name too long");
		return -1;
	}
	if ((h = curl_easy_init()) == NULL) {
		snprintf(note, notelen, "out of memory");
		return -1;
	}
	cerr[0] = '\0';
	b->len = 0;
	b->too_big = 0;
	if (curl_easy_setopt(h, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https") != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)timeout) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE,
	    (curl_off_t)STS_BODY_MAX) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sts_write) !=
	    CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_WRITEDATA, b) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_USERAGENT, "upas-smtpd") != CURLE_OK ||
	    (cafile != NULL && curl_easy_setopt(h, CURLOPT_CAINFO, cafile) !=
	    CURLE_OK)) {
		snprintf(note, notelen, "cannot set up the fetch");
		goto out;
	}
	r = curl_easy_perform(h);
	if (r != CURLE_OK) {
		if (r == CURLE_PEER_FAILED_VERIFICATION ||
		    r == CURLE_SSL_CACERT_BADFILE)
			*failure = "sts-webpki-invalid";
		snprintf(note, notelen, "%s: %s", url, b->too_big ?
		    "the policy is larger than 64 KiB" : cerr[0] != '\0' ?
		    cerr : curl_easy_strerror(r));
		goto out;
	}
	(void)curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	(void)curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ctype);
	/* RFC 8461 3.3: a 200 of text/plain, redirects not followed. */
	if (code != 200) {
		snprintf(note, notelen, "%s: HTTP status %ld", url, code);
		goto out;
	}
	if (ctype == NULL || strncasecmp(ctype, "text/plain", 10) != 0 ||
	    (ctype[10] != '\0' && ctype[10] != ';' && ctype[10] != ' ')) {
		*failure = "sts-policy-invalid";
		snprintf(note, notelen, "%s: media type %s, not text/plain",
		    url, ctype != NULL ? ctype : "missing");
		goto out;
	}
	rc = 0;
out:
	curl_easy_cleanup(h);
	return rc;
}

static int
sts_cache_path(const char *dir, const char *domain, char *path, size_t len)
{
	size_t i;
	int r;

	/* The domain names a file: host name characters only. */
	if (domain[0] == '\0' || domain[0] == '.')
		return -1;
	for (i = 0; domain[i] != '\0'; i++)
		if (!isalnum((unsigned char)domain[i]) && domain[i] != '-' &&
		    domain[i] != '.')
			return -1;
	r = snprintf(path, len, "%s/%s", dir, domain);
	return r < 0 || (size_t)r >= len ? -1 : 0;
}

/* A cached policy ("id ID\nfetched T\n" and the body).  0 or -1. */
static int
sts_cache_load(const char *dir, const char *domain, struct sts_policy *p)
{
	char path[4096], err[128], *buf, *body, id[STS_ID_MAX + 1];
	long long fetched;
	ssize_t n;
	size_t len = 0;
	int fd, rc = -1;

	if (dir == NULL || sts_cache_path(dir, domain, path,
	    sizeof(path)) == -1)
		return -1;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return -1;
	if ((buf = malloc(STS_CACHE_MAX + 1)) == NULL) {
		close(fd);
		return -1;
	}
	while (len < STS_CACHE_MAX && (n = read(fd, buf + len,
	    STS_CACHE_MAX - len)) > 0)
		len += (size_t)n;
	close(fd);
	buf[len] = '\0';
	if (sscanf(buf, "id %32[A-Za-z0-9]\nfetched %lld\n", id,
	    &fetched) != 2)
		goto out;
	if ((body = strchr(buf, '\n')) == NULL ||
	    (body = strchr(body + 1, '\n')) == NULL)
		goto out;
	body++;
	if (sts_parse(body, len - (size_t)(body - buf), p, err,
	    sizeof(err)) == -1)
		goto out;
	str_lcpy(p->id, id, sizeof(p->id));
	p->fetched = (time_t)fetched;
	rc = 0;
out:
	free(buf);
	return rc;
}

static void
sts_cache_store(const char *dir, const char *domain,
    const struct sts_policy *p, const char *body, size_t len)
{
	char path[4096], tmp[4200], head[128];
	int n, fd;

	if (dir == NULL || sts_cache_path(dir, domain, path,
	    sizeof(path)) == -1)
		return;
	n = snprintf(head, sizeof(head), "id %s\nfetched %lld\n", p->id,
	    (long long)p->fetched);
	if (n < 0 || (size_t)n >= sizeof(head) ||
	    (size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >=
	    sizeof(tmp))
		return;
	/* Best effort: without a cache the policy is fetched again.  A
	 * rename, so that a reader sees the old file or the whole new one. */
	(void)fs_mkdirs(dir, 0700);
	if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1)
		return;
	if (fs_write_all(fd, head, (size_t)n) == -1 ||
	    fs_write_all(fd, body, len) == -1) {
		(void)close(fd);
		(void)unlink(tmp);
		return;
	}
	if (close(fd) == -1 || rename(tmp, path) == -1)
		(void)unlink(tmp);
}

int
sts_lookup(const char *domain, const char *cachedir, const char *cafile,
    unsigned timeout, struct sts_policy *p, const char **failure,
    char *note, size_t notelen)
{
	struct sts_policy cached;
	struct sts_body b;
	char id[STS_ID_MAX + 1], err[128];
	time_t now = time(NULL);
	int have_cache, txt, temp;

	*failure = NULL;
	note[0] = '\0';
	have_cache = sts_cache_load(cachedir, domain, &cached) == 0 &&
	    now >= cached.fetched &&
	    (unsigned long)(now - cached.fetched) < cached.max_age;
	txt = sts_find_txt(domain, id, sizeof(id), &temp);
	/* RFC 8461 5.1: a live cached policy stands while the record is
	 * missing or names it. */
	if (have_cache && (txt != 1 || strcmp(id, cached.id) == 0)) {
		*p = cached;
		return 1;
	}
	if (txt != 1) {
		if (txt == -1 && !temp) {
			*failure = "sts-policy-invalid";
			snprintf(note, notelen, "_mta-sts.%s: not one valid "
			    "v=STSv1 record", domain);
		}
		return 0;
	}
	if ((b.buf = malloc(STS_BODY_MAX)) == NULL) {
		*failure = "sts-policy-fetch-error";
		snprintf(note, notelen, "out of memory");
		return have_cache ? (*p = cached, 1) : 0;
	}
	if (sts_fetch(domain, cafile, timeout > 0 ? timeout :
	    STS_DEF_TIMEOUT, &b, failure, note, notelen) == -1) {
		free(b.buf);
		return have_cache ? (*p = cached, 1) : 0;
	}
	if (sts_parse(b.buf, b.len, p, err, sizeof(err)) == -1) {
		*failure = "sts-policy-invalid";
		snprintf(note, notelen, "mta-sts.%s policy: %s", domain, err);
		free(b.buf);
		return have_cache ? (*p = cached, 1) : 0;
	}
	/* Fetched and valid: no failure to report. */
	*failure = NULL;
	str_lcpy(p->id, id, sizeof(p->id));
	p->fetched = now;
	sts_cache_store(cachedir, domain, p, b.buf, b.len);
	free(b.buf);
	return 1;
}
