/* mime.c - Internet messages (see mime.h). Every body is base64, so no line
 * of the message exceeds 78 characters and the boundaries ("=_" cannot occur
 * in base64) never collide with content. */
#include "mime.h"

#include <stdint.h>
#include <string.h>

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void mime_base64(struct strbuf *out, const void *data, size_t len)
{
    const unsigned char *p = data;
    char quad[4];

    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;

        if (i + 1 < len)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < len)
            v |= p[i + 2];
        quad[0] = b64[v >> 18 & 63];
        quad[1] = b64[v >> 12 & 63];
        quad[2] = i + 1 < len ? b64[v >> 6 & 63] : '=';
        quad[3] = i + 2 < len ? b64[v & 63] : '=';
        sb_add(out, quad, 4);
    }
}

int mime_unbase64(struct strbuf *out, const char *in, size_t len)
{
    if (len % 4 != 0)
        return -1;
    for (size_t i = 0; i < len; i += 4) {
        int pad = i + 4 < len ? 0 : in[i + 3] != '=' ? 0 : in[i + 2] != '=' ? 1 : 2;
        unsigned char bytes[3];
        uint32_t v = 0;

        for (int j = 0; j < 4 - pad; j++) {
            const char *c = in[i + j] ? strchr(b64, in[i + j]) : NULL;

            if (c == NULL)
                return -1;
            v |= (uint32_t)(c - b64) << (18 - 6 * j);
        }
        bytes[0] = (unsigned char)(v >> 16);
        bytes[1] = (unsigned char)(v >> 8);
        bytes[2] = (unsigned char)v;
        sb_add(out, bytes, (size_t)(3 - pad));
    }
    return 0;
}

/* base64 in lines of 76 characters, each ending in CRLF. */
static void base64_lines(struct strbuf *out, const void *data, size_t len)
{
    const unsigned char *p = data;

    for (size_t i = 0; i < len; i += 57) {
        mime_base64(out, p + i, len - i < 57 ? len - i : 57);
        sb_adds(out, "\r\n");
    }
}

static bool is_atext(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

static bool is_label_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-';
}

bool mime_address_ok(const char *addr)
{
    const char *at = strchr(addr, '@');
    size_t local, label = 0, labels = 1;
    const char *d;

    if (at == NULL || strlen(addr) > 254 || (local = (size_t)(at - addr)) == 0 || local > 64)
        return false;
    for (size_t i = 0; i < local; i++) {
        if (addr[i] == '.' ? i == 0 || i + 1 == local || addr[i + 1] == '.' : !is_atext(addr[i]))
            return false;
    }
    for (d = at + 1; *d; d++) {
        if (*d == '.') {
            if (label == 0 || d[-1] == '-')
                return false;
            label = 0;
            labels++;
        } else if (!is_label_char(*d) || (label == 0 && *d == '-') || ++label > 63) {
            return false;
        }
    }
    return label > 0 && d[-1] != '-' && labels >= 2;
}

bool mime_id_ok(const char *id)
{
    size_t n = strlen(id);

    if (n == 0 || n > MIME_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_label_char(id[i]) && id[i] != '.' && id[i] != '_')
            return false;
    return true;
}

/* The length of the UTF-8 sequence that starts with byte 'c' (1 for a stray
 * continuation byte, so that splitting always advances). */
static size_t utf8_len(unsigned char c)
{
    return c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
}

/* "Subject: ..." as is when it is plain printable ASCII of a sane length,
 * otherwise as RFC 2047 encoded words of at most 39 bytes (64 characters),
 * never splitting a character, one per folded line. */
static void subject_header(struct strbuf *out, const char *subject)
{
    struct strbuf clean = {0};
    bool plain = strlen(subject) <= 900;
    size_t i = 0;

    for (const char *s = subject; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (c < 0x20 || c == 0x7f)
            c = ' ';
        plain = plain && c < 0x80;
        sb_add(&clean, &c, 1);
    }
    sb_adds(out, "Subject:");
    if (plain || clean.len == 0) {
        sb_printf(out, " %s\r\n", clean.len ? clean.data : "");
        sb_free(&clean);
        return;
    }
    while (i < clean.len) {
        size_t n = 0;

        while (i + n < clean.len) {
            size_t c = utf8_len((unsigned char)clean.data[i + n]);

            if (n + c > 39)
                break;
            n += c;
        }
        if (n == 0) /* a malformed lead byte claims more than is left */
            n = clean.len - i < 39 ? clean.len - i : 39;
        sb_adds(out, i ? "\r\n =?UTF-8?B?" : " =?UTF-8?B?");
        mime_base64(out, clean.data + i, n);
        sb_adds(out, "?=");
        i += n;
    }
    sb_adds(out, "\r\n");
    sb_free(&clean);
}

/* filename="x" when it is printable ASCII without quotes or backslashes,
 * otherwise RFC 2231's filename*=UTF-8''percent-encoded. */
static void filename_param(struct strbuf *out, const char *name)
{
    bool plain = true;

    for (const char *s = name; *s; s++)
        plain = plain && *s >= 0x20 && *s < 0x7f && *s != '"' && *s != '\\';
    if (plain) {
        sb_printf(out, "; filename=\"%s\"", name);
        return;
    }
    sb_adds(out, "; filename*=UTF-8''");
    for (const unsigned char *s = (const unsigned char *)name; *s; s++) {
        if (is_label_char((char)*s) || *s == '.' || *s == '_')
            sb_add(out, s, 1);
        else
            sb_printf(out, "%%%02X", *s);
    }
}

/* "=_" never occurs in base64, nor at the start of our header lines. */
#define BOUNDARY "=_%s_%.48s"

static void leaf(struct strbuf *out, const char *type, const void *data, size_t len)
{
    sb_printf(out, "Content-Type: %s\r\nContent-Transfer-Encoding: base64\r\n\r\n", type);
    base64_lines(out, data, len);
}

static void body(struct strbuf *out, const struct mime_message *m)
{
    if (m->text && m->html) {
        sb_printf(out, "Content-Type: multipart/alternative;\r\n boundary=\"" BOUNDARY "\"\r\n\r\n",
                  "alt", m->id);
        sb_printf(out, "--" BOUNDARY "\r\n", "alt", m->id);
        leaf(out, "text/plain; charset=utf-8", m->text, strlen(m->text));
        sb_printf(out, "--" BOUNDARY "\r\n", "alt", m->id);
        leaf(out, "text/html; charset=utf-8", m->html, strlen(m->html));
        sb_printf(out, "--" BOUNDARY "--\r\n", "alt", m->id);
    } else if (m->html) {
        leaf(out, "text/html; charset=utf-8", m->html, strlen(m->html));
    } else {
        leaf(out, "text/plain; charset=utf-8", m->text ? m->text : "", m->text ? strlen(m->text) : 0);
    }
}

void mime_build(struct strbuf *out, const struct mime_message *m)
{
    char date[64];
    struct tm tm;

    sb_printf(out, "From: %s\r\nTo: ", m->from);
    for (int i = 0; i < m->nto; i++)
        sb_printf(out, "%s%s", i ? ",\r\n " : "", m->to[i]);
    sb_adds(out, "\r\n");
    subject_header(out, m->subject);
    gmtime_r(&m->date, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
    sb_printf(out, "Date: %s\r\nMessage-ID: <%s@%s>\r\nMIME-Version: 1.0\r\n", date, m->id,
              strchr(m->from, '@') + 1);
    if (m->nattachments == 0) {
        body(out, m);
        return;
    }
    sb_printf(out, "Content-Type: multipart/mixed;\r\n boundary=\"" BOUNDARY "\"\r\n\r\n", "mix",
              m->id);
    sb_printf(out, "--" BOUNDARY "\r\n", "mix", m->id);
    body(out, m);
    for (int i = 0; i < m->nattachments; i++) {
        const struct mime_attachment *a = &m->attachments[i];

        sb_printf(out, "--" BOUNDARY "\r\nContent-Type: %s\r\nContent-Disposition: attachment",
                  "mix", m->id, a->content_type);
        filename_param(out, a->filename);
        sb_adds(out, "\r\nContent-Transfer-Encoding: base64\r\n\r\n");
        base64_lines(out, a->data, a->len);
    }
    sb_printf(out, "--" BOUNDARY "--\r\n", "mix", m->id);
}
