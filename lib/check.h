/* check.h - validation of request input: ids, text lengths and JSON objects
 * described by a table of fields, with messages a client can act on. */
#ifndef CORE_CHECK_H
#define CORE_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

enum field_type { F_STRING, F_BOOL, F_INTEGER, F_ARRAY, F_OBJECT, F_ANY };

struct field {
    const char *name;
    enum field_type type;
    bool required;
    size_t max_chars;  /* F_STRING: 0 = no limit */
};

/* Checks that 'v' is an object whose keys are all in 'fields' (ending with
 * a NULL name), with the right types, required ones present and strings
 * within their length. Returns 0, or -1 with a message in 'err'. */
int check_object(json_t *v, const struct field *fields, char *err, size_t errsize);

/* The string member 'key' of 'obj', or NULL when it is absent or not a
 * string (after check_object, a required F_STRING is always there). */
static inline const char *field_text(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* Parses a decimal integer of 32 bits (what a serial column holds). */
int check_int32(const char *s, long *out);

/* Characters (not bytes) in a valid UTF-8 string. */
size_t utf8_chars(const char *s);

/* Parses a boolean query value as the seeds' frameworks did: true/false,
 * t/f, yes/no, y/n, on/off, 1/0, in any case. Returns 1, 0, or -1. */
int check_bool(const char *s);

#endif
