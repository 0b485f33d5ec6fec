/* jsontext.c - see jsontext.h. */
#include "jsontext.h"

#include <stdbool.h>

size_t json_text_compact(char *json, size_t len)
{
    bool in_string = false, escaped = false;
    size_t out = 0;

    for (size_t i = 0; i < len; i++) {
        char c = json[i];

        if (in_string) {
            in_string = escaped || c != '"';
            escaped = !escaped && c == '\\';
        } else if (c == '"') {
            in_string = true;
        } else if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
            continue;
        }
        json[out++] = c;
    }
    return out;
}
