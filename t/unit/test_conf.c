#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libconfig.h>

#include "lib/conf.h"
#include "lib/net.h"
#include "tests.h"

static char	 path[64];
static config_t	 cf;
static char	 err[512];
static struct conf_ctx cx = { path, err, sizeof(err) };

/* Writes text to a temporary file and reads it into cf. */
static config_setting_t *
read_text(const char *text)
{
	int have = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/tmp/test-conf-XXXXXX");
	close(mkstemp(path));
	f = fopen(path, "w");
	CU_ASSERT_FATAL(f != NULL);
	fputs(text, f);
	fclose(f);
	err[0] = '\0';
	config_init(&cf);
	CU_ASSERT_FATAL(conf_read(&cf, path, 0, &have, err,
	    sizeof(err)) == 0);
	CU_ASSERT(have == 1);
	return config_root_setting(&cf);
}

static void
done(void)
{
	config_destroy(&cf);
	unlink(path);
}

/* The error begins "path:line: " and holds what. */
static void
expect_err(int line, const char *what)
{
	char want[128];

	snprintf(want, sizeof(want), "%s:%d: ", path, line);
	if (strncmp(err, want, strlen(want)) != 0 || strstr(err, what) == NULL)
		fprintf(stderr, "\ngot \"%s\", want \"%s...%s\"\n", err, want,
		    what);
	CU_ASSERT_EQUAL(strncmp(err, want, strlen(want)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, what));
}

static void
test_parse_duration(void)
{
	unsigned int v = 0;

	CU_ASSERT(conf_parse_duration("90", &v) == 0 && v == 90);
	CU_ASSERT(conf_parse_duration("90s", &v) == 0 && v == 90);
	CU_ASSERT(conf_parse_duration("5m", &v) == 0 && v == 300);
	CU_ASSERT(conf_parse_duration("5M", &v) == 0 && v == 300);
	CU_ASSERT(conf_parse_duration("2h", &v) == 0 && v == 7200);
	CU_ASSERT(conf_parse_duration("1d", &v) == 0 && v == 86400);
	CU_ASSERT(conf_parse_duration("1w", &v) == 0 && v == 604800);
	CU_ASSERT(conf_parse_duration("0", &v) == 0 && v == 0);
	CU_ASSERT_EQUAL(conf_parse_duration("", &v), -1);
	CU_ASSERT_EQUAL(conf_parse_duration("m", &v), -1);
	CU_ASSERT_EQUAL(conf_parse_duration("-5", &v), -1);
	CU_ASSERT_EQUAL(conf_parse_duration("5 m", &v), -1);
	CU_ASSERT_EQUAL(conf_parse_duration("5mm", &v), -1);
	CU_ASSERT_EQUAL(conf_parse_duration("5x", &v), -1);
	CU_ASSERT_EQUAL(conf_parse_duration("99999999999", &v), -1);
	CU_ASSERT_EQUAL(conf_parse_duration("9999999w", &v), -1);
}

/* Ages in listings: whole units, rounded down, each unit's edges. */
static void
test_format_age(void)
{
	static const struct {
		long long	 secs;
		const char	*want;
	} cases[] = {
		{ -5, "0s" }, { 0, "0s" }, { 119, "119s" }, { 120, "2m" },
		{ 7199, "119m" }, { 7200, "2h" }, { 2 * 86400 - 1, "47h" },
		{ 2 * 86400, "2d" }, { 400 * 86400 + 5, "400d" },
	};
	char buf[16];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		conf_format_age(buf, sizeof(buf), cases[i].secs);
		CU_ASSERT_STRING_EQUAL(buf, cases[i].want);
	}
	conf_format_age(buf, 3, 7199);
	CU_ASSERT_STRING_EQUAL(buf, "11");
}

static void
test_parse_size(void)
{
	unsigned long long v = 0;

	CU_ASSERT(conf_parse_size("1000", &v) == 0 && v == 1000);
	CU_ASSERT(conf_parse_size("64k", &v) == 0 && v == 65536);
	CU_ASSERT(conf_parse_size("64K", &v) == 0 && v == 65536);
	CU_ASSERT(conf_parse_size("10m", &v) == 0 && v == 10485760);
	CU_ASSERT(conf_parse_size("1g", &v) == 0 && v == 1073741824);
	CU_ASSERT_EQUAL(conf_parse_size("", &v), -1);
	CU_ASSERT_EQUAL(conf_parse_size("k", &v), -1);
	CU_ASSERT_EQUAL(conf_parse_size("1t", &v), -1);
	CU_ASSERT_EQUAL(conf_parse_size("1kb", &v), -1);
	CU_ASSERT_EQUAL(conf_parse_size("1.5m", &v), -1);
	CU_ASSERT_EQUAL(conf_parse_size("99999999999999999999", &v), -1);
}

static void
test_get_duration(void)
{
	config_setting_t *root = read_text(
	    "a = 30;\n"
	    "b = \"5m\";\n"
	    "g = {\n"
	    "  c = \"2h\";\n"
	    "  d = \"5 minutes\";\n"
	    "  e = true;\n"
	    "};\n");
	config_setting_t *g = config_setting_get_member(root, "g");
	unsigned int v = 7;

	CU_ASSERT(conf_get_duration(&cx, root, "a", 1, 3600, &v) == 0 &&
	    v == 30);
	CU_ASSERT(conf_get_duration(&cx, root, "b", 1, 3600, &v) == 0 &&
	    v == 300);
	v = 7;
	CU_ASSERT(conf_get_duration(&cx, root, "none", 1, 3600, &v) == 0 &&
	    v == 7);
	CU_ASSERT_EQUAL(conf_get_duration(&cx, g, "c", 1, 3600, &v), -1);
	expect_err(4, "between 1 and 3600 seconds");
	CU_ASSERT_EQUAL(conf_get_duration(&cx, g, "d", 1, 3600, &v), -1);
	expect_err(5, "is not a duration");
	CU_ASSERT_EQUAL(conf_get_duration(&cx, g, "e", 1, 3600, &v), -1);
	expect_err(6, "must be a duration");
	CU_ASSERT(v == 7);
	done();
}

static void
test_get_size(void)
{
	config_setting_t *root = read_text(
	    "a = 1000;\n"
	    "b = \"10m\";\n"
	    "c = \"2g\";\n"
	    "d = \"ten\";\n"
	    "e = -1;\n");
	size_t v = 0;

	CU_ASSERT(conf_get_size(&cx, root, "a", 0, 1 << 30, &v) == 0 &&
	    v == 1000);
	CU_ASSERT(conf_get_size(&cx, root, "b", 0, 1 << 30, &v) == 0 &&
	    v == 10485760);
	CU_ASSERT_EQUAL(conf_get_size(&cx, root, "c", 0, 1 << 30, &v), -1);
	expect_err(3, "between 0 and 1073741824 bytes");
	CU_ASSERT_EQUAL(conf_get_size(&cx, root, "d", 0, 1 << 30, &v), -1);
	expect_err(4, "is not a size");
	CU_ASSERT_EQUAL(conf_get_size(&cx, root, "e", 0, 1 << 30, &v), -1);
	expect_err(5, "bytes");
	done();
}

static void
test_keys_and_kinds(void)
{
	static const char *const known[] = { "s", "n", "b", "deep", NULL };
	static const char *const deep_known[] = { "x", NULL };
	config_setting_t *root = read_text(
	    "s = \"text\";\n"
	    "n = 5;\n"
	    "b = true;\n"
	    "deep = {\n"
	    "  x = 1;\n"
	    "\n"
	    "  colour = \"red\";\n"
	    "};\n");
	config_setting_t *deep = config_setting_get_member(root, "deep");
	const char *s = NULL;
	unsigned int n = 0;
	int b = 0;

	CU_ASSERT_EQUAL(conf_check_keys(&cx, root, known, NULL), 0);
	CU_ASSERT_EQUAL(conf_check_keys(&cx, deep, deep_known, "deep"), -1);
	expect_err(7, "unknown setting \"colour\" in deep");
	CU_ASSERT(conf_get_string(&cx, root, "s", &s) == 0 &&
	    strcmp(s, "text") == 0);
	CU_ASSERT(conf_get_uint(&cx, root, "n", 1, 10, &n) == 0 && n == 5);
	CU_ASSERT(conf_get_bool(&cx, root, "b", &b) == 0 && b == 1);
	CU_ASSERT_EQUAL(conf_get_string(&cx, root, "n", &s), -1);
	expect_err(2, "must be a string");
	CU_ASSERT_EQUAL(conf_get_uint(&cx, root, "n", 6, 10, &n), -1);
	expect_err(2, "between 6 and 10");
	CU_ASSERT_EQUAL(conf_get_bool(&cx, root, "s", &b), -1);
	expect_err(1, "true or false");
	done();
}

/* The last element of a list spread over lines is named by its own line. */
static void
test_list_lines(void)
{
	config_setting_t *root = read_text(
	    "l = (\n"
	    "  \"a\",\n"
	    "  \"b\",\n"
	    "  5\n"
	    ");\n"
	    "m = [\n"
	    "  \"a\",\n"
	    "  \"bad\"\n"
	    "];\n"
	    "e = [ ];\n");
	config_setting_t *m = config_setting_get_member(root, "m");
	char **v = NULL;
	size_t n = 0;

	CU_ASSERT_EQUAL(conf_get_strings(&cx, root, "l", &v, &n, 10), -1);
	CU_ASSERT_PTR_NULL(v);
	expect_err(4, "entries must be strings");
	CU_ASSERT_EQUAL(conf_err(&cx, config_setting_get_elem(m, 1), "%s",
	    "no"), -1);
	expect_err(8, "no");
	CU_ASSERT(conf_get_strings(&cx, root, "m", &v, &n, 10) == 0 &&
	    n == 2 && strcmp(v[1], "bad") == 0 && v[2] == NULL);
	conf_free_strings(&v, n);
	CU_ASSERT_PTR_NULL(v);
	CU_ASSERT_EQUAL(conf_get_strings(&cx, root, "m", &v, &n, 1), -1);
	expect_err(6, "more than 1");
	CU_ASSERT(!conf_empty_list(root, "m"));
	CU_ASSERT(!conf_empty_list(root, "none"));
	CU_ASSERT(conf_empty_list(root, "e"));
	CU_ASSERT_EQUAL(conf_get_strings(&cx, root, "e", &v, &n, 10), -1);
	expect_err(10, "must not be empty");
	/* An error about one entry names that entry's line. */
	CU_ASSERT_EQUAL(conf_err(&cx, conf_entry(root, "m", 1), "bad"), -1);
	expect_err(8, "bad");
	CU_ASSERT_EQUAL(conf_err(&cx, conf_entry(root, "m", 0), "bad"), -1);
	expect_err(7, "bad");
	done();
}

static void
test_read_errors(void)
{
	char e[256];
	int have = 1;

	config_init(&cf);
	CU_ASSERT_EQUAL(conf_read(&cf, "/nonexistent/smtpd.conf", 1, &have, e,
	    sizeof(e)), 0);
	CU_ASSERT_EQUAL(have, 0);
	CU_ASSERT_EQUAL(conf_read(&cf, "/nonexistent/smtpd.conf", 0, &have, e,
	    sizeof(e)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(e, "/nonexistent/smtpd.conf: "));
	config_destroy(&cf);
	snprintf(path, sizeof(path), "/tmp/test-conf-XXXXXX");
	close(mkstemp(path));
	{
		FILE *f = fopen(path, "w");

		CU_ASSERT_FATAL(f != NULL);
		fputs("a = 1;\n\nb = = 2;\n", f);
		fclose(f);
	}
	config_init(&cf);
	CU_ASSERT_EQUAL(conf_read(&cf, path, 0, &have, err, sizeof(err)), -1);
	expect_err(3, "");
	done();
}

static void
test_paths_and_host(void)
{
	char dst[256], host[256];

	CU_ASSERT(conf_path("/etc/x/smtpd.conf", "/abs", dst,
	    sizeof(dst)) == 0 && strcmp(dst, "/abs") == 0);
	CU_ASSERT(conf_path("/tmp/smtpd.conf", "certs/a.pem", dst,
	    sizeof(dst)) == 0 && strcmp(dst, "/tmp/certs/a.pem") == 0);
	net_host_name(host, sizeof(host));
	CU_ASSERT(host[0] != '\0');
	CU_ASSERT_PTR_NOT_NULL(conf_default_spool());
	CU_ASSERT(conf_default_spool()[0] == '/');
}

int
suite_conf(void)
{
	CU_pSuite s = CU_add_suite("conf", NULL, NULL);

	if (s == NULL ||
	    CU_add_test(s, "durations parse", test_parse_duration) == NULL ||
	    CU_add_test(s, "ages formatted", test_format_age) == NULL ||
	    CU_add_test(s, "sizes parse", test_parse_size) == NULL ||
	    CU_add_test(s, "duration settings", test_get_duration) == NULL ||
	    CU_add_test(s, "size settings", test_get_size) == NULL ||
	    CU_add_test(s, "keys and kinds", test_keys_and_kinds) == NULL ||
	    CU_add_test(s, "list element lines", test_list_lines) == NULL ||
	    CU_add_test(s, "read errors", test_read_errors) == NULL ||
	    CU_add_test(s, "paths and host name",
	    test_paths_and_host) == NULL)
		return -1;
	return 0;
}
