#include "core/ids.h"
#include "core/clock.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

void ids_random(void *p, size_t n)
{
    unsigned char *c = p;
    while (n) {
        ssize_t got = getrandom(c, n, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            fputs("{\"level\":\"fatal\",\"msg\":\"getrandom failed\"}\n", stderr);
            abort();
        }
        c += got;
        n -= (size_t)got;
    }
}

void ids_random_hex(char *out, size_t nbytes)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[64];
    size_t o = 0;
    while (nbytes) {
        size_t k = nbytes < sizeof(b) ? nbytes : sizeof(b);
        ids_random(b, k);
        for (size_t i = 0; i < k; i++) {
            out[o++] = hex[b[i] >> 4];
            out[o++] = hex[b[i] & 15];
        }
        nbytes -= k;
    }
    out[o] = '\0';
}

/* Random bytes for identifiers, drawn from a per-thread buffer that getrandom
 * refills 4 KiB at a time (one system call per ~400 ids instead of one each).
 * The bytes are as good as ids_random's; they only skip the syscall. Secrets
 * (keys, salts) use ids_random directly. */
static void id_random(unsigned char *p, size_t n)
{
    static _Thread_local unsigned char pool[4096];
    static _Thread_local size_t left;
    if (n > sizeof(pool)) {
        ids_random(p, n);
        return;
    }
    if (left < n) {
        ids_random(pool, sizeof(pool));
        left = sizeof(pool);
    }
    memcpy(p, pool + sizeof(pool) - left, n);
    explicit_bzero(pool + sizeof(pool) - left, n);
    left -= n;
}

void ids_uuid7(char out[UUID_STR_LEN])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char u[16];
    uint64_t ms = (uint64_t)clock_now_ms();
    id_random(u + 6, 10);
    for (int i = 0; i < 6; i++)
        u[i] = (unsigned char)(ms >> (40 - 8 * i));
    u[6] = (unsigned char)(0x70 | (u[6] & 0x0f));
    u[8] = (unsigned char)(0x80 | (u[8] & 0x3f));
    char *o = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *o++ = '-';
        *o++ = hex[u[i] >> 4];
        *o++ = hex[u[i] & 15];
    }
    *o = '\0';
}

int ids_request_id_ok(const char *s)
{
    if (!s)
        return 0;
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                 (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == ':';
        if (!ok || n >= 128)
            return 0;
    }
    return n > 0;
}

int ids_uuid_ok(const char *s)
{
    if (!s)
        return 0;
    for (int i = 0; i < 36; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return 0;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return 0;
        }
    }
    return s[36] == '\0';
}
