/* jsontext.c - see jsontext.h. */
#include "jsontext.h"

#include <stdlib.h>
#include <string.h>
#include <jansson.h>

/* The index of the quote that ends the string starting at 'from' (just past
 * its opening quote), or 'len': the first quote after an even number of
 * backslashes. memchr finds the candidates; most strings have one. */
static size_t string_end(const char *s, size_t from, size_t len)
{
    for (size_t i = from; i < len;) {
        const char *q = memchr(s + i, '"', len - i);
        size_t at, k;

        if (q == NULL)
            break;
        at = (size_t)(q - s);
        for (k = at; k > from && s[k - 1] == '\\'; k--)
            ;
        if ((at - k) % 2 == 0)
            return at;
        i = at + 1;
    }
    return len;
}

size_t json_text_compact(char *json, size_t len)
{
    size_t out = 0;

    for (size_t i = 0; i < len;) {
        char c = json[i];

        if (c == '"') {
            /* A string is copied whole, its blanks kept. */
            size_t end = string_end(json, i + 1, len);
            size_t n = (end < len ? end + 1 : len) - i;

            if (out != i)
                memmove(json + out, json + i, n);
            out += n;
            i += n;
            continue;
        }
        if (c != ' ' && c != '\n' && c != '\t' && c != '\r')
            json[out++] = c;
        i++;
    }
    return out;
}

static int append(const char *buffer, size_t size, void *data)
{
    sb_add(data, buffer, size);
    return 0;
}

void json_text_string(struct strbuf *out, const char *s, size_t len)
{
    /* One string value, reset for each use: replies are written on the loop
     * thread only. PostgreSQL's text is valid UTF-8 (the databases are). */
    static json_t *scratch;

    if (scratch == NULL && (scratch = json_string("")) == NULL)
        abort();
    if (json_string_setn_nocheck(scratch, s, len) != 0 ||
        json_dump_callback(scratch, append, out, JSON_ENCODE_ANY) != 0)
        abort(); /* out of memory */
}

void json_text_rows(struct strbuf *out, const PGresult *res, int first, int last,
                    const struct json_column *cols, int ncols)
{
    /* Each key is encoded once, with its colon, for all the rows. */
    static struct strbuf keys;
    size_t at[JSON_MAX_COLUMNS + 1];

    if (ncols > JSON_MAX_COLUMNS)
        abort(); /* a programming error, in a static table */
    keys.len = 0;
    for (int i = 0; i < ncols; i++) {
        at[i] = keys.len;
        json_text_string(&keys, cols[i].key, strlen(cols[i].key));
        sb_add(&keys, ":", 1);
    }
    at[ncols] = keys.len;

    for (int row = first; row < last; row++) {
        sb_add(out, row > first ? ",{" : "{", row > first ? 2 : 1);
        for (int i = 0; i < ncols; i++) {
            const struct json_column *c = &cols[i];
            const char *v = PQgetvalue(res, row, c->col);
            size_t len = (size_t)PQgetlength(res, row, c->col);

            if (i > 0)
                sb_add(out, ",", 1);
            sb_add(out, keys.data + at[i], at[i + 1] - at[i]);
            if (PQgetisnull(res, row, c->col))
                sb_add(out, "null", 4);
            else if (c->kind == JSON_KIND_STRING)
                json_text_string(out, v, len);
            else if (c->kind == JSON_KIND_BOOL)
                sb_add(out, v[0] == 't' ? "true" : "false", v[0] == 't' ? 4 : 5);
            else
                sb_add(out, v, len);
        }
        sb_add(out, "}", 1);
    }
}

void json_text_values(struct strbuf *out, const PGresult *res, int first, int last, int col)
{
    for (int row = first; row < last; row++) {
        if (row > first)
            sb_add(out, ",", 1);
        if (PQgetisnull(res, row, col))
            sb_add(out, "null", 4);
        else
            sb_add(out, PQgetvalue(res, row, col), (size_t)PQgetlength(res, row, col));
    }
}
