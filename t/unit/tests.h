/* Each test file registers its suite here. */
#ifndef TESTS_H
#define TESTS_H

#include <CUnit/CUnit.h>

int	suite_str(void);
int	suite_lineio(void);
int	suite_log(void);
int	suite_addr(void);
int	suite_cmdparse(void);
int	suite_data(void);
int	suite_policy(void);
int	suite_cidr(void);
int	suite_proxy(void);
int	suite_modules(void);
int	suite_secrets(void);
int	suite_sasl(void);
int	suite_throttle(void);
int	suite_tls(void);
int	suite_tls_certs(void);
int	suite_senders(void);
int	suite_table(void);
int	suite_recipients(void);
int	suite_envelope(void);
int	suite_queueconf(void);
int	suite_qstore(void);
int	suite_spawn(void);
int	suite_dsn(void);
int	suite_dns(void);
int	suite_dial(void);
int	suite_convert(void);
int	suite_creds(void);
int	suite_client(void);
int	suite_mtasts(void);
int	suite_tlsrpt(void);
int	suite_dkim(void);
int	suite_milter(void);
int	suite_sched(void);
int	suite_journal(void);
int	suite_fsutil(void);
int	suite_conf(void);
int	suite_confsnap(void);
int	suite_reply(void);
int	suite_perip(void);
int	suite_parking(void);
int	suite_net(void);
int	suite_thread(void);

#endif
