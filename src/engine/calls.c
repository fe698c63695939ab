/*
 * calls.c - http and llm nodes as transfers on the loop's curl multi
 * handle: nothing here blocks; the outcome of each transfer goes back to
 * the scheduler through loop_node_done.
 *
 * Every transfer: http and https only, no redirects followed, no proxy
 * from the environment (a proxy would hide the address check), a total
 * timeout, a capped response. http nodes check every address curl is
 * about to connect to (after DNS resolution, so a name that resolves to
 * a private address is caught too) unless HTTP_NODE_ALLOW_PRIVATE is set;
 * llm nodes only ever call LLM_BASE_URL.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "core/buf.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/str.h"
#include "engine/engine_int.h"
#include "engine/netguard.h"

#define MAX_RESPONSE_HEADERS 100
#define CONNECT_TIMEOUT_MS 10000

struct call {
    loop *lp;
    run *r;
    int node;
    bool llm;
    CURL *easy;
    struct curl_slist *headers;
    char *body;
    buf resp;
    bool too_large;
    bool blocked;
    json_t *resp_headers;
    char model[201];
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
    char name[128];
    if (nlen == 0 || nlen >= sizeof(name))
        return len;
    for (size_t i = 0; i < nlen; i++)
        name[i] = (char)(p[i] >= 'A' && p[i] <= 'Z' ? p[i] + 32 : p[i]);
    name[nlen] = '\0';
    json_t *val = json_stringn_nocheck(v, (size_t)(end - v));
    if (val && !json_string_value(val)) {
        json_decref(val);
        val = NULL;
    }
    if (val && json_object_set_new_nocheck(c->resp_headers, name, val) != 0)
        return len;
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

static void call_free(call *c)
{
    if (c->easy)
        curl_easy_cleanup(c->easy);
    curl_slist_free_all(c->headers);
    free(c->body);
    buf_free(&c->resp);
    json_decref(c->resp_headers);
    free(c);
}

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

static int add_header(call *c, const char *name, const char *value)
{
    char line[8400];
    if (snprintf(line, sizeof(line), "%s: %s", name, value) >= (int)sizeof(line))
        return -1;
    struct curl_slist *l = curl_slist_append(c->headers, line);
    if (!l)
        return -1;
    c->headers = l;
    return 0;
}

/* The http node's request; 0, or -1 with the outcome failed. */
static int build_http(call *c, const json_t *cfgv, node_outcome *o)
{
    const char *url = json_string_value(json_object_get(cfgv, "url"));
    if (!url || !scheme_ok(url)) {
        outcome_fail(o, "INVALID_CONFIG", false, "config.url must be an http:// or https:// URL");
        return -1;
    }
    const char *method = json_string_value(json_object_get(cfgv, "method"));
    if (!method)
        method = "GET";
    const json_t *headers = json_object_get(cfgv, "headers");
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)headers, k, v) {
        const char *s = json_string_value(v);
        if (!s || strpbrk(s, "\r\n") || strlen(s) != json_string_length(v)) {
            outcome_fail(o, "INVALID_CONFIG", false,
                         "config.headers values must be strings without CR, LF or NUL");
            return -1;
        }
        if (add_header(c, k, s) != 0) {
            outcome_fail(o, "INVALID_CONFIG", false, "a header of config.headers is too long");
            return -1;
        }
    }
    const json_t *body = json_object_get(cfgv, "body");
    if (body && !json_is_null(body)) {
        c->body = json_is_string(body) ? xstrdup(json_string_value(body))
                                       : json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!json_is_string(body) && !has_header(headers, "content-type"))
            add_header(c, "Content-Type", "application/json");
        curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, c->body);
        curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(c->body ? strlen(c->body) : 0));
    }
    if (!strcmp(method, "HEAD"))
        curl_easy_setopt(c->easy, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "GET") || c->body)
        curl_easy_setopt(c->easy, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c->easy, CURLOPT_URL, url);
    return 0;
}

/* Message contents that a whole placeholder made non-strings are sent as
 * their JSON text: providers take strings. */
static json_t *llm_messages(const json_t *msgs)
{
    json_t *out = json_array();
    size_t i;
    const json_t *m;
    json_array_foreach(msgs, i, m) {
        json_t *copy = json_deep_copy(m);
        const json_t *content = json_object_get(copy, "content");
        if (content && !json_is_string(content)) {
            char *s = json_dumps(content, JSON_COMPACT | JSON_ENCODE_ANY);
            json_object_set_new(copy, "content", json_string(s ? s : ""));
            free(s);
        }
        json_array_append_new(out, copy);
    }
    return out;
}

static int build_llm(call *c, const config *cfg, const json_t *cfgv, node_outcome *o)
{
    if (!cfg->llm_base_url) {
        outcome_fail(o, "LLM_NOT_CONFIGURED", false, "LLM_BASE_URL is not set on the server");
        return -1;
    }
    const char *model = json_string_value(json_object_get(cfgv, "model"));
    if (!model || !*model || strlen(model) >= sizeof(c->model)) {
        outcome_fail(o, "INVALID_CONFIG", false, "config.model must be a string of 1..200 bytes");
        return -1;
    }
    str_copy(c->model, sizeof(c->model), model);
    json_t *req = json_pack("{s:s, s:o}", "model", model, "messages",
                            llm_messages(json_object_get(cfgv, "messages")));
    const json_t *t = json_object_get(cfgv, "temperature");
    if (json_is_number(t))
        json_object_set(req, "temperature", (json_t *)t);
    const json_t *mt = json_object_get(cfgv, "maxTokens");
    if (json_is_integer(mt))
        json_object_set(req, "max_tokens", (json_t *)mt);
    c->body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!c->body) {
        outcome_fail(o, "INVALID_CONFIG", false, "the request could not be built");
        return -1;
    }
    size_t blen = strlen(cfg->llm_base_url);
    while (blen > 0 && cfg->llm_base_url[blen - 1] == '/')
        blen--;
    char url[4096];
    if (snprintf(url, sizeof(url), "%.*s/chat/completions", (int)blen, cfg->llm_base_url) >=
        (int)sizeof(url)) {
        outcome_fail(o, "LLM_NOT_CONFIGURED", false, "LLM_BASE_URL is too long");
        return -1;
    }
    add_header(c, "Content-Type", "application/json");
    add_header(c, "Accept", "application/json");
    if (cfg->llm_api_key) {
        char auth[2048];
        snprintf(auth, sizeof(auth), "Bearer %s", cfg->llm_api_key);
        add_header(c, "Authorization", auth);
    }
    curl_easy_setopt(c->easy, CURLOPT_URL, url);
    curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, c->body);
    curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(c->body));
    return 0;
}

static long long timeout_of(const run *r, int i, const json_t *cfgv, bool llm)
{
    const json_t *t = json_object_get(cfgv, "timeoutMs");
    if (!llm && json_is_integer(t) && json_integer_value(t) > 0)
        return json_integer_value(t);
    if (r->d->nodes[i].timeout_ms > 0)
        return r->d->nodes[i].timeout_ms;
    return llm ? ENGINE_LLM_DEFAULT_TIMEOUT_MS : ENGINE_HTTP_DEFAULT_TIMEOUT_MS;
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

void call_start(loop *lp, run *r, int i, json_t *cfgv)
{
    node_outcome o = {0};
    const config *cfg = lp->e->cfg;
    call *c = xcalloc(1, sizeof(*c));
    c->lp = lp;
    c->r = r;
    c->node = i;
    c->llm = r->d->nodes[i].type == NODE_LLM;
    buf_init(&c->resp, ENGINE_HTTP_MAX_RESPONSE);
    c->resp_headers = json_object();
    c->easy = curl_easy_init();
    if (!c->easy || !c->resp_headers) {
        outcome_fail(&o, "HTTP_ERROR", true, "out of resources for the request");
        goto fail;
    }
    common_options(c, timeout_of(r, i, cfgv, c->llm));
    int rc = c->llm ? build_llm(c, cfg, cfgv, &o) : build_http(c, cfgv, &o);
    if (rc != 0)
        goto fail;
    add_header(c, "Expect", "");
    curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, c->headers);
    if (!c->llm && !cfg->http_node_allow_private) {
        curl_easy_setopt(c->easy, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
        curl_easy_setopt(c->easy, CURLOPT_OPENSOCKETDATA, c);
    }
    if (curl_multi_add_handle(lp->multi, c->easy) != CURLM_OK) {
        outcome_fail(&o, "HTTP_ERROR", true, "the request could not be started");
        goto fail;
    }
    json_decref(cfgv);
    r->ns[i].call = c;
    engine_count(c->llm ? &lp->e->stats.llm_calls : &lp->e->stats.http_calls, 1);
    return;
fail:
    json_decref(cfgv);
    call_free(c);
    loop_node_done(lp, r, i, &o);
}

void call_drop(loop *lp, call *c)
{
    curl_multi_remove_handle(lp->multi, c->easy);
    call_free(c);
}

/* ---- outcomes ---- */

/* Text as a JSON string; bytes that are not UTF-8 become U+FFFD. */
static json_t *text_value(const char *p, size_t len)
{
    if (json_utf8_valid(p, len))
        return json_stringn_nocheck(p, len);
    buf b;
    buf_init(&b, len * 3 + 1);
    for (size_t i = 0; i < len;) {
        unsigned char ch = (unsigned char)p[i];
        size_t n = ch < 0x80 ? 1 : (ch >> 5) == 6 ? 2 : (ch >> 4) == 14 ? 3 : (ch >> 3) == 30 ? 4 : 0;
        if (n && i + n <= len && json_utf8_valid(p + i, n)) {
            buf_append(&b, p + i, n);
            i += n;
        } else {
            buf_append(&b, "\xEF\xBF\xBD", 3);
            i++;
        }
    }
    json_t *s = json_stringn_nocheck(b.data ? b.data : "", b.len);
    buf_free(&b);
    return s ? s : json_string("");
}

static bool is_json_type(const json_t *headers)
{
    const char *ct = json_string_value(json_object_get(headers, "content-type"));
    if (!ct)
        return false;
    size_t n = strcspn(ct, ";");
    return (n >= 16 && !strncasecmp(ct, "application/json", 16)) ||
           (n >= 5 && !strncasecmp(ct + n - 5, "+json", 5));
}

static json_t *response_body(call *c)
{
    const char *p = c->resp.data ? c->resp.data : "";
    if (is_json_type(c->resp_headers)) {
        json_t *v = json_loadb(p, c->resp.len, JSON_DECODE_ANY, NULL);
        if (v)
            return v;
    }
    return text_value(p, c->resp.len);
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
        outcome_fail(o, c->llm ? "LLM_ERROR" : "HTTP_ERROR", true, "%s%s%s",
                     curl_easy_strerror(res), c->errbuf[0] ? ": " : "", c->errbuf);
    return true;
}

static void http_outcome(call *c, long status, node_outcome *o)
{
    o->output = json_pack("{s:i, s:O, s:o}", "status", (int)status, "headers", c->resp_headers,
                          "body", response_body(c));
    if (status >= 400) {
        outcome_fail(o, "HTTP_STATUS", status == 429 || status >= 500,
                     "the server answered %ld", status);
        return;
    }
    o->ok = true;
}

static void llm_outcome(call *c, long status, node_outcome *o)
{
    json_t *v = json_loadb(c->resp.data ? c->resp.data : "", c->resp.len, 0, NULL);
    if (status >= 400) {
        const char *m = json_string_value(json_object_get(json_object_get(v, "error"), "message"));
        outcome_fail(o, "LLM_ERROR", status == 429 || status >= 500,
                     "the LLM provider answered %ld%s%.300s", status, m ? ": " : "", m ? m : "");
        json_decref(v);
        return;
    }
    const json_t *choice = json_array_get(json_object_get(v, "choices"), 0);
    const json_t *msg = json_object_get(choice, "message");
    const json_t *content = json_object_get(msg, "content");
    if (!json_is_object(msg) || !(json_is_string(content) || json_is_null(content))) {
        outcome_fail(o, "LLM_BAD_RESPONSE", false,
                     "the LLM provider's answer has no choices[0].message.content");
        json_decref(v);
        return;
    }
    const json_t *usage = json_object_get(v, "usage");
    json_int_t pt = json_integer_value(json_object_get(usage, "prompt_tokens"));
    json_int_t ct = json_integer_value(json_object_get(usage, "completion_tokens"));
    pt = pt < 0 ? 0 : pt;
    ct = ct < 0 ? 0 : ct;
    const char *model = json_string_value(json_object_get(v, "model"));
    if (!model || !*model || strlen(model) >= sizeof(o->model))
        model = c->model;
    const pricing *p = c->lp->e->prices;
    if (!pricing_cost(p, c->model, pt, ct, &o->cost_usd))
        pricing_cost(p, model, pt, ct, &o->cost_usd);
    str_copy(o->model, sizeof(o->model), model);
    o->prompt_tokens = pt;
    o->completion_tokens = ct;
    const json_t *finish = json_object_get(choice, "finish_reason");
    o->output = json_pack("{s:O, s:s, s:O, s:{s:I, s:I, s:I}}", "content", content, "model",
                          model, "finishReason", finish ? finish : json_null(), "usage",
                          "promptTokens", pt, "completionTokens", ct, "totalTokens", pt + ct);
    o->ok = o->output != NULL;
    if (!o->ok)
        outcome_fail(o, "LLM_BAD_RESPONSE", false, "the LLM provider's answer cannot be read");
    json_decref(v);
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
        node_outcome o = {0};
        if (!transfer_failed(c, res, &o)) {
            long status = 0;
            curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
            if (c->llm)
                llm_outcome(c, status, &o);
            else
                http_outcome(c, status, &o);
        }
        run *r = c->r;
        int node = c->node;
        r->ns[node].call = NULL;
        call_free(c);
        loop_node_done(lp, r, node, &o);
        engine_after(lp, r);
    }
}
