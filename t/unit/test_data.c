#include "config.h"
#include "tests.h"
int suite_data(void) { return CU_add_suite("data", NULL, NULL) ? 0 : -1; }
