/* test_urlenc.c - percent-decoding and query lookup. */
#include <string.h>

#include "check.h"
#include "test.h"
#include "urlenc.h"

int main(void)
{
    char out[64];

    CHECK(url_decode("a%20b", 5, out, 0) == 3 && strcmp(out, "a b") == 0);
    CHECK(url_decode("a+b", 3, out, 1) == 3 && strcmp(out, "a b") == 0);
    CHECK(url_decode("a+b", 3, out, 0) == 3 && strcmp(out, "a+b") == 0);
    CHECK(url_decode("%e2%82%AC", 9, out, 0) == 3 && strcmp(out, "\xe2\x82\xac") == 0);
    CHECK(url_decode("%", 1, out, 0) == -1);
    CHECK(url_decode("%4", 2, out, 0) == -1);
    CHECK(url_decode("%zz", 3, out, 0) == -1);
    CHECK(url_decode("%00", 3, out, 0) == -1);

    CHECK(url_query_get("archived=true", "archived", out, sizeof(out)) == 4);
    CHECK(strcmp(out, "true") == 0);
    CHECK(url_query_get("a=1&archived=false&archived=true", "archived", out, sizeof(out)) == 5);
    CHECK(strcmp(out, "false") == 0);
    CHECK(url_query_get("archivedx=1", "archived", out, sizeof(out)) == -1);
    CHECK(url_query_get("", "archived", out, sizeof(out)) == -1);
    CHECK(url_query_get("archived", "archived", out, sizeof(out)) == 0);
    CHECK(url_query_get("q=%41%42", "q", out, sizeof(out)) == 2 && strcmp(out, "AB") == 0);
    CHECK(url_query_get("q=%4", "q", out, sizeof(out)) == -2);
    CHECK(url_query_get("q=0123456789", "q", out, 5) == -2);

    /* check.h helpers ride along: they are as small. */
    long v;
    CHECK(check_int32("42", &v) == 0 && v == 42);
    CHECK(check_int32("-3", &v) == 0 && v == -3);
    CHECK(check_int32("2147483648", &v) == -1);
    CHECK(check_int32("4x", &v) == -1);
    CHECK(check_int32("", &v) == -1);
    CHECK(check_int32(" 4", &v) == -1);
    CHECK(check_int32(NULL, &v) == -1);
    CHECK(utf8_chars("h\xc3\xa9llo") == 5);
    CHECK(check_bool("TRUE") == 1 && check_bool("0") == 0 && check_bool("maybe") == -1);
    return test_done();
}
