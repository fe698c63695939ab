/* Unit tests of live events: the streamed chat completion parser
 * (engine/sse_parse.h), fed in pieces cut at every byte, and the event
 * data line (engine/exec_event.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/buf.h"
#include "engine/exec_event.h"
#include "engine/sse_parse.h"
#include "unit.h"

/* A provider's stream: a role chunk, three content chunks (one with an
 * escaped quote and a multibyte character), a comment, the finish, the
 * usage chunk, then [DONE]; lines end in \n, \r\n and \r. */
static const char STREAM[] =
    ": keep-alive\n\n"
    "data: {\"id\":\"c1\",\"model\":\"m-1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}]}\n\n"
    "data: {\"id\":\"c1\",\"model\":\"m-1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\r\n\r\n"
    "data:{\"id\":\"c1\",\"model\":\"m-1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo \\\"w\"}}]}\r\r"
    "event: ignored\n"
    "data: {\"id\":\"c1\",\"model\":\"m-1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\xc3\xa9!\"},"
    "\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"c1\",\"model\":\"m-1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
    "data: {\"id\":\"c1\",\"model\":\"m-1\",\"choices\":[],\"usage\":{\"prompt_tokens\":7,"
    "\"completion_tokens\":3,\"total_tokens\":10}}\n\n"
    "data: [DONE]\n\n";

static void collect(void *ctx, const char *text, size_t len)
{
    buf *b = ctx;
    buf_append(b, text, len);
    buf_append(b, "|", 1);
}

static const char WANT[] =
    "{\"model\":\"m-1\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
    "\"content\":\"Hello \\\"w\xc3\xa9!\"},\"finish_reason\":\"stop\"}],"
    "\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3,\"total_tokens\":10}}";

/* Feeds STREAM cut at cut (and, when step, in pieces of step bytes after
 * it); checks the answer and the deltas. */
static int parse_in_pieces(size_t cut, size_t step)
{
    size_t len = sizeof(STREAM) - 1;
    sse_chat p;
    buf deltas;
    buf_init(&deltas, 0);
    sse_chat_init(&p, 1024);
    int ok = sse_chat_feed(&p, STREAM, cut, collect, &deltas) == 0;
    for (size_t at = cut; ok && at < len; at += step ? step : len)
        ok = sse_chat_feed(&p, STREAM + at, (step && at + step < len ? step : len - at), collect,
                           &deltas) == 0;
    json_t *v = ok ? sse_chat_result(&p, collect, &deltas) : NULL;
    char *text = v ? json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    ok = text && !strcmp(text, WANT) && p.done;
    /* deltas in order; joined they are the stored content */
    ok = ok && !strcmp(deltas.data, "Hel|lo \"w|\xc3\xa9!|");
    if (!ok)
        printf("  cut %zu step %zu: %s / %s\n", cut, step, text ? text : "(null)",
               deltas.data ? deltas.data : "");
    free(text);
    json_decref(v);
    sse_chat_free(&p);
    buf_free(&deltas);
    return ok;
}

static void sse_parse_split_at_every_byte(void)
{
    for (size_t cut = 0; cut < sizeof(STREAM); cut++)
        CHECK(parse_in_pieces(cut, 0));
}

static void sse_parse_one_byte_at_a_time(void)
{
    CHECK(parse_in_pieces(0, 1));
    CHECK(parse_in_pieces(1, 2));
    CHECK(parse_in_pieces(0, 7));
}

static void sse_parse_last_event_without_blank_line(void)
{
    static const char s[] =
        "data: {\"model\":\"m\",\"choices\":[{\"delta\":{\"content\":\"a\"},\"finish_reason\":\"length\"}]}";
    sse_chat p;
    sse_chat_init(&p, 64);
    CHECK_INT(sse_chat_feed(&p, s, sizeof(s) - 1, NULL, NULL), 0);
    json_t *v = sse_chat_result(&p, NULL, NULL);
    CHECK(v != NULL);
    json_t *msg = json_object_get(json_array_get(json_object_get(v, "choices"), 0), "message");
    CHECK_STR(json_string_value(json_object_get(msg, "content")), "a");
    CHECK(json_object_get(v, "usage") == NULL); /* no usage chunk: none */
    json_decref(v);
    sse_chat_free(&p);
}

static void sse_parse_multiline_data_and_no_content(void)
{
    /* data split over two lines joins with \n (JSON whitespace) */
    static const char s[] = "data: {\"model\":\"m\",\n"
                            "data: \"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n";
    sse_chat p;
    sse_chat_init(&p, 64);
    CHECK_INT(sse_chat_feed(&p, s, sizeof(s) - 1, NULL, NULL), 0);
    json_t *v = sse_chat_result(&p, NULL, NULL);
    json_t *msg = json_object_get(json_array_get(json_object_get(v, "choices"), 0), "message");
    CHECK(json_is_null(json_object_get(msg, "content")));
    json_decref(v);
    sse_chat_free(&p);
}

static void sse_parse_bounds_and_bad_chunks(void)
{
    sse_chat p;
    /* the content bound */
    static const char big[] = "data: {\"choices\":[{\"delta\":{\"content\":\"0123456789\"}}]}\n\n";
    sse_chat_init(&p, 9);
    CHECK_INT(sse_chat_feed(&p, big, sizeof(big) - 1, NULL, NULL), -1);
    CHECK_INT(sse_chat_feed(&p, "\n", 1, NULL, NULL), -1); /* takes nothing more */
    CHECK(sse_chat_result(&p, NULL, NULL) == NULL);
    sse_chat_free(&p);
    sse_chat_init(&p, 10);
    CHECK_INT(sse_chat_feed(&p, big, sizeof(big) - 1, NULL, NULL), 0); /* exactly at it */
    sse_chat_free(&p);
    /* the line bound */
    sse_chat_init(&p, 64);
    char *line = malloc(SSE_PARSE_LINE_MAX + 1);
    memset(line, 'x', SSE_PARSE_LINE_MAX + 1);
    CHECK_INT(sse_chat_feed(&p, line, SSE_PARSE_LINE_MAX, NULL, NULL), 0);
    CHECK_INT(sse_chat_feed(&p, line, 1, NULL, NULL), -1);
    free(line);
    sse_chat_free(&p);
    /* a chunk that is not JSON */
    sse_chat_init(&p, 64);
    CHECK_INT(sse_chat_feed(&p, "data: {oops\n\n", 13, NULL, NULL), -1);
    sse_chat_free(&p);
}

/* Anthropic's Messages API streamed: event lines, a ping, two text deltas
 * and one of another kind, the stop reason and the running output count in
 * message_delta, then message_stop. */
static const char ANTHROPIC_STREAM[] =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\","
    "\"role\":\"assistant\",\"model\":\"claude-x\",\"content\":[],\"stop_reason\":null,"
    "\"usage\":{\"input_tokens\":12,\"output_tokens\":1}}}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\","
    "\"text\":\"\"}}\n\n"
    "event: ping\ndata: {\"type\":\"ping\"}\r\n\r\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
    "\"text\":\"Hi \\\"\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\","
    "\"partial_json\":\"{}\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
    "\"text\":\"\xc3\xa9!\"}}\n\n"
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\","
    "\"stop_sequence\":null},\"usage\":{\"output_tokens\":7}}\n\n"
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

static const char ANTHROPIC_WANT[] =
    "{\"model\":\"claude-x\",\"content\":[{\"type\":\"text\",\"text\":\"Hi \\\"\xc3\xa9!\"}],"
    "\"stop_reason\":\"end_turn\",\"usage\":{\"input_tokens\":12,\"output_tokens\":7}}";

/* The Anthropic stream cut at every byte: the same answer the Messages API
 * gives without streaming, the text deltas in order; an error event fails
 * the parse. */
static void sse_parse_anthropic_split_at_every_byte(void)
{
    size_t len = sizeof(ANTHROPIC_STREAM) - 1;
    int bad = 0;
    for (size_t cut = 0; cut <= len; cut++) {
        sse_chat p;
        buf deltas;
        buf_init(&deltas, 0);
        sse_chat_init(&p, 1024);
        p.anthropic = true;
        int ok = sse_chat_feed(&p, ANTHROPIC_STREAM, cut, collect, &deltas) == 0 &&
                 sse_chat_feed(&p, ANTHROPIC_STREAM + cut, len - cut, collect, &deltas) == 0;
        json_t *v = ok ? sse_chat_result(&p, collect, &deltas) : NULL;
        char *text = v ? json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        ok = text && !strcmp(text, ANTHROPIC_WANT) && p.done && deltas.data &&
             !strcmp(deltas.data, "Hi \"|\xc3\xa9!|");
        bad += !ok;
        free(text);
        json_decref(v);
        buf_free(&deltas);
        sse_chat_free(&p);
    }
    CHECK_INT(bad, 0);
    static const char ERR[] = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":"
                              "\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
    sse_chat p;
    sse_chat_init(&p, 1024);
    p.anthropic = true;
    CHECK_INT(sse_chat_feed(&p, ERR, sizeof(ERR) - 1, NULL, NULL), -1);
    CHECK(sse_chat_result(&p, NULL, NULL) == NULL);
    sse_chat_free(&p);
}

/* Streamed tool calls (an agent's model call), OpenAI's in fragments and
 * Anthropic's tool_use blocks, come out as the non-streaming answers carry
 * them. */
/* Whether p's result is want (as compact JSON, in order); prints it if not. */
static int result_is(sse_chat *p, const char *want)
{
    json_t *v = sse_chat_result(p, NULL, NULL);
    char *text = v ? json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    int ok = text && !strcmp(text, want);
    if (!ok)
        printf("  got %s\n", text ? text : "(null)");
    free(text);
    json_decref(v);
    return ok;
}

static void sse_parse_tool_calls(void)
{
    static const char OPENAI[] =
        "data: {\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}]}\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":"
        "\"c1\",\"function\":{\"name\":\"get\",\"arguments\":\"\"}}]}}]}\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":"
        "{\"arguments\":\"{\\\"q\\\":\"}}]}}]}\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"c2\","
        "\"function\":{\"name\":\"put\",\"arguments\":\"{}\"}}]}}]}\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":"
        "{\"arguments\":\"1}\"}}]}}]}\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n"
        "data: [DONE]\n\n";
    sse_chat p;
    sse_chat_init(&p, 1024);
    CHECK_INT(sse_chat_feed(&p, OPENAI, sizeof(OPENAI) - 1, NULL, NULL), 0);
    CHECK(result_is(&p,
              "{\"model\":\"m\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
              "\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\",\"function\":"
              "{\"name\":\"get\",\"arguments\":\"{\\\"q\\\":1}\"}},{\"id\":\"c2\",\"type\":"
              "\"function\",\"function\":{\"name\":\"put\",\"arguments\":\"{}\"}}]},"
              "\"finish_reason\":\"tool_calls\"}]}"));
    sse_chat_free(&p);
    static const char ANT[] =
        "data: {\"type\":\"message_start\",\"message\":{\"model\":\"c\",\"usage\":"
        "{\"input_tokens\":3}}}\n\n"
        "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":"
        "\"text\",\"text\":\"\"}}\n\n"
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
        "\"text\":\"ok\"}}\n\n"
        "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":"
        "\"tool_use\",\"id\":\"t1\",\"name\":\"get\",\"input\":{}}}\n\n"
        "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":"
        "\"input_json_delta\",\"partial_json\":\"{\\\"q\\\"\"}}\n\n"
        "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":"
        "\"input_json_delta\",\"partial_json\":\":2}\"}}\n\n"
        "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":"
        "{\"output_tokens\":4}}\n\n"
        "data: {\"type\":\"message_stop\"}\n\n";
    sse_chat_init(&p, 1024);
    p.anthropic = true;
    CHECK_INT(sse_chat_feed(&p, ANT, sizeof(ANT) - 1, NULL, NULL), 0);
    CHECK(result_is(&p,
              "{\"model\":\"c\",\"content\":[{\"type\":\"text\",\"text\":\"ok\"},{\"type\":"
              "\"tool_use\",\"id\":\"t1\",\"name\":\"get\",\"input\":{\"q\":2}}],\"stop_reason\":"
              "\"tool_use\",\"usage\":{\"input_tokens\":3,\"output_tokens\":4}}"));
    sse_chat_free(&p);
    /* the arguments count in the content bound */
    sse_chat_init(&p, 8);
    CHECK_INT(sse_chat_feed(&p, OPENAI, sizeof(OPENAI) - 1, NULL, NULL), -1);
    sse_chat_free(&p);
}

static void exec_event_text_shape(void)
{
    json_t *f = json_pack("{s:s, s:i}", "nodeId", "a", "attempt", 2);
    char *m = exec_event_members(f);
    CHECK_STR(m, "\"nodeId\":\"a\",\"attempt\":2");
    store_exec_event ev = {7, "node.started", "2025-12-06T00:00:00.123Z", m};
    char *t = exec_event_text("0190b2a4-0000-7000-8000-000000000000", &ev);
    CHECK_STR(t, "{\"executionId\":\"0190b2a4-0000-7000-8000-000000000000\",\"seq\":7,"
                 "\"ts\":\"2025-12-06T00:00:00.123Z\",\"nodeId\":\"a\",\"attempt\":2}");
    free(t);
    free(m);
    json_decref(f);
    /* live only: no seq; text with a newline stays one line */
    f = json_pack("{s:s}", "text", "a\nb");
    m = exec_event_members(f);
    ev = (store_exec_event){-1, "llm.delta", "1970-01-01T00:00:00.000Z", m};
    t = exec_event_text("x", &ev);
    CHECK_STR(t, "{\"executionId\":\"x\",\"ts\":\"1970-01-01T00:00:00.000Z\",\"text\":\"a\\nb\"}");
    free(t);
    free(m);
    json_decref(f);
    /* no fields */
    f = json_object();
    m = exec_event_members(f);
    CHECK_STR(m, "");
    ev = (store_exec_event){1, "x", "1970-01-01T00:00:00.000Z", m};
    t = exec_event_text("x", &ev);
    CHECK_STR(t, "{\"executionId\":\"x\",\"seq\":1,\"ts\":\"1970-01-01T00:00:00.000Z\"}");
    free(t);
    free(m);
    json_decref(f);
    json_t *e = exec_event_error("{\"code\":\"X\",\"message\":\"m\"}");
    CHECK_STR(json_string_value(json_object_get(e, "code")), "X");
    json_decref(e);
    CHECK(json_is_null(e = exec_event_error(NULL)));
    json_decref(e);
    CHECK(json_is_null(e = exec_event_error("not json")));
    json_decref(e);
    json_t *u = exec_event_usage(3, 4);
    CHECK_INT(json_integer_value(json_object_get(u, "totalTokens")), 7);
    json_decref(u);
}

const unit_test sse_tests[] = {
    TEST(sse_parse_split_at_every_byte),
    TEST(sse_parse_one_byte_at_a_time),
    TEST(sse_parse_last_event_without_blank_line),
    TEST(sse_parse_multiline_data_and_no_content),
    TEST(sse_parse_bounds_and_bad_chunks),
    TEST(sse_parse_anthropic_split_at_every_byte),
    TEST(sse_parse_tool_calls),
    TEST(exec_event_text_shape),
    {NULL, NULL},
};
