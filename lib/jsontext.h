/* jsontext.h - JSON text that PostgreSQL built (json_build_object, json_agg),
 * passed on without parsing it again: the outbox's events. */
#ifndef CORE_JSONTEXT_H
#define CORE_JSONTEXT_H

#include <stddef.h>

/* Drops the whitespace between tokens, in place, and returns the new length.
 * PostgreSQL writes json as `{"a" : 1, "b" : [1, 2]}`; what is left is what
 * jansson writes with JSON_COMPACT: keys keep their order, strings their
 * bytes (reals aside: they stay as PostgreSQL wrote them). 'json' must be
 * valid JSON, as PostgreSQL's json type is. */
size_t json_text_compact(char *json, size_t len);

#endif
