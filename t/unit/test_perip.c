#include "config.h"

#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <string.h>

#include "core/perip.h"
#include "tests.h"

static struct sockaddr_storage
ss_of(const char *a)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, a, &s4->sin_addr) == 1)
		s4->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, a, &s6->sin6_addr) == 1)
		s6->sin6_family = AF_INET6;
	return ss;
}

/* Two per client, three per network: the client's limit comes first. */
static void
test_client_and_net_limits(void)
{
	struct perip *t = perip_new();
	struct sockaddr_storage a = ss_of("192.0.2.1"), b = ss_of("192.0.2.2"),
	    c = ss_of("198.51.100.1");

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(perip_add(t, &a, 2, 3), 0);
	CU_ASSERT_EQUAL(perip_add(t, &a, 2, 3), 0);
	CU_ASSERT_EQUAL(perip_add(t, &a, 2, 3), PERIP_CLIENT);
	CU_ASSERT_EQUAL(perip_add(t, &b, 2, 3), 0);
	/* b has one, but 192.0.2.0/24 has three. */
	CU_ASSERT_EQUAL(perip_add(t, &b, 2, 3), PERIP_NET);
	CU_ASSERT_EQUAL(perip_add(t, &c, 2, 3), 0);
	/* A refusal counted nothing: one ending makes room again. */
	perip_del(t, &a);
	CU_ASSERT_EQUAL(perip_add(t, &b, 2, 3), 0);
	CU_ASSERT_EQUAL(perip_add(t, &b, 2, 3), PERIP_CLIENT);
	perip_free(&t);
	CU_ASSERT_PTR_NULL(t);
}

/* An IPv6 /64 is one client: its addresses share one count. */
static void
test_ipv6_prefix_is_one_client(void)
{
	struct perip *t = perip_new();
	struct sockaddr_storage a = ss_of("2001:db8:1:2::1"),
	    b = ss_of("2001:db8:1:2:ffff::9"), c = ss_of("2001:db8:1:3::1"),
	    none;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(perip_add(t, &a, 1, 10), 0);
	CU_ASSERT_EQUAL(perip_add(t, &b, 1, 10), PERIP_CLIENT);
	CU_ASSERT_EQUAL(perip_add(t, &c, 1, 10), 0);
	perip_del(t, &a);
	CU_ASSERT_EQUAL(perip_add(t, &b, 1, 10), 0);
	/* No address family (a pipe): never counted, never refused. */
	memset(&none, 0, sizeof(none));
	CU_ASSERT_EQUAL(perip_add(t, &none, 0, 0), 0);
	perip_free(&t);
}

int
suite_perip(void)
{
	CU_pSuite s = CU_add_suite("perip", NULL, NULL);

	if (s == NULL ||
	    CU_add_test(s, "client and network limits", test_client_and_net_limits) == NULL ||
	    CU_add_test(s, "IPv6 /64 is one client", test_ipv6_prefix_is_one_client) == NULL)
		return -1;
	return 0;
}
