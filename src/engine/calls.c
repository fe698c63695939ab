/*
 * calls.c - transfers on the loop's curl multi handle, for the kinds that
 * run as KIND_CALL (engine_int.h has the interface): nothing here blocks;
 * a finished transfer goes to its kind's finish, and the outcome back to
 * the scheduler through loop_node_done.
 *
 * Every transfer: http and https only, no redirects followed, no proxy
 * from the environment (a proxy would hide the address check), a total
 * timeout, a capped response. call_guard checks every address curl is
 * about to connect to (after DNS resolution, so a name that resolves to
 * a private address is caught too).
 *
 * Secrets a kind sends (call_secrets.h) are redacted from the response
 * before the kind's finish reads it and from the outcome after, so no
 * stored error, output or log line about the call holds one.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/buf.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/redact.h"
#include "engine/call_secrets.h"
#include "engine/engine_int.h"
#include "engine/netguard.h"

#define MAX_RESPONSE_HEADERS 100
#define CONNECT_TIMEOUT_MS 10000

struct call {
    loop *lp;
    run *r;
    int node;
    const char *err_code; /* a failed transfer fails the node with this */
    CURL *easy;
    struct curl_slist *headers;
    char *body;
    buf resp;
    bool too_large;
    bool blocked;
    json_t *resp_headers;
    void *data;           /* the kind's, freed with the call */
    redact_set secrets;   /* what the request carries that must not come back */
    call_done_fn done;    /* call_on_done: one of several transfers of its node */
    call_stream_fn stream; /* call_stream: takes the body as it arrives */
    void *stream_state;
    void (*stream_free)(void *state);
    char errbuf[CURL_ERROR_SIZE];
};

static int global_rc = -1;

static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

int calls_global_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, global_init);
    return global_rc;
}

/* ---- transfer callbacks ---- */

static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
    call *c = ctx;
    size_t len = size * n;
    if (c->stream) { /* a piece that goes on live: the call's secrets out first */
        size_t clen = 0;
        char *clean = redact_text_new(&c->secrets, p, len, &clen);
        bool took = c->stream(c->r, c->node, call_status(c), clean ? clean : p,
                              clean ? clen : len, c->stream_state);
        free(clean);
        if (took)
            return len;
    }
    if (c->resp.len + len > ENGINE_HTTP_MAX_RESPONSE || buf_append(&c->resp, p, len) != 0) {
        c->too_large = true;
        return 0; /* aborts the transfer */
    }
    return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *ctx)
{
    call *c = ctx;
    size_t len = size * n;
    if (len >= 5 && !strncmp(p, "HTTP/", 5)) { /* a new response (after 1xx): start over */
        json_object_clear(c->resp_headers);
        return len;
    }
    const char *colon = memchr(p, ':', len);
    if (!colon || json_object_size(c->resp_headers) >= MAX_RESPONSE_HEADERS)
        return len;
    size_t nlen = (size_t)(colon - p);
    const char *v = colon + 1, *end = p + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    char lower[128];
    if (nlen == 0 || nlen >= sizeof(lower))
        return len;
    for (size_t i = 0; i < nlen; i++)
        lower[i] = (char)(p[i] >= 'A' && p[i] <= 'Z' ? p[i] + 32 : p[i]);
    /* Stored text is UTF-8: other bytes (Latin-1 values, junk) become
     * U+FFFD, as in bodies, so the output always encodes. */
    lower[nlen] = '\0';
    const char *key = lower;
    buf name;
    buf_init(&name, 0);
    if (!json_utf8_valid(lower, nlen)) {
        json_utf8_lossy(&name, lower, nlen);
        key = name.data;
    }
    json_t *val = json_string_lossy(v, (size_t)(end - v));
    if (val)
        json_object_set_new_nocheck(c->resp_headers, key, val);
    buf_free(&name);
    return len;
}

static curl_socket_t on_open_socket(void *ctx, curlsocktype purpose, struct curl_sockaddr *a)
{
    call *c = ctx;
    (void)purpose;
    if (netguard_blocked(&a->addr, a->addrlen)) {
        c->blocked = true;
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype, a->protocol);
}

/* ---- building a transfer ---- */

void call_free(call *c)
{
    if (!c)
        return;
    if (c->easy)
        curl_easy_cleanup(c->easy);
    /* the headers may carry a key or a credential: wiped, not just freed */
    for (struct curl_slist *h = redact_empty(&c->secrets) ? NULL : c->headers; h; h = h->next)
        explicit_bzero(h->data, strlen(h->data));
    curl_slist_free_all(c->headers);
    free(c->body);
    buf_free(&c->resp);
    json_decref(c->resp_headers);
    free(c->data);
    if (c->stream_free)
        c->stream_free(c->stream_state);
    redact_clear(&c->secrets);
    free(c);
}

int call_secret(call *c, const char *secret)
{
    return redact_add(&c->secrets, secret, strlen(secret));
}

int call_header(call *c, const char *name, const char *value)
{
    char line[8400];
    int n = snprintf(line, sizeof(line), "%s: %s", name, value);
    struct curl_slist *l = n < (int)sizeof(line) ? curl_slist_append(c->headers, line) : NULL;
    explicit_bzero(line, sizeof(line));
    if (!l)
        return -1;
    c->headers = l;
    return 0;
}

void call_url(call *c, const char *url)
{
    curl_easy_setopt(c->easy, CURLOPT_URL, url);
}

void call_body(call *c, char *body)
{
    free(c->body);
    c->body = body;
    curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, c->body);
    curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE_LARGE,
                     (curl_off_t)(c->body ? strlen(c->body) : 0));
}

void call_method(call *c, const char *method)
{
    if (!strcmp(method, "HEAD"))
        curl_easy_setopt(c->easy, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "GET") || c->body)
        curl_easy_setopt(c->easy, CURLOPT_CUSTOMREQUEST, method);
}

void call_guard(call *c)
{
    curl_easy_setopt(c->easy, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
    curl_easy_setopt(c->easy, CURLOPT_OPENSOCKETDATA, c);
}

void call_set_data(call *c, void *data)
{
    free(c->data);
    c->data = data;
}

void *call_data(const call *c)
{
    return c->data;
}

void call_on_done(call *c, call_done_fn fn)
{
    c->done = fn;
}

void call_stream(call *c, call_stream_fn fn, void *state, void (*state_free)(void *))
{
    c->stream = fn;
    c->stream_state = state;
    c->stream_free = state_free;
}

void *call_stream_state(const call *c)
{
    return c->stream ? c->stream_state : NULL;
}

static void common_options(call *c, long long timeout_ms)
{
    CURL *e = c->easy;
    curl_easy_setopt(e, CURLOPT_PRIVATE, c);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(timeout_ms < CONNECT_TIMEOUT_MS ? timeout_ms : CONNECT_TIMEOUT_MS));
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)ENGINE_HTTP_MAX_RESPONSE);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "aop/" AOP_VERSION);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
}

call *call_new(loop *lp, run *r, int i, long long timeout_ms, const char *err_code,
               node_outcome *o)
{
    call *c = xcalloc(1, sizeof(*c));
    c->lp = lp;
    c->r = r;
    c->node = i;
    c->err_code = err_code;
    buf_init(&c->resp, ENGINE_HTTP_MAX_RESPONSE);
    c->resp_headers = json_object();
    c->easy = curl_easy_init();
    if (!c->easy || !c->resp_headers) {
        outcome_fail(o, "HTTP_ERROR", true, "out of resources for the request");
        call_free(c);
        return NULL;
    }
    common_options(c, timeout_ms);
    return c;
}

int call_start(call *c, node_outcome *o)
{
    call_header(c, "Expect", "");
    curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, c->headers);
    if (curl_multi_add_handle(c->lp->multi, c->easy) != CURLM_OK) {
        outcome_fail(o, "HTTP_ERROR", true, "the request could not be started");
        call_free(c);
        return -1;
    }
    if (!c->done)
        c->r->ns[c->node].call = c;
    return 0;
}

void call_drop(loop *lp, call *c)
{
    curl_multi_remove_handle(lp->multi, c->easy);
    call_free(c);
}

/* ---- outcomes ---- */

long call_status(const call *c)
{
    long status = 0;
    curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
    return status;
}

const char *call_response(const call *c, size_t *len)
{
    *len = c->resp.len;
    return c->resp.data ? c->resp.data : "";
}

const json_t *call_response_headers(const call *c)
{
    return c->resp_headers;
}

static bool transfer_failed(call *c, CURLcode res, node_outcome *o)
{
    if (res == CURLE_OK)
        return false;
    if (c->blocked)
        outcome_fail(o, "ADDRESS_BLOCKED", false,
                     "the address is loopback, private or link-local (HTTP_NODE_ALLOW_PRIVATE "
                     "is false)");
    else if (c->too_large || res == CURLE_FILESIZE_EXCEEDED)
        outcome_fail(o, "RESPONSE_TOO_LARGE", false, "the response is larger than %d bytes",
                     ENGINE_HTTP_MAX_RESPONSE);
    else if (res == CURLE_OPERATION_TIMEDOUT)
        outcome_fail(o, "TIMEOUT", true, "the request timed out");
    else
        outcome_fail(o, c->err_code, true, "%s%s%s", curl_easy_strerror(res),
                     c->errbuf[0] ? ": " : "", c->errbuf);
    return true;
}

/* The response with the call's secrets taken out, before the kind reads it. */
static void redact_response(call *c)
{
    size_t n;
    char *body = redact_text_new(&c->secrets, c->resp.data, c->resp.len, &n);
    if (body) {
        buf_free(&c->resp);
        buf_init(&c->resp, 0);
        buf_append(&c->resp, body, n);
        free(body);
    }
    c->resp_headers = redact_json(&c->secrets, c->resp_headers);
}

/* The outcome with the call's secrets taken out, before anything reads it:
 * what the kind built from elsewhere, a transfer error's text. */
static void redact_outcome(const call *c, node_outcome *o)
{
    redact_cstr(&c->secrets, o->message, sizeof(o->message));
    redact_cstr(&c->secrets, o->model, sizeof(o->model));
    o->output = redact_json(&c->secrets, o->output);
}

static void log_failed(const run *r, int node, const node_outcome *o)
{
    if (o->ok || !log_enabled(LOG_DEBUG))
        return;
    log_debug("node call failed", LF_S("executionId", r->row.id),
              LF_S("nodeId", r->d->nodes[node].id), LF_S("code", o->code),
              LF_S("error", o->message), LF_B("retryable", o->retryable));
}

void calls_collect(loop *lp)
{
    CURLMsg *m;
    int left = 0;
    while ((m = curl_multi_info_read(lp->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        call *c = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&c);
        CURLcode res = m->data.result;
        curl_multi_remove_handle(lp->multi, c->easy);
        run *r = c->r;
        int node = c->node;
        node_outcome o = {0};
        bool secrets = !redact_empty(&c->secrets);
        if (secrets)
            redact_response(c);
        if (c->done) { /* the kind goes on from here, o failed when the transfer did */
            if (transfer_failed(c, res, &o) && secrets)
                redact_outcome(c, &o);
            c->done(lp, r, node, c, &o);
            call_free(c);
            engine_after(lp, r);
            continue;
        }
        if (!transfer_failed(c, res, &o))
            node_kinds[r->d->nodes[node].kind].finish(lp, r, node, c, &o);
        if (secrets)
            redact_outcome(c, &o);
        log_failed(r, node, &o);
        r->ns[node].call = NULL;
        call_free(c);
        loop_node_done(lp, r, node, &o);
        engine_after(lp, r);
    }
}
