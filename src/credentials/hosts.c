/*
 * hosts.c - allowedHosts entries and their matching (hosts.h).
 */
#include "credentials/hosts.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/str.h"

static bool name_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '.' || ch == '_';
}

/* Splits "name[:port]" (an IPv6 name in brackets): *namelen and *port
 * (-1 without one, 0 when it is not a port number). */
static void split(const char *s, size_t *namelen, long *port)
{
    const char *colon = s[0] == '[' ? strchr(s, ']') : strchr(s, ':');
    if (colon && s[0] == '[')
        colon = colon[1] == ':' ? colon + 1 : NULL;
    *namelen = colon ? (size_t)(colon - s) : strlen(s);
    *port = -1;
    if (colon) {
        char *end = NULL;
        long p = strtol(colon + 1, &end, 10);
        *port = colon[1] >= '0' && colon[1] <= '9' && !*end && p > 0 && p <= 65535 ? p : 0;
    }
}

bool credentials_host_entry_ok(const char *s)
{
    size_t len = s ? strlen(s) : 0, n;
    long port;
    if (len == 0 || len > CREDENTIALS_HOST_MAX)
        return false;
    split(s, &n, &port);
    if (n == 0 || port == 0)
        return false;
    if (s[0] == '[') /* an IPv6 literal: hex digits, ':' and '.' */
        return n > 2 && s[n - 1] == ']' && strspn(s + 1, "0123456789abcdefABCDEF:.") == n - 2;
    size_t start = !strncmp(s, "*.", 2) ? 2 : 0;
    if (start == n || s[start] == '.')
        return false;
    for (size_t i = start; i < n; i++)
        if (!name_char(s[i]) || (s[i] == '.' && i + 1 < n && s[i + 1] == '.'))
            return false;
    return true;
}

/* name[0..n) without a trailing dot. */
static size_t trim_dot(const char *name, size_t n)
{
    return n > 1 && name[n - 1] == '.' ? n - 1 : n;
}

bool credentials_host_matches(const char *entry, const char *host, int port)
{
    size_t n, hn = trim_dot(host, strlen(host));
    long want;
    split(entry, &n, &want);
    if (want == 0 || (want > 0 && want != port))
        return false;
    n = trim_dot(entry, n);
    if (!strncmp(entry, "*.", 2)) { /* ".suffix" at the end of a longer name */
        const char *suffix = entry + 1;
        size_t sn = n - 1;
        return hn > sn && !strncasecmp(host + hn - sn, suffix, sn);
    }
    return hn == n && !strncasecmp(host, entry, n);
}

bool credentials_url_allowed(const json_t *hosts, const char *url)
{
    CURLU *u = curl_url();
    char *host = NULL, *port = NULL;
    bool ok = false;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
        long long p = 0;
        str_to_ll(port, 1, 65535, &p);
        size_t i;
        const json_t *e;
        json_array_foreach(hosts, i, e) {
            const char *s = json_string_value(e);
            if (s && credentials_host_matches(s, host, (int)p)) {
                ok = true;
                break;
            }
        }
    }
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return ok;
}
