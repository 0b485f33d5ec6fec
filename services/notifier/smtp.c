/* smtp.c - SMTP delivery with libcurl on worker threads (see smtp.h).
 *
 * libcurl's SMTP waits for the relay's answer to the end of a message
 * inside curl, blocking (smtp_done runs its state machine to the reply),
 * even on the multi interface. Driven by the loop, every email stalled the
 * whole notifier for a round trip to the relay and for however long the
 * relay took to accept the message. So each connection has a thread of its
 * own, started when there is work for it, with an easy handle that keeps
 * its connection between messages. The loop hands jobs over through a FIFO
 * under one mutex and hears outcomes through a uv_async. */
#include "smtp.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "log.h"

#define WORKER_STACK (512 * 1024) /* curl and OpenSSL's handshake need far less */

/* One delivery, from smtp_send to its callback. */
struct job {
    struct job *next;
    char *mail_from;
    struct curl_slist *rcpt;
    const char *data;
    size_t len, off;
    smtp_cb cb;
    void *arg;
    enum smtp_outcome outcome;
    char reply[256];                       /* the server's last refusal */
    char detail[256 + CURL_ERROR_SIZE];    /* for the callback */
};

struct worker {
    struct smtp *s;
    uv_thread_t tid;
    CURL *easy;                            /* keeps the connection */
    char error[CURL_ERROR_SIZE];
};

struct smtp {
    uv_loop_t *loop;
    struct smtp_config cfg;
    uv_async_t async;          /* outcomes are in, or a worker ended */
    uv_mutex_t lock;           /* everything below but 'closing' */
    uv_cond_t wake;            /* a job, or closing */
    struct job *todo, *todo_tail;
    struct job *done;          /* outcomes for the loop, any order */
    int idle, woken;           /* workers waiting on 'wake'; signalled, not yet up */
    int started, running;      /* workers created, and not yet ended */
    atomic_bool closing;
    void (*close_done)(void *arg);
    void *close_arg;
    struct worker workers[];   /* cfg.max_connections */
};

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

/* Ends a transfer under way when the notifier closes. */
static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    struct smtp *s = arg;

    return atomic_load(&s->closing);
}

/* An easy handle set for every delivery to the relay. */
static CURL *easy_new(struct worker *w)
{
    struct smtp *s = w->s;
    CURL *e = curl_easy_init();

    if (e == NULL)
        abort();
    curl_easy_setopt(e, CURLOPT_URL, s->cfg.url);
    curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
    /* The smallest: the SMTP dot-stuffing buffer is twice this, and both
     * are allocated for each message. */
    curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, 16384L);
    curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(e, CURLOPT_USE_SSL, (long)CURLUSESSL_TRY); /* STARTTLS when offered */
    if (s->cfg.user && *s->cfg.user) {
        curl_easy_setopt(e, CURLOPT_USERNAME, s->cfg.user);
        curl_easy_setopt(e, CURLOPT_PASSWORD, s->cfg.password ? s->cfg.password : "");
    }
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, s->cfg.timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, s->cfg.timeout_ms < 10000 ? s->cfg.timeout_ms
                                                                             : 10000L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, w->error);
    curl_easy_setopt(e, CURLOPT_VERBOSE, 1L); /* feeds on_debug, prints nothing */
    curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION, on_debug);
    curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(e, CURLOPT_XFERINFODATA, s);
    return e;
}

/* On the worker: one message over the worker's connection, opened or
 * opened again when needed. */
static void deliver(struct worker *w, struct job *j)
{
    CURL *e = w->easy;
    CURLcode res;
    long code = 0;

    w->error[0] = '\0';
    curl_easy_setopt(e, CURLOPT_READDATA, j);
    curl_easy_setopt(e, CURLOPT_DEBUGDATA, j);
    curl_easy_setopt(e, CURLOPT_MAIL_FROM, j->mail_from);
    curl_easy_setopt(e, CURLOPT_MAIL_RCPT, j->rcpt);
    curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)j->len);
    res = curl_easy_perform(e);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
    j->outcome = SMTP_SENT;
    snprintf(j->detail, sizeof(j->detail), "%s", j->reply);
    if (res != CURLE_OK) {
        /* A refused login is our configuration, not the message: retry. */
        j->outcome = code >= 500 && code < 600 && res != CURLE_LOGIN_DENIED ? SMTP_PERMANENT
                                                                            : SMTP_TEMPORARY;
        if (code < 400)
            snprintf(j->detail, sizeof(j->detail), "%s",
                     w->error[0] ? w->error : curl_easy_strerror(res));
    }
}

static void worker_main(void *arg)
{
    struct worker *w = arg;
    struct smtp *s = w->s;

    w->easy = easy_new(w);
    uv_mutex_lock(&s->lock);
    for (;;) {
        struct job *j;

        while (s->todo == NULL && !atomic_load(&s->closing)) {
            s->idle++;
            uv_cond_wait(&s->wake, &s->lock);
            s->idle--;
            if (s->woken > 0)
                s->woken--;
        }
        if (atomic_load(&s->closing))
            break;
        j = s->todo;
        if ((s->todo = j->next) == NULL)
            s->todo_tail = NULL;
        uv_mutex_unlock(&s->lock);
        deliver(w, j);
        uv_mutex_lock(&s->lock);
        j->next = s->done;
        s->done = j;
        uv_async_send(&s->async);
    }
    uv_mutex_unlock(&s->lock);
    curl_easy_cleanup(w->easy); /* QUIT, on this thread's time */
    uv_mutex_lock(&s->lock);
    s->running--;
    uv_async_send(&s->async); /* under the lock: the loop joins before it frees */
    uv_mutex_unlock(&s->lock);
}

static void job_free(struct job *j)
{
    curl_slist_free_all(j->rcpt);
    free(j->mail_from);
    free(j);
}

static void on_async_closed(uv_handle_t *h)
{
    struct smtp *s = h->data;
    void (*done)(void *arg) = s->close_done;
    void *arg = s->close_arg;

    uv_cond_destroy(&s->wake);
    uv_mutex_destroy(&s->lock);
    curl_global_cleanup();
    free(s);
    done(arg);
}

/* On the loop: outcomes to their callbacks; once closing and every worker
 * has ended, the handle and 's' go. */
static void on_async(uv_async_t *a)
{
    struct smtp *s = a->data;
    struct job *j;
    int running;

    uv_mutex_lock(&s->lock);
    j = s->done;
    s->done = NULL;
    running = s->running;
    uv_mutex_unlock(&s->lock);
    while (j) {
        struct job *next = j->next;

        if (!atomic_load(&s->closing))
            j->cb(j->arg, j->outcome, j->detail);
        job_free(j);
        j = next;
    }
    if (atomic_load(&s->closing) && running == 0) {
        for (int i = 0; i < s->started; i++)
            uv_thread_join(&s->workers[i].tid); /* each has only its unlock left */
        while ((j = s->todo) != NULL) { /* abandoned, as smtp_close says */
            s->todo = j->next;
            job_free(j);
        }
        uv_close((uv_handle_t *)&s->async, on_async_closed);
    }
}

void smtp_send(struct smtp *s, const char *from, const char *const *to, int nto,
               const char *data, size_t len, smtp_cb cb, void *arg)
{
    struct job *j = calloc(1, sizeof(*j));
    size_t flen = strlen(from) + 3;

    if (j == NULL || (j->mail_from = malloc(flen)) == NULL)
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
    j->cb = cb;
    j->arg = arg;

    uv_mutex_lock(&s->lock);
    if (s->todo_tail)
        s->todo_tail->next = j;
    else
        s->todo = j;
    s->todo_tail = j;
    if (s->idle > s->woken) {
        s->woken++;
        uv_cond_signal(&s->wake);
    } else if (s->started < s->cfg.max_connections) {
        struct worker *w = &s->workers[s->started];
        uv_thread_options_t opt = {.flags = UV_THREAD_HAS_STACK_SIZE,
                                   .stack_size = WORKER_STACK};

        w->s = s;
        if (uv_thread_create_ex(&w->tid, &opt, worker_main, w) == 0) {
            s->started++;
            s->running++;
        } else if (s->started == 0) {
            abort(); /* no thread at all: nothing would ever be sent */
        }
    } /* else every worker is busy: the first one free takes it */
    uv_mutex_unlock(&s->lock);
}

struct smtp *smtp_new(uv_loop_t *loop, const struct smtp_config *cfg)
{
    struct smtp *s;

    if (strncmp(cfg->url, "smtp://", 7) != 0 && strncmp(cfg->url, "smtps://", 8) != 0) {
        log_error(NULL, "SMTP_URL must start with smtp:// or smtps://");
        return NULL;
    }
    /* libcurl, and OpenSSL's configuration and providers with it (1.7 MiB
     * resident), only when SMTP is used: the file transport needs neither.
     * Before any thread: curl_global_init is not thread-safe. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        log_error(NULL, "libcurl failed to initialise");
        return NULL;
    }
#ifdef __GLIBC__
    /* curl takes its SMTP buffers for each transfer and frees them at the
     * end; at the top of the heap, glibc gave them back to the kernel each
     * time and faulted them in again for the next message. */
    mallopt(M_TRIM_THRESHOLD, 1 << 20);
#endif
    s = calloc(1, sizeof(*s) + (size_t)cfg->max_connections * sizeof(s->workers[0]));
    if (s == NULL || uv_mutex_init(&s->lock) != 0 || uv_cond_init(&s->wake) != 0)
        abort();
    s->loop = loop;
    s->cfg = *cfg;
    atomic_init(&s->closing, false);
    uv_async_init(loop, &s->async, on_async);
    s->async.data = s;
    return s;
}

void smtp_close(struct smtp *s, void (*done)(void *arg), void *arg)
{
    s->close_done = done;
    s->close_arg = arg;
    uv_mutex_lock(&s->lock);
    atomic_store(&s->closing, true);
    uv_cond_broadcast(&s->wake);
    uv_mutex_unlock(&s->lock);
    uv_async_send(&s->async); /* with no worker, on_async ends it */
}
