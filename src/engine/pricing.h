/*
 * pricing.h - what an LLM call cost, from a table of per-model prices.
 *
 * The table is JSON: {"models": {"<model>": {"inputPerMillion": n,
 * "outputPerMillion": n}}}, prices in USD per million tokens (input for prompt
 * tokens, output for completion tokens). config/llm-pricing.json is the
 * default, built into the binary; LLM_PRICING_FILE names a replacement.
 *
 * Rules: the top level is an object; "models" is required and is an object of
 * at most PRICING_MAX_MODELS entries (none is allowed: then nothing is
 * priced). A model name is 1..PRICING_MAX_NAME bytes, matched exactly (case
 * matters). Each model is an object with both prices, numbers >= 0, integer
 * or real. Unknown keys are ignored at every level ("_comment" included);
 * duplicate keys are refused. Messages name the problem and where it is, e.g.
 * "models.gpt-4o.inputPerMillion must be a number >= 0", and never quote more
 * of the text than a model name.
 *
 * A table is immutable once made, so one may be shared by threads.
 */
#ifndef AOP_ENGINE_PRICING_H
#define AOP_ENGINE_PRICING_H

#include <stdbool.h>
#include <stddef.h>

#define PRICING_MAX_MODELS 10000
#define PRICING_MAX_NAME 200
#define PRICING_MAX_FILE (4 * 1024 * 1024)

typedef struct pricing pricing;

/* A new table (pricing_free it) from json[0..len), or NULL with a message in
 * err (errlen bytes; may be NULL/0). */
pricing *pricing_parse(const char *json, size_t len, char *err, size_t errlen);

/* pricing_parse of the file at path, which must be a regular file of at most
 * PRICING_MAX_FILE bytes. Messages start with the path and name the problem
 * ("cannot open: ...", "is larger than 4 MiB", the parse message) without
 * quoting the content. */
pricing *pricing_load_file(const char *path, char *err, size_t errlen);

/* The built-in copy of config/llm-pricing.json; NULL only when out of memory. */
pricing *pricing_default(void);

/* Sets *cost to the USD price of these tokens and returns true; or returns
 * false with *cost 0 when the model has no price. The exact name is looked up
 * first; else the longest priced name that is a prefix of model followed by
 * '-' ("gpt-4o-mini-2024-07-18" uses "gpt-4o-mini"). Negative token counts
 * count as 0. */
bool pricing_cost(const pricing *p, const char *model, long long prompt_tokens,
                  long long completion_tokens, double *cost);

/* Models in the table (0 for NULL). */
size_t pricing_count(const pricing *p);

/* Accepts NULL. */
void pricing_free(pricing *p);

#endif
