/* log.c - one JSON object per line on stdout: time, level, service,
 * request id and message. */
#include "log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const level_names[] = {"debug", "info", "warn", "error"};
static const char *log_service = "?";
static enum log_level log_threshold = LOG_INFO;

int log_init(const char *service, const char *level)
{
    log_service = service;
    for (int i = 0; i <= LOG_ERROR; i++) {
        if (strcmp(level, level_names[i]) == 0) {
            log_threshold = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

bool log_enabled(enum log_level level)
{
    return level >= log_threshold;
}

void log_msg(enum log_level level, const char *request_id, const char *fmt, ...)
{
    char msg[1024], ts[32];
    struct timespec now;
    struct tm tm;
    va_list ap;
    json_t *line;
    char *text;

    if (!log_enabled(level))
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + 19, sizeof(ts) - 19, ".%03dZ", (int)(now.tv_nsec / 1000000) % 1000);

    /* The message may hold any bytes a client sent: jansson escapes them,
     * and bytes that are not UTF-8 are replaced rather than losing the line. */
    line = json_pack("{s:s, s:s, s:s, s:s?, s:s}", "time", ts, "level", level_names[level],
                     "service", log_service, "request_id", request_id, "msg", msg);
    if (line == NULL) {
        for (char *p = msg; *p; p++)
            if ((unsigned char)*p >= 0x80)
                *p = '?';
        line = json_pack("{s:s, s:s, s:s, s:s?, s:s}", "time", ts, "level",
                         level_names[level], "service", log_service, "request_id", request_id,
                         "msg", msg);
        if (line == NULL)
            return;
    }
    text = json_dumps(line, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(line);
    if (text == NULL)
        return;
    size_t len = strlen(text);
    text[len] = '\n'; /* json_dumps leaves room: we overwrite its NUL and write len + 1 */
    (void)!write(STDOUT_FILENO, text, len + 1);
    free(text);
}
