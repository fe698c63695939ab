/* Unit tests of the credentials vault's cipher and blobs (credentials/vault.h)
 * and of allowedHosts matching (credentials/hosts.h). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "credentials/hosts.h"
#include "credentials/vault.h"
#include "engine/providers/anthropic.h"
#include "unit.h"

/* Hex text into bytes; the number of bytes. */
static size_t unhex(const char *hex, unsigned char *out)
{
    size_t n = strlen(hex) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;
        sscanf(hex + 2 * i, "%2x", &v);
        out[i] = (unsigned char)v;
    }
    return n;
}

/* AES-256-GCM with a 96-bit IV: test cases 13 to 16 of McGrew and Viega,
 * "The Galois/Counter Mode of Operation" (the NIST submission). */
static const struct {
    const char *key, *iv, *ad, *plain, *cipher, *tag;
} kat[] = {
    {"0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", "", "", "", "530f8afbc74536b9a963b4f1c4cb738b"},
    {"0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", "", "00000000000000000000000000000000",
     "cea7403d4d606b6e074ec5d3baf39d18", "d0d1c8a799996bf0265b98b5d48ab919"},
    {"feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
     "cafebabefacedbaddecaf888", "",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad",
     "b094dac5d93471bdec1a502270e3cc6c"},
    {"feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
     "cafebabefacedbaddecaf888", "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
     "76fc6ece0f4e1768cddf8853bb2d551b"},
};

static void gcm_known_answers(void)
{
    for (size_t i = 0; i < sizeof(kat) / sizeof(kat[0]); i++) {
        unsigned char key[32], iv[12], ad[64], plain[64], want[64], tag[16], got[64], gtag[16];
        unhex(kat[i].key, key);
        unhex(kat[i].iv, iv);
        size_t adn = unhex(kat[i].ad, ad), n = unhex(kat[i].plain, plain);
        unhex(kat[i].cipher, want);
        unhex(kat[i].tag, tag);
        CHECK(vault_gcm_encrypt(key, iv, 12, ad, adn, plain, n, got, gtag) == 0);
        CHECK(memcmp(got, want, n) == 0);
        CHECK(memcmp(gtag, tag, 16) == 0);
        unsigned char back[64];
        CHECK(vault_gcm_decrypt(key, iv, 12, ad, adn, want, n, back, tag) == 0);
        CHECK(memcmp(back, plain, n) == 0);
    }
}

static void gcm_refuses_a_tampered_tag_or_text(void)
{
    unsigned char key[32], iv[12], ad[20], plain[60], ct[60], tag[16], out[60];
    unhex(kat[3].key, key);
    unhex(kat[3].iv, iv);
    size_t adn = unhex(kat[3].ad, ad), n = unhex(kat[3].plain, plain);
    unhex(kat[3].cipher, ct);
    unhex(kat[3].tag, tag);
    tag[15] ^= 1;
    CHECK(vault_gcm_decrypt(key, iv, 12, ad, adn, ct, n, out, tag) == -1);
    tag[15] ^= 1;
    ct[0] ^= 0x80;
    CHECK(vault_gcm_decrypt(key, iv, 12, ad, adn, ct, n, out, tag) == -1);
    ct[0] ^= 0x80;
    ad[0] ^= 1;
    CHECK(vault_gcm_decrypt(key, iv, 12, ad, adn, ct, n, out, tag) == -1);
    ad[0] ^= 1;
    CHECK(vault_gcm_decrypt(key, iv, 12, ad, adn, ct, n, out, tag) == 0);
}

#define KEY_A "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=" /* 32 'A' */
#define KEY_B "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI=" /* 32 'B' */

static void keys_must_be_32_bytes_of_base64(void)
{
    unsigned char k[VAULT_KEY_LEN];
    char err[200];
    CHECK(vault_key_decode(KEY_A, k) == 0 && k[0] == 'A' && k[31] == 'A');
    CHECK(vault_key_decode(" " KEY_A " ", k) == 0);
    CHECK(vault_key_decode("QUFB", k) == -1);
    CHECK(vault_key_decode("QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB", k) == -1); /* 33 */
    CHECK(vault_key_decode("!!!!QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=", k) == -1);
    vault *v = vault_new("nope", NULL, err, sizeof(err));
    CHECK(!v && strstr(err, "CREDENTIALS_KEY"));
    v = vault_new(KEY_A, KEY_B ",x", err, sizeof(err));
    CHECK(!v && strstr(err, "CREDENTIALS_OLD_KEYS"));
    char nine[9 * 45 + 1] = "", gen[45];
    size_t used = 0;
    for (int i = 0; i < 8; i++)
        used += (size_t)snprintf(nine + used, sizeof(nine) - used, "%s" KEY_B, i ? "," : "");
    v = vault_new(KEY_A, nine, err, sizeof(err)); /* 8 old keys: the most taken */
    CHECK(v);
    vault_free(v);
    snprintf(nine + used, sizeof(nine) - used, "," KEY_A);
    v = vault_new(KEY_A, nine, err, sizeof(err));
    CHECK(!v && strstr(err, "at most 8"));
    vault_key_generate(gen);
    CHECK(strlen(gen) == 44 && vault_key_decode(gen, k) == 0);
}

static void sealed_values_open_only_under_their_id(void)
{
    char err[200];
    vault *v = vault_new(KEY_A, NULL, err, sizeof(err));
    CHECK(v);
    const char *secret = "{\"token\":\"s3cr3t-value\"}";
    char *a = vault_seal(v, "id-1", secret, strlen(secret));
    char *b = vault_seal(v, "id-1", secret, strlen(secret));
    CHECK(a && b && strcmp(a, b) != 0); /* a fresh nonce each time */
    CHECK(!strncmp(a, "v1.", 3) && a[19] == '.' && !strstr(a, "s3cr3t"));
    CHECK(!strncmp(a + 3, vault_kid(v), 16));
    size_t n = 0;
    bool current = false;
    char *p = vault_open(v, "id-1", a, &n, &current);
    CHECK(p && n == strlen(secret) && !strcmp(p, secret) && current);
    vault_plain_free(p, n + 1);
    CHECK(vault_failures(v) == 0);
    CHECK(!vault_open(v, "id-2", a, &n, NULL)); /* another row's id */
    size_t at_tag = strlen(a) - 6; /* inside the tag, clear of the padding bits */
    a[at_tag] = a[at_tag] == 'A' ? 'B' : 'A';
    CHECK(!vault_open(v, "id-1", a, &n, NULL));
    CHECK(!vault_open(v, "id-1", "v1.garbage", &n, NULL));
    CHECK(!vault_open(v, "id-1", "", &n, NULL));
    CHECK(vault_failures(v) == 4);
    char *big = calloc(1, VAULT_PLAIN_MAX + 2);
    CHECK(!vault_seal(v, "id", big, VAULT_PLAIN_MAX + 1));
    char *at_max = vault_seal(v, "id", big, VAULT_PLAIN_MAX);
    CHECK(at_max);
    p = vault_open(v, "id", at_max, &n, NULL);
    CHECK(p && n == VAULT_PLAIN_MAX);
    vault_plain_free(p, n + 1);
    free(at_max);
    free(big);
    free(a);
    free(b);
    vault_free(v);
}

static void old_keys_still_open(void)
{
    char err[200];
    vault *a = vault_new(KEY_A, NULL, err, sizeof(err));
    vault *b = vault_new(KEY_B, KEY_A, err, sizeof(err));
    vault *b_only = vault_new(KEY_B, NULL, err, sizeof(err));
    CHECK(a && b && b_only);
    CHECK(strcmp(vault_kid(a), vault_kid(b)) != 0);
    char *blob = vault_seal(a, "x", "plain", 5);
    size_t n = 0;
    bool current = true;
    char *p = vault_open(b, "x", blob, &n, &current);
    CHECK(p && !strcmp(p, "plain") && !current);
    vault_plain_free(p, n + 1);
    CHECK(!vault_open(b_only, "x", blob, &n, NULL));
    free(blob);
    vault_free(a);
    vault_free(b);
    vault_free(b_only);
}

/* entry, host, port, whether it matches */
static const struct {
    const char *entry, *host;
    int port;
    bool match;
} host_cases[] = {
    {"api.example.com", "api.example.com", 443, true},
    {"api.example.com", "API.Example.COM", 443, true},
    {"API.EXAMPLE.COM", "api.example.com", 80, true},
    {"api.example.com", "api.example.com.", 443, true},
    {"api.example.com", "example.com", 443, false},
    {"api.example.com", "xapi.example.com", 443, false},
    {"api.example.com", "api.example.com.evil.org", 443, false},
    {"*.example.com", "api.example.com", 443, true},
    {"*.example.com", "a.b.example.com", 443, true},
    {"*.example.com", "example.com", 443, false},
    {"*.example.com", "badexample.com", 443, false},
    {"*.Example.com", "x.EXAMPLE.com", 443, true},
    {"api.example.com:8443", "api.example.com", 8443, true},
    {"api.example.com:8443", "api.example.com", 443, false},
    {"*.example.com:8443", "a.example.com", 8443, true},
    {"*.example.com:8443", "a.example.com", 443, false},
    {"xn--bcher-kva.example", "xn--bcher-kva.example", 443, true},
    {"xn--bcher-kva.example", "XN--BCHER-KVA.example", 443, true},
    {"b\xc3\xbc" "cher.example", "xn--bcher-kva.example", 443, false},
    {"127.0.0.1", "127.0.0.1", 8080, true},
    {"[::1]:8080", "[::1]", 8080, true},
    {"[::1]", "[::1]", 1, true},
};

static void hosts_match(void)
{
    for (size_t i = 0; i < sizeof(host_cases) / sizeof(host_cases[0]); i++) {
        bool got = credentials_host_matches(host_cases[i].entry, host_cases[i].host,
                                            host_cases[i].port);
        if (got != host_cases[i].match) {
            char m[300];
            snprintf(m, sizeof(m), "%s vs %s:%d: %d", host_cases[i].entry, host_cases[i].host,
                     host_cases[i].port, got);
            unit_fail(__FILE__, __LINE__, m);
            return;
        }
    }
}

static void host_entries_are_checked(void)
{
    const char *good[] = {"example.com", "*.example.com", "a-b.c_d.io:443", "[::1]:8080", "localhost",
                          "xn--bcher-kva.example"};
    const char *bad[] = {"", "*", "*.", "a b", "exa*mple.com", "*.*.com", "a..b", ".a.com",
                         "example.com:0", "example.com:65536", "example.com:x", "http://a.com",
                         "a.com/path", "b\xc3\xbc" "cher.example", "[::1", NULL};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        CHECK(credentials_host_entry_ok(good[i]));
    for (size_t i = 0; bad[i]; i++)
        if (credentials_host_entry_ok(bad[i])) {
            unit_fail(__FILE__, __LINE__, bad[i]);
            return;
        }
    char longest[CREDENTIALS_HOST_MAX + 2];
    memset(longest, 'a', sizeof(longest));
    longest[CREDENTIALS_HOST_MAX] = '\0';
    CHECK(credentials_host_entry_ok(longest));
    longest[CREDENTIALS_HOST_MAX] = 'a';
    longest[CREDENTIALS_HOST_MAX + 1] = '\0';
    CHECK(!credentials_host_entry_ok(longest));
}

static void urls_are_matched_by_host_and_port(void)
{
    json_t *hosts = json_pack("[s, s]", "api.example.com", "*.svc.local:8080");
    CHECK(credentials_url_allowed(hosts, "https://api.example.com/v1/x?q=1"));
    CHECK(credentials_url_allowed(hosts, "http://API.example.com:9000/"));
    CHECK(credentials_url_allowed(hosts, "http://a.svc.local:8080/"));
    CHECK(!credentials_url_allowed(hosts, "http://a.svc.local/"));         /* port 80 */
    CHECK(!credentials_url_allowed(hosts, "https://api.example.com@evil.org/"));
    CHECK(!credentials_url_allowed(hosts, "https://evil.org/?h=api.example.com"));
    CHECK(!credentials_url_allowed(hosts, "not a url"));
    json_decref(hosts);
}

static void anthropic_request_and_answer(void)
{
    json_t *msgs = json_pack("[{s:s, s:s}, {s:s, s:s}, {s:s, s:s}]", "role", "system", "content", "A",
                             "role", "user", "content", "hi", "role", "system", "content", "B");
    json_t *t = json_real(0.5);
    json_t *req = anthropic_request("claude-x", msgs, t, 77);
    char *text = json_dumps(req, JSON_COMPACT | JSON_SORT_KEYS);
    CHECK_STR(text, "{\"max_tokens\":77,\"messages\":[{\"content\":\"hi\",\"role\":\"user\"}],"
                    "\"model\":\"claude-x\",\"system\":\"A\\n\\nB\",\"temperature\":0.5}");
    free(text);
    json_decref(req);
    json_decref(t);
    json_t *v = json_loads("{\"model\":\"claude-x-1\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
                           "{\"type\":\"tool_use\",\"id\":\"t\"},{\"type\":\"text\",\"text\":\"b\"}],"
                           "\"stop_reason\":\"max_tokens\",\"usage\":{\"input_tokens\":3,"
                           "\"output_tokens\":4}}", 0, NULL);
    llm_answer ans;
    CHECK(anthropic_answer(v, &ans) == 0);
    CHECK_STR(json_string_value(ans.content), "ab");
    CHECK_STR(json_string_value(ans.finish), "max_tokens");
    CHECK_STR(ans.model, "claude-x-1");
    CHECK_INT(ans.prompt_tokens, 3);
    CHECK_INT(ans.completion_tokens, 4);
    llm_answer_clear(&ans);
    json_decref(v);
    v = json_pack("{s:s}", "type", "error");
    CHECK(anthropic_answer(v, &ans) == -1);
    json_decref(v);
}

const unit_test credentials_tests[] = {
    TEST(gcm_known_answers),
    TEST(gcm_refuses_a_tampered_tag_or_text),
    TEST(keys_must_be_32_bytes_of_base64),
    TEST(sealed_values_open_only_under_their_id),
    TEST(old_keys_still_open),
    TEST(hosts_match),
    TEST(host_entries_are_checked),
    TEST(urls_are_matched_by_host_and_port),
    TEST(anthropic_request_and_answer),
    {NULL, NULL},
};
