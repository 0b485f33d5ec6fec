/* log.h - one JSON object per line on stdout: time, level, service,
 * request id and message. */
#ifndef CORE_LOG_H
#define CORE_LOG_H

#include <stdbool.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Sets the service name and the threshold ("debug", "info", "warn" or
 * "error"); returns -1 on an unknown level. */
int log_init(const char *service, const char *level);

bool log_enabled(enum log_level level);

/* Writes one line with one write(2), so lines from threads never interleave.
 * 'request_id' may be NULL. */
void log_msg(enum log_level level, const char *request_id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(rid, ...) \
    do { if (log_enabled(LOG_DEBUG)) log_msg(LOG_DEBUG, rid, __VA_ARGS__); } while (0)
#define log_info(rid, ...) log_msg(LOG_INFO, rid, __VA_ARGS__)
#define log_warn(rid, ...) log_msg(LOG_WARN, rid, __VA_ARGS__)
#define log_error(rid, ...) log_msg(LOG_ERROR, rid, __VA_ARGS__)

#endif
