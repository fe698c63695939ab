#include "unit.h"

const unit_test exec_store_tests[] = {
    {NULL, NULL},
};
