#include "core/secure.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <string.h>

int secure_str_eq(const char *a, const char *b)
{
    unsigned char da[SHA256_DIGEST_LENGTH], db[SHA256_DIGEST_LENGTH];
    if (!a || !b)
        return 0;
    SHA256((const unsigned char *)a, strlen(a), da);
    SHA256((const unsigned char *)b, strlen(b), db);
    return CRYPTO_memcmp(da, db, sizeof(da)) == 0;
}
