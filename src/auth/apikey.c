#include "auth/apikey.h"
#include "core/ids.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define APIKEY_TAG "aop_"
#define APIKEY_TAG_LEN (sizeof(APIKEY_TAG) - 1)
#define APIKEY_RANDOM_BYTES 32

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Unpadded base64url of in (n bytes) into out, NUL-terminated; out holds
 * (4n + 2) / 3 + 1 bytes. */
static void b64url_encode(const unsigned char *in, size_t n, char *out)
{
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8 | in[i]) & 0xffff;
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            *out++ = b64url[(acc >> bits) & 63];
        }
    }
    if (bits > 0)
        *out++ = b64url[(acc << (6 - bits)) & 63];
    *out = '\0';
}

/* Lowercase hex SHA-256 of s (n bytes). */
static void sha256_hex(const char *s, size_t n, char hash[APIKEY_HASH_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[SHA256_DIGEST_LENGTH];
    if (!SHA256((const unsigned char *)s, n, md)) {
        fputs("{\"level\":\"fatal\",\"msg\":\"SHA-256 failed\"}\n", stderr);
        abort();
    }
    for (size_t i = 0; i < sizeof(md); i++) {
        hash[2 * i] = hex[md[i] >> 4];
        hash[2 * i + 1] = hex[md[i] & 15];
    }
    hash[APIKEY_HASH_LEN] = '\0';
}

void auth_apikey_new(char key[APIKEY_LEN + 1], char prefix[APIKEY_PREFIX_LEN + 1],
                     char hash[APIKEY_HASH_LEN + 1])
{
    unsigned char rnd[APIKEY_RANDOM_BYTES];
    _Static_assert(APIKEY_TAG_LEN + (4 * APIKEY_RANDOM_BYTES + 2) / 3 == APIKEY_LEN,
                   "APIKEY_LEN must fit the tag and the encoded random bytes");
    ids_random(rnd, sizeof(rnd));
    memcpy(key, APIKEY_TAG, APIKEY_TAG_LEN);
    b64url_encode(rnd, sizeof(rnd), key + APIKEY_TAG_LEN);
    explicit_bzero(rnd, sizeof(rnd));
    memcpy(prefix, key, APIKEY_PREFIX_LEN);
    prefix[APIKEY_PREFIX_LEN] = '\0';
    sha256_hex(key, APIKEY_LEN, hash);
}

int auth_apikey_hash(const char *key, char hash[APIKEY_HASH_LEN + 1])
{
    if (!key || strnlen(key, APIKEY_LEN + 1) != APIKEY_LEN ||
        memcmp(key, APIKEY_TAG, APIKEY_TAG_LEN) != 0)
        return -1;
    for (size_t i = APIKEY_TAG_LEN; i < APIKEY_LEN; i++)
        if (!memchr(b64url, key[i], sizeof(b64url) - 1))
            return -1;
    sha256_hex(key, APIKEY_LEN, hash);
    return 0;
}
