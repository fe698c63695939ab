#include "core/err.h"

#include <stdarg.h>
#include <stdio.h>

static const struct {
    int status;
    const char *code;
    const char *message;
} err_table[AOP_ERR__COUNT] = {
    [AOP_OK]                         = {200, "OK", "ok"},
    [AOP_ERR_INVALID_JSON]           = {400, "INVALID_JSON", "Request body is not valid JSON"},
    [AOP_ERR_VALIDATION]             = {400, "VALIDATION_ERROR", "Request is not valid"},
    [AOP_ERR_UNAUTHORIZED]           = {401, "UNAUTHORIZED", "Authentication required"},
    [AOP_ERR_TOKEN_EXPIRED]          = {401, "TOKEN_EXPIRED", "Access token has expired"},
    [AOP_ERR_INVALID_CREDENTIALS]    = {401, "INVALID_CREDENTIALS", "Invalid email or password"},
    [AOP_ERR_FORBIDDEN]              = {403, "FORBIDDEN", "Not allowed"},
    [AOP_ERR_NOT_FOUND]              = {404, "NOT_FOUND", "Not found"},
    [AOP_ERR_METHOD_NOT_ALLOWED]     = {405, "METHOD_NOT_ALLOWED", "Method not allowed"},
    [AOP_ERR_CONFLICT]               = {409, "CONFLICT", "Resource already exists"},
    [AOP_ERR_VERSION_CONFLICT]       = {409, "VERSION_CONFLICT", "Version is not the current version"},
    [AOP_ERR_RESOURCE_LOCKED]        = {409, "RESOURCE_LOCKED", "Resource is locked by another writer"},
    [AOP_ERR_WORKFLOW_INACTIVE]      = {409, "WORKFLOW_INACTIVE", "The workflow is not active"},
    [AOP_ERR_PAYLOAD_TOO_LARGE]      = {413, "PAYLOAD_TOO_LARGE", "Request body is too large"},
    [AOP_ERR_URI_TOO_LONG]           = {414, "URI_TOO_LONG", "Request URL is too long"},
    [AOP_ERR_HEADERS_TOO_LARGE]      = {431, "HEADERS_TOO_LARGE", "Request headers are too large"},
    [AOP_ERR_UNSUPPORTED_MEDIA_TYPE] = {415, "UNSUPPORTED_MEDIA_TYPE", "Content-Type must be application/json"},
    [AOP_ERR_RATE_LIMITED]           = {429, "RATE_LIMITED", "Too many requests"},
    [AOP_ERR_QUOTA_EXCEEDED]         = {429, "QUOTA_EXCEEDED", "Too many active executions"},
    [AOP_ERR_INTERNAL]               = {500, "INTERNAL_ERROR", "Internal server error"},
    [AOP_ERR_UNAVAILABLE]            = {503, "SERVICE_UNAVAILABLE", "Service unavailable"},
};

static int valid(aop_err e)
{
    return (int)e >= 0 && e < AOP_ERR__COUNT;
}

int err_http_status(aop_err e)
{
    return valid(e) ? err_table[e].status : 500;
}

const char *err_code(aop_err e)
{
    return valid(e) ? err_table[e].code : "INTERNAL_ERROR";
}

const char *err_message(aop_err e)
{
    return valid(e) ? err_table[e].message : "Internal server error";
}

int err_set(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}
