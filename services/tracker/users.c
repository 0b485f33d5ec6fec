/* users.c - handlers of the users API. Seed 003 (Flask + DynamoDB) keyed
 * users by a string userId; seed 004 (FastAPI) by a counter and kept their
 * books. Here a user has both: a numeric id and a userId (given, or the id
 * as text). All SQL is in sql.h. */
#include "users.h"

#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "sql.h"

#define NAME_MAX_CHARS 200
#define USER_ID_MAX_CHARS 128
#define ADD_TRIES 3 /* a generated userId may clash with a given one */

static const char *cause(const struct request *req)
{
    return *req->id ? req->id : NULL;
}

/* A JSON text PostgreSQL built (a user's books), as a value. */
static json_t *json_of(const char *text)
{
    json_t *v = json_loads(text, 0, NULL);

    return v ? v : json_array();
}

static void on_list(struct request *req, const struct db_result *r)
{
    json_t *users;

    if (r->err) {
        request_db_error(req, r);
        return;
    }
    users = json_object(); /* jansson keeps insertion order: creation order */
    for (int i = 0, n = PQntuples(r->res); i < n; i++)
        json_object_set_new(users, PQgetvalue(r->res, i, 0),
                            json_pack("{s:s, s:o}", "name", PQgetvalue(r->res, i, 1), "books",
                                      json_of(PQgetvalue(r->res, i, 2))));
    request_reply(req, 200, users);
}

void users_list(struct request *req)
{
    request_query_db(req, SQL_USERS_LIST, 0, NULL, on_list);
}

static void on_get(struct request *req, const struct db_result *r)
{
    if (r->err)
        request_db_error(req, r);
    else if (PQntuples(r->res) == 0)
        request_error(req, 404, "Could not find user with provided \"userId\"");
    else /* the whole body, as PostgreSQL wrote it */
        request_reply_json_text(req, 200, PQgetvalue(r->res, 0, 0),
                                (size_t)PQgetlength(r->res, 0, 0));
}

/* The path's {userId}; the gateway has decoded it and it is never empty. */
static const char *user_id(struct request *req)
{
    const char *id = request_param(req, "userId");

    return id ? id : "";
}

void users_get(struct request *req)
{
    const char *id = user_id(req);

    request_query_db(req, SQL_USER_GET, 1, &id, on_get);
}

static const struct field user_fields[] = {
    {"name", F_STRING, true, NAME_MAX_CHARS},
    {"userId", F_STRING, false, USER_ID_MAX_CHARS},
    {NULL, 0, false, 0},
};

static void add(struct request *req);

static void on_put(struct request *req, const struct db_result *r)
{
    int *tries = req->data;

    if (r->err == DB_ERR_CONFLICT && tries && ++*tries < ADD_TRIES) {
        add(req); /* the generated userId was taken: the next id */
        return;
    }
    if (r->err) {
        request_db_error(req, r);
        return;
    }
    request_reply(req, 200, json_pack("{s:I, s:s, s:s}", "id",
                                      (json_int_t)strtoll(PQgetvalue(r->res, 0, 0), NULL, 10),
                                      "userId", PQgetvalue(r->res, 0, 1), "name",
                                      PQgetvalue(r->res, 0, 2)));
}

static void add(struct request *req)
{
    json_t *body = request_json(req, &(const char *){NULL});

    request_query_db(req, SQL_USER_ADD, 2,
                     (const char *[]){field_text(body, "name"),
                                      cause(req)},
                     on_put);
}

void users_put(struct request *req)
{
    const char *why;
    char err[160];
    json_t *body = request_json(req, &why), *uid;

    if (body == NULL) {
        request_error(req, 400, "%s", why);
        return;
    }
    if (check_object(body, user_fields, err, sizeof(err)) != 0) {
        /* Seed 003's message where its clients expect it. */
        request_error(req, 400, "%s", json_is_object(body) && !json_object_get(body, "name")
                                          ? "Please provide both \"userId\" and \"name\""
                                          : err);
        return;
    }
    uid = json_object_get(body, "userId");
    if (*field_text(body, "name") == '\0' ||
        (uid && *json_string_value(uid) == '\0')) {
        request_error(req, 400, "Please provide both \"userId\" and \"name\"");
        return;
    }
    if (uid == NULL) {
        req->data = request_alloc(req, sizeof(int));
        *(int *)req->data = 0;
        add(req);
        return;
    }
    request_query_db(req, SQL_USER_PUT, 3,
                     (const char *[]){json_string_value(uid),
                                      field_text(body, "name"),
                                      cause(req)},
                     on_put);
}

/* {"success": true} when the statement touched a row, false when none. */
static void on_success(struct request *req, const struct db_result *r)
{
    if (r->err)
        request_db_error(req, r);
    else
        request_reply(req, 200, json_pack("{s:b}", "success", PQntuples(r->res) > 0));
}

void users_delete(struct request *req)
{
    request_query_db(req, SQL_USER_DELETE, 2, (const char *[]){user_id(req), cause(req)},
                     on_success);
}

static const struct field book_fields[] = {
    {"isbn", F_STRING, true, 32},
    {"name", F_STRING, true, 500},
    {"author", F_STRING, true, NAME_MAX_CHARS},
    {NULL, 0, false, 0},
};

void users_book_add(struct request *req)
{
    json_t *body = request_body(req, book_fields);

    if (body == NULL)
        return;
    request_query_db(req, SQL_USER_BOOK_ADD, 5,
                     (const char *[]){user_id(req),
                                      field_text(body, "isbn"),
                                      field_text(body, "name"),
                                      field_text(body, "author"),
                                      cause(req)},
                     on_success);
}
