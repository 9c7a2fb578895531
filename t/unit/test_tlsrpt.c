#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "queue/tlsrpt.h"
#include "tests.h"

static const char RECORDS[] =
    "S\tsts\tversion: STSv1|mode: testing|mx: *.example.net\t\t"
    "mx1.example.net\t192.0.2.1\t\n"
    "F\tsts\tversion: STSv1|mode: testing|mx: *.example.net\t"
    "certificate-expired\tmx2.example.net\t192.0.2.2\tcert \"old\"\n"
    "F\tsts\tversion: STSv1|mode: testing|mx: *.example.net\t"
    "certificate-expired\tmx2.example.net\t192.0.2.2\tcert \"old\"\n"
    "S\ttlsa\t3 1 1 AB\t\tmx3.example.net\t192.0.2.3\t\n"
    "torn line without tabs\n"
    "X\tsts\tp\t\th\ta\tw\n"
    "S\tsts\tversion: STSv1|mode: testing|mx: *.example.net\t\t";

static void
test_json(void)
{
	char *out = NULL;

	CU_ASSERT_EQUAL_FATAL(tlsrpt_json(RECORDS, sizeof(RECORDS) - 1,
	    "example.net", "2026-01-01T00:00:00Z", "2026-01-01T23:59:59Z",
	    "Org \"Q\"", "tlsrpt@example.org", "id-1@example.org", &out), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(out);
	CU_ASSERT_PTR_NOT_NULL(strstr(out,
	    "{\"organization-name\":\"Org \\\"Q\\\"\","
	    "\"date-range\":{\"start-datetime\":\"2026-01-01T00:00:00Z\","
	    "\"end-datetime\":\"2026-01-01T23:59:59Z\"},"
	    "\"contact-info\":\"tlsrpt@example.org\","
	    "\"report-id\":\"id-1@example.org\",\"policies\":["));
	/* Two policies; the torn, foreign and unfinished lines ignored. */
	CU_ASSERT_PTR_NOT_NULL(strstr(out,
	    "{\"policy\":{\"policy-type\":\"sts\",\"policy-string\":"
	    "[\"version: STSv1\",\"mode: testing\",\"mx: *.example.net\"],"
	    "\"policy-domain\":\"example.net\"},\"summary\":{"
	    "\"total-successful-session-count\":1,"
	    "\"total-failure-session-count\":2},\"failure-details\":["
	    "{\"result-type\":\"certificate-expired\","
	    "\"receiving-ip\":\"192.0.2.2\","
	    "\"receiving-mx-hostname\":\"mx2.example.net\","
	    "\"failed-session-count\":2,"
	    "\"failure-reason-code\":\"cert \\\"old\\\"\"}]}"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out,
	    "{\"policy\":{\"policy-type\":\"tlsa\",\"policy-string\":"
	    "[\"3 1 1 AB\"],\"policy-domain\":\"example.net\"},"
	    "\"summary\":{\"total-successful-session-count\":1,"
	    "\"total-failure-session-count\":0}}]}"));
	free(out);

	/* No records: a report with no policies. */
	CU_ASSERT_EQUAL(tlsrpt_json("", 0, "example.net", "a", "b", "o", "c",
	    "i", &out), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"policies\":[]}"));
	free(out);
}

static void
test_record_roundtrip(void)
{
	char dir[] = "/tmp/tlsrpt-unit-XXXXXX", path[256], buf[2048];
	struct client_tls_event ev;
	char *out = NULL;
	ssize_t n;
	int fd;

	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	memset(&ev, 0, sizeof(ev));
	ev.domain = "example.net";
	ev.policy_type = "sts";
	ev.policy = "version: STSv1\nmode: enforce";
	ev.mx_host = "mx.example.net";
	ev.addr = "192.0.2.9";
	ev.failure = "certificate-host-mismatch";
	ev.detail = "tab\there,\nnewline";
	CU_ASSERT_EQUAL(tlsrpt_record(dir, &ev, 86400), 0);
	ev.failure = NULL;
	ev.detail = "";
	CU_ASSERT_EQUAL(tlsrpt_record(dir, &ev, 86400 + 60), 0);
	/* A domain that cannot name a file is refused. */
	ev.domain = "../etc";
	CU_ASSERT_EQUAL(tlsrpt_record(dir, &ev, 86400), -1);

	snprintf(path, sizeof(path), "%s/1970-01-02/example.net", dir);
	CU_ASSERT_FATAL((fd = open(path, O_RDONLY)) != -1);
	n = read(fd, buf, sizeof(buf));
	close(fd);
	CU_ASSERT_FATAL(n > 0);
	CU_ASSERT_EQUAL(tlsrpt_json(buf, (size_t)n, "example.net",
	    "s", "e", "o", "c", "i", &out), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(out,
	    "\"total-successful-session-count\":1,"
	    "\"total-failure-session-count\":1"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out,
	    "\"failure-reason-code\":\"tab here, newline\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(out,
	    "[\"version: STSv1\",\"mode: enforce\"]"));
	free(out);
	unlink(path);
	snprintf(path, sizeof(path), "%s/1970-01-02", dir);
	rmdir(path);
	rmdir(dir);
}

static void
test_day_name(void)
{
	char day[16];

	CU_ASSERT_EQUAL(tlsrpt_day_name(0, day, sizeof(day)), 0);
	CU_ASSERT_STRING_EQUAL(day, "1970-01-01");
	CU_ASSERT_EQUAL(tlsrpt_valid_domain("mx-1.example.net"), 1);
	CU_ASSERT_EQUAL(tlsrpt_valid_domain(".hidden"), 0);
	CU_ASSERT_EQUAL(tlsrpt_valid_domain("a/b"), 0);
	CU_ASSERT_EQUAL(tlsrpt_valid_domain(""), 0);
}

int
suite_tlsrpt(void)
{
	CU_pSuite s = CU_add_suite("tlsrpt", NULL, NULL);

	if (s == NULL ||
	    CU_add_test(s, "report JSON", test_json) == NULL ||
	    CU_add_test(s, "records to a report", test_record_roundtrip) ==
	    NULL ||
	    CU_add_test(s, "day and domain names", test_day_name) == NULL)
		return -1;
	return 0;
}
