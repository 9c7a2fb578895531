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
	const struct env_rcpt rcpts[] = { { "r@example.net", 0, NULL } };
	struct envelope env;
	struct spool_msg *m;

	memset(&env, 0, sizeof(env));
	env.sender = "s@example.org";
	env.rcpts = rcpts;
	env.nrcpts = 1;
	m = spool_begin(sp, &env);
	CU_ASSERT_FATAL(m != NULL);
	return m;
}

/* What one run of the reader gave. */
struct outcome {
	enum data_verdict	 verdict;
	size_t			 taken;		/* up to the end of DATA */
	int			 end;
	char			 body[4096];	/* as stored, if DATA_OK */
	size_t			 len;
	char			 hdr[256];	/* as header checks saw it */
};

static void
keep_header(void *arg, const char *hdr, size_t len, struct str *tags)
{
	struct outcome *o = arg;

	(void)tags;
	snprintf(o->hdr, sizeof(o->hdr), "%.*s", (int)len, hdr);
}

/* The stored body of a committed message: what follows the envelope. */
static void
read_body(const char *id, struct outcome *o)
{
	char path[256], buf[8192], *body;
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/queue/%s", spooldir, id);
	f = fopen(path, "rb");
	CU_ASSERT_FATAL(f != NULL);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	unlink(path);
	buf[n] = '\0';
	body = strstr(buf, "\n\n");
	CU_ASSERT_FATAL(body != NULL);
	body += 2;
	o->len = n - (size_t)(body - buf);
	CU_ASSERT_FATAL(o->len < sizeof(o->body));
	memcpy(o->body, body, o->len);
}

/*
 * Feeds in as DATA (dotted) or BDAT, in pieces of at most step bytes, the
 * way a client's bytes may arrive; commits the message if it is accepted.
 */
static void
run(const char *in, size_t n, int dotted, enum data_bare_lf mode,
    size_t max_size, size_t line_max, size_t step, struct outcome *o)
{
	struct spool_msg *m = new_msg();
	struct datain d;
	char id[SPOOL_ID_LEN + 1];
	size_t i, k;

	memset(o, 0, sizeof(*o));
	datain_init(&d, m, max_size, line_max, 1024, mode, keep_header, o);
	for (i = 0; i < n && !o->end; i += k) {
		k = n - i < step ? n - i : step;
		if (dotted) {
			k = datain_data(&d, in + i, k, &o->end);
			o->taken = i + k;
		} else
			datain_bdat(&d, in + i, k);
	}
	o->verdict = datain_finish(&d);
	datain_free(&d);
	if (o->verdict != DATA_OK) {
		spool_abort(&m);
		return;
	}
	snprintf(id, sizeof(id), "%s", spool_msg_id(m));
	CU_ASSERT_FATAL(spool_commit(&m) == 0);
	read_body(id, o);
}

struct data_case {
	const char		*name;
	int			 dotted;	/* DATA, else BDAT */
	enum data_bare_lf	 mode;
	const char		*in;
	enum data_verdict	 want;
	const char		*want_body;	/* if DATA_OK */
	int			 want_rest;	/* DATA: bytes after the end */
};

#define N	DATA_LF_NORMALIZE
#define R	DATA_LF_REJECT
#define END	"\r\n.\r\n"

static const struct data_case data_cases[] = {
	{ "crlf", 1, N, "S: x\r\n\r\nbody" END, DATA_OK,
	    "S: x\r\n\r\nbody\r\n", 0 },
	{ "lf lines, as smtplib ends them", 1, N, "S: x\n\nl1\nl2\n" END,
	    DATA_OK, "S: x\r\n\r\nl1\r\nl2\r\n\r\n", 0 },
	{ "mixed", 1, N, "S: x\r\n\nmixed\nand" END, DATA_OK,
	    "S: x\r\n\r\nmixed\r\nand\r\n", 0 },
	{ "unstuffing after lf", 1, N, "\n..\n...x\n.y" END, DATA_OK,
	    "\r\n.\r\n..x\r\ny\r\n", 0 },
	{ "empty", 1, N, ".\r\n", DATA_OK, "", 0 },
	{ "pipelined command", 1, N, "a" END "QUIT\r\n", DATA_OK, "a\r\n", 6 },
	{ "lf dot lf", 1, N, "a\n.\nMAIL\r\nRCPT\n" END, DATA_SMUGGLING,
	    NULL, 0 },
	{ "lf dot crlf", 1, N, "a\n.\r\nMAIL" END, DATA_SMUGGLING, NULL, 0 },
	{ "crlf dot lf", 1, N, "a\r\n.\nMAIL" END, DATA_SMUGGLING, NULL, 0 },
	{ "dot lf first", 1, N, ".\nMAIL" END, DATA_SMUGGLING, NULL, 0 },
	{ "cr dot cr", 1, N, "a\r.\rMAIL" END, DATA_BARE_NEWLINE, NULL, 0 },
	{ "cr dot crlf", 1, N, "a\r.\r\nMAIL" END, DATA_BARE_NEWLINE, NULL, 0 },
	{ "crlf dot cr", 1, N, "a\r\n.\rMAIL" END, DATA_BARE_NEWLINE, NULL, 0 },
	{ "lf dot cr", 1, N, "a\n.\rMAIL" END, DATA_BARE_NEWLINE, NULL, 0 },
	{ "bare cr", 1, N, "a\rb" END, DATA_BARE_NEWLINE, NULL, 0 },
	{ "cr cr lf", 1, N, "a\r" END, DATA_BARE_NEWLINE, NULL, 0 },
	{ "stuffed dot after lf", 1, N, "a\n..\n" END, DATA_OK,
	    "a\r\n.\r\n\r\n", 0 },
	{ "reject: crlf", 1, R, "S: x\r\n\r\nb" END, DATA_OK,
	    "S: x\r\n\r\nb\r\n", 0 },
	{ "reject: bare lf", 1, R, "a\nb" END, DATA_BARE_NEWLINE, NULL, 0 },
	{ "reject: lf dot lf", 1, R, "a\n.\nb" END, DATA_BARE_NEWLINE,
	    NULL, 0 },
	{ "reject: bare cr", 1, R, "a\rb" END, DATA_BARE_NEWLINE, NULL, 0 },
	{ "bdat: lf", 0, N, "a\nb\r\nc\n", DATA_OK, "a\r\nb\r\nc\r\n", 0 },
	{ "bdat: crlf dot crlf is text", 0, N, "a\r\n.\r\nb\r\n", DATA_OK,
	    "a\r\n.\r\nb\r\n", 0 },
	{ "bdat: dots stay", 0, N, "..x\r\n.y\n", DATA_OK,
	    "..x\r\n.y\r\n", 0 },
	{ "bdat: no last line end", 0, N, "S: x\n\nxy", DATA_OK,
	    "S: x\r\n\r\nxy", 0 },
	{ "bdat: lf dot lf", 0, N, "a\n.\nb", DATA_SMUGGLING, NULL, 0 },
	{ "bdat: crlf dot lf", 0, N, "a\r\n.\nb", DATA_SMUGGLING, NULL, 0 },
	{ "bdat: lf dot crlf", 0, N, "a\n.\r\nb", DATA_SMUGGLING, NULL, 0 },
	{ "bdat: bare cr", 0, N, "a\rb\r\n", DATA_BARE_NEWLINE, NULL, 0 },
	{ "bdat: cr last", 0, N, "ab\r", DATA_BARE_NEWLINE, NULL, 0 },
	{ "bdat reject: lf", 0, R, "a\nb", DATA_BARE_NEWLINE, NULL, 0 },
	{ "bdat reject: crlf", 0, R, "a\r\nb\r\n", DATA_OK, "a\r\nb\r\n", 0 },
};

/* Every case, whole and split every way up to 7 bytes: the same result. */
static void
test_grammar(void)
{
	const struct data_case *c;
	struct outcome o;
	size_t i, n, step, want_taken;

	for (i = 0; i < sizeof(data_cases) / sizeof(data_cases[0]); i++) {
		c = &data_cases[i];
		n = strlen(c->in);
		want_taken = n - (size_t)c->want_rest;
		for (step = 1; step <= n; step = step < 7 ? step + 1 : n) {
			run(c->in, n, c->dotted, c->mode, 0, 0, step, &o);
			if (o.verdict != c->want || (c->dotted &&
			    (!o.end || o.taken != want_taken)) ||
			    (c->want == DATA_OK &&
			    (o.len != strlen(c->want_body) ||
			    memcmp(o.body, c->want_body, o.len) != 0))) {
				fprintf(stderr, "\n%s, step %zu: got verdict "
				    "%d, end %d after %zu, body \"%.*s\"; "
				    "want %d, end after %zu\n", c->name, step,
				    o.verdict, o.end, o.taken, (int)o.len,
				    o.body, c->want, want_taken);
				CU_FAIL("data case");
			}
			if (step == n)
				break;
		}
	}
}

static void
test_header_normalized(void)
{
	const char in[] = "Subject: x\nFrom: a@example.org\n\nbody\n" END;
	struct outcome o;

	run(in, sizeof(in) - 1, 1, N, 0, 0, 5, &o);
	CU_ASSERT_EQUAL(o.verdict, DATA_OK);
	CU_ASSERT_STRING_EQUAL(o.hdr, "Subject: x\r\nFrom: a@example.org\r\n");
}

/* Limits apply to what is stored: a LF counts as the CRLF it becomes. */
static void
test_limits(void)
{
	const char *ok = "Subject: x\r\n\r\nbody\r\n" END;
	const char *lf = "0123456789\n0123456789\n" END;
	const char *longline = "\r\n0123456789012345678901234567890123456789\n"
	    END;
	struct outcome o;

	run(ok, strlen(ok), 1, N, 0, 0, 64, &o);
	CU_ASSERT_EQUAL(o.verdict, DATA_OK);
	run(lf, strlen(lf), 1, N, 26, 0, 64, &o);
	CU_ASSERT_EQUAL(o.verdict, DATA_OK);
	run(lf, strlen(lf), 1, N, 25, 0, 64, &o);
	CU_ASSERT_EQUAL(o.verdict, DATA_TOO_BIG);
	run(longline, strlen(longline), 1, N, 0, 40, 64, &o);
	CU_ASSERT_EQUAL(o.verdict, DATA_OK);
	run(longline, strlen(longline), 1, N, 0, 39, 3, &o);
	CU_ASSERT_EQUAL(o.verdict, DATA_LONG_LINE);
	run(longline, strlen(longline), 0, N, 0, 39, 3, &o);
	CU_ASSERT_EQUAL(o.verdict, DATA_LONG_LINE);
}

static void
test_received_loop(void)
{
	static char in[DATA_MAX_RECEIVED * 32 + 64];
	struct outcome o;
	size_t i, n = 0;

	for (i = 0; i < DATA_MAX_RECEIVED; i++)
		n += (size_t)snprintf(in + n, sizeof(in) - n,
		    i % 2 ? "Received: from x by y\r\n" : "Received: from x\n");
	snprintf(in + n, sizeof(in) - n, "\r\n" END);
	run(in, strlen(in), 1, N, 0, 0, 7, &o);
	CU_ASSERT_EQUAL(o.verdict, DATA_OK);
	run(in, strlen(in), 0, N, 0, 0, 7, &o);
	CU_ASSERT_EQUAL(o.verdict, DATA_OK);
	snprintf(in + n, sizeof(in) - n, "received: one too many\n\r\n" END);
	run(in, strlen(in), 1, N, 0, 0, 7, &o);
	CU_ASSERT_EQUAL(o.verdict, DATA_LOOP);
	run(in, strlen(in), 0, N, 0, 0, 4, &o);
	CU_ASSERT_EQUAL(o.verdict, DATA_LOOP);
	/* In the body they are just text. */
	in[0] = '\n';
	run(in, strlen(in), 1, N, 0, 0, 7, &o);
	CU_ASSERT_EQUAL(o.verdict, DATA_OK);
}

int
suite_data(void)
{
	CU_pSuite s = CU_add_suite("data", setup, teardown);

	if (s == NULL ||
	    CU_add_test(s, "line grammar, DATA and BDAT", test_grammar) ==
	    NULL ||
	    CU_add_test(s, "header seen with CRLF", test_header_normalized) ==
	    NULL ||
	    CU_add_test(s, "limits on stored bytes", test_limits) == NULL ||
	    CU_add_test(s, "Received loop count", test_received_loop) == NULL)
		return -1;
	return 0;
}
