/*
 * http.c - the http kind: one request as a transfer on the loop's curl
 * multi handle (calls.c). Its output is {status, headers, body}, body
 * parsed when the response says it is JSON; a status of 400 or more fails
 * the node (HTTP_STATUS, retried on 429 and 5xx) with the output kept.
 * Every address is checked before connecting unless
 * HTTP_NODE_ALLOW_PRIVATE is set.
 *
 * Config: url (required) 1..URL_MAX bytes; without any placeholder it must
 * start with http:// or https:// (any case). method optional, one of GET
 * HEAD POST PUT PATCH DELETE OPTIONS. headers optional object of at most
 * HEADERS_MAX entries: names are HTTP token characters, values strings
 * without CR, LF or NUL. body optional, any JSON. timeoutMs optional,
 * 1..300000. credentialId optional: an http_* credential of the
 * workflow's owner, sent (as its header, replacing one of the same name
 * in headers) only when the URL's host is in its allowedHosts, else the
 * node fails CREDENTIAL_HOST_NOT_ALLOWED with nothing sent. Its values
 * are secrets of the call (call_secrets.h). Templates: url, header
 * values, every string inside body.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/json.h"
#include "core/mem.h"
#include "core/str.h"
#include "credentials/hosts.h"
#include "credentials/use.h"
#include "engine/call_secrets.h"
#include "engine/definition_int.h"
#include "engine/engine_int.h"
#include "engine/template.h"

#define URL_MAX 8192
#define HEADERS_MAX 100

static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS",
                                      NULL};

/* ---- config ---- */

/* url: 1..URL_MAX bytes; without placeholders an absolute http(s) URL. */
static void check_url(definition_ctx *c, const json_t *conf)
{
    const json_t *v = definition_need(c, conf, "url");
    if (!v)
        return;
    if (!json_is_string(v)) {
        definition_bad(c, "url", "must be a string");
        return;
    }
    const char *s = json_string_value(v);
    size_t len = json_string_length(v), pos = 0;
    template_ref ref;
    if (len == 0) {
        definition_bad(c, "url", "must not be empty");
    } else if (len > URL_MAX) {
        definition_bad(c, "url", "must be at most 8192 bytes");
    } else if (template_next(s, len, &pos, &ref, NULL, 0) == 0 &&
               strncasecmp(s, "http://", 7) != 0 && strncasecmp(s, "https://", 8) != 0) {
        definition_bad(c, "url", "must start with http:// or https://");
    }
}

static void check_header(definition_ctx *c, const char *name, const json_t *v)
{
    size_t mark = definition_key(c, name);
    if (!str_is_token(name))
        definition_bad(c, NULL, "is not a valid header name (HTTP token characters only)");
    if (!json_is_string(v))
        definition_bad(c, NULL, "must be a string");
    else if (strcspn(json_string_value(v), "\r\n") < json_string_length(v))
        definition_bad(c, NULL, "must not contain CR, LF or NUL");
    definition_pop(c, mark);
}

static void check_headers(definition_ctx *c, const json_t *conf)
{
    const json_t *h = json_object_get(conf, "headers");
    const char *name;
    json_t *v;
    if (!h)
        return;
    if (!json_is_object(h)) {
        definition_bad(c, "headers", "must be an object");
        return;
    }
    if (json_object_size(h) > HEADERS_MAX) {
        definition_bad(c, "headers", "must have at most 100 entries");
        return;
    }
    size_t mark = definition_key(c, "headers");
    json_object_foreach((json_t *)h, name, v) {
        check_header(c, name, v);
    }
    definition_pop(c, mark);
}

void kind_http_check(definition_ctx *c, const json_t *conf)
{
    check_url(c, conf);
    definition_enum(c, conf, "method", false, methods);
    check_headers(c, conf);
    definition_int(c, conf, "timeoutMs", false, 1, 300000);
    definition_credential(c, conf);
}

void kind_http_templates(definition_ctx *c, const json_t *conf)
{
    const json_t *h = json_object_get(conf, "headers");
    definition_walk_string(c, conf, "url");
    if (json_is_object(h)) {
        size_t mark = definition_key(c, "headers");
        const char *name;
        json_t *v;
        json_object_foreach((json_t *)h, name, v) {
            definition_walk_string(c, h, name);
        }
        definition_pop(c, mark);
    }
    definition_walk_key(c, conf, "body");
}

/* ---- the request ---- */

static bool scheme_ok(const char *url)
{
    return !strncasecmp(url, "http://", 7) || !strncasecmp(url, "https://", 8);
}

static bool has_header(const json_t *headers, const char *name)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)headers, k, v) {
        if (!strcasecmp(k, name))
            return true;
    }
    return false;
}

/* config.headers, but for one named skip (the credential's). */
static int add_headers(call *c, const json_t *headers, const char *skip, node_outcome *o)
{
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)headers, k, v) {
        if (skip && !strcasecmp(k, skip))
            continue;
        const char *s = json_string_value(v);
        if (!s || strpbrk(s, "\r\n") || strlen(s) != json_string_length(v)) {
            outcome_fail(o, "INVALID_CONFIG", false,
                         "config.headers values must be strings without CR, LF or NUL");
            return -1;
        }
        if (call_header(c, k, s) != 0) {
            outcome_fail(o, "INVALID_CONFIG", false, "a header of config.headers is too long");
            return -1;
        }
    }
    return 0;
}

/* The header of credential u, its value in value (wiped by the caller);
 * its secrets named to c. The header's name, or NULL with o failed. */
static const char *credential_header(call *c, const credentials_use *u, char *value, size_t cap,
                                     node_outcome *o)
{
    const char *type = u->type->name, *name = "Authorization";
    const char *secret = credentials_use_value(u, u->type->secret);
    const char *user = credentials_use_value(u, "username");
    int n = -1, rc = secret ? call_secret(c, secret) : -1;
    if (!secret) {
        /* stored data without its main secret: refused below */
    } else if (!strcmp(type, "http_bearer")) {
        n = snprintf(value, cap, "Bearer %s", secret);
    } else if (!strcmp(type, "http_header")) {
        name = credentials_use_value(u, "name");
        n = snprintf(value, cap, "%s", secret);
    } else if (!strcmp(type, "http_basic") && user) {
        char pair[2 * CREDENTIALS_VALUE_MAX + 2];
        int pn = snprintf(pair, sizeof(pair), "%s:%s", user, secret);
        n = snprintf(value, cap, "Basic ");
        EVP_EncodeBlock((unsigned char *)value + n, (unsigned char *)pair, pn);
        OPENSSL_cleanse(pair, sizeof(pair));
        rc = rc == 0 ? call_secret(c, value + n) : rc;
    }
    if (rc != 0 || n < 0 || !name) {
        outcome_fail(o, "INVALID_CONFIG", false, "the credential cannot be sent");
        return NULL;
    }
    return name;
}

/* The request of the rendered config with credential u (NULL type: none);
 * 0, or -1 with o failed and nothing sent. */
static int build(call *c, const json_t *conf, const credentials_use *u, node_outcome *o)
{
    const char *url = json_string_value(json_object_get(conf, "url"));
    if (!url || !scheme_ok(url)) {
        outcome_fail(o, "INVALID_CONFIG", false, "config.url must be an http:// or https:// URL");
        return -1;
    }
    const char *cred_name = NULL;
    char cred_value[4 * CREDENTIALS_VALUE_MAX];
    int rc = 0;
    if (u->type && !u->type->http) {
        outcome_fail(o, "INVALID_CONFIG", false,
                     "config.credentialId must name an http_bearer, http_header or http_basic "
                     "credential");
        return -1;
    }
    if (u->type && !credentials_url_allowed(u->hosts, url)) {
        outcome_fail(o, "CREDENTIAL_HOST_NOT_ALLOWED", false,
                     "the URL's host is not in the credential's allowedHosts; nothing was sent");
        return -1;
    }
    if (u->type && !(cred_name = credential_header(c, u, cred_value, sizeof(cred_value), o)))
        rc = -1;
    if (rc == 0 && cred_name && call_header(c, cred_name, cred_value) != 0) {
        outcome_fail(o, "INVALID_CONFIG", false, "the credential's header is too long");
        rc = -1;
    }
    OPENSSL_cleanse(cred_value, sizeof(cred_value));
    if (rc != 0)
        return -1;
    const char *method = json_string_value(json_object_get(conf, "method"));
    const json_t *headers = json_object_get(conf, "headers");
    if (add_headers(c, headers, cred_name, o) != 0)
        return -1;
    const json_t *body = json_object_get(conf, "body");
    if (body && !json_is_null(body)) {
        call_body(c, json_is_string(body) ? xstrdup(json_string_value(body))
                                          : json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY));
        if (!json_is_string(body) && !has_header(headers, "content-type"))
            call_header(c, "Content-Type", "application/json");
    }
    call_method(c, method ? method : "GET");
    call_url(c, url);
    return 0;
}

/* config.timeoutMs, else the node's timeoutMs, else the default. */
static long long timeout_of(const run *r, int i, const json_t *conf)
{
    const json_t *t = json_object_get(conf, "timeoutMs");
    if (json_is_integer(t) && json_integer_value(t) > 0)
        return json_integer_value(t);
    if (r->d->nodes[i].timeout_ms > 0)
        return r->d->nodes[i].timeout_ms;
    return ENGINE_HTTP_DEFAULT_TIMEOUT_MS;
}

call *kind_http_call(loop *lp, run *r, int i, const json_t *conf, long long max_ms,
                     node_outcome *o)
{
    credentials_use u;
    call *c = NULL;
    long long t = timeout_of(r, i, conf);
    if (engine_credential(lp, r, conf, &u, o) == 0)
        c = call_new(lp, r, i, max_ms > 0 && max_ms < t ? max_ms : t, "HTTP_ERROR", o);
    if (c && build(c, conf, &u, o) != 0) {
        call_free(c);
        c = NULL;
    }
    credentials_use_free(&u);
    if (c && !lp->e->cfg->http_node_allow_private)
        call_guard(c);
    return c;
}

node_step kind_http_start(loop *lp, run *r, int i, json_t *conf, node_outcome *o)
{
    call *c = kind_http_call(lp, r, i, conf, 0, o);
    json_decref(conf);
    if (!c || call_start(c, o) != 0)
        return NODE_DONE;
    engine_count(&lp->e->stats.http_calls, 1);
    return NODE_STARTED;
}

/* ---- the response ---- */

static bool is_json_type(const json_t *headers)
{
    const char *ct = json_string_value(json_object_get(headers, "content-type"));
    if (!ct)
        return false;
    size_t n = strcspn(ct, ";");
    return (n >= 16 && !strncasecmp(ct, "application/json", 16)) ||
           (n >= 5 && !strncasecmp(ct + n - 5, "+json", 5));
}

static json_t *response_body(const call *c)
{
    size_t len = 0;
    const char *p = call_response(c, &len);
    if (is_json_type(call_response_headers(c))) {
        json_t *v = json_loadb(p, len, JSON_DECODE_ANY, NULL);
        if (v)
            return v;
    }
    json_t *text = json_string_lossy(p, len);
    return text ? text : json_string("");
}

json_t *kind_http_output(const call *c)
{
    return json_pack("{s:i, s:O, s:o}", "status", (int)call_status(c), "headers",
                     (json_t *)call_response_headers(c), "body", response_body(c));
}

void kind_http_finish(loop *lp, run *r, int i, call *c, node_outcome *o)
{
    (void)lp, (void)r, (void)i;
    long status = call_status(c);
    o->output = kind_http_output(c);
    if (status >= 400) {
        outcome_fail(o, "HTTP_STATUS", status == 429 || status >= 500,
                     "the server answered %ld", status);
        return;
    }
    o->ok = true;
}
