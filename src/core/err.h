/*
 * err.h - the one error enum of the program.
 *
 * Internal functions return an aop_err and pass data through out-parameters.
 * err_http_status() and err_code() map a value to the HTTP status and the
 * contract's code string (see API.md, "Errors"); the mapping is one table.
 */
#ifndef AOP_CORE_ERR_H
#define AOP_CORE_ERR_H

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
    AOP_ERR_PAYLOAD_TOO_LARGE,
    AOP_ERR_URI_TOO_LONG,
    AOP_ERR_HEADERS_TOO_LARGE,
    AOP_ERR_UNSUPPORTED_MEDIA_TYPE,
    AOP_ERR_RATE_LIMITED,
    AOP_ERR_INTERNAL,
    AOP_ERR_UNAVAILABLE,
    AOP_ERR__COUNT
} aop_err;

/* HTTP status for an error (200 for AOP_OK). */
int err_http_status(aop_err e);

/* Contract code string, e.g. "VALIDATION_ERROR". Never NULL. */
const char *err_code(aop_err e);

/* A short default message safe to show to any client. Never NULL. */
const char *err_message(aop_err e);

#endif
