/*
 * clock.h - wall and monotonic time, RFC 3339 formatting.
 */
#ifndef AOP_CORE_CLOCK_H
#define AOP_CORE_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Milliseconds since the Unix epoch (wall clock). */
int64_t clock_now_ms(void);
/* Monotonic nanoseconds, for durations only. */
int64_t clock_mono_ns(void);
/* Monotonic milliseconds (clock_mono_ns() / 1e6). */
int64_t clock_mono_ms(void);
/* The wall-clock moment ms from now, as pthread_cond_timedwait takes it. */
void clock_deadline_after(int64_t ms, struct timespec *out);
/* Writes "2026-11-25T16:38:35.123Z" (24 chars + NUL) into out; out must hold 25 bytes. */
void clock_format_rfc3339(int64_t epoch_ms, char out[25]);
/* Parses an RFC 3339 date-time ("2026-11-25T16:38:35Z", fraction and offset
 * optional: ".123", "+02:00"; 'T'/'t' and 'Z'/'z') into epoch ms, or, when
 * date_only is allowed, "YYYY-MM-DD" as its UTC midnight. 0, or -1 when s is
 * not one of these or names an impossible date. */
int clock_parse_rfc3339(const char *s, int date_only, int64_t *epoch_ms);

#endif
