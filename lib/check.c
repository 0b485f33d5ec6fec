/* check.c - validation of request input. */
#include "check.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const type_names[] = {
    [F_STRING] = "a string", [F_BOOL] = "a boolean", [F_INTEGER] = "an integer",
    [F_ARRAY] = "an array",  [F_OBJECT] = "an object", [F_ANY] = "a value",
};

static bool type_ok(json_t *v, enum field_type t)
{
    switch (t) {
    case F_STRING:
        return json_is_string(v);
    case F_BOOL:
        return json_is_boolean(v);
    case F_INTEGER:
        return json_is_integer(v);
    case F_ARRAY:
        return json_is_array(v);
    case F_OBJECT:
        return json_is_object(v);
    case F_ANY:
        return true;
    }
    return false;
}

int check_object(json_t *v, const struct field *fields, char *err, size_t errsize)
{
    const char *key;
    json_t *val;
    const struct field *f;

    if (!json_is_object(v)) {
        snprintf(err, errsize, "The request body must be a JSON object.");
        return -1;
    }
    json_object_foreach(v, key, val) {
        for (f = fields; f->name && strcmp(f->name, key) != 0; f++)
            ;
        if (f->name == NULL) {
            snprintf(err, errsize, "Unknown field '%.64s'.", key);
            return -1;
        }
    }
    for (f = fields; f->name; f++) {
        val = json_object_get(v, f->name);
        if (val == NULL) {
            if (f->required) {
                snprintf(err, errsize, "Missing required field '%s'.", f->name);
                return -1;
            }
            continue;
        }
        if (!type_ok(val, f->type)) {
            snprintf(err, errsize, "Field '%s' must be %s.", f->name, type_names[f->type]);
            return -1;
        }
        if (f->type == F_STRING && strlen(json_string_value(val)) != json_string_length(val)) {
            snprintf(err, errsize, "Field '%s' must not contain NUL characters.", f->name);
            return -1;
        }
        if (f->type == F_STRING && f->max_chars &&
            utf8_chars(json_string_value(val)) > f->max_chars) {
            snprintf(err, errsize, "Field '%s' must be at most %zu characters.", f->name,
                     f->max_chars);
            return -1;
        }
    }
    return 0;
}

int check_int32(const char *s, long *out)
{
    char *end;
    long v;

    if (s == NULL || !((*s >= '0' && *s <= '9') || (*s == '-' && s[1] >= '0' && s[1] <= '9')))
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end || v < -2147483648L || v > 2147483647L)
        return -1;
    *out = v;
    return 0;
}

size_t utf8_chars(const char *s)
{
    size_t n = 0;

    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

int check_bool(const char *s)
{
    static const char *const yes[] = {"true", "t", "yes", "y", "on", "1"};
    static const char *const no[] = {"false", "f", "no", "n", "off", "0"};

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(s, yes[i]) == 0)
            return 1;
        if (strcasecmp(s, no[i]) == 0)
            return 0;
    }
    return -1;
}
