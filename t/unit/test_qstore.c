#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "queue/journal_int.h"
#include "queue/qstore.h"
#include "tests.h"

static void
test_roundtrip(void)
{
	struct qstore_state *st, *back;
	char *buf, err[256];
	size_t len;

	CU_ASSERT_PTR_NOT_NULL_FATAL(st = qstore_state_new());
	st->warned = 1;
	CU_ASSERT_EQUAL(qstore_state_add(st, "bob@example.com", 0), 0);
	CU_ASSERT_EQUAL(qstore_state_add(st, "\"a b\"@example.com", 2), 0);
	st->r[0].state = QS_FAILED;
	st->r[0].dsn = QS_DSN_OWED;
	st->r[0].attempts = 3;
	st->r[0].next = 1700000100;
	st->r[0].last = 1700000000;
	st->r[0].reply.code = 550;
	snprintf(st->r[0].reply.status, sizeof(st->r[0].reply.status), "5.1.1");
	snprintf(st->r[0].reply.text, sizeof(st->r[0].reply.text),
	    "no such\tuser\nhere");
	snprintf(st->r[0].mta, sizeof(st->r[0].mta), "mx.example.com");
	CU_ASSERT_EQUAL_FATAL(qstore_state_format(st, &buf, &len), 0);
	CU_ASSERT_EQUAL_FATAL(qstore_state_parse(buf, len, &back, err,
	    sizeof(err)), 0);
	CU_ASSERT_EQUAL(back->warned, 1);
	CU_ASSERT_EQUAL_FATAL(back->n, 2);
	CU_ASSERT_STRING_EQUAL(back->r[0].mailbox, "bob@example.com");
	CU_ASSERT_EQUAL(back->r[0].state, QS_FAILED);
	CU_ASSERT_EQUAL(back->r[0].dsn, QS_DSN_OWED);
	CU_ASSERT_EQUAL(back->r[0].attempts, 3);
	CU_ASSERT_EQUAL(back->r[0].next, 1700000100);
	CU_ASSERT_EQUAL(back->r[0].last, 1700000000);
	CU_ASSERT_EQUAL(back->r[0].reply.code, 550);
	CU_ASSERT_STRING_EQUAL(back->r[0].reply.status, "5.1.1");
	/* One line per item: control characters do not survive. */
	CU_ASSERT_STRING_EQUAL(back->r[0].reply.text, "no such?user?here");
	CU_ASSERT_STRING_EQUAL(back->r[0].mta, "mx.example.com");
	CU_ASSERT_STRING_EQUAL(back->r[1].mailbox, "\"a b\"@example.com");
	CU_ASSERT_EQUAL(back->r[1].orig, 2);
	CU_ASSERT_EQUAL(back->r[1].state, QS_PENDING);
	CU_ASSERT_EQUAL(back->r[1].reply.code, 0);
	free(buf);
	qstore_state_free(&st);
	qstore_state_free(&back);
	CU_ASSERT_PTR_NULL(back);
}

/*
 * State written before replies had one type: any status of up to 15 bytes,
 * texts up to 399 bytes.  Everything still reads; what breaks the reply
 * rules gets the class default, never a cut status.
 */
static void
test_older_state(void)
{
	static const char old[] =
	    "smtpq-state 1\n"
	    "rcpt failed owed 3 0 1700000000 0 a@example.com\n"
	    "reply 550 5.1.1 no such user\n"
	    "mta mx.example.com\n"
	    "rcpt failed owed 3 0 1700000000 1 b@example.com\n"
	    "reply 550 5.7.123456 long status\n"
	    "rcpt pending - 1 1700000100 1700000000 2 c@example.com\n"
	    "reply 451 5.4.1 wrong class\n"
	    "rcpt pending - 1 1700000100 1700000000 3 d@example.com\n"
	    "reply 0 - no code\n"
	    "rcpt pending - 1 1700000100 1700000000 4 e@example.com\n"
	    "reply 999 4.0.0 not SMTP\n";
	struct qstore_state *st;
	char buf[1024], err[256];
	size_t n;

	CU_ASSERT_EQUAL_FATAL(qstore_state_parse(old, sizeof(old) - 1, &st,
	    err, sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(st->n, 5);
	CU_ASSERT_EQUAL(st->r[0].reply.code, 550);
	CU_ASSERT_STRING_EQUAL(st->r[0].reply.status, "5.1.1");
	CU_ASSERT_STRING_EQUAL(st->r[0].reply.text, "no such user");
	CU_ASSERT_STRING_EQUAL(st->r[0].mta, "mx.example.com");
	CU_ASSERT_STRING_EQUAL(st->r[1].reply.status, "5.0.0");
	CU_ASSERT_STRING_EQUAL(st->r[1].reply.text, "long status");
	CU_ASSERT_EQUAL(st->r[2].reply.code, 451);
	CU_ASSERT_STRING_EQUAL(st->r[2].reply.status, "4.0.0");
	CU_ASSERT_EQUAL(st->r[3].reply.code, 0);
	CU_ASSERT_STRING_EQUAL(st->r[3].reply.status, "");
	CU_ASSERT_STRING_EQUAL(st->r[3].reply.text, "no code");
	CU_ASSERT_EQUAL(st->r[4].reply.code, 0);
	CU_ASSERT_STRING_EQUAL(st->r[4].reply.status, "");
	qstore_state_free(&st);

	/* A text over the bound is cut before a character, not inside. */
	n = (size_t)snprintf(buf, sizeof(buf), "smtpq-state 1\n"
	    "rcpt pending - 1 2 3 0 a@b\nreply 451 4.4.1 ");
	memset(buf + n, 'x', REPLY_TEXT_MAX - 2);
	n += REPLY_TEXT_MAX - 2;
	memcpy(buf + n, "\xc3\xa9yy\n", 5);
	n += 5;
	CU_ASSERT_EQUAL_FATAL(qstore_state_parse(buf, n, &st, err,
	    sizeof(err)), 0);
	CU_ASSERT_EQUAL(strlen(st->r[0].reply.text), REPLY_TEXT_MAX - 2);
	qstore_state_free(&st);
}

static void
test_damaged(void)
{
	static const char *cases[] = {
		"",
		"smtpq-state 2\n",
		"smtpq-state 1\nrcpt pending - 1 2 3\n",
		"smtpq-state 1\nrcpt pending - x 2 3 0 a@b\n",
		"smtpq-state 1\nrcpt bogus - 1 2 3 0 a@b\n",
		"smtpq-state 1\nrcpt pending maybe 1 2 3 0 a@b\n",
		"smtpq-state 1\nreply 550 5.1.1 early\n",
		"smtpq-state 1\nrcpt pending - 1 2 3 0 a@b",
		"smtpq-state 1\nrcpt pending - 1 2 3 0 a@b\nreply 5000 - x\n",
	};
	static const char later[] = "smtpq-state 1\nnewthing 1\n";
	struct qstore_state *st;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CU_ASSERT_EQUAL(qstore_state_parse(cases[i], strlen(cases[i]),
		    &st, err, sizeof(err)), -1);
		CU_ASSERT_PTR_NULL(st);
	}
	/* Unknown items from later versions are ignored. */
	CU_ASSERT_EQUAL(qstore_state_parse(later, strlen(later), &st, err,
	    sizeof(err)), 0);
	qstore_state_free(&st);
}

static void
test_store(void)
{
	char dir[] = "/tmp/qstore-test.XXXXXX", path[512], err[256];
	char (*ids)[32];
	struct qstore *qs;
	struct qstore_state *st, *back;
	size_t n;
	int fd, lock1, lock2;
	const char *id = "1K1375QXW1J630BV";

	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	CU_ASSERT_PTR_NOT_NULL_FATAL(qs = qstore_open(dir, QSTORE_CREATE, err, sizeof(err)));
	snprintf(path, sizeof(path), "%s/queue/%s", dir, id);
	CU_ASSERT((fd = open(path, O_WRONLY | O_CREAT, 0600)) != -1);
	close(fd);
	snprintf(path, sizeof(path), "%s/queue/not-an-id", dir);
	CU_ASSERT((fd = open(path, O_WRONLY | O_CREAT, 0600)) != -1);
	close(fd);

	CU_ASSERT_EQUAL(qstore_list(qs, &ids, &n), 0);
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT_STRING_EQUAL(ids[0], id);
	qstore_free_ids(&ids);

	CU_ASSERT_EQUAL(qstore_state_load(qs, id, &st, err, sizeof(err)), 1);
	st = qstore_state_new();
	CU_ASSERT_EQUAL(qstore_state_add(st, "x@example.com", 0), 0);
	fd = qstore_open_msg(qs, id);
	CU_ASSERT_EQUAL_FATAL(qstore_lock(fd), 0);
	CU_ASSERT_EQUAL(qstore_state_save(qs, id, st, err, sizeof(err)), 0);
	qstore_unlock(fd);
	CU_ASSERT_EQUAL(qstore_state_load(qs, id, &back, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(back->n, 1);
	qstore_state_free(&back);
	qstore_state_free(&st);

	CU_ASSERT_EQUAL(qstore_held(qs, id), 0);
	CU_ASSERT_EQUAL(qstore_set_hold(qs, id, 0), 1);	/* not held */
	CU_ASSERT_EQUAL(qstore_set_hold(qs, id, 1), 0);
	CU_ASSERT_EQUAL(qstore_held(qs, id), 1);
	CU_ASSERT_EQUAL(qstore_set_hold(qs, id, 1), 1);	/* already */
	CU_ASSERT_EQUAL(qstore_set_hold(qs, id, 0), 0);
	CU_ASSERT_EQUAL(qstore_held(qs, id), 0);

	/* One runner: a second lock, even in this process, is refused. */
	CU_ASSERT_EQUAL(qstore_runner_pid(qs), 0);
	CU_ASSERT((lock1 = qstore_runner_lock(qs, err, sizeof(err))) != -1);
	CU_ASSERT_EQUAL(qstore_runner_pid(qs), (long)getpid());
	CU_ASSERT_EQUAL(lock2 = qstore_runner_lock(qs, err, sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "another queue runner"));
	close(lock1);
	CU_ASSERT_EQUAL(qstore_wake(qs, "scan"), 0);	/* nobody listens */

	/* Removal takes the state with it; the lock then reports it gone. */
	CU_ASSERT_EQUAL(qstore_set_hold(qs, id, 1), 0);
	CU_ASSERT_EQUAL(qstore_remove(qs, id), 0);
	snprintf(path, sizeof(path), "%s/state/%s", dir, id);
	CU_ASSERT_EQUAL(access(path, F_OK), -1);
	CU_ASSERT_EQUAL(qstore_held(qs, id), 0);
	CU_ASSERT_EQUAL(qstore_lock(fd), 1);
	close(fd);
	CU_ASSERT_EQUAL(qstore_open_msg(qs, id), -1);
	CU_ASSERT_EQUAL(errno, ENOENT);
	CU_ASSERT_EQUAL(qstore_open_msg(qs, "../../etc/passwd"), -1);

	qstore_close(&qs);
	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	CU_ASSERT_EQUAL(system(path), 0);
}

/* Only QSTORE_CREATE makes a spool; the others name what is missing. */
static void
test_open_modes(void)
{
	char dir[] = "/tmp/qstore-test.XXXXXX", path[512], err[256];
	struct qstore *qs;
	struct stat sb;

	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/spool", dir);
	CU_ASSERT_PTR_NULL(qs = qstore_open(path, QSTORE_READ, err,
	    sizeof(err)));
	CU_ASSERT_EQUAL(errno, ENOENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, path));
	CU_ASSERT_PTR_NULL(qstore_open(path, QSTORE_WRITE, err, sizeof(err)));
	CU_ASSERT_EQUAL(errno, ENOENT);
	CU_ASSERT_EQUAL(stat(path, &sb), -1);

	/* A spool without queue/ is named with it. */
	CU_ASSERT_EQUAL_FATAL(mkdir(path, 0700), 0);
	CU_ASSERT_PTR_NULL(qstore_open(path, QSTORE_READ, err, sizeof(err)));
	CU_ASSERT_EQUAL(errno, ENOENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "/spool/queue"));

	CU_ASSERT_PTR_NOT_NULL_FATAL(qs = qstore_open(path, QSTORE_CREATE,
	    err, sizeof(err)));
	qstore_close(&qs);
	snprintf(path, sizeof(path), "%s/spool/hold", dir);
	CU_ASSERT_EQUAL(rmdir(path), 0);
	snprintf(path, sizeof(path), "%s/spool", dir);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qs = qstore_open(path, QSTORE_READ, err,
	    sizeof(err)));
	qstore_close(&qs);
	snprintf(path, sizeof(path), "%s/spool/hold", dir);
	CU_ASSERT_EQUAL(stat(path, &sb), -1);	/* reading makes nothing */
	snprintf(path, sizeof(path), "%s/spool", dir);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qs = qstore_open(path, QSTORE_WRITE,
	    err, sizeof(err)));
	qstore_close(&qs);
	snprintf(path, sizeof(path), "%s/spool/hold", dir);
	CU_ASSERT_EQUAL(stat(path, &sb), 0);

	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	CU_ASSERT_EQUAL(system(path), 0);
}

static void
test_ids(void)
{
	CU_ASSERT(qstore_valid_id("0123456789ABCDEF"));
	CU_ASSERT(!qstore_valid_id("0123456789ABCDE"));
	CU_ASSERT(!qstore_valid_id("0123456789ABCDEFG"));
	CU_ASSERT(!qstore_valid_id("0123456789ABCDEI"));	/* no I */
	CU_ASSERT(!qstore_valid_id("0123456789abcdef"));
}

/* The journal's check value: CRC-32 as in IEEE 802.3 (and zlib, gzip). */
static void
test_journal_crc(void)
{
	const unsigned char *v = (const unsigned char *)"123456789";

	CU_ASSERT_EQUAL(journal_crc32(0, v, 0), 0);
	CU_ASSERT_EQUAL(journal_crc32(0, v, 9), 0xcbf43926u);
	/* In pieces as in one go. */
	CU_ASSERT_EQUAL(journal_crc32(journal_crc32(0, v, 4), v + 4, 5),
	    0xcbf43926u);
}

int
suite_qstore(void)
{
	CU_pSuite s = CU_add_suite("qstore", NULL, NULL);

	if (s == NULL ||
	    CU_add_test(s, "state round trip", test_roundtrip) == NULL ||
	    CU_add_test(s, "damaged state", test_damaged) == NULL ||
	    CU_add_test(s, "older state reads", test_older_state) == NULL ||
	    CU_add_test(s, "store operations", test_store) == NULL ||
	    CU_add_test(s, "open modes", test_open_modes) == NULL ||
	    CU_add_test(s, "queue ids", test_ids) == NULL ||
	    CU_add_test(s, "journal check value", test_journal_crc) == NULL)
		return -1;
	return 0;
}
