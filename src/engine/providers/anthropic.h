/*
 * anthropic.h - the Anthropic Messages API for the llm kind (and agents):
 * how a chat request is written for it and how its answer is read into
 * the parts every provider's answer has (llm.c builds the same output
 * from them as for OpenAI-compatible servers).
 *
 * Request: POST {baseUrl}/messages with x-api-key and anthropic-version
 * ANTHROPIC_VERSION; body {model, max_tokens (always), system (the system
 * messages' contents, joined by blank lines; absent when none), messages
 * (the user and assistant messages, in order), temperature?}.
 * Answer: content[] text blocks joined, model, stop_reason,
 * usage.input_tokens and usage.output_tokens.
 */
#ifndef AOP_ENGINE_PROVIDERS_ANTHROPIC_H
#define AOP_ENGINE_PROVIDERS_ANTHROPIC_H

#include <jansson.h>

#define ANTHROPIC_VERSION "2023-06-01"

/* What the llm kind keeps of a provider's answer: content and finish are
 * new references (content a string or null), model borrowed from the
 * answer (NULL when it names none). */
typedef struct {
    json_t *content;
    json_t *finish;
    const char *model;
    long long prompt_tokens, completion_tokens;
} llm_answer;

/* The request body: msgs (taken) is [{role, content}] with string
 * contents; temperature borrowed (NULL: none); max_tokens > 0. */
json_t *anthropic_request(const char *model, json_t *msgs, const json_t *temperature,
                          long long max_tokens);
/* Reads answer v into *out: 0, or -1 (nothing to free) when v is not a
 * Messages API answer. */
int anthropic_answer(const json_t *v, llm_answer *out);
/* Frees what out holds. */
void llm_answer_clear(llm_answer *out);

#endif
