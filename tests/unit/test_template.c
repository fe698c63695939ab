/* Unit tests of the template scanner (src/engine/template.c). */
#include <stdio.h>
#include <string.h>

#include "engine/template.h"
#include "unit.h"

/* 1 when span sp holds exactly the text want. */
static int span_eq(template_span sp, const char *want)
{
    return sp.len == strlen(want) && memcmp(sp.p, want, sp.len) == 0;
}

/* template_validate over a NUL-terminated string, message into err. */
static int validate(const char *s, char *err, size_t errlen)
{
    err[0] = '\0';
    return template_validate(s, strlen(s), err, errlen);
}

static void template_input_root(void)
{
    const char *s = "{{input}}";
    size_t pos = 0;
    template_ref r;
    char err[128];
    CHECK_INT(template_next(s, strlen(s), &pos, &r, err, sizeof(err)), 1);
    CHECK_INT(r.start, 0);
    CHECK_INT(r.end, 9);
    CHECK_INT(pos, 9);
    CHECK_INT(r.root, TEMPLATE_INPUT);
    CHECK_INT(r.nseg, 1);
    CHECK_INT(r.rest, 1);
    CHECK(r.node.p == NULL && r.node.len == 0);
    CHECK(span_eq(r.seg[0], "input"));
    CHECK_INT(template_next(s, strlen(s), &pos, &r, err, sizeof(err)), 0);
    CHECK_INT(pos, 9);
}

static void template_input_path_with_blanks(void)
{
    const char *s = "Hi {{ \tinput.user.first_name  }}!";
    size_t pos = 0;
    template_ref r;
    CHECK_INT(template_next(s, strlen(s), &pos, &r, NULL, 0), 1);
    CHECK_INT(r.start, 3);
    CHECK_INT(r.end, strlen(s) - 1);
    CHECK_INT(r.nseg, 3);
    CHECK(span_eq(r.seg[1], "user"));
    CHECK(span_eq(r.seg[2], "first_name"));
    CHECK_INT(r.rest, 1);
    CHECK_INT(template_next(s, strlen(s), &pos, &r, NULL, 0), 0);
}

static void template_nodes_root(void)
{
    const char *s = "{{nodes.fetch-1.output.body.items.0.id}}";
    size_t pos = 0, index = 99;
    template_ref r;
    CHECK_INT(template_next(s, strlen(s), &pos, &r, NULL, 0), 1);
    CHECK_INT(r.root, TEMPLATE_NODES);
    CHECK(span_eq(r.node, "fetch-1"));
    CHECK_INT(r.nseg, 7);
    CHECK_INT(r.rest, 3);
    CHECK(span_eq(r.seg[3], "body"));
    CHECK(span_eq(r.seg[5], "0"));
    CHECK_INT(template_seg_index(r.seg[5], &index), 1);
    CHECK_INT(index, 0);
    CHECK_INT(template_seg_index(r.seg[6], &index), 0);

    s = "{{nodes.a.output}}";
    pos = 0;
    CHECK_INT(template_next(s, strlen(s), &pos, &r, NULL, 0), 1);
    CHECK_INT(r.nseg, 3);
    CHECK_INT(r.rest, 3); /* == nseg: the whole output */
    CHECK(span_eq(r.node, "a"));
}

/* Rebuilds the literal text and the placeholders of a string from the scan. */
static void template_scan_reports_every_placeholder_in_order(void)
{
    const char *s = "a{{input.x}}b}}c{{ nodes.n.output.y }}{d}{{input}}";
    size_t len = strlen(s), pos = 0, lit = 0, starts[3], ends[3], k = 0;
    template_ref r;
    char text[64] = "";
    size_t tlen = 0;
    int rc;
    while ((rc = template_next(s, len, &pos, &r, NULL, 0)) == 1) {
        CHECK(k < 3);
        memcpy(text + tlen, s + lit, r.start - lit);
        tlen += r.start - lit;
        text[tlen++] = '#';
        starts[k] = r.start;
        ends[k++] = r.end;
        lit = r.end;
    }
    CHECK_INT(rc, 0);
    memcpy(text + tlen, s + lit, len - lit);
    text[tlen + len - lit] = '\0';
    CHECK_STR(text, "a#b}}c#{d}#");
    CHECK_INT(k, 3);
    CHECK_INT(starts[0], 1);
    CHECK_INT(ends[0], 12);
    CHECK_INT(starts[1], 16);
    CHECK_INT(ends[1], 38);
    CHECK_INT(starts[2], 41);
    CHECK_INT(ends[2], len);
}

static void template_literal_text_is_valid(void)
{
    char err[128];
    CHECK_INT(validate("", err, sizeof(err)), 0);
    CHECK_INT(validate("plain text", err, sizeof(err)), 0);
    CHECK_INT(validate("a lone }} closes nothing", err, sizeof(err)), 0);
    CHECK_INT(validate("{ single } braces {", err, sizeof(err)), 0);
    CHECK_INT(validate("{\"json\": {\"nested\": 1}}", err, sizeof(err)), 0);
    CHECK_INT(validate("trailing {", err, sizeof(err)), 0);
    size_t pos = 0;
    template_ref r;
    CHECK_INT(template_next("}}", 2, &pos, &r, NULL, 0), 0);
    CHECK_INT(pos, 2);
}

static void template_errors_have_clear_messages(void)
{
    char err[160];
    CHECK_INT(validate("abc {{input.x", err, sizeof(err)), -1);
    CHECK_STR(err, "unclosed \"{{\"");
    CHECK_INT(validate("{{", err, sizeof(err)), -1);
    CHECK_STR(err, "unclosed \"{{\"");
    CHECK_INT(validate("{{input}} {{input}", err, sizeof(err)), -1);
    CHECK_STR(err, "unclosed \"{{\"");
    CHECK_INT(validate("{{}}", err, sizeof(err)), -1);
    CHECK_STR(err, "empty placeholder");
    CHECK_INT(validate("{{ \t }}", err, sizeof(err)), -1);
    CHECK_STR(err, "empty placeholder");
    CHECK_INT(validate("{{foo.bar}}", err, sizeof(err)), -1);
    CHECK_STR(err, "unknown template root \"foo\": use input or nodes");
    CHECK_INT(validate("{{Input}}", err, sizeof(err)), -1);
    CHECK_STR(err, "unknown template root \"Input\": use input or nodes");
    CHECK_INT(validate("{{nodes}}", err, sizeof(err)), -1);
    CHECK_STR(err, "\"nodes\" must be followed by a node id and .output");
    CHECK_INT(validate("{{nodes.x}}", err, sizeof(err)), -1);
    CHECK_STR(err, "\"nodes.x\" must be followed by .output");
    CHECK_INT(validate("{{nodes.x.result}}", err, sizeof(err)), -1);
    CHECK_STR(err, "\"nodes.x\" must be followed by .output");
    CHECK_INT(validate("{{input..a}}", err, sizeof(err)), -1);
    CHECK_STR(err, "empty segment in placeholder path \"input..a\"");
    CHECK_INT(validate("{{input.}}", err, sizeof(err)), -1);
    CHECK_INT(validate("{{.input}}", err, sizeof(err)), -1);
    CHECK_INT(validate("{{input.a b}}", err, sizeof(err)), -1);
    CHECK_STR(err, "invalid character \" \" in placeholder path");
    CHECK_INT(validate("{{input.a[0]}}", err, sizeof(err)), -1);
    CHECK_STR(err, "invalid character \"[\" in placeholder path");
    CHECK_INT(validate("{{input.\xc3\xa9}}", err, sizeof(err)), -1);
    CHECK_STR(err, "non-ASCII character in placeholder path");
    CHECK_INT(validate("{{input\n}}", err, sizeof(err)), -1);
    CHECK_STR(err, "invalid character 0x0A in placeholder path");
    CHECK_INT(validate("{{{input}}}", err, sizeof(err)), -1);
    CHECK_STR(err, "invalid character \"{\" in placeholder path");
    /* No room for a message is fine. */
    CHECK_INT(template_validate("{{x}}", 5, NULL, 0), -1);
}

static void template_error_position(void)
{
    const char *s = "ok {{input}} then {{bad}} end";
    size_t pos = 0;
    template_ref r;
    char err[128];
    CHECK_INT(template_next(s, strlen(s), &pos, &r, err, sizeof(err)), 1);
    CHECK_INT(template_next(s, strlen(s), &pos, &r, err, sizeof(err)), -1);
    CHECK_INT(r.start, 18);
    CHECK_INT(r.end, 25);
    CHECK_INT(pos, 12); /* unchanged */
    s = "x {{input";
    pos = 0;
    CHECK_INT(template_next(s, strlen(s), &pos, &r, err, sizeof(err)), -1);
    CHECK_INT(r.start, 2);
    CHECK_INT(r.end, strlen(s));
}

static void template_whole_detection(void)
{
    template_ref r;
    CHECK_INT(template_is_whole("{{input}}", 9, NULL), 1);
    CHECK_INT(template_is_whole("{{ nodes.a.output.list }}", 25, &r), 1);
    CHECK_INT(r.root, TEMPLATE_NODES);
    CHECK(span_eq(r.node, "a"));
    CHECK_INT(r.start, 0);
    CHECK_INT(r.end, 25);
    CHECK_INT(template_is_whole(" {{input}}", 10, NULL), 0);
    CHECK_INT(template_is_whole("{{input}} ", 10, NULL), 0);
    CHECK_INT(template_is_whole("{{input}}}", 10, NULL), 0);
    CHECK_INT(template_is_whole("{{input}}{{input}}", 18, NULL), 0);
    CHECK_INT(template_is_whole("{{input}}x", 10, NULL), 0);
    CHECK_INT(template_is_whole("{{foo}}", 7, NULL), 0);
    CHECK_INT(template_is_whole("{{input", 7, NULL), 0);
    CHECK_INT(template_is_whole("input", 5, NULL), 0);
    CHECK_INT(template_is_whole("", 0, NULL), 0);
    CHECK_INT(template_is_whole("{{}}", 4, NULL), 0);
}

static void template_utf8_around_placeholders(void)
{
    /* "héllo " is 7 bytes, "😀" 4. Offsets are bytes. */
    const char *s = "h\xc3\xa9llo {{input.name}} w\xc3\xb6rld \xf0\x9f\x98\x80{{input.x}}";
    size_t pos = 0;
    template_ref r;
    CHECK_INT(template_next(s, strlen(s), &pos, &r, NULL, 0), 1);
    CHECK_INT(r.start, 7);
    CHECK_INT(r.end, 21);
    CHECK_INT(template_next(s, strlen(s), &pos, &r, NULL, 0), 1);
    CHECK_INT(r.start, 21 + 8 + 4);
    CHECK_INT(r.end, strlen(s));
    CHECK_INT(template_next(s, strlen(s), &pos, &r, NULL, 0), 0);
    s = "\xe6\x97\xa5\xe6\x9c\xac {{ input }} \xe8\xaa\x9e";
    CHECK_INT(template_validate(s, strlen(s), NULL, 0), 0);
}

static void template_scans_only_len_bytes(void)
{
    /* A NUL is literal text; bytes past len are not looked at. */
    const char s[] = "a\0{{input}}";
    size_t pos = 0;
    template_ref r;
    CHECK_INT(template_next(s, sizeof(s) - 1, &pos, &r, NULL, 0), 1);
    CHECK_INT(r.start, 2);
    pos = 0;
    CHECK_INT(template_next("{{input}}", 8, &pos, &r, NULL, 0), -1);
    CHECK_INT(template_validate("ab{{", 2, NULL, 0), 0);
}

/* "{{input" followed by n segments ".a" and "}}". */
static void build_segments(char *out, size_t outlen, int n)
{
    size_t len = (size_t)snprintf(out, outlen, "{{input");
    for (int i = 1; i < n; i++)
        len += (size_t)snprintf(out + len, outlen - len, ".a");
    snprintf(out + len, outlen - len, "}}");
}

static void template_limits(void)
{
    char s[600], err[128];
    build_segments(s, sizeof(s), TEMPLATE_MAX_SEGMENTS);
    CHECK_INT(validate(s, err, sizeof(err)), 0);
    build_segments(s, sizeof(s), TEMPLATE_MAX_SEGMENTS + 1);
    CHECK_INT(validate(s, err, sizeof(err)), -1);
    CHECK_STR(err, "placeholder path has more than 32 segments");

    /* "input." + 250 letters = 256 bytes, spaces around not counted. */
    char seg[300];
    memset(seg, 'x', 251);
    seg[250] = '\0';
    snprintf(s, sizeof(s), "{{   input.%s \t}}", seg);
    CHECK_INT(validate(s, err, sizeof(err)), 0);
    seg[250] = 'x';
    seg[251] = '\0';
    snprintf(s, sizeof(s), "{{input.%s}}", seg);
    CHECK_INT(validate(s, err, sizeof(err)), -1);
    CHECK_STR(err, "placeholder path is longer than 256 bytes");
}

static void template_segment_index(void)
{
    size_t v = 7;
    template_span sp = {"42", 2};
    CHECK_INT(template_seg_index(sp, &v), 1);
    CHECK_INT(v, 42);
    sp = (template_span){"007", 3};
    CHECK_INT(template_seg_index(sp, &v), 1);
    CHECK_INT(v, 7);
    sp = (template_span){"4a", 2};
    CHECK_INT(template_seg_index(sp, &v), 0);
    sp = (template_span){"-1", 2};
    CHECK_INT(template_seg_index(sp, &v), 0);
    sp = (template_span){"", 0};
    CHECK_INT(template_seg_index(sp, &v), 0);
    sp = (template_span){"99999999999999999999999", 23};
    CHECK_INT(template_seg_index(sp, &v), 0);
}

const unit_test template_tests[] = {
    TEST(template_input_root),
    TEST(template_input_path_with_blanks),
    TEST(template_nodes_root),
    TEST(template_scan_reports_every_placeholder_in_order),
    TEST(template_literal_text_is_valid),
    TEST(template_errors_have_clear_messages),
    TEST(template_error_position),
    TEST(template_whole_detection),
    TEST(template_utf8_around_placeholders),
    TEST(template_scans_only_len_bytes),
    TEST(template_limits),
    TEST(template_segment_index),
    {NULL, NULL},
};
