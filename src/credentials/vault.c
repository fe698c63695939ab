/*
 * vault.c - AES-256-GCM sealing of secrets under rotating keys (vault.h).
 */
#include "credentials/vault.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ids.h"
#include "core/mem.h"

#define BLOB_VERSION "v1"
#define KID_LABEL "aop credentials key id v1"

typedef struct {
    unsigned char key[VAULT_KEY_LEN];
    char kid[VAULT_KID_LEN];
} vault_key;

struct vault {
    vault_key keys[1 + VAULT_OLD_MAX]; /* [0] the current one */
    int n;
    atomic_llong failures;
};

/* ---- base64 ---- */

/* Decodes b64 (len bytes, padded) into out (room for len / 4 * 3); the
 * decoded length, or -1. */
static long b64_decode(const char *b64, size_t len, unsigned char *out)
{
    if (len == 0 || len % 4 || len > (size_t)1 << 30)
        return -1;
    int n = EVP_DecodeBlock(out, (const unsigned char *)b64, (int)len);
    if (n < 0)
        return -1;
    if (b64[len - 1] == '=')
        n--;
    if (b64[len - 2] == '=')
        n--;
    return n;
}

int vault_key_decode(const char *b64, unsigned char key[VAULT_KEY_LEN])
{
    while (*b64 == ' ')
        b64++;
    size_t len = strlen(b64);
    while (len && b64[len - 1] == ' ')
        len--;
    unsigned char out[48];
    if (len != 44) /* 32 bytes: 43 characters and one '=' */
        return -1;
    long n = b64_decode(b64, len, out);
    int rc = n == VAULT_KEY_LEN ? 0 : -1;
    if (rc == 0)
        memcpy(key, out, VAULT_KEY_LEN);
    OPENSSL_cleanse(out, sizeof(out));
    return rc;
}

void vault_key_generate(char out[45])
{
    unsigned char key[VAULT_KEY_LEN];
    ids_random(key, sizeof(key));
    EVP_EncodeBlock((unsigned char *)out, key, VAULT_KEY_LEN);
    OPENSSL_cleanse(key, sizeof(key));
}

/* ---- keys ---- */

static void key_id(const unsigned char key[VAULT_KEY_LEN], char kid[VAULT_KID_LEN])
{
    unsigned char in[sizeof(KID_LABEL) - 1 + VAULT_KEY_LEN], md[SHA256_DIGEST_LENGTH];
    memcpy(in, KID_LABEL, sizeof(KID_LABEL) - 1);
    memcpy(in + sizeof(KID_LABEL) - 1, key, VAULT_KEY_LEN);
    SHA256(in, sizeof(in), md);
    OPENSSL_cleanse(in, sizeof(in));
    for (int i = 0; i < 8; i++)
        snprintf(kid + 2 * i, 3, "%02x", md[i]);
}

static int add_key(vault *v, const char *b64)
{
    vault_key *k = &v->keys[v->n];
    if (vault_key_decode(b64, k->key) != 0)
        return -1;
    key_id(k->key, k->kid);
    for (int i = 0; i < v->n; i++)
        if (!strcmp(v->keys[i].kid, k->kid)) { /* listed twice: once is enough */
            OPENSSL_cleanse(k->key, sizeof(k->key));
            return 0;
        }
    v->n++;
    return 0;
}

vault *vault_new(const char *current, const char *old, char *err, size_t errlen)
{
    vault *v = xcalloc(1, sizeof(*v));
    if (!current || add_key(v, current) != 0) {
        snprintf(err, errlen, "CREDENTIALS_KEY: must be the base64 of 32 bytes");
        vault_free(v);
        return NULL;
    }
    char *list = old ? xstrdup(old) : NULL, *save = NULL;
    int count = 0;
    for (char *t = list ? strtok_r(list, ",", &save) : NULL; t; t = strtok_r(NULL, ",", &save)) {
        if (++count > VAULT_OLD_MAX || add_key(v, t) != 0) {
            snprintf(err, errlen,
                     count > VAULT_OLD_MAX
                         ? "CREDENTIALS_OLD_KEYS: at most 8 keys"
                         : "CREDENTIALS_OLD_KEYS: must be comma-separated base64 of 32 bytes each");
            OPENSSL_cleanse(list, strlen(old));
            free(list);
            vault_free(v);
            return NULL;
        }
    }
    if (list) {
        OPENSSL_cleanse(list, strlen(old));
        free(list);
    }
    return v;
}

void vault_free(vault *v)
{
    if (!v)
        return;
    OPENSSL_cleanse(v->keys, sizeof(v->keys));
    free(v);
}

const char *vault_kid(const vault *v)
{
    return v->keys[0].kid;
}

long long vault_failures(const vault *v)
{
    return atomic_load(&((vault *)v)->failures);
}

/* ---- the cipher ---- */

static int gcm(bool enc, const unsigned char *key, const unsigned char *iv, size_t ivlen,
               const unsigned char *ad, size_t adlen, const unsigned char *in, size_t len,
               unsigned char *out, unsigned char *tag)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0, ok = ctx != NULL && len <= INT32_MAX && adlen <= INT32_MAX;
    ok = ok && EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) == 1;
    ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, (int)ivlen, NULL) == 1;
    ok = ok && EVP_CipherInit_ex(ctx, NULL, NULL, key, iv, enc) == 1;
    ok = ok && (adlen == 0 || EVP_CipherUpdate(ctx, NULL, &n, ad, (int)adlen) == 1);
    ok = ok && (len == 0 || EVP_CipherUpdate(ctx, out, &n, in, (int)len) == 1);
    if (ok && !enc)
        ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, VAULT_TAG_LEN, tag) == 1;
    ok = ok && EVP_CipherFinal_ex(ctx, out + (len ? n : 0), &n) == 1;
    if (ok && enc)
        ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, VAULT_TAG_LEN, tag) == 1;
    EVP_CIPHER_CTX_free(ctx); /* wipes the key schedule */
    return ok ? 0 : -1;
}

int vault_gcm_encrypt(const unsigned char *key, const unsigned char *iv, size_t ivlen,
                      const unsigned char *ad, size_t adlen, const unsigned char *in,
                      size_t len, unsigned char *out, unsigned char tag[VAULT_TAG_LEN])
{
    return gcm(true, key, iv, ivlen, ad, adlen, in, len, out, tag);
}

int vault_gcm_decrypt(const unsigned char *key, const unsigned char *iv, size_t ivlen,
                      const unsigned char *ad, size_t adlen, const unsigned char *in,
                      size_t len, unsigned char *out, const unsigned char tag[VAULT_TAG_LEN])
{
    unsigned char t[VAULT_TAG_LEN];
    memcpy(t, tag, sizeof(t));
    return gcm(false, key, iv, ivlen, ad, adlen, in, len, out, t);
}

/* ---- blobs ---- */

char *vault_seal(const vault *v, const char *ad, const void *plain, size_t len)
{
    if (len > VAULT_PLAIN_MAX)
        return NULL;
    size_t raw_len = VAULT_NONCE_LEN + len + VAULT_TAG_LEN;
    unsigned char *raw = xmalloc(raw_len);
    ids_random(raw, VAULT_NONCE_LEN);
    unsigned char *ct = raw + VAULT_NONCE_LEN, *tag = ct + len;
    if (gcm(true, v->keys[0].key, raw, VAULT_NONCE_LEN, (const unsigned char *)ad, strlen(ad),
            plain, len, ct, tag) != 0) {
        free(raw);
        return NULL;
    }
    size_t head = sizeof(BLOB_VERSION) + VAULT_KID_LEN; /* "v1." "<kid>." */
    char *blob = xmalloc(head + (raw_len + 2) / 3 * 4 + 1);
    snprintf(blob, head + 1, BLOB_VERSION ".%s.", v->keys[0].kid);
    EVP_EncodeBlock((unsigned char *)blob + head, raw, (int)raw_len);
    free(raw); /* ciphertext only: nothing to wipe */
    return blob;
}

char *vault_open(vault *v, const char *ad, const char *blob, size_t *len, bool *current)
{
    const size_t head = sizeof(BLOB_VERSION) + VAULT_KID_LEN;
    size_t blen = blob ? strlen(blob) : 0;
    const vault_key *k = NULL;
    char *plain = NULL;
    unsigned char *raw = NULL;
    if (blen > head && !strncmp(blob, BLOB_VERSION ".", 3) && blob[head - 1] == '.' &&
        blen - head <= (VAULT_PLAIN_MAX + 64) / 3 * 4 + 4)
        for (int i = 0; i < v->n && !k; i++)
            if (!strncmp(blob + 3, v->keys[i].kid, VAULT_KID_LEN - 1))
                k = &v->keys[i];
    if (k) {
        raw = xmalloc((blen - head) / 4 * 3 + 3);
        long n = b64_decode(blob + head, blen - head, raw);
        if (n >= VAULT_NONCE_LEN + VAULT_TAG_LEN) {
            size_t clen = (size_t)n - VAULT_NONCE_LEN - VAULT_TAG_LEN;
            plain = xmalloc(clen + 1);
            if (gcm(false, k->key, raw, VAULT_NONCE_LEN, (const unsigned char *)ad, strlen(ad),
                    raw + VAULT_NONCE_LEN, clen, (unsigned char *)plain,
                    raw + VAULT_NONCE_LEN + clen) == 0) {
                plain[clen] = '\0';
                *len = clen;
            } else {
                vault_plain_free(plain, clen + 1);
                plain = NULL;
            }
        }
        free(raw);
    }
    if (!plain)
        atomic_fetch_add(&v->failures, 1);
    else if (current)
        *current = k == &v->keys[0];
    return plain;
}

void vault_plain_free(char *plain, size_t len)
{
    if (!plain)
        return;
    OPENSSL_cleanse(plain, len);
    free(plain);
}
