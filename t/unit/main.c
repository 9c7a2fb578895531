#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include <CUnit/Basic.h>

#include "tests.h"

int
main(void)
{
	int (*suites[])(void) = { suite_str, suite_lineio, suite_addr,
	    suite_cmdparse, suite_data, suite_policy, suite_cidr, suite_modules,
	    suite_secrets, suite_sasl, suite_throttle, suite_tls,
	    suite_tls_certs, suite_senders, suite_envelope, suite_queueconf,
	    suite_qstore, suite_spawn, suite_dsn,
	    suite_dns, suite_dial, suite_convert, suite_creds, suite_client,
	    suite_proxy, suite_table, suite_recipients, suite_mtasts,
	    suite_tlsrpt, suite_dkim, suite_milter, suite_log, suite_sched,
	    suite_journal, suite_fsutil, suite_conf, suite_confsnap,
	    suite_reply, suite_perip, suite_parking, suite_thread,
	    suite_net };
	unsigned int i, failed;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	for (i = 0; i < sizeof(suites) / sizeof(suites[0]); i++)
		if (suites[i]() != 0) {
			fprintf(stderr, "cannot register suite %u\n", i);
			return 1;
		}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	CU_cleanup_registry();
	return failed == 0 ? 0 : 1;
}
