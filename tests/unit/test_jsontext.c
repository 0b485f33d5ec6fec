/* test_jsontext.c - PostgreSQL's json text, compacted, and result rows
 * written as objects are what jansson writes for the same values: an event
 * the outbox relays, or a list, looks like any other JSON the system sends,
 * byte for byte. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "jsontext.h"
#include "test.h"

/* As PostgreSQL 15 writes them: json_build_object, json_agg and escapes. */
static const char *const samples[] = {
    "{\"books\" : [{\"Books.BookID\" : 1, \"Books.Title\" : \"Charlotte's Web\"}, \n"
    " {\"Books.BookID\" : 2, \"Books.Title\" : \"A  B , : { } [ ]\"}]}",
    "{\"name\" : \"say \\\"hi\\\" \", \"path\" : \"C:\\\\ \\\\\", \"n\" : -15}",
    "{\"text\" : \"tab\\t nl\\n cr\\r \\u0001 \\\\\\\" end\", \"none\" : null, \"ok\" : true}",
    "{\"utf8\" : \"z\xc3\xa9 \xe2\x82\xac\", \"empty\" : \"\", \"list\" : [], \"obj\" : {}}",
    "[1, \n [2, 3], \n {\"k\" : [false]}]",
    "\" a string alone \"",
    "{\"a\" : \"\\\\\\\\\" , \"b\" : \"\\\"\" , \"c\" : \"\\\\\\\"\\\\\" }",
};
#define NSAMPLES ((int)(sizeof(samples) / sizeof(samples[0])))

/* Rows as libpq would hand them over: text values, NULL as NULL. */
static PGresult *result(int ncols, int nrows, const char *const *cells)
{
    PGresAttDesc attrs[8] = {{0}};
    PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);

    for (int c = 0; c < ncols; c++)
        attrs[c].name = (char *)"c";
    PQsetResultAttrs(res, ncols, attrs);
    for (int r = 0; r < nrows; r++)
        for (int c = 0; c < ncols; c++) {
            char *v = cells[r * ncols + c] ? strdup(cells[r * ncols + c]) : NULL;

            PQsetvalue(res, r, c, v, v ? (int)strlen(v) : -1); /* copies it */
            free(v);
        }
    return res;
}

static void check_rows(void)
{
    /* Columns in another order than the keys, as the items' are. */
    static const struct json_column cols[] = {
        {"n", 2, JSON_KIND_NUMBER},
        {"t\"ext\n", 0, JSON_KIND_STRING},
        {"ok", 1, JSON_KIND_BOOL},
    };
    static const char *const cells[] = {
        "plain", "t", "1",
        "quote \" back\\ tab\t nl\n \x01 z\xc3\xa9 \xe2\x82\xac </script>", "f", "-42",
        NULL, NULL, NULL,
        "", "t", "9223372036854775807",
    };
    PGresult *res = result(3, 4, cells);
    json_t *want = json_array();
    struct strbuf got = {0};
    char *text;

    for (int r = 0; r < 4; r++) {
        json_t *o = json_object();
        const char *const *row = &cells[r * 3];

        json_object_set_new(o, "n", row[2] ? json_integer(strtoll(row[2], NULL, 10)) : json_null());
        json_object_set_new(o, "t\"ext\n", row[0] ? json_string(row[0]) : json_null());
        json_object_set_new(o, "ok", row[1] ? json_boolean(row[1][0] == 't') : json_null());
        json_array_append_new(want, o);
    }
    text = json_dumps(want, JSON_COMPACT);
    sb_add(&got, "[", 1);
    json_text_rows(&got, res, 0, 4, cols, 3);
    sb_add(&got, "]", 1);
    CHECK(text && strcmp(got.data, text) == 0);
    if (text && strcmp(got.data, text) != 0)
        fprintf(stderr, "  got  %s\n  want %s\n", got.data, text);

    /* One row alone, and no rows at all. */
    got.len = 0;
    json_text_rows(&got, res, 1, 2, cols, 3);
    CHECK(strncmp(got.data, "{\"n\":-42,", 9) == 0 && got.data[got.len - 1] == '}');
    got.len = 0;
    json_text_rows(&got, res, 0, 0, cols, 3);
    CHECK(got.len == 0);

    free(text);
    sb_free(&got);
    json_decref(want);
    PQclear(res);
}

/* Values a statement built compact, one per row: the samples, then a NULL,
 * copied as they are. */
static void check_values(void)
{
    const int n = NSAMPLES;
    char *cells[NSAMPLES + 1];
    PGresult *res;
    json_t *want = json_array();
    struct strbuf got = {0};
    char *text;

    for (int i = 0; i < n; i++) {
        json_t *v = json_loads(samples[i], JSON_DECODE_ANY, NULL);

        cells[i] = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        json_array_append_new(want, v);
    }
    cells[n] = NULL;
    json_array_append_new(want, json_null());
    res = result(1, n + 1, (const char *const *)cells);
    text = json_dumps(want, JSON_COMPACT);
    sb_add(&got, "[", 1);
    json_text_values(&got, res, 0, n + 1, 0);
    sb_add(&got, "]", 1);
    CHECK(text && got.len == strlen(text) && memcmp(got.data, text, got.len) == 0);
    if (text && strcmp(got.data, text) != 0)
        fprintf(stderr, "  got  %.*s\n  want %s\n", (int)got.len, got.data, text);
    got.len = 0;
    json_text_values(&got, res, 0, 0, 0);
    CHECK(got.len == 0);

    for (int i = 0; i < n; i++)
        free(cells[i]);
    free(text);
    sb_free(&got);
    json_decref(want);
    PQclear(res);
}

int main(void)
{
    check_rows();
    check_values();

    for (int i = 0; i < NSAMPLES; i++) {
        char *text = strdup(samples[i]);
        size_t len = json_text_compact(text, strlen(text));
        json_t *v = json_loads(samples[i], JSON_DECODE_ANY, NULL);
        char *want = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        bool same = want && len == strlen(want) && memcmp(text, want, len) == 0;

        CHECK(same);
        if (!same)
            fprintf(stderr, "  got  %.*s\n  want %s\n", (int)len, text, want ? want : "(none)");
        free(want);
        json_decref(v);
        free(text);
    }

    /* Reals stay as PostgreSQL wrote them (jansson would print -1500.0). */
    char real[] = "{\"x\" : -1.5e3}";
    CHECK(json_text_compact(real, strlen(real)) == 12 && memcmp(real, "{\"x\":-1.5e3}", 12) == 0);
    return test_done();
}
