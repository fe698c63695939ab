#include "unit.h"

const unit_test limiter_tests[] = {
    {NULL, NULL},
};
