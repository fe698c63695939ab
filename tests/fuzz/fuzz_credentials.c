/* libFuzzer target: what users write into a credential that is parsed:
 * allowedHosts entries (checked, then matched against arbitrary hosts and
 * URLs), and sealed blobs as the vault reads them (a row's text must never
 * be trusted to be well-formed). Input: "entry\nhost-or-url\nblob". */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "credentials/hosts.h"
#include "credentials/vault.h"

#define KEY "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static vault *v;
    char err[200];
    if (!v)
        v = vault_new(KEY, NULL, err, sizeof(err));
    char *text = xstrndup((const char *)data, size);
    char *host = strchr(text, '\n');
    char *blob = host ? strchr(host + 1, '\n') : NULL;
    if (host)
        *host++ = '\0';
    if (blob)
        *blob++ = '\0';
    if (credentials_host_entry_ok(text) && host) {
        credentials_host_matches(text, host, 443);
        json_t *list = json_pack("[s]", text);
        credentials_url_allowed(list, host);
        json_decref(list);
    }
    size_t n = 0;
    char *plain = vault_open(v, "fuzz", blob ? blob : text, &n, NULL);
    vault_plain_free(plain, n + 1);
    free(text);
    return 0;
}
