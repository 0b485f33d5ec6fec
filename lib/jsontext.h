/* jsontext.h - JSON text that PostgreSQL built (json_build_object, json_agg),
 * passed on without parsing it again: the outbox's events. */
#ifndef CORE_JSONTEXT_H
#define CORE_JSONTEXT_H

#include <stddef.h>
#include <libpq-fe.h>

#include "strbuf.h"

/* Drops the whitespace between tokens, in place, and returns the new length.
 * PostgreSQL writes json as `{"a" : 1, "b" : [1, 2]}`; what is left is what
 * jansson writes with JSON_COMPACT: keys keep their order, strings their
 * bytes (reals aside: they stay as PostgreSQL wrote them). 'json' must be
 * valid JSON, as PostgreSQL's json type is. */
size_t json_text_compact(char *json, size_t len);

/* How json_text_rows() writes a column's value. SQL NULL is null whatever
 * the kind. */
enum json_kind {
    JSON_KIND_STRING, /* encoded by jansson, as json_string() would be */
    JSON_KIND_NUMBER, /* as PostgreSQL wrote it: for integer columns */
    JSON_KIND_BOOL,   /* 't' or 'f' */
};

struct json_column {
    const char *key;
    int col; /* the result column */
    enum json_kind kind;
};

#define JSON_MAX_COLUMNS 32

/* The number of columns of a table of them, for json_text_rows(). */
#define JSON_NCOLUMNS(cols) ((int)(sizeof(cols) / sizeof((cols)[0])))

/* Appends rows 'first' to 'last' - 1 of 'res', separated by commas, each as
 * an object with the keys of 'cols' (at most JSON_MAX_COLUMNS) in their
 * order: byte for byte what jansson writes with JSON_COMPACT for the same
 * objects, at a fraction of the cost (a list of twenty rows built as
 * jansson values spends most of its time allocating them). */
void json_text_rows(struct strbuf *out, const PGresult *res, int first, int last,
                    const struct json_column *cols, int ncols);

/* Appends column 'col' of rows 'first' to 'last' - 1 of 'res', separated by
 * commas: JSON text a statement built (a json column), copied as it is, so
 * build it compact (json_strip_nulls() writes json without the blanks
 * json_build_object() puts between tokens); SQL NULL is null. */
void json_text_values(struct strbuf *out, const PGresult *res, int first, int last, int col);

/* Appends 's' as a JSON string, encoded by jansson. */
void json_text_string(struct strbuf *out, const char *s, size_t len);

#endif
