/* urlenc.h - percent-decoding and query-string lookup. */
#ifndef CORE_URLENC_H
#define CORE_URLENC_H

#include <stddef.h>

/* Decodes 'len' bytes of 's' into 'out' (at least len + 1 bytes), '+' as a
 * space when 'plus' is set. Returns the decoded length, or -1 on a bad
 * escape or a decoded NUL byte. */
int url_decode(const char *s, size_t len, char *out, int plus);

/* Finds parameter 'name' in query string 'q' ("a=1&b=2", no '?') and
 * decodes its first value into 'out' (size 'size'). Returns the value's
 * length, -1 when absent, -2 when undecodable or too long. A key without
 * '=' has the empty value. */
int url_query_get(const char *q, const char *name, char *out, size_t size);

#endif
