#include "config.h"
#include "tests.h"
int suite_policy(void) { return CU_add_suite("policy", NULL, NULL) ? 0 : -1; }
