#include "config.h"

#include <sys/stat.h>

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/creds.h"
#include "tests.h"
#include "testutil.h"

static const struct creds_query q_alice = {
	"smtp", "mail.example.test", "alice", NULL, NULL, NULL, 0, 5
};

static void
test_key_match(void)
{
	static const struct {
		const char *line;
		int want, token;
		const char *secret;
	} rows[] = {
		{ "key proto=pass service=smtp server=mail.example.test user=alice !password=s3cret", 1, 0, "s3cret" },
		{ "proto=pass service=smtp server=MAIL.example.test. user=alice !password=s3cret", 1, 0, "s3cret" },
		{ "proto=pass server=mail.example.test !password=any-user", 1, 0, "any-user" },
		{ "proto=pass !password='with space'", 1, 0, "with space" },
		{ "proto=pass !password='it''s'", 1, 0, "it's" },
		{ "proto=pass !password=a'b c'd", 1, 0, "ab cd" },
		{ "proto=oauth2 user=alice !token=ya29.tok", 1, 1, "ya29.tok" },
		{ "proto=pass user=alice !token=ya29.tok", 1, 1, "ya29.tok" },
		{ "proto=pass service=imap user=alice !password=x", 0, 0, NULL },
		{ "proto=pass server=other.test user=alice !password=x", 0, 0, NULL },
		{ "proto=pass user=bob !password=x", 0, 0, NULL },
		{ "proto=cram user=alice !password=x", 0, 0, NULL },
		{ "# proto=pass !password=x", 0, 0, NULL },
		{ "", 0, 0, NULL },
		{ "   ", 0, 0, NULL },
		{ "key", 0, 0, NULL },
		{ "proto=pass user=alice", -1, 0, NULL },
		{ "user=alice !password=x", -1, 0, NULL },
		{ "proto=pass !password='unterminated", -1, 0, NULL },
		/* An attribute named twice: ambiguous, whatever the order. */
		{ "proto=pass server=mail.example.test server=other.test !password=x", -1, 0, NULL },
		{ "proto=pass server=other.test server=mail.example.test !password=x", -1, 0, NULL },
		{ "proto=pass !password=x !token=y", -1, 0, NULL },
	};
	struct creds c;
	size_t i;
	int r;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		memset(&c, 0, sizeof(c));
		r = creds_key_match(rows[i].line, &q_alice, &c);
		if (r != rows[i].want) {
			fprintf(stderr, "\n\"%s\": got %d, want %d\n",
			    rows[i].line, r, rows[i].want);
			CU_FAIL("creds_key_match");
			continue;
		}
		if (r == 1) {
			CU_ASSERT_STRING_EQUAL(c.secret, rows[i].secret);
			CU_ASSERT_EQUAL(c.is_token, rows[i].token);
		}
	}
}

static void
test_netrc(void)
{
	static const char *text =
	    "machine other.test login alice password wrong\n"
	    "machine mail.example.test\n"
	    "  login bob password bobs\n"
	    "macdef init\n"
	    "machine mail.example.test login alice password fake\n"
	    "\n"
	    "machine mail.example.test login alice password \"right one\"\n"
	    "default login anyone password dflt\n";
	char pw[64];

	CU_ASSERT_EQUAL(creds_netrc_find(text, strlen(text),
	    "mail.example.test", "alice", pw, sizeof(pw)), 1);
	CU_ASSERT_STRING_EQUAL(pw, "right one");
	CU_ASSERT_EQUAL(creds_netrc_find(text, strlen(text),
	    "MAIL.EXAMPLE.TEST", "bob", pw, sizeof(pw)), 1);
	CU_ASSERT_STRING_EQUAL(pw, "bobs");
	/* Only default fits. */
	CU_ASSERT_EQUAL(creds_netrc_find(text, strlen(text), "x.test",
	    "anyone", pw, sizeof(pw)), 1);
	CU_ASSERT_STRING_EQUAL(pw, "dflt");
	CU_ASSERT_EQUAL(creds_netrc_find(text, strlen(text), "x.test",
	    "carol", pw, sizeof(pw)), 0);
	/* An entry without login fits any user. */
	CU_ASSERT_EQUAL(creds_netrc_find("machine h password p", 20, "h",
	    "zed", pw, sizeof(pw)), 1);
	CU_ASSERT_STRING_EQUAL(pw, "p");
	CU_ASSERT_EQUAL(creds_netrc_find("", 0, "h", "zed", pw, sizeof(pw)), 0);
	/* Does not fit: an error. */
	CU_ASSERT_EQUAL(creds_netrc_find("machine h password longpassword",
	    31, "h", "zed", pw, 4), -1);
}

/* Writes a file with mode; returns its path in buf. */
static void
mkfile(char *dir, const char *name, const char *text, mode_t mode,
    char *buf, size_t len)
{
	int fd;

	snprintf(buf, len, "%s/%s", dir, name);
	fd = open(buf, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CU_ASSERT_FATAL(fd != -1);
	CU_ASSERT_EQUAL(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	CU_ASSERT_EQUAL(fchmod(fd, mode), 0);
	close(fd);
}

static void
test_lookup(void)
{
	char dir[] = "/tmp/creds-test-XXXXXX", keys[256], netrc[256];
	char err[256], cmd[512], cwd[PATH_MAX];
	char pidfile[] = "/tmp/creds-test.XXXXXX";
	FILE *f;
	long bg = 0;
	int fd;
	struct creds_query q = q_alice;
	struct creds c;

	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	mkfile(dir, "keys", "# keys\n"
	    "key proto=pass service=smtp server=other.test user=alice !password=no\n"
	    "key proto=pass service=smtp server=mail.example.test user=alice !password=fromkeys\n",
	    0600, keys, sizeof(keys));
	mkfile(dir, "netrc", "machine mail.example.test login alice password fromnetrc\n"
	    "machine n.test login alice password netrc2\n", 0600, netrc,
	    sizeof(netrc));

	/* The key file comes first. */
	q.keyfile = keys;
	q.netrc = netrc;
	q.command = "echo fromcommand";
	CU_ASSERT_EQUAL(creds_lookup(&q, &c, err, sizeof(err)), CREDS_OK);
	CU_ASSERT_STRING_EQUAL(c.secret, "fromkeys");
	CU_ASSERT_STRING_EQUAL(c.source, "key file");

	/* Then netrc. */
	q.server = "n.test";
	CU_ASSERT_EQUAL(creds_lookup(&q, &c, err, sizeof(err)), CREDS_OK);
	CU_ASSERT_STRING_EQUAL(c.secret, "netrc2");

	/* Then the command, which sees the server and user. */
	q.server = "cmd.test";
	snprintf(cmd, sizeof(cmd), "printf '%%s:%%s\\nsecond line\\n' "
	    "\"$SMTP_SERVER\" \"$SMTP_USER\"");
	q.command = cmd;
	q.command_token = 1;
	CU_ASSERT_EQUAL(creds_lookup(&q, &c, err, sizeof(err)), CREDS_OK);
	CU_ASSERT_STRING_EQUAL(c.secret, "cmd.test:alice");
	CU_ASSERT_EQUAL(c.is_token, 1);
	q.command_token = 0;

	/* A failing command is an error, not "not found". */
	q.command = "echo oops; exit 3";
	CU_ASSERT_EQUAL(creds_lookup(&q, &c, err, sizeof(err)), CREDS_ERROR);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "status 3"));
	CU_ASSERT_STRING_EQUAL(c.secret, "");
	q.command = "true";
	CU_ASSERT_EQUAL(creds_lookup(&q, &c, err, sizeof(err)), CREDS_ERROR);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "nothing"));
	q.command = "exec sleep 10";
	q.command_timeout = 1;
	CU_ASSERT_EQUAL(creds_lookup(&q, &c, err, sizeof(err)), CREDS_ERROR);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "timed out"));
	/* The timeout takes what the command started along. */
	CU_ASSERT_FATAL((fd = mkstemp(pidfile)) != -1);
	close(fd);
	snprintf(cmd, sizeof(cmd), "sleep 60 & echo $! > %s; exec sleep 60",
	    pidfile);
	q.command = cmd;
	CU_ASSERT_EQUAL(creds_lookup(&q, &c, err, sizeof(err)), CREDS_ERROR);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "timed out"));
	CU_ASSERT_PTR_NOT_NULL_FATAL(f = fopen(pidfile, "r"));
	CU_ASSERT_EQUAL(fscanf(f, "%ld", &bg), 1);
	fclose(f);
	unlink(pidfile);
	CU_ASSERT(bg > 1 && tu_pid_gone((pid_t)bg));
	if (bg > 1 && !tu_pid_gone((pid_t)bg))
		(void)kill((pid_t)bg, SIGKILL);
	q.command_timeout = 5;
	/* Its errors say why; it runs where we are. */
	q.command = "cat ./no-such-file-here";
	CU_ASSERT_EQUAL(creds_lookup(&q, &c, err, sizeof(err)), CREDS_ERROR);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "no-such-file-here"));
	q.command = "pwd";
	CU_ASSERT_PTR_NOT_NULL_FATAL(getcwd(cwd, sizeof(cwd)));
	CU_ASSERT_EQUAL(creds_lookup(&q, &c, err, sizeof(err)), CREDS_OK);
	CU_ASSERT_STRING_EQUAL(c.secret, cwd);

	/* Nothing anywhere. */
	q.command = NULL;
	CU_ASSERT_EQUAL(creds_lookup(&q, &c, err, sizeof(err)),
	    CREDS_NOTFOUND);

	/* A key file others may read is refused outright. */
	CU_ASSERT_EQUAL(chmod(keys, 0640), 0);
	q.server = "mail.example.test";
	CU_ASSERT_EQUAL(creds_lookup(&q, &c, err, sizeof(err)), CREDS_ERROR);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "chmod 600"));
	/* So is a loose netrc's password. */
	q.keyfile = NULL;
	CU_ASSERT_EQUAL(chmod(netrc, 0644), 0);
	CU_ASSERT_EQUAL(creds_lookup(&q, &c, err, sizeof(err)), CREDS_ERROR);
	CU_ASSERT_STRING_EQUAL(c.secret, "");
	/* Missing files are simply skipped. */
	q.keyfile = "/nonexistent/keys";
	q.netrc = "/nonexistent/netrc";
	CU_ASSERT_EQUAL(creds_lookup(&q, &c, err, sizeof(err)),
	    CREDS_NOTFOUND);

	/* A malformed key is reported with its line. */
	mkfile(dir, "bad", "\nproto=pass user=alice\n", 0600, keys,
	    sizeof(keys));
	q.keyfile = keys;
	CU_ASSERT_EQUAL(creds_lookup(&q, &c, err, sizeof(err)), CREDS_ERROR);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, ":2:"));

	unlink(keys);
	snprintf(keys, sizeof(keys), "%s/keys", dir);
	unlink(keys);
	unlink(netrc);
	rmdir(dir);
}

static void
test_label_match(void)
{
	static const struct {
		const char *line;
		int want, token;
		const char *user, *secret;
	} rows[] = {
		{ "key proto=pass label=corp user=relay@corp.test !password=s3cret", 1, 0, "relay@corp.test", "s3cret" },
		{ "label=corp proto=pass user=u !password='two words'", 1, 0, "u", "two words" },
		{ "label=corp proto=oauth2 user=u !token=ya29.t", 1, 1, "u", "ya29.t" },
		{ "label=other proto=pass user=u !password=x", 0, 0, NULL, NULL },
		{ "label=CORP proto=pass user=u !password=x", 0, 0, NULL, NULL },
		{ "proto=pass server=corp user=u !password=x", 0, 0, NULL, NULL },
		/* Another label's mistakes are not ours to report. */
		{ "label=other proto=pass !password=x", 0, 0, NULL, NULL },
		{ "# label=corp proto=pass user=u !password=x", 0, 0, NULL, NULL },
		{ "label=corp proto=pass !password=x", -1, 0, NULL, NULL },
		{ "label=corp proto=pass user=u", -1, 0, NULL, NULL },
		{ "label=corp user=u !password=x", -1, 0, NULL, NULL },
		{ "label=corp proto=cram user=u !password=x", -1, 0, NULL, NULL },
		{ "label=corp proto=pass user=u !password='open", -1, 0, NULL, NULL },
	};
	char user[64];
	struct creds c;
	size_t i;
	int r;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		memset(&c, 0, sizeof(c));
		r = creds_label_match(rows[i].line, "corp", user, sizeof(user),
		    &c);
		if (r != rows[i].want) {
			fprintf(stderr, "\n\"%s\": got %d, want %d\n",
			    rows[i].line, r, rows[i].want);
			CU_FAIL("creds_label_match");
			continue;
		}
		if (r == 1) {
			CU_ASSERT_STRING_EQUAL(user, rows[i].user);
			CU_ASSERT_STRING_EQUAL(c.secret, rows[i].secret);
			CU_ASSERT_EQUAL(c.is_token, rows[i].token);
		}
	}
	/* A user name that does not fit is an error, not a cut name. */
	CU_ASSERT_EQUAL(creds_label_match("label=corp proto=pass "
	    "user=a-rather-long-name !password=x", "corp", user, 8, &c), -1);
	CU_ASSERT_STRING_EQUAL(c.secret, "");
}

static void
test_label_lookup(void)
{
	char dir[] = "/tmp/creds-test-XXXXXX", keys[256], err[256];
	char user[64];
	struct creds c;

	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	mkfile(dir, "relay", "# smarthost credentials\n"
	    "key proto=pass label=isp user=me@isp.test !password=one\n"
	    "key proto=pass label=corp user=relay !password=two\n",
	    0600, keys, sizeof(keys));
	CU_ASSERT_EQUAL(creds_label_lookup(keys, "corp", user, sizeof(user),
	    &c, err, sizeof(err)), CREDS_OK);
	CU_ASSERT_STRING_EQUAL(user, "relay");
	CU_ASSERT_STRING_EQUAL(c.secret, "two");
	CU_ASSERT_EQUAL(creds_label_lookup(keys, "nope", user, sizeof(user),
	    &c, err, sizeof(err)), CREDS_NOTFOUND);
	/* Readable by others: refused. */
	CU_ASSERT_EQUAL(chmod(keys, 0644), 0);
	CU_ASSERT_EQUAL(creds_label_lookup(keys, "corp", user, sizeof(user),
	    &c, err, sizeof(err)), CREDS_ERROR);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "chmod 600"));
	CU_ASSERT_STRING_EQUAL(c.secret, "");
	/* A missing file is an error here: a route names it. */
	CU_ASSERT_EQUAL(creds_label_lookup("/nonexistent/relay", "corp", user,
	    sizeof(user), &c, err, sizeof(err)), CREDS_ERROR);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "/nonexistent/relay"));
	/* A broken key under the label is reported with its line. */
	mkfile(dir, "relay", "\nlabel=corp proto=pass !password=x\n", 0600,
	    keys, sizeof(keys));
	CU_ASSERT_EQUAL(creds_label_lookup(keys, "corp", user, sizeof(user),
	    &c, err, sizeof(err)), CREDS_ERROR);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, ":2:"));
	unlink(keys);
	rmdir(dir);
}

static void
test_default_paths(void)
{
	char buf[512];
	char *old = getenv("SMTP_KEYFILE") ? strdup(getenv("SMTP_KEYFILE")) :
	    NULL;

	CU_ASSERT_EQUAL(setenv("SMTP_KEYFILE", "/x/keys", 1), 0);
	CU_ASSERT_EQUAL(creds_default_keyfile(buf, sizeof(buf)), 0);
	CU_ASSERT_STRING_EQUAL(buf, "/x/keys");
	CU_ASSERT_EQUAL(unsetenv("SMTP_KEYFILE"), 0);
	CU_ASSERT_EQUAL(setenv("XDG_CONFIG_HOME", "/cfg", 1), 0);
	CU_ASSERT_EQUAL(creds_default_keyfile(buf, sizeof(buf)), 0);
	CU_ASSERT_STRING_EQUAL(buf, "/cfg/smtp/keys");
	CU_ASSERT_EQUAL(unsetenv("XDG_CONFIG_HOME"), 0);
	if (old != NULL) {
		CU_ASSERT_EQUAL(setenv("SMTP_KEYFILE", old, 1), 0);
		free(old);
	}
}

/* Without -u: the login from the stored credentials. */
static void
test_find_user(void)
{
	static const char *netrc =
	    "machine other.test login zed password z\n"
	    "machine mail.example.test password nologin\n"
	    "macdef init\n"
	    "machine mail.example.test login fake\n"
	    "\n"
	    "machine MAIL.example.test. login \"alice b\" password a\n"
	    "machine mail.example.test login second password s\n"
	    "default login anyone password dflt\n";
	struct creds_query q;
	char user[64];

	CU_ASSERT_EQUAL(creds_netrc_login(netrc, strlen(netrc),
	    "mail.example.test", user, sizeof(user)), 1);
	CU_ASSERT_STRING_EQUAL(user, "alice b");
	CU_ASSERT_EQUAL(creds_netrc_login(netrc, strlen(netrc), "x.test",
	    user, sizeof(user)), 1);
	CU_ASSERT_STRING_EQUAL(user, "anyone");
	CU_ASSERT_EQUAL(creds_netrc_login("machine h login l", 17, "x",
	    user, sizeof(user)), 0);
	CU_ASSERT_EQUAL(creds_netrc_login("machine h login toolong", 23, "h",
	    user, 4), -1);

	memset(&q, 0, sizeof(q));
	q.service = "smtp";
	q.server = "mail.example.test";
	CU_ASSERT_EQUAL(creds_key_user("key proto=pass "
	    "server=mail.example.test user=alice !password=x", &q, user,
	    sizeof(user)), 1);
	CU_ASSERT_STRING_EQUAL(user, "alice");
	CU_ASSERT_EQUAL(creds_key_user("proto=oauth2 !token=t", &q, user,
	    sizeof(user)), 1);
	CU_ASSERT_STRING_EQUAL(user, "");
	CU_ASSERT_EQUAL(creds_key_user("proto=pass server=other.test user=bob "
	    "!password=x", &q, user, sizeof(user)), 0);
	CU_ASSERT_EQUAL(creds_key_user("proto=pass service=imap user=bob "
	    "!password=x", &q, user, sizeof(user)), 0);
	CU_ASSERT_EQUAL(creds_key_user("proto=p9sk1 user=bob !password=x",
	    &q, user, sizeof(user)), 0);
	CU_ASSERT_EQUAL(creds_key_user("# comment", &q, user, sizeof(user)),
	    0);
	CU_ASSERT_EQUAL(creds_key_user("user=bob !password=x", &q, user,
	    sizeof(user)), -1);
	CU_ASSERT_EQUAL(creds_key_user("proto=pass user=bob", &q, user,
	    sizeof(user)), -1);
}

int
suite_creds(void)
{
	CU_pSuite s = CU_add_suite("creds", NULL, NULL);

	if (s == NULL ||
	    CU_add_test(s, "key file lines", test_key_match) == NULL ||
	    CU_add_test(s, "netrc", test_netrc) == NULL ||
	    CU_add_test(s, "user from credentials", test_find_user) == NULL ||
	    CU_add_test(s, "lookup order and safety", test_lookup) == NULL ||
	    CU_add_test(s, "keys by label", test_label_match) == NULL ||
	    CU_add_test(s, "label lookup", test_label_lookup) == NULL ||
	    CU_add_test(s, "default paths", test_default_paths) == NULL)
		return -1;
	return 0;
}
