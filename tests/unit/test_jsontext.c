/* test_jsontext.c - PostgreSQL's json text, compacted, is what jansson
 * writes for the same value: an event the outbox relays looks like any other
 * JSON the system sends, byte for byte. */
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
};

int main(void)
{
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
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
