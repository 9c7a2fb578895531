#include "config.h"

#include <sys/stat.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/data.h"
#include "queue/spool.h"
#include "tests.h"

static char spooldir[64];
static struct spool *sp;

static int
setup(void)
{
	char err[256];

	snprintf(spooldir, sizeof(spooldir), "/tmp/test-data-XXXXXX");
	if (mkdtemp(spooldir) == NULL)
		return -1;
	sp = spool_open(spooldir, 0, err, sizeof(err));
	return sp ? 0 : -1;
}

static int
teardown(void)
{
	char cmd[128];

	spool_close(&sp);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", spooldir);
	return system(cmd) == 0 ? 0 : -1;
}

static struct spool_msg *
new_msg(void)
{
	const struct spool_rcpt rcpts[] = { { "r@example.net", NULL, NULL } };
	struct spool_envelope env;
	struct spool_msg *m;

	memset(&env, 0, sizeof(env));
	env.sender = "s@example.org";
	env.rcpts = rcpts;
	env.nrcpts = 1;
	m = spool_begin(sp, &env);
	CU_ASSERT_FATAL(m != NULL);
	return m;
}

/* Feeds DATA lines as the session does (already unstuffed). */
static enum data_verdict
feed(const char *const *lines, size_t max_size, size_t line_max)
{
	struct spool_msg *m = new_msg();
	struct datain d;
	enum data_verdict v;

	datain_init(&d, m, max_size, line_max, 0, NULL, NULL);
	for (; *lines != NULL; lines++) {
		size_t n = strlen(*lines);

		datain_line(&d, *lines, n, n > 0 && (*lines)[n - 1] == '\n');
	}
	v = datain_finish(&d);
	spool_abort(&m);
	return v;
}

static void
test_verdicts(void)
{
	const char *ok[] = { "Subject: x\r\n", "\r\n", "body\r\n", NULL };
	const char *bare_lf[] = { "Subject: x\r\n", "\r\n", "body\n", NULL };
	const char *bare_cr[] = { "Subject: x\r\n", "\r\n", "bo\rdy\r\n", NULL };
	const char *big[] = { "0123456789\r\n", "0123456789\r\n", NULL };
	const char *longline[] = { "\r\n", "0123456789012345678901234567890123456789\r\n", NULL };

	CU_ASSERT_EQUAL(feed(ok, 0, 0), DATA_OK);
	CU_ASSERT_EQUAL(feed(bare_lf, 0, 0), DATA_BARE_NEWLINE);
	CU_ASSERT_EQUAL(feed(bare_cr, 0, 0), DATA_BARE_NEWLINE);
	CU_ASSERT_EQUAL(feed(big, 24, 0), DATA_OK);
	CU_ASSERT_EQUAL(feed(big, 23, 0), DATA_TOO_BIG);
	CU_ASSERT_EQUAL(feed(longline, 0, 40), DATA_OK);
	CU_ASSERT_EQUAL(feed(longline, 0, 39), DATA_LONG_LINE);
}

static void
test_received_loop(void)
{
	const char *lines[DATA_MAX_RECEIVED + 4];
	size_t i;

	for (i = 0; i < DATA_MAX_RECEIVED; i++)
		lines[i] = "Received: from x by y; date\r\n";
	lines[i++] = "\r\n";
	lines[i] = NULL;
	CU_ASSERT_EQUAL(feed(lines, 0, 0), DATA_OK);
	lines[DATA_MAX_RECEIVED] = "received: one too many\r\n";
	lines[DATA_MAX_RECEIVED + 1] = "\r\n";
	lines[DATA_MAX_RECEIVED + 2] = NULL;
	CU_ASSERT_EQUAL(feed(lines, 0, 0), DATA_LOOP);
	/* In the body they are just text. */
	lines[0] = "\r\n";
	CU_ASSERT_EQUAL(feed(lines, 0, 0), DATA_OK);
}

/* Commits a BDAT message and returns its body as stored. */
static char *
bdat_body(const char *const *chunks)
{
	struct spool_msg *m = new_msg();
	struct datain d;
	char id[SPOOL_ID_LEN + 1], path[256], *buf, *body;
	FILE *f;
	long n;

	datain_init(&d, m, 0, 0, 0, NULL, NULL);
	for (; *chunks != NULL; chunks++)
		datain_bdat(&d, *chunks, strlen(*chunks));
	CU_ASSERT_EQUAL(datain_finish(&d), DATA_OK);
	snprintf(id, sizeof(id), "%s", spool_msg_id(m));
	CU_ASSERT_FATAL(spool_commit(&m) == 0);
	snprintf(path, sizeof(path), "%s/queue/%s", spooldir, id);
	f = fopen(path, "rb");
	CU_ASSERT_FATAL(f != NULL);
	buf = calloc(1, 65536);
	n = (long)fread(buf, 1, 65535, f);
	fclose(f);
	unlink(path);
	CU_ASSERT_FATAL(n > 0);
	body = strstr(buf, "\n\n");
	CU_ASSERT_FATAL(body != NULL);
	body = strdup(body + 2);
	free(buf);
	return body;
}

static void
test_bdat_newlines(void)
{
	const char *c1[] = { "a\nb\r\nc\n", NULL };
	const char *c2[] = { "a\r", "\nb\n", NULL };
	const char *c3[] = { "x", "", "y\r\n", NULL };
	char *b;

	b = bdat_body(c1);
	CU_ASSERT_STRING_EQUAL(b, "a\r\nb\r\nc\r\n");
	free(b);
	/* CR LF split across chunks stays one line end. */
	b = bdat_body(c2);
	CU_ASSERT_STRING_EQUAL(b, "a\r\nb\r\n");
	free(b);
	b = bdat_body(c3);
	CU_ASSERT_STRING_EQUAL(b, "xy\r\n");
	free(b);
}

int
suite_data(void)
{
	CU_pSuite s = CU_add_suite("data", setup, teardown);

	if (s == NULL ||
	    CU_add_test(s, "DATA verdicts", test_verdicts) == NULL ||
	    CU_add_test(s, "Received loop count", test_received_loop) == NULL ||
	    CU_add_test(s, "BDAT line ends", test_bdat_newlines) == NULL)
		return -1;
	return 0;
}
