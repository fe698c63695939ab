/*
 * err.h - the one error enum of the program, and the helper that writes a
 * failure's message for a caller.
 *
 * Internal functions return an aop_err and pass data through out-parameters.
 * err_http_status(), err_code() and err_message() map a value to the HTTP
 * status, the contract's code string and a default message (the codes are
 * the contract's error table plus docs/api.md, "Error codes added to the
 * contract's table"); the mapping is one table, in err.c.
 *
 * Functions that explain a failure in words take `char *err, size_t errlen`
 * (a buffer of the caller's; err may be NULL or errlen 0 when the caller does
 * not want the words) and fill it with err_set().
 */
#ifndef AOP_CORE_ERR_H
#define AOP_CORE_ERR_H

#include <stddef.h>

typedef enum {
    AOP_OK = 0,
    AOP_ERR_INVALID_JSON,
    AOP_ERR_VALIDATION,
    AOP_ERR_UNAUTHORIZED,
    AOP_ERR_TOKEN_EXPIRED,
    AOP_ERR_INVALID_CREDENTIALS,
    AOP_ERR_FORBIDDEN,
    AOP_ERR_NOT_FOUND,
    AOP_ERR_METHOD_NOT_ALLOWED,
    AOP_ERR_CONFLICT,
    AOP_ERR_VERSION_CONFLICT,
    AOP_ERR_RESOURCE_LOCKED,
    AOP_ERR_WORKFLOW_INACTIVE,
    AOP_ERR_PAYLOAD_TOO_LARGE,
    AOP_ERR_URI_TOO_LONG,
    AOP_ERR_HEADERS_TOO_LARGE,
    AOP_ERR_UNSUPPORTED_MEDIA_TYPE,
    AOP_ERR_RATE_LIMITED,
    AOP_ERR_QUOTA_EXCEEDED,
    AOP_ERR_INTERNAL,
    AOP_ERR_UNAVAILABLE,
    AOP_ERR__COUNT
} aop_err;

/* HTTP status for an error (200 for AOP_OK; 500 for a value outside the enum). */
int err_http_status(aop_err e);

/* Contract code string, e.g. "VALIDATION_ERROR" ("INTERNAL_ERROR" for a value
 * outside the enum). Never NULL. */
const char *err_code(aop_err e);

/* A short default message safe to show to any client. Never NULL. */
const char *err_message(aop_err e);

/* Formats a message into err (at most errlen bytes, always terminated) when
 * the caller gave room for one. Returns -1, so that a function failing with
 * -1 can end with `return err_set(...)`. */
__attribute__((format(printf, 3, 4))) int err_set(char *err, size_t errlen, const char *fmt,
                                                  ...);

#endif
