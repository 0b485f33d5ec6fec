/* test_db.c - the PostgreSQL pool's state machine: fail fast while down,
 * pipelining, the bounded queue, SQLSTATE mapping, deadlines and a clean
 * close. Needs a server: TEST_PGPORT (and PGHOST/PGUSER/PGDATABASE as libpq
 * reads them); without it the test is skipped (exit 77). */
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "test.h"

static const char *const sql[] = {
    "SELECT $1::int + 1",
    "SELECT 1 / $1::int",
    "SELECT pg_sleep($1::float8)",
    "WITH w AS (SELECT 1) SELECT $1::int + 1", /* not a SELECT: a write's own Sync */
    /* $1 + 1 only where statements are planned once (generic plans) */
    "SELECT CASE current_setting('plan_cache_mode') WHEN 'force_generic_plan' "
    "THEN $1::int + 1 ELSE -1 END",
};

static uv_loop_t *loop;
static int answered, ok, busy, unavailable, invalid, timeouts, in_order = 1, last = -1;

static void count(void *arg, const struct db_result *r)
{
    int n = (int)(intptr_t)arg;

    answered++;
    switch (r->err) {
    case DB_OK:
        ok++;
        if (atoi(PQgetvalue(r->res, 0, 0)) != n + 1)
            in_order = 0;
        break;
    case DB_ERR_BUSY:
        busy++;
        break;
    case DB_ERR_UNAVAILABLE:
        unavailable++;
        break;
    case DB_ERR_INVALID:
        invalid++;
        break;
    case DB_ERR_TIMEOUT:
        timeouts++;
        break;
    default:
        break;
    }
    last = n;
}

static void stop_loop(uv_timer_t *t)
{
    uv_stop(loop);
}

/* Runs the loop until 'cond' holds or 'ms' pass. */
static int ready_connections(const struct db *d)
{
    struct db_stats st;

    db_get_stats(d, &st);
    return st.connections_ready;
}

#define RUN_UNTIL(cond, ms)                                              \
    do {                                                                 \
        uv_timer_t t_;                                                   \
        uint64_t end_ = uv_now(loop) + (ms);                             \
        uv_timer_init(loop, &t_);                                        \
        while (!(cond) && uv_now(loop) < end_) {                         \
            uv_timer_start(&t_, stop_loop, 10, 0);                       \
            uv_run(loop, UV_RUN_DEFAULT);                                \
        }                                                                \
        uv_close((uv_handle_t *)&t_, NULL);                              \
        uv_run(loop, UV_RUN_NOWAIT);                                     \
    } while (0)

static int closed;
static void on_closed(void *arg)
{
    closed = 1;
}

static struct db *pool(const char *port, int size, int depth, int queue, long timeout)
{
    struct db_config c = {.host = getenv("PGHOST") ? getenv("PGHOST") : "127.0.0.1",
                          .port = port,
                          .user = getenv("PGUSER") ? getenv("PGUSER") : "postgres",
                          .dbname = getenv("PGDATABASE") ? getenv("PGDATABASE") : "postgres",
                          .app_name = "test_db", .sql = sql, .nsql = (int)(sizeof(sql) / sizeof(sql[0])), .pool_size = size,
                          .pipeline_depth = depth, .queue_max = queue, .timeout_ms = timeout};
    return db_new(loop, &c);
}

int main(void)
{
    const char *port = getenv("TEST_PGPORT");
    struct db *db;
    char buf[16][16];

    CHECK(db_map_sqlstate("23505") == DB_ERR_CONFLICT);
    CHECK(db_map_sqlstate("23503") == DB_ERR_NOT_FOUND);
    CHECK(db_map_sqlstate("22P02") == DB_ERR_INVALID);
    CHECK(db_map_sqlstate("57P01") == DB_ERR_UNAVAILABLE);
    CHECK(db_map_sqlstate("57014") == DB_ERR_TIMEOUT);
    CHECK(db_map_sqlstate("42P01") == DB_ERR_INTERNAL);
    CHECK(db_map_sqlstate(NULL) == DB_ERR_INTERNAL);
    if (port == NULL) {
        printf("TEST_PGPORT not set: skipping the live part\n");
        test_done();
        return 77;
    }
    loop = uv_default_loop();

    /* Nobody listens on port 1: every query fails at once, before returning. */
    db = pool("1", 1, 4, 4, 1000);
    db_query(db, 0, 1, (const char *[]){"1"}, count, (void *)1);
    CHECK(answered == 1 && unavailable == 1);
    CHECK(!db_ready(db));
    db_close(db, on_closed, NULL);
    RUN_UNTIL(closed, 2000);
    CHECK(closed);
    db_free(db);

    /* A real server: 2 connections x depth 4 + 4 waiting = 12 accepted of 16. */
    answered = ok = unavailable = busy = closed = 0;
    db = pool(port, 2, 4, 4, 1000);
    /* Both connections up, or the bound below would be 1 x 4 + 4. */
    RUN_UNTIL(ready_connections(db) == 2, 5000);
    CHECK(ready_connections(db) == 2 && db_ready(db));
    for (int i = 0; i < 16; i++) {
        snprintf(buf[i], sizeof(buf[i]), "%d", i);
        db_query(db, 0, 1, (const char *[]){buf[i]}, count, (void *)(intptr_t)i);
    }
    CHECK(busy == 4); /* answered at once */
    RUN_UNTIL(answered == 16, 5000);
    CHECK(ok == 12 && in_order);

    /* Errors map to their class; the connection keeps serving. */
    db_query(db, 1, 1, (const char *[]){"0"}, count, (void *)0);
    RUN_UNTIL(answered == 17, 5000);
    CHECK(invalid == 1);
    db_query(db, 0, 1, (const char *[]){"41"}, count, (void *)41);
    RUN_UNTIL(answered == 18, 5000);
    CHECK(ok == 13 && last == 41 && in_order);

    /* Every connection plans its statements once. */
    for (int i = 0; i < 4; i++)
        db_query(db, 4, 1, (const char *[]){"50"}, count, (void *)50);
    RUN_UNTIL(answered == 22, 5000);
    CHECK(ok == 17 && last == 50 && in_order);
    answered -= 4;
    ok -= 4;

    /* A query past its deadline is answered as a timeout (statement_timeout). */
    db_query(db, 2, 1, (const char *[]){"3"}, count, (void *)0);
    RUN_UNTIL(answered == 19, 5000);
    CHECK(timeouts == 1);
    {
        struct db_stats st;

        /* Every answer counted once; a timeout is an error too, whichever
         * side ended it (statement_timeout or the pool's deadline). */
        db_get_stats(db, &st);
        CHECK(st.queries == 23 && st.errors == 6 && st.timeouts == 1);
    }
    db_query(db, 0, 1, (const char *[]){"6"}, count, (void *)6);
    RUN_UNTIL(answered == 20, 5000);
    CHECK(last == 6 && ok == 14);

    /* Reads sent in one loop iteration share a Sync; one that fails makes
     * the server skip the rest of its group, which are sent again with the
     * values they were given (the caller's buffer is reused here). */
    answered = ok = invalid = 0;
    {
        static const int stmts[] = {0, 0, 1, 0, 3, 0, 0, 1, 0, 0};
        static const char *const vals[] = {"1", "2", "0", "3", "4", "5", "6", "0", "7", "8"};
        struct db_stats st;
        char v[16];

        for (int i = 0; i < 10; i++) {
            snprintf(v, sizeof(v), "%s", vals[i]);
            db_query(db, stmts[i], 1, (const char *[]){v}, count, (void *)(intptr_t)atoi(v));
            memset(v, '9', sizeof(v) - 1);
            v[sizeof(v) - 1] = '\0';
        }
        RUN_UNTIL(answered == 10, 5000);
        CHECK(ok == 8 && invalid == 2 && in_order);
        db_get_stats(db, &st);
        CHECK(st.resent > 0);
    }

    db_close(db, on_closed, NULL);
    RUN_UNTIL(closed, 2000);
    CHECK(closed);
    db_free(db);
    CHECK(uv_loop_close(loop) == 0);
    return test_done();
}
