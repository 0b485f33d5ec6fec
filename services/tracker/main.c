/* main.c - the tracker service: work items (seed 002) and users (seeds 003, 004). */
#include "errbody.h"
#include "items.h"
#include "report.h"
#include "sql.h"
#include "users.h"

const char *const tracker_sql[SQL_COUNT] = {
#define X(name, text) [SQL_##name] = text,
    TRACKER_SQL(X)
    USERS_SQL(X)
#undef X
};

static json_t *error_body(int status, const char *message)
{
    return errbody(ERRBODY_ERROR, status, message);
}

static const struct endpoint endpoints[] = {
    {"tracker.items.list", items_list},
    {"tracker.items.get", items_get},
    {"tracker.items.create", items_create},
    {"tracker.items.action", items_action},
    {"tracker.items.report", items_report},
    {"tracker.users.list", users_list},
    {"tracker.users.get", users_get},
    {"tracker.users.put", users_put},
    {"tracker.users.delete", users_delete},
    {"tracker.users.books.add", users_book_add},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    static const struct service_def tracker = {
        .name = "tracker",
        .endpoints = endpoints,
        .sql = tracker_sql,
        .nsql = SQL_COUNT,
        .error_body = error_body,
        .cfg = report_cfg,
        .start = report_start,
    };

    return service_run(&tracker, argc, argv);
}
