/*
 * redact.h - secrets taken out of text before it is stored or logged.
 *
 * A redact_set holds the secrets one outbound call sends (today the LLM
 * API key; credential values of a vault the same way). Every occurrence of
 * a secret in a text is replaced by REDACT_MARK: its raw bytes, and the
 * spellings JSON encoders give it inside a string (quotes, backslashes and
 * control characters escaped; '/' as "\/"; non-ASCII as \uXXXX; < > & as
 * \u003c \u003e \u0026), so an upstream that echoes the request as JSON
 * text is caught as well as one that echoes it plainly. A secret sent in
 * another encoding (base64 in Basic auth) is added in that form too.
 *
 * Secrets shorter than REDACT_SHORT bytes would match inside ordinary
 * words ("ab" in "about"): they are replaced only where they stand alone,
 * neither preceded nor followed by an ASCII letter or digit. Longer ones
 * are replaced wherever they occur. An empty secret is ignored.
 *
 * The set owns copies of its secrets and wipes them when cleared. With no
 * secret every function returns at once, allocating nothing.
 */
#ifndef AOP_CORE_REDACT_H
#define AOP_CORE_REDACT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define REDACT_MARK "[REDACTED]"
#define REDACT_SHORT 4   /* bytes: shorter secrets match only standing alone */
#define REDACT_MAX 8     /* secrets in one set */
#define REDACT_FORMS 6   /* spellings of one secret at most */

typedef struct {
    char *p;
    size_t len;
    bool alone; /* of a short secret: match only standing alone */
} redact_form;

/* Zero-initialised is empty. */
typedef struct {
    int nsecrets;
    int n;
    redact_form form[REDACT_MAX * REDACT_FORMS];
} redact_set;

/* Adds secret[0..len) (copied) with its JSON spellings. 0, or -1 when the
 * set already holds REDACT_MAX secrets (nothing added: the caller must not
 * send that secret). */
int redact_add(redact_set *s, const char *secret, size_t len);
/* Wipes and frees the copies; the set is empty again. NULL-safe, can run twice. */
void redact_clear(redact_set *s);
bool redact_empty(const redact_set *s);

/* text[0..len) with every secret replaced, as a new NUL-terminated string
 * of *outlen bytes; NULL when no secret occurs (nothing allocated). */
char *redact_text_new(const redact_set *s, const char *text, size_t len, size_t *outlen);
/* The same on a NUL-terminated string in a buffer of cap bytes, in place;
 * a result longer than the buffer is cut at a UTF-8 character boundary.
 * Returns true when something was replaced. */
bool redact_cstr(const redact_set *s, char *str, size_t cap);
/* v (taken) with every string and object key inside it redacted; returns
 * v itself (its arrays and objects changed in place) or, when v is a
 * string that changed, a new string. Text that redaction left invalid
 * UTF-8 (a secret that ends inside a character) gets U+FFFD there. */
json_t *redact_json(const redact_set *s, json_t *v);

#endif
