/* strbuf.h - a growable byte buffer for building text (MIME, CSV, HTML).
 * Always NUL-terminated; running out of memory aborts, as elsewhere in the
 * runtime. */
#ifndef CORE_STRBUF_H
#define CORE_STRBUF_H

#include <stddef.h>

struct strbuf {
    char *data; /* NULL until the first append */
    size_t len, cap;
};

void sb_add(struct strbuf *b, const void *data, size_t len);
void sb_adds(struct strbuf *b, const char *s);
void sb_printf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_free(struct strbuf *b);

#endif
