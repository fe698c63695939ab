/* libFuzzer target: redaction of upstream answers. The first byte says how
 * long the secret is; the secret comes next, then the text (also parsed as
 * JSON when it is). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/redact.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t slen = data[0] % 16;
    if (size < 1 + slen)
        return 0;
    const char *secret = (const char *)data + 1, *text = secret + slen;
    size_t tlen = size - 1 - slen;
    redact_set s = {0};
    redact_add(&s, secret, slen);
    redact_add(&s, "fixed-secret", 12);
    size_t n;
    free(redact_text_new(&s, text, tlen, &n));
    char small[64];
    size_t k = tlen < sizeof(small) - 1 ? tlen : sizeof(small) - 1;
    memcpy(small, text, k);
    small[k] = '\0';
    redact_cstr(&s, small, sizeof(small));
    json_t *v = json_loadb(text, tlen, JSON_DECODE_ANY, NULL);
    v = redact_json(&s, v);
    char *out = v ? json_dumps(v, JSON_ENCODE_ANY) : NULL;
    if (v && !out)
        abort(); /* redaction must leave encodable JSON */
    free(out);
    json_decref(v);
    redact_clear(&s);
    return 0;
}
