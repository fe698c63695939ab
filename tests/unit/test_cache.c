#include "unit.h"

const unit_test cache_tests[] = {
    {NULL, NULL},
};
