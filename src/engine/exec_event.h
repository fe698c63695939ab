/*
 * exec_event.h - the data of an execution event (docs/api.md, "Live
 * execution events"): one line of JSON, {"executionId", "seq", "ts", ...}
 * with the fields of its type. Durable events are stored as this text
 * (store_exec_event), so a replay sends what the live stream sent.
 */
#ifndef AOP_ENGINE_EXEC_EVENT_H
#define AOP_ENGINE_EXEC_EVENT_H

#include <jansson.h>
#include <stdint.h>

/* Bytes of an llm.delta's text at most (a longer one goes out in parts). */
#define EXEC_EVENT_DELTA_MAX 16384

/* The event's JSON text (malloc'd): executionId, seq (left out when
 * seq < 0: a live-only event), ts (RFC 3339 of ts_ms), then the members
 * of fields (an object, borrowed; may be NULL) in their order. */
char *exec_event_text(const char *execution_id, long long seq, int64_t ts_ms,
                      const json_t *fields);
/* The same with the fields as the text of JSON members ("a":1,"b":"x"),
 * borrowed; NULL or "": none. */
char *exec_event_text_raw(const char *execution_id, long long seq, int64_t ts_ms,
                          const char *members);
/* {promptTokens, completionTokens, totalTokens} (new). */
json_t *exec_event_usage(long long prompt, long long completion);
/* An error's JSON text as a value (new): null for NULL or bad text. */
json_t *exec_event_error(const char *text);

#endif
