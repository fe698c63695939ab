/*
 * clock.h - wall and monotonic time, RFC 3339 formatting.
 */
#ifndef AOP_CORE_CLOCK_H
#define AOP_CORE_CLOCK_H

#include <stdint.h>

/* Milliseconds since the Unix epoch (wall clock). */
int64_t clock_now_ms(void);
/* Monotonic nanoseconds, for durations only. */
int64_t clock_mono_ns(void);
/* Writes "2026-11-25T16:38:35.123Z" (24 chars + NUL) into out; out must hold 25 bytes. */
void clock_format_rfc3339(int64_t epoch_ms, char out[25]);

#endif
