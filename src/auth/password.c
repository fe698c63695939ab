#include "auth/password.h"
#include "core/buf.h"
#include "core/ids.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/str.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

aop_err auth_password_hash(const char *password, int cost, char out[PASSWORD_HASH_MAX])
{
    char rnd[16], salt[CRYPT_GENSALT_OUTPUT_SIZE];
    ids_random(rnd, sizeof(rnd));
    if (!crypt_gensalt_rn("$2b$", (unsigned long)cost, rnd, sizeof(rnd), salt, sizeof(salt))) {
        log_error("bcrypt salt generation failed", LF_I("cost", cost));
        return AOP_ERR_INTERNAL;
    }
    struct crypt_data *cd = xcalloc(1, sizeof(*cd));
    aop_err rc = AOP_ERR_INTERNAL;
    const char *h = crypt_rn(password, salt, cd, sizeof(*cd));
    if (h && h[0] == '$' && strlen(h) < PASSWORD_HASH_MAX) {
        str_copy(out, PASSWORD_HASH_MAX, h);
        rc = AOP_OK;
    } else {
        log_error("bcrypt hashing failed");
    }
    explicit_bzero(cd, sizeof(*cd));
    free(cd);
    return rc;
}

int auth_password_verify(const char *password, const char *hash)
{
    struct crypt_data *cd = xcalloc(1, sizeof(*cd));
    const char *h = crypt_rn(password, hash, cd, sizeof(*cd));
    int ok = h && h[0] == '$' && strlen(h) == strlen(hash) &&
             CRYPTO_memcmp(h, hash, strlen(hash)) == 0;
    explicit_bzero(cd, sizeof(*cd));
    free(cd);
    return ok;
}

int auth_password_verify_dummy(const char *password, int cost)
{
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    static char dummy[PASSWORD_HASH_MAX];
    static int dummy_cost;
    char hash[PASSWORD_HASH_MAX];
    char secret[33];
    pthread_mutex_lock(&mu);
    if (dummy_cost != cost) {
        ids_random_hex(secret, 16);
        if (auth_password_hash(secret, cost, dummy) == AOP_OK)
            dummy_cost = cost;
        explicit_bzero(secret, sizeof(secret));
    }
    str_copy(hash, sizeof(hash), dummy);
    pthread_mutex_unlock(&mu);
    if (hash[0])
        auth_password_verify(password, hash);
    return 0;
}
