/* smtp.c - SMTP delivery with libcurl's multi interface on the libuv loop
 * (see smtp.h): the usual pairing of curl_multi_socket_action with one
 * uv_poll per socket curl names and one uv_timer for curl's timeout. */
#include "smtp.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <curl/curl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "log.h"

/* One delivery in flight. */
struct job {
    struct smtp *s;
    CURL *easy;
    struct curl_slist *rcpt;
    char *mail_from;
    const char *data;
    size_t len, off;
    smtp_cb cb;
    void *arg;
    char reply[256];               /* the server's last refusal */
    char error[CURL_ERROR_SIZE];
    struct job *prev, *next;
};

/* A socket of curl's: watched while curl asks, and kept, idle, between the
 * transfers of a kept connection until curl closes it (on_close_socket),
 * for a new poll handle costs five system calls. */
struct sock {
    uv_poll_t poll;
    curl_socket_t fd;
    int events;         /* what poll watches for: libuv re-arms even an unchanged set */
    struct smtp *s;
    struct sock *prev, *next;
};

struct smtp {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    struct smtp_config cfg;
    struct job *jobs;              /* in flight */
    struct job *idle;              /* done, kept for reuse (linked by next) */
    long nidle;
    struct sock *socks;
    int handles_open;
    bool closing;
    void (*done)(void *arg);
    void *done_arg;
};

#define LINK(head, x)           \
    do {                        \
        (x)->prev = NULL;       \
        (x)->next = (head);     \
        if (head)               \
            (head)->prev = (x); \
        (head) = (x);           \
    } while (0)
#define UNLINK(head, x)                  \
    do {                                 \
        if ((x)->prev)                   \
            (x)->prev->next = (x)->next; \
        else                             \
            (head) = (x)->next;          \
        if ((x)->next)                   \
            (x)->next->prev = (x)->prev; \
    } while (0)

static void on_handle_closed(uv_handle_t *h)
{
    struct smtp *s = h->data;

    if (h->type == UV_POLL)
        free(h); /* the first member of its struct sock */
    if (--s->handles_open == 0 && s->closing) {
        s->done(s->done_arg);
        free(s);
    }
}

static void sock_close(struct smtp *s, struct sock *k)
{
    UNLINK(s->socks, k);
    uv_poll_stop(&k->poll);
    uv_close((uv_handle_t *)&k->poll, on_handle_closed);
}

static void check_done(struct smtp *s);

static void on_poll(uv_poll_t *p, int status, int events)
{
    struct sock *k = (struct sock *)p; /* poll is its first member */
    struct smtp *s = k->s;
    int flags = 0, running;

    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    curl_multi_socket_action(s->multi, k->fd, flags, &running);
    check_done(s);
}

static struct sock *sock_find(struct smtp *s, curl_socket_t fd)
{
    struct sock *k = s->socks;

    while (k && k->fd != fd)
        k = k->next;
    return k;
}

/* curl is done with a connection: its poll handle goes first. */
static int on_close_socket(void *arg, curl_socket_t fd)
{
    struct smtp *s = arg;
    struct sock *k = sock_find(s, fd);

    if (k)
        sock_close(s, k);
    return close(fd);
}

static int on_socket(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct smtp *s = userp;
    struct sock *k = socketp;
    int events = 0;

    if (what == CURL_POLL_REMOVE) {
        if (k) {
            curl_multi_assign(s->multi, fd, NULL);
            uv_poll_stop(&k->poll);
            k->events = 0;
        }
        return 0;
    }
    if (k == NULL && (k = sock_find(s, fd)) != NULL) {
        curl_multi_assign(s->multi, fd, k);
    } else if (k == NULL) {
        if ((k = calloc(1, sizeof(*k))) == NULL)
            abort();
        if (uv_poll_init_socket(s->loop, &k->poll, fd) != 0) {
            free(k);
            return -1;
        }
        k->fd = fd;
        k->s = s;
        k->poll.data = s;
        s->handles_open++;
        LINK(s->socks, k);
        curl_multi_assign(s->multi, fd, k);
    }
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    if (events != k->events) {
        uv_poll_start(&k->poll, events, on_poll);
        k->events = events;
    }
    return 0;
}

static void do_close(struct smtp *s);

static void on_timeout(uv_timer_t *t)
{
    struct smtp *s = t->data;
    int running;

    if (s->closing) {
        do_close(s);
        return;
    }
    curl_multi_socket_action(s->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(s);
}

static int on_timer_set(CURLM *m, long ms, void *userp)
{
    struct smtp *s = userp;

    if (s->closing)
        return 0;
    if (ms < 0)
        uv_timer_stop(&s->timer);
    else
        uv_timer_start(&s->timer, on_timeout, (uint64_t)ms, 0);
    return 0;
}

static size_t on_read(char *buf, size_t size, size_t n, void *arg)
{
    struct job *j = arg;
    size_t room = size * n, left = j->len - j->off;

    if (room > left)
        room = left;
    memcpy(buf, j->data + j->off, room);
    j->off += room;
    return room;
}

/* Keeps the server's last 4xx or 5xx reply line, for the error we record
 * (the QUIT that follows a refusal is answered 221). */
static int on_debug(CURL *e, curl_infotype type, char *data, size_t size, void *arg)
{
    struct job *j = arg;

    if (type != CURLINFO_HEADER_IN || size == 0 || (data[0] != '4' && data[0] != '5'))
        return 0;
    while (size > 0 && (data[size - 1] == '\n' || data[size - 1] == '\r'))
        size--;
    if (size >= sizeof(j->reply))
        size = sizeof(j->reply) - 1;
    memcpy(j->reply, data, size);
    j->reply[size] = '\0';
    return 0;
}

/* A delivery is done: its easy handle, options and buffers kept, goes to
 * the idle list for the next one, up to one per connection. */
static void job_free(struct smtp *s, struct job *j)
{
    UNLINK(s->jobs, j);
    curl_multi_remove_handle(s->multi, j->easy);
    curl_slist_free_all(j->rcpt);
    free(j->mail_from);
    j->rcpt = NULL;
    j->mail_from = NULL;
    if (s->closing || s->nidle >= s->cfg.max_connections) {
        curl_easy_cleanup(j->easy);
        free(j);
        return;
    }
    j->next = s->idle;
    s->idle = j;
    s->nidle++;
}

/* A job with an easy handle set for every delivery to the relay. */
static struct job *job_new(struct smtp *s)
{
    struct job *j = calloc(1, sizeof(*j));
    CURL *e = curl_easy_init();

    if (j == NULL || e == NULL)
        abort();
    j->s = s;
    j->easy = e;
    curl_easy_setopt(e, CURLOPT_URL, s->cfg.url);
    curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
    /* The smallest: the SMTP dot-stuffing buffer is twice this, and both
     * are allocated for each message. */
    curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, 16384L);
    curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(e, CURLOPT_READDATA, j);
    curl_easy_setopt(e, CURLOPT_USE_SSL, (long)CURLUSESSL_TRY); /* STARTTLS when offered */
    if (s->cfg.user && *s->cfg.user) {
        curl_easy_setopt(e, CURLOPT_USERNAME, s->cfg.user);
        curl_easy_setopt(e, CURLOPT_PASSWORD, s->cfg.password ? s->cfg.password : "");
    }
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, s->cfg.timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, s->cfg.timeout_ms < 10000 ? s->cfg.timeout_ms
                                                                             : 10000L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, j->error);
    curl_easy_setopt(e, CURLOPT_VERBOSE, 1L); /* feeds on_debug, prints nothing */
    curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION, on_debug);
    curl_easy_setopt(e, CURLOPT_DEBUGDATA, j);
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)j);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, s);
    return j;
}

static void finish(struct smtp *s, struct job *j, CURLcode res)
{
    enum smtp_outcome outcome = SMTP_SENT;
    char detail[sizeof(j->reply) + CURL_ERROR_SIZE + 8];
    smtp_cb cb = j->cb;
    void *arg = j->arg;
    long code = 0;

    curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &code);
    snprintf(detail, sizeof(detail), "%s", j->reply);
    if (res != CURLE_OK) {
        /* A refused login is our configuration, not the message: retry. */
        outcome = code >= 500 && code < 600 && res != CURLE_LOGIN_DENIED ? SMTP_PERMANENT
                                                                         : SMTP_TEMPORARY;
        if (code < 400)
            snprintf(detail, sizeof(detail), "%s", j->error[0] ? j->error : curl_easy_strerror(res));
    }
    job_free(s, j);
    cb(arg, outcome, detail);
}

static void check_done(struct smtp *s)
{
    CURLMsg *m;
    int left;

    while (!s->closing && (m = curl_multi_info_read(s->multi, &left)) != NULL) {
        char *p = NULL;

        if (m->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &p);
        finish(s, (struct job *)p, m->data.result);
    }
}

void smtp_send(struct smtp *s, const char *from, const char *const *to, int nto,
               const char *data, size_t len, smtp_cb cb, void *arg)
{
    struct job *j = s->idle;
    size_t flen = strlen(from) + 3;

    if (j) {
        s->idle = j->next;
        s->nidle--;
    } else {
        j = job_new(s);
    }
    if ((j->mail_from = malloc(flen)) == NULL)
        abort();
    snprintf(j->mail_from, flen, "<%s>", from);
    for (int i = 0; i < nto; i++) {
        struct curl_slist *l = curl_slist_append(j->rcpt, to[i]);

        if (l == NULL)
            abort();
        j->rcpt = l;
    }
    j->data = data;
    j->len = len;
    j->off = 0;
    j->cb = cb;
    j->arg = arg;
    j->reply[0] = j->error[0] = '\0';
    curl_easy_setopt(j->easy, CURLOPT_MAIL_FROM, j->mail_from);
    curl_easy_setopt(j->easy, CURLOPT_MAIL_RCPT, j->rcpt);
    curl_easy_setopt(j->easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
    LINK(s->jobs, j);
    if (curl_multi_add_handle(s->multi, j->easy) != CURLM_OK)
        abort(); /* only out of memory, or a handle added twice: a bug */
}

struct smtp *smtp_new(uv_loop_t *loop, const struct smtp_config *cfg)
{
    struct smtp *s;

    if (strncmp(cfg->url, "smtp://", 7) != 0 && strncmp(cfg->url, "smtps://", 8) != 0) {
        log_error(NULL, "SMTP_URL must start with smtp:// or smtps://");
        return NULL;
    }
    /* libcurl, and OpenSSL's configuration and providers with it (1.7 MiB
     * resident), only when SMTP is used: the file transport needs neither. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        log_error(NULL, "libcurl failed to initialise");
        return NULL;
    }
#ifdef __GLIBC__
    /* curl takes its SMTP buffers (job_new) for each transfer and frees
     * them at the end; at the top of the heap, glibc gave them back to the
     * kernel each time and faulted them in again for the next message. */
    mallopt(M_TRIM_THRESHOLD, 1 << 20);
#endif
    if ((s = calloc(1, sizeof(*s))) == NULL || (s->multi = curl_multi_init()) == NULL)
        abort();
    s->loop = loop;
    s->cfg = *cfg;
    uv_timer_init(loop, &s->timer);
    s->timer.data = s;
    s->handles_open = 1;
    curl_multi_setopt(s->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(s->multi, CURLMOPT_SOCKETDATA, s);
    curl_multi_setopt(s->multi, CURLMOPT_TIMERFUNCTION, on_timer_set);
    curl_multi_setopt(s->multi, CURLMOPT_TIMERDATA, s);
    curl_multi_setopt(s->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, cfg->max_connections);
    curl_multi_setopt(s->multi, CURLMOPT_MAXCONNECTS, cfg->max_connections);
    return s;
}

static void do_close(struct smtp *s)
{
    while (s->jobs)
        job_free(s, s->jobs);
    while (s->idle) {
        struct job *j = s->idle;

        s->idle = j->next;
        curl_easy_cleanup(j->easy);
        free(j);
    }
    /* Closes the kept connections (QUIT); their sockets leave via
     * on_close_socket. */
    curl_multi_cleanup(s->multi);
    s->multi = NULL;
    curl_global_cleanup();
    while (s->socks)
        sock_close(s, s->socks);
    uv_close((uv_handle_t *)&s->timer, on_handle_closed);
}

void smtp_close(struct smtp *s, void (*done)(void *arg), void *arg)
{
    s->closing = true;
    s->done = done;
    s->done_arg = arg;
    uv_timer_start(&s->timer, on_timeout, 0, 0); /* never inside a curl callback */
}
