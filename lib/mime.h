/* mime.h - Internet messages (RFC 5322, MIME): a text and/or HTML body,
 * attachments, UTF-8 throughout, and the address check every sender and
 * recipient passes. */
#ifndef CORE_MIME_H
#define CORE_MIME_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "strbuf.h"

#define MIME_ID_MAX 64 /* characters of a message id: [A-Za-z0-9._-] */

struct mime_attachment {
    const char *filename;     /* UTF-8; non-ASCII is RFC 2231-encoded */
    const char *content_type; /* e.g. "application/octet-stream" */
    const void *data;
    size_t len;
};

struct mime_message {
    const char *from;      /* plain addresses that passed mime_address_ok() */
    const char *const *to;
    int nto;
    const char *subject;   /* UTF-8; control characters become spaces */
    const char *text;      /* UTF-8 bodies; either may be NULL, not both */
    const char *html;
    const struct mime_attachment *attachments;
    int nattachments;
    const char *id;        /* passed mime_id_ok(): the Message-ID is <id@from's domain> */
    time_t date;
};

/* Appends the whole message to 'out', CRLF line ends, 7-bit clean: headers
 * (From, To, Subject, Date, Message-ID, MIME-Version), then the body: one
 * part, multipart/alternative for text + HTML, inside multipart/mixed when
 * there are attachments. Bodies and attachments are base64. */
void mime_build(struct strbuf *out, const struct mime_message *m);

/* A plain address "local@domain.tld": dot-atom local part (at most 64
 * characters), a domain of at least two DNS labels, 254 characters in all.
 * No display names, no quoted local parts, no IP literals. */
bool mime_address_ok(const char *addr);

/* 1 to MIME_ID_MAX characters of [A-Za-z0-9._-] (safe in a Message-ID, a
 * MIME boundary and a file name). */
bool mime_id_ok(const char *id);

/* Appends 'len' bytes as base64, without line breaks. */
void mime_base64(struct strbuf *out, const void *data, size_t len);

/* Appends the bytes of base64 text 'in' (padding required, no whitespace);
 * 0, or -1 when it is not base64. */
int mime_unbase64(struct strbuf *out, const char *in, size_t len);

#endif
