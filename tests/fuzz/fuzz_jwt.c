/* libFuzzer target: token verification and API-key checks on arbitrary bytes.
 * The input is tried as a token of both types and as an API key; when it is a
 * JSON object it is also signed as a payload (HS256, the right secret) so the
 * claim checks behind the signature are reached. verify never logs, and
 * libjwt is called directly here, so there is no log to silence. */
#include <jwt.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/apikey.h"
#include "auth/jwt.h"
#include "core/mem.h"

#define FUZZ_SECRET "fuzz-secret-0123456789abcdef0123"
#define FUZZ_NOW 1700000060LL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void verify_both(const char *token)
{
    auth_claims c;
    auth_jwt_verify(token, AUTH_TOKEN_ACCESS, FUZZ_SECRET, FUZZ_NOW, &c);
    auth_jwt_verify(token, AUTH_TOKEN_REFRESH, FUZZ_SECRET, FUZZ_NOW, &c);
}

/* Signs text as a payload with libjwt and verifies the result. */
static void verify_signed_payload(const char *text)
{
    jwt_t *j = NULL;
    char *token = NULL;
    if (jwt_new(&j) == 0 &&
        jwt_set_alg(j, JWT_ALG_HS256, (const unsigned char *)FUZZ_SECRET,
                    (int)strlen(FUZZ_SECRET)) == 0 &&
        jwt_add_grants_json(j, text) == 0)
        token = jwt_encode_str(j);
    if (token)
        verify_both(token);
    free(token);
    if (j)
        jwt_free(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = xstrndup((const char *)data, size);
    char hash[APIKEY_HASH_LEN + 1];
    verify_both(text);
    auth_apikey_hash(text, hash);
    if (size > 0 && data[0] == '{')
        verify_signed_payload(text);
    free(text);
    return 0;
}
