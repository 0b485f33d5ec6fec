/* items.c - handlers of the work-items API (seed 002); all SQL is in sql.h.
 * An item on the wire has its keys sorted, as Flask sent them, and its id as
 * a string: {"archived","description","guide","id","name","status"}. */
#include "items.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "sql.h"

#define NAME_MAX_CHARS 45 /* username and guide are varchar(45) */

/* Row columns, in ITEM_COLUMNS order. */
enum { COL_ID, COL_DESCRIPTION, COL_GUIDE, COL_STATUS, COL_USERNAME, COL_ARCHIVED };

/* An item on the wire: its keys sorted, its id as a string. */
static const struct json_column item[] = {
    {"archived", COL_ARCHIVED, JSON_KIND_BOOL},
    {"description", COL_DESCRIPTION, JSON_KIND_STRING},
    {"guide", COL_GUIDE, JSON_KIND_STRING},
    {"id", COL_ID, JSON_KIND_STRING},
    {"name", COL_USERNAME, JSON_KIND_STRING},
    {"status", COL_STATUS, JSON_KIND_STRING},
};

static void on_list(struct request *req, const struct db_result *r)
{
    if (r->err)
        request_db_error(req, r);
    else
        request_reply_rows(req, 200, NULL, r->res, item, JSON_NCOLUMNS(item));
}

void items_list(struct request *req)
{
    const char *archived = request_query(req, "archived");
    int flag;

    if (archived == NULL) {
        request_query_db(req, SQL_ITEMS_LIST, 0, NULL, on_list);
        return;
    }
    if ((flag = check_bool(archived)) < 0) {
        request_error(req, 400, "Query parameter 'archived' must be true or false.");
        return;
    }
    request_query_db(req, SQL_ITEMS_LIST_BY_ARCHIVED, 1,
                     (const char *[]){flag ? "true" : "false"}, on_list);
}

/* The path's {id} as text fit for an int4 parameter, or NULL after replying 400. */
static const char *item_id(struct request *req)
{
    const char *id = request_param(req, "id");
    long v;

    if (check_int32(id, &v) != 0) {
        request_error(req, 400, "Item id '%.64s' is not an integer.", id ? id : "");
        return NULL;
    }
    return id;
}

/* True when the query found the item; otherwise answers (error or 404). */
static bool found(struct request *req, const struct db_result *r)
{
    if (r->err) {
        request_db_error(req, r);
        return false;
    }
    if (PQntuples(r->res) == 0) {
        request_error(req, 404, "Work item %s not found.", request_param(req, "id"));
        return false;
    }
    return true;
}

static void on_get(struct request *req, const struct db_result *r)
{
    if (found(req, r))
        request_reply_row(req, 200, r->res, 0, item, JSON_NCOLUMNS(item));
}

void items_get(struct request *req)
{
    const char *id = item_id(req);

    if (id)
        request_query_db(req, SQL_ITEM_GET, 1, &id, on_get);
}

static const struct field item_fields[] = {
    {"name", F_STRING, true, NAME_MAX_CHARS},
    {"guide", F_STRING, true, NAME_MAX_CHARS},
    {"description", F_STRING, true, 0},
    {"status", F_STRING, true, 0},
    {"archived", F_ANY, false, 0}, /* accepted and ignored, as the original did */
    {"id", F_ANY, false, 0},
    {NULL, 0, false, 0},
};

static void on_created(struct request *req, const struct db_result *r)
{
    if (r->err) {
        request_db_error(req, r);
        return;
    }
    /* A bare number, as the original answered. */
    request_reply(req, 200, json_integer(strtoll(PQgetvalue(r->res, 0, 0), NULL, 10)));
}

void items_create(struct request *req)
{
    json_t *body = request_body(req, item_fields);

    if (body == NULL)
        return;
    request_query_db(req, SQL_ITEM_CREATE, 5,
                     (const char *[]){field_text(body, "name"),
                                      field_text(body, "guide"),
                                      field_text(body, "description"),
                                      field_text(body, "status"),
                                      req->id},
                     on_created);
}

static void on_archived(struct request *req, const struct db_result *r)
{
    if (found(req, r))
        request_reply(req, 200, NULL);
}

void items_action(struct request *req)
{
    const char *action = request_param(req, "action");
    const char *id;

    if (action == NULL || strcmp(action, "archive") != 0) {
        request_error(req, 400, "Unrecognized action %.64s. The only allowed action is 'archive'.",
                      action ? action : "None");
        return;
    }
    if ((id = item_id(req)) != NULL)
        request_query_db(req, SQL_ITEM_ARCHIVE, 2, (const char *[]){id, req->id}, on_archived);
}
