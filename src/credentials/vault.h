/*
 * vault.h - secrets sealed at rest (docs/api.md, "Credentials").
 *
 * AES-256-GCM through OpenSSL EVP: every value sealed gets a fresh random
 * 96-bit nonce, and the row it belongs to (a credential's id) is bound as
 * associated data, so a sealed value copied to another row does not open.
 * A sealed value is one versioned text blob:
 *
 *     v1.<key id: 16 hex>.<base64 of nonce (12) | ciphertext | tag (16)>
 *
 * The key id is the first 8 bytes of SHA-256 over a label and the key, so
 * it names a key without revealing it. A vault holds the current key
 * (CREDENTIALS_KEY) that seals, and up to VAULT_OLD_MAX older ones
 * (CREDENTIALS_OLD_KEYS) that still open what they sealed. Keys and every
 * plaintext the vault hands out are wiped (OPENSSL_cleanse) when freed.
 *
 * A vault is read-only once made and safe to share between threads; its
 * failure counter is atomic.
 */
#ifndef AOP_CREDENTIALS_VAULT_H
#define AOP_CREDENTIALS_VAULT_H

#include <stdbool.h>
#include <stddef.h>

#define VAULT_KEY_LEN 32
#define VAULT_NONCE_LEN 12
#define VAULT_TAG_LEN 16
#define VAULT_KID_LEN 17  /* 16 hex digits and the NUL */
#define VAULT_OLD_MAX 8   /* keys CREDENTIALS_OLD_KEYS may list */
#define VAULT_PLAIN_MAX 65536 /* bytes of one sealed value at most */

typedef struct vault vault;

/* The 32 bytes of b64 (standard base64, padded, surrounding spaces
 * ignored) into key; -1 when it is not base64 of exactly 32 bytes. */
int vault_key_decode(const char *b64, unsigned char key[VAULT_KEY_LEN]);
/* base64 of VAULT_KEY_LEN fresh random bytes into out (45 bytes). */
void vault_key_generate(char out[45]);

/* A vault of current (base64) and old (comma-separated base64 keys, or
 * NULL). NULL with a message naming CREDENTIALS_KEY or
 * CREDENTIALS_OLD_KEYS when one is not a key. */
vault *vault_new(const char *current, const char *old, char *err, size_t errlen);
/* Wipes the keys and frees v. NULL-safe. */
void vault_free(vault *v);
/* The current key's id. */
const char *vault_kid(const vault *v);

/* plain[0..len) sealed under the current key with ad (a NUL-terminated
 * text, the row's id) bound: a new NUL-terminated blob (free it), or NULL
 * when len is over VAULT_PLAIN_MAX. */
char *vault_seal(const vault *v, const char *ad, const void *plain, size_t len);
/* The plaintext of blob sealed with ad, by whichever of v's keys sealed
 * it: a new NUL-terminated buffer of *len bytes that the caller frees with
 * vault_plain_free; *current (may be NULL) tells whether the current key
 * opened it. NULL, counted in vault_failures, when the blob is malformed,
 * no key of v sealed it, or it (or ad) was changed. */
char *vault_open(vault *v, const char *ad, const char *blob, size_t *len, bool *current);
/* Wipes and frees what vault_open returned. NULL-safe. */
void vault_plain_free(char *plain, size_t len);
/* The values vault_open could not open since start. */
long long vault_failures(const vault *v);

/*
 * The cipher itself, for the known-answer tests: AES-256-GCM of in[0..len)
 * into out (len bytes) and tag, with iv of ivlen bytes and ad of adlen
 * bytes. Decrypt returns -1 when the tag does not verify (out then holds
 * nothing usable).
 */
int vault_gcm_encrypt(const unsigned char *key, const unsigned char *iv, size_t ivlen,
                      const unsigned char *ad, size_t adlen, const unsigned char *in,
                      size_t len, unsigned char *out, unsigned char tag[VAULT_TAG_LEN]);
int vault_gcm_decrypt(const unsigned char *key, const unsigned char *iv, size_t ivlen,
                      const unsigned char *ad, size_t adlen, const unsigned char *in,
                      size_t len, unsigned char *out, const unsigned char tag[VAULT_TAG_LEN]);

#endif
