#include "config.h"

#include <sys/stat.h>

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/secrets.h"
#include "tests.h"
#include "testutil.h"

/* crypt(3) hashes of "secret", made once with libcrypt. */
#define HASH_SHA512	"$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0a" \
	"Dehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1"
#define HASH_YESCRYPT	"$y$j9T$5Qk/5Qk/5Qk/5Qk/5Qk/5.$" \
	"9rR10FPKSrCRbrmZKDJuH1yR1vhIigIObWy9gGTKKKB"

static char	dir[PATH_MAX];
static char	file[PATH_MAX];

static int
setup(void)
{
	if (tu_mkdtemp(dir, sizeof(dir)) == -1)
		return -1;
	tu_path(file, sizeof(file), dir, "secrets");
	return 0;
}

static int
teardown(void)
{
	tu_rmtree(dir);
	return 0;
}

/* Writes text to the test file (mode 0600) and loads it. */
static struct secrets *
load_text(const char *text, char *err, size_t errlen)
{
	err[0] = '\0';
	if (tu_write_file(file, text, (size_t)-1, 0600) == -1)
		return NULL;
	return secrets_load(file, err, errlen);
}

static const char *
stname(enum secrets_status st)
{
	return st == SECRETS_OK ? "OK" : st == SECRETS_FAIL ? "FAIL" :
	    "TEMPFAIL";
}

static void
test_good_file(void)
{
	static const char text[] =
	    "# accounts\n"
	    "\n"
	    "alice:{PLAIN}wonder land\n"
	    "bob:{CRYPT}" HASH_SHA512 "\n"
	    "carol:{crypt}" HASH_YESCRYPT "\r\n"
	    "dave@example.com:{plain}p:a:s:s";	/* no final LF */
	static const struct {
		const char	*user, *pass;
		enum secrets_status want;
	} rows[] = {
		{ "alice", "wonder land", SECRETS_OK },
		{ "alice", "wonder land ", SECRETS_FAIL },
		{ "alice", "wonder", SECRETS_FAIL },
		{ "alice", "", SECRETS_FAIL },
		{ "Alice", "wonder land", SECRETS_FAIL },
		{ "bob", "secret", SECRETS_OK },
		{ "bob", "Secret", SECRETS_FAIL },
		{ "carol", "secret", SECRETS_OK },
		{ "carol", "secret2", SECRETS_FAIL },
		{ "dave@example.com", "p:a:s:s", SECRETS_OK },
		{ "dave", "p:a:s:s", SECRETS_FAIL },
		{ "nobody", "secret", SECRETS_FAIL },
		{ "", "secret", SECRETS_FAIL },
	};
	struct secrets *t;
	enum secrets_status st;
	char err[512];
	size_t i;

	t = load_text(text, err, sizeof(err));
	TU_CHECK(t != NULL, "load: %s", err);
	if (t == NULL)
		return;
	TU_CHECK(secrets_count(t) == 4, "count: got %zu, want 4",
	    secrets_count(t));
	CU_ASSERT_STRING_EQUAL(secrets_path(t), file);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		st = secrets_verify(t, rows[i].user, rows[i].pass,
		    strlen(rows[i].pass));
		TU_CHECK(st == rows[i].want, "verify(%s, %s): got %s, want %s",
		    rows[i].user, rows[i].pass, stname(st),
		    stname(rows[i].want));
	}
	CU_ASSERT_EQUAL(secrets_verify(t, NULL, "x", 1), SECRETS_FAIL);
	CU_ASSERT_EQUAL(secrets_any_clear(t), 1);
	secrets_unref(&t);
	CU_ASSERT_PTR_NULL(t);
}

static void
test_password_bytes(void)
{
	struct secrets *t;
	char err[512], big[SECRETS_PASS_MAX + 2];

	t = load_text("u:{PLAIN}abc\nv:{CRYPT}" HASH_SHA512 "\n", err,
	    sizeof(err));
	TU_CHECK(t != NULL, "load: %s", err);
	if (t == NULL)
		return;
	/* The length counts, not a C string: no NUL tricks. */
	CU_ASSERT_EQUAL(secrets_verify(t, "u", "abc\0", 4), SECRETS_FAIL);
	CU_ASSERT_EQUAL(secrets_verify(t, "u", "abcd", 3), SECRETS_OK);
	CU_ASSERT_EQUAL(secrets_verify(t, "v", "secret\0x", 8), SECRETS_FAIL);
	CU_ASSERT_EQUAL(secrets_verify(t, "v", "secretXYZ", 6), SECRETS_OK);
	memset(big, 'a', sizeof(big));
	CU_ASSERT_EQUAL(secrets_verify(t, "u", big, sizeof(big)),
	    SECRETS_FAIL);
	CU_ASSERT_EQUAL(secrets_verify(t, "v", big, sizeof(big)),
	    SECRETS_FAIL);
	CU_ASSERT_EQUAL(secrets_verify(NULL, "u", "abc", 3),
	    SECRETS_TEMPFAIL);
	secrets_unref(&t);
}

static void
test_bad_files(void)
{
	static const struct {
		const char	*text;
		const char	*want;	/* after "file:" */
	} rows[] = {
		{ "alice\n", "1: expected user:{SCHEME}secret" },
		{ "# c\nal ice:{PLAIN}x\n", "2: bad user name" },
		{ "  # indented\n", "1: expected user:{SCHEME}" },
		{ "  # a:b\n", "1: bad user name" },
		{ ":{PLAIN}x\n", "1: bad user name" },
		{ "a\tb:{PLAIN}x\n", "1: bad user name" },
		{ "alice:secret\n", "1: missing {SCHEME}" },
		{ "alice:{PLAIN\n", "1: missing {SCHEME}" },
		{ "alice:\n", "1: missing {SCHEME}" },
		{ "alice:{MD5}x\n", "1: unknown scheme {MD5}" },
		{ "alice:{PLAIN}\n", "1: empty secret" },
		{ "alice:{PLAIN}\r\n", "1: empty secret" },
		{ "alice:{CRYPT}$9$nonsense\n", "1: not a crypt(3) hash" },
		{ "alice:{CRYPT}!" HASH_SHA512 "\n", "1: not a crypt(3) hash" },
		{ "alice:{CRYPT}$6$a b\n", "1: not a crypt(3) hash" },
		{ "a:{PLAIN}x\nb:{PLAIN}y\n\na:{PLAIN}z\n",
		    "4: user already defined on line 1" },
	};
	struct secrets *t;
	char err[512], want[PATH_MAX + 100];
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		t = load_text(rows[i].text, err, sizeof(err));
		TU_CHECK(t == NULL, "row %zu loaded", i);
		secrets_unref(&t);
		snprintf(want, sizeof(want), "%s:%s", file, rows[i].want);
		TU_CHECK(strncmp(err, want, strlen(want)) == 0,
		    "row %zu: got \"%s\", want \"%s...\"", i, err, want);
	}
}

static void
test_bad_bytes_and_sizes(void)
{
	struct secrets *t;
	char err[512], want[PATH_MAX + 100], *text;
	size_t n, i;
	int fd;

	/* A NUL inside a line. */
	CU_ASSERT_EQUAL(tu_write_file(file, "a:{PLAIN}x\nb:{PLAIN}y\0z\n", 24,
	    0600), 0);
	t = secrets_load(file, err, sizeof(err));
	CU_ASSERT_PTR_NULL(t);
	snprintf(want, sizeof(want), "%s:2: NUL byte", file);
	TU_CHECK(strcmp(err, want) == 0, "got \"%s\", want \"%s\"", err,
	    want);

	/* One byte over the line limit. */
	n = SECRETS_LINE_MAX + 1;
	text = malloc(n + 2);
	memcpy(text, "a:{PLAIN}", 9);
	memset(text + 9, 'x', n - 9);
	text[n] = '\n';
	text[n + 1] = '\0';
	t = load_text(text, err, sizeof(err));
	CU_ASSERT_PTR_NULL(t);
	snprintf(want, sizeof(want), "%s:1: line longer than", file);
	TU_CHECK(strncmp(err, want, strlen(want)) == 0, "got \"%s\"", err);
	/* Exactly at the limit is a line, but a password too long. */
	text[n - 1] = '\n';
	text[n] = '\0';
	t = load_text(text, err, sizeof(err));
	CU_ASSERT_PTR_NULL(t);
	snprintf(want, sizeof(want), "%s:1: password longer than", file);
	TU_CHECK(strncmp(err, want, strlen(want)) == 0, "got \"%s\"", err);
	free(text);

	/* One user more than allowed. */
	fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CU_ASSERT_FATAL(fd != -1);
	{
		FILE *fp = fdopen(fd, "w");

		CU_ASSERT_FATAL(fp != NULL);
		for (i = 0; i <= SECRETS_ENTRIES_MAX; i++)
			fprintf(fp, "u%zu:{PLAIN}p\n", i);
		CU_ASSERT_EQUAL(fclose(fp), 0);
	}
	t = secrets_load(file, err, sizeof(err));
	CU_ASSERT_PTR_NULL(t);
	snprintf(want, sizeof(want), "%s:%d: more than %d users", file,
	    SECRETS_ENTRIES_MAX + 1, SECRETS_ENTRIES_MAX);
	TU_CHECK(strcmp(err, want) == 0, "got \"%s\", want \"%s\"", err,
	    want);
	secrets_unref(&t);
}

static void
test_file_checks(void)
{
	static const int modes[] = { 0640, 0604, 0620, 0602, 0644, 0700 };
	struct secrets *t;
	char err[512], sub[PATH_MAX];
	size_t i;

	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		CU_ASSERT_EQUAL(tu_write_file(file, "a:{PLAIN}x\n",
		    (size_t)-1, modes[i]), 0);
		t = secrets_load(file, err, sizeof(err));
		if (modes[i] == 0700) {
			/* The owner's own bits do not matter. */
			TU_CHECK(t != NULL, "mode 0700: %s", err);
		} else {
			TU_CHECK(t == NULL, "mode %04o accepted", modes[i]);
			TU_CHECK(strstr(err, "group or others") != NULL,
			    "mode %04o: got \"%s\"", modes[i], err);
		}
		secrets_unref(&t);
	}
	t = secrets_load(tu_path(sub, sizeof(sub), dir, "missing"), err,
	    sizeof(err));
	CU_ASSERT_PTR_NULL(t);
	TU_CHECK(strstr(err, "No such file") != NULL, "got \"%s\"", err);
	t = secrets_load(dir, err, sizeof(err));
	CU_ASSERT_PTR_NULL(t);
	TU_CHECK(strstr(err, "not a regular file") != NULL, "got \"%s\"",
	    err);
	/* Owned by someone else than root or us: whoever owns it could
	 * add accounts.  (Only root can give a file away.) */
	if (geteuid() == 0) {
		CU_ASSERT_EQUAL(tu_write_file(file, "a:{PLAIN}x\n",
		    (size_t)-1, 0600), 0);
		CU_ASSERT_EQUAL(chown(file, 65534, (gid_t)-1), 0);
		t = secrets_load(file, err, sizeof(err));
		TU_CHECK(t == NULL, "a file of uid 65534 accepted");
		TU_CHECK(strstr(err, "owned by uid 65534") != NULL,
		    "got \"%s\"", err);
		secrets_unref(&t);
		CU_ASSERT_EQUAL(chown(file, 0, (gid_t)-1), 0);
	}
	/* An empty file is a valid table with nobody in it. */
	t = load_text("", err, sizeof(err));
	TU_CHECK(t != NULL, "empty file: %s", err);
	if (t != NULL) {
		CU_ASSERT_EQUAL(secrets_count(t), 0);
		CU_ASSERT_EQUAL(secrets_verify(t, "a", "x", 1), SECRETS_FAIL);
		CU_ASSERT_EQUAL(secrets_any_clear(t), 0);
	}
	secrets_unref(&t);
}

/*
 * Every check computes exactly one crypt(3) hash, whether the user is
 * unknown, has a {PLAIN} or a {CRYPT} secret, and whether the password
 * is right: the time taken cannot tell them apart.
 */
static void
test_equal_work(void)
{
	static const struct {
		const char	*user, *pass;
		enum secrets_status want;
	} rows[] = {
		{ "nobody", "x", SECRETS_FAIL },
		{ "tim", "tanstaaftanstaaf", SECRETS_OK },
		{ "tim", "wrong", SECRETS_FAIL },
		{ "carol", "wrong", SECRETS_FAIL },
		{ "nobody", "", SECRETS_FAIL },
	};
	static const char *const tables[] = {
		"tim:{PLAIN}tanstaaftanstaaf\ncarol:{CRYPT}" HASH_YESCRYPT "\n",
		"tim:{PLAIN}tanstaaftanstaaf\n",	/* no hash to borrow */
	};
	struct secrets *t;
	char err[512];
	unsigned long before;
	enum secrets_status st;
	size_t i, k;

	for (k = 0; k < sizeof(tables) / sizeof(tables[0]); k++) {
		t = load_text(tables[k], err, sizeof(err));
		TU_CHECK(t != NULL, "load: %s", err);
		if (t == NULL)
			continue;
		for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
			if (k == 1 && strcmp(rows[i].user, "carol") == 0)
				continue;
			before = secrets_hash_calls();
			st = secrets_verify(t, rows[i].user, rows[i].pass,
			    strlen(rows[i].pass));
			TU_CHECK(st == rows[i].want, "table %zu %s: got %d, "
			    "want %d", k, rows[i].user, st, rows[i].want);
			TU_CHECK(secrets_hash_calls() - before == 1,
			    "table %zu %s/%s: %lu hashes, want 1", k,
			    rows[i].user, rows[i].pass,
			    secrets_hash_calls() - before);
		}
		secrets_unref(&t);
	}
}

/* RFC 2195 section 2's example, and users who cannot use CRAM-MD5. */
static void
test_cram(void)
{
	static const char chal[] =
	    "<1896.697170952@postoffice.reston.mci.net>";
	static const unsigned char digest[16] = {
		0xb9, 0x13, 0xa6, 0x02, 0xc7, 0xed, 0xa7, 0xa4,
		0x95, 0xb4, 0xe6, 0xe7, 0x33, 0x4d, 0x38, 0x90
	};
	unsigned char wrong[16];
	struct secrets *t;
	char err[512], buf[64];
	size_t len = 0;

	t = load_text("tim:{PLAIN}tanstaaftanstaaf\n"
	    "bob:{CRYPT}" HASH_SHA512 "\n", err, sizeof(err));
	TU_CHECK(t != NULL, "load: %s", err);
	if (t == NULL)
		return;
	CU_ASSERT_EQUAL(secrets_verify_cram(t, "tim", chal, strlen(chal),
	    digest), SECRETS_OK);
	memcpy(wrong, digest, sizeof(wrong));
	wrong[15] ^= 1;
	CU_ASSERT_EQUAL(secrets_verify_cram(t, "tim", chal, strlen(chal),
	    wrong), SECRETS_FAIL);
	CU_ASSERT_EQUAL(secrets_verify_cram(t, "tim", chal, strlen(chal) - 1,
	    digest), SECRETS_FAIL);
	CU_ASSERT_EQUAL(secrets_verify_cram(t, "bob", chal, strlen(chal),
	    digest), SECRETS_NO_CLEAR);
	CU_ASSERT_EQUAL(secrets_verify_cram(t, "nobody", chal, strlen(chal),
	    digest), SECRETS_FAIL);
	CU_ASSERT_EQUAL(secrets_verify_cram(NULL, "tim", chal, strlen(chal),
	    digest), SECRETS_TEMPFAIL);

	CU_ASSERT_EQUAL(secrets_get_clear(t, "tim", buf, sizeof(buf), &len),
	    1);
	CU_ASSERT_STRING_EQUAL(buf, "tanstaaftanstaaf");
	CU_ASSERT_EQUAL(len, 16);
	CU_ASSERT_EQUAL(secrets_get_clear(t, "tim", buf, 16, &len), -1);
	CU_ASSERT_EQUAL(secrets_get_clear(t, "tim", buf, 17, NULL), 1);
	CU_ASSERT_EQUAL(secrets_get_clear(t, "bob", buf, sizeof(buf), &len),
	    0);
	CU_ASSERT_EQUAL(secrets_get_clear(t, "nobody", buf, sizeof(buf),
	    &len), 0);
	secrets_unref(&t);

	t = load_text("bob:{CRYPT}" HASH_SHA512 "\n", err, sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(secrets_any_clear(t), 0);
	secrets_unref(&t);
}

static void
test_changed(void)
{
	struct secrets *t, *t2;
	struct timespec ts[2];
	char err[512];

	t = load_text("a:{PLAIN}x\n", err, sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(secrets_changed(t), 0);
	t2 = secrets_ref(t);
	CU_ASSERT_PTR_EQUAL(t2, t);
	secrets_unref(&t2);
	CU_ASSERT_EQUAL(secrets_changed(t), 0);

	/* Same size, only the time differs (an editor saving in place). */
	ts[0].tv_sec = ts[1].tv_sec = 1000000000;
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	CU_ASSERT_EQUAL(utimensat(AT_FDCWD, file, ts, 0), 0);
	CU_ASSERT_EQUAL(secrets_changed(t), 1);
	secrets_unref(&t);

	t = secrets_load(file, err, sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(secrets_changed(t), 0);
	/* A chmod changes only the ctime. */
	CU_ASSERT_EQUAL(chmod(file, 0400), 0);
	CU_ASSERT_EQUAL(secrets_changed(t), 1);
	secrets_unref(&t);

	t = secrets_load(file, err, sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(unlink(file), 0);
	CU_ASSERT_EQUAL(secrets_changed(t), 1);
	/* The table outlives its file. */
	CU_ASSERT_EQUAL(secrets_verify(t, "a", "x", 1), SECRETS_OK);
	secrets_unref(&t);
}

static void
test_crypt_line(void)
{
	char line[256], line2[256], err[512];
	struct secrets *t;
	const char *want = "alice:{CRYPT}$y$";

	CU_ASSERT_EQUAL_FATAL(secrets_crypt_line("alice", "s3cret pass",
	    line, sizeof(line), err, sizeof(err)), 0);
	TU_CHECK(strncmp(line, want, strlen(want)) == 0,
	    "got \"%s\", want \"%s...\"", line, want);
	CU_ASSERT_PTR_NULL(strchr(line, '\n'));
	CU_ASSERT_EQUAL(secrets_crypt_line("alice", "s3cret pass", line2,
	    sizeof(line2), err, sizeof(err)), 0);
	/* A fresh salt each time. */
	CU_ASSERT(strcmp(line, line2) != 0);

	{
		char text[300];

		snprintf(text, sizeof(text), "%s\n", line);
		t = load_text(text, err, sizeof(err));
	}
	TU_CHECK(t != NULL, "load: %s", err);
	if (t != NULL) {
		CU_ASSERT_EQUAL(secrets_verify(t, "alice", "s3cret pass", 11),
		    SECRETS_OK);
		CU_ASSERT_EQUAL(secrets_verify(t, "alice", "s3cret", 6),
		    SECRETS_FAIL);
	}
	secrets_unref(&t);

	CU_ASSERT_EQUAL(secrets_crypt_line("al:ice", "x", line, sizeof(line),
	    err, sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "bad user name"));
	CU_ASSERT_EQUAL(secrets_crypt_line("al ice", "x", line, sizeof(line),
	    err, sizeof(err)), -1);
	CU_ASSERT_EQUAL(secrets_crypt_line("", "x", line, sizeof(line),
	    err, sizeof(err)), -1);
	CU_ASSERT_EQUAL(secrets_crypt_line("alice", "", line, sizeof(line),
	    err, sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "password"));
	CU_ASSERT_EQUAL(secrets_crypt_line("alice", "x", line, 20, err,
	    sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "too small"));

	CU_ASSERT_EQUAL(secrets_check_user("bob@example.org"), 0);
	CU_ASSERT_EQUAL(secrets_check_user("#bob"), -1);
	CU_ASSERT_EQUAL(secrets_check_user(NULL), -1);
}

static void
test_refresh(void)
{
	struct secrets *t;
	char err[512];

	secrets_install(NULL);
	CU_ASSERT_PTR_NULL(secrets_current());
	CU_ASSERT_EQUAL(tu_write_file(file, "a:{PLAIN}one\n", (size_t)-1,
	    0600), 0);
	CU_ASSERT_EQUAL(secrets_refresh(file, err, sizeof(err)), 1);
	CU_ASSERT_EQUAL(secrets_refresh(file, err, sizeof(err)), 0);
	t = secrets_current();
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(secrets_verify(t, "a", "one", 3), SECRETS_OK);

	/* A new file: a new table; the old one stays valid for its holders. */
	CU_ASSERT_EQUAL(tu_write_file(file, "a:{PLAIN}two\n", (size_t)-1,
	    0600), 0);
	CU_ASSERT_EQUAL(secrets_refresh(file, err, sizeof(err)), 1);
	CU_ASSERT_EQUAL(secrets_verify(t, "a", "one", 3), SECRETS_OK);
	secrets_unref(&t);
	t = secrets_current();
	CU_ASSERT_EQUAL(secrets_verify(t, "a", "two", 3), SECRETS_OK);
	secrets_unref(&t);

	/* A broken file is reported once and the current table stays. */
	CU_ASSERT_EQUAL(tu_write_file(file, "a:{PLAIN}three\nbroken\n",
	    (size_t)-1, 0600), 0);
	err[0] = '\0';
	CU_ASSERT_EQUAL(secrets_refresh(file, err, sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, ":2: "));
	CU_ASSERT_EQUAL(secrets_refresh(file, err, sizeof(err)), 0);
	t = secrets_current();
	CU_ASSERT_EQUAL(secrets_verify(t, "a", "two", 3), SECRETS_OK);
	secrets_unref(&t);

	/* Readable by others: refused, the current table stays. */
	CU_ASSERT_EQUAL(tu_write_file(file, "a:{PLAIN}four\n", (size_t)-1,
	    0644), 0);
	CU_ASSERT_EQUAL(secrets_refresh(file, err, sizeof(err)), -1);
	CU_ASSERT_EQUAL(chmod(file, 0600), 0);
	CU_ASSERT_EQUAL(secrets_refresh(file, err, sizeof(err)), 1);
	t = secrets_current();
	CU_ASSERT_EQUAL(secrets_verify(t, "a", "four", 4), SECRETS_OK);
	secrets_unref(&t);

	/* Gone: an error, once. */
	CU_ASSERT_EQUAL(unlink(file), 0);
	CU_ASSERT_EQUAL(secrets_refresh(file, err, sizeof(err)), -1);
	CU_ASSERT_EQUAL(secrets_refresh(file, err, sizeof(err)), 0);
	secrets_install(NULL);
}

struct verify_job {
	struct secrets	*t;
	int		 ok;
};

static void *
verify_thread(void *arg)
{
	struct verify_job *j = arg;

	j->ok = secrets_verify(j->t, "bob", "secret", 6) == SECRETS_OK &&
	    secrets_verify(j->t, "bob", "wrong", 5) == SECRETS_FAIL &&
	    secrets_verify(j->t, "nobody", "secret", 6) == SECRETS_FAIL;
	return NULL;
}

/* More checks at once than SECRETS_HASH_CONCURRENCY: all get a turn. */
static void
test_concurrent(void)
{
	struct verify_job jobs[SECRETS_HASH_CONCURRENCY * 2 + 1];
	pthread_t th[SECRETS_HASH_CONCURRENCY * 2 + 1];
	struct secrets *t;
	char err[512];
	size_t i, n = sizeof(jobs) / sizeof(jobs[0]);

	t = load_text("bob:{CRYPT}" HASH_SHA512 "\n", err, sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	for (i = 0; i < n; i++) {
		jobs[i].t = t;
		jobs[i].ok = 0;
		CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL,
		    verify_thread, &jobs[i]), 0);
	}
	for (i = 0; i < n; i++) {
		CU_ASSERT_EQUAL(pthread_join(th[i], NULL), 0);
		TU_CHECK(jobs[i].ok, "thread %zu got a wrong answer", i);
	}
	secrets_unref(&t);
}

int
suite_secrets(void)
{
	CU_pSuite s;

	if ((s = CU_add_suite("secrets", setup, teardown)) == NULL)
		return -1;
	if (CU_add_test(s, "good file", test_good_file) == NULL ||
	    CU_add_test(s, "password bytes", test_password_bytes) == NULL ||
	    CU_add_test(s, "bad lines", test_bad_files) == NULL ||
	    CU_add_test(s, "bad bytes and sizes",
	    test_bad_bytes_and_sizes) == NULL ||
	    CU_add_test(s, "file type and mode", test_file_checks) == NULL ||
	    CU_add_test(s, "CRAM-MD5", test_cram) == NULL ||
	    CU_add_test(s, "equal work for every user", test_equal_work) ==
	    NULL ||
	    CU_add_test(s, "changed on disk", test_changed) == NULL ||
	    CU_add_test(s, "crypt line", test_crypt_line) == NULL ||
	    CU_add_test(s, "refresh", test_refresh) == NULL ||
	    CU_add_test(s, "concurrent checks", test_concurrent) == NULL)
		return -1;
	return 0;
}
