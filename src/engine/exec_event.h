/*
 * exec_event.h - the data of an execution event (docs/api.md, "Live
 * execution events"): one line of JSON, {"executionId", "seq", "ts", ...}
 * with the fields of its type. Events are kept as their parts
 * (store_exec_event: seq, type, ts and the text of the fields' members)
 * and made into this line the same way live and on replay, so a replayed
 * event is byte for byte the one sent live.
 */
#ifndef AOP_ENGINE_EXEC_EVENT_H
#define AOP_ENGINE_EXEC_EVENT_H

#include <jansson.h>

#include "store/store.h"

/* Bytes of an llm.delta's text at most (a longer one goes out in parts). */
#define EXEC_EVENT_DELTA_MAX 16384

/* The data line of ev of execution_id (malloc'd): executionId, seq (left
 * out when ev->seq < 0: a live-only event), ts, then ev->members. */
char *exec_event_text(const char *execution_id, const store_exec_event *ev);
/* The members of fields (an object, borrowed) as text, without the braces
 * (malloc'd; "" for none). */
char *exec_event_members(const json_t *fields);
/* {promptTokens, completionTokens, totalTokens} (new). */
json_t *exec_event_usage(long long prompt, long long completion);
/* An error's JSON text as a value (new): null for NULL or bad text. */
json_t *exec_event_error(const char *text);

#endif
