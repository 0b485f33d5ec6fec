/* inventory.c - handlers of the EC2 inventory API (seed 001): instances, their
 * region, account and packages. All SQL is in sql.h; PostgreSQL builds each
 * record in the original's shape, so an answer and its event agree. */
#include "inventory.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "sql.h"

/* The original's column sizes (varchar(n)). */
#define INSTANCE_ID_MAX_CHARS 255
#define PACKAGE_NAME_MAX_CHARS 100
#define PACKAGE_VERSION_MAX_CHARS 50
/* Characters of a client's value quoted back in a message. */
#define QUOTE_CHARS 64

static const struct field instance_fields[] = {
    {"aws_region", F_STRING, true, 30},
    {"aws_account", F_STRING, true, 13},
    {"packages", F_ARRAY, true, 0},
    {NULL, 0, false, 0},
};

static const struct field package_fields[] = {
    {"package_name", F_STRING, true, PACKAGE_NAME_MAX_CHARS},
    {"package_version", F_STRING, true, PACKAGE_VERSION_MAX_CHARS},
    {NULL, 0, false, 0},
};

/* The request id as an event's parameter. */
static const char *cause(const struct request *req)
{
    return *req->id ? req->id : NULL;
}

/* True when 's' is valid UTF-8 of 1 to 'max' characters. */
static bool text_ok(const char *s, size_t max)
{
    json_t *v = s ? json_string(s) : NULL; /* jansson refuses invalid UTF-8 */
    bool ok = v && *s && utf8_chars(s) <= max;

    json_decref(v);
    return ok;
}

/* Bytes of the first 'chars' characters of UTF-8 's', for "%.*s". */
static int head(const char *s, size_t chars)
{
    const char *p = s;

    for (; *p; p++)
        if (((unsigned char)*p & 0xC0) != 0x80 && chars-- == 0)
            break;
    return (int)(p - s);
}

/* The path's instance id, or NULL after answering 400. */
static const char *instance_id(struct request *req)
{
    const char *id = request_param(req, "aws_instance_id");

    if (!text_ok(id, INSTANCE_ID_MAX_CHARS)) {
        request_error(req, 400, "Invalid input - aws_instance_id must be 1 to %d characters "
                      "of UTF-8.", INSTANCE_ID_MAX_CHARS);
        return NULL;
    }
    return id;
}

/* The first string of 'fields' that is empty in object 'v', or NULL. */
static const char *empty_field(json_t *v, const struct field *fields)
{
    for (const struct field *f = fields; f->name; f++)
        if (f->type == F_STRING && *field_text(v, f->name) == '\0')
            return f->name;
    return NULL;
}

/* Checks the packages of an add; answers 400 and returns false when one is bad. */
static bool packages_ok(struct request *req, json_t *packages)
{
    char err[160];
    const char *empty;
    size_t i;
    json_t *p;

    json_array_foreach(packages, i, p) {
        if (!json_is_object(p)) {
            request_error(req, 400, "Invalid input - packages[%zu] must be an object with "
                          "package_name and package_version.", i);
            return false;
        }
        if (check_object(p, package_fields, err, sizeof(err)) != 0) {
            request_error(req, 400, "Invalid input - packages[%zu]: %s", i, err);
            return false;
        }
        if ((empty = empty_field(p, package_fields)) != NULL) {
            request_error(req, 400, "Invalid input - packages[%zu]: Field '%s' must not be "
                          "empty.", i, empty);
            return false;
        }
    }
    return true;
}

/* The body of an add, checked, or NULL after answering 400. */
static json_t *instance_of(struct request *req)
{
    const char *why, *empty;
    char err[160];
    json_t *body;

    if (req->body_len == 0) {
        request_error(req, 400, "Invalid input - body must contain AMI mandatory attributes "
                      "(aws_region, aws_account, packages).");
        return NULL;
    }
    if ((body = request_json(req, &why)) == NULL) {
        request_error(req, 400, "Invalid input - %s", why);
        return NULL;
    }
    if (check_object(body, instance_fields, err, sizeof(err)) != 0) {
        request_error(req, 400, "Invalid input - %s", err);
        return NULL;
    }
    if ((empty = empty_field(body, instance_fields)) != NULL) {
        request_error(req, 400, "Invalid input - Field '%s' must not be empty.", empty);
        return NULL;
    }
    return packages_ok(req, json_object_get(body, "packages")) ? body : NULL;
}

/* Record 'row' of a statement that answers RECORD_JSON, or NULL. */
static json_t *record_at(const PGresult *res, int row)
{
    return json_loads(PQgetvalue(res, row, 0), 0, NULL);
}

/* ---- POST /ec2/{aws_instance_id} ------------------------------------------ */

static void on_added(struct request *req, const struct db_result *r)
{
    const char *id = request_param(req, "aws_instance_id");

    if (r->err == DB_ERR_CONFLICT) /* the primary key: the only unique one written */
        request_error(req, 400, "An error occurred (BadRequestException) when calling the "
                      "ExecuteSql operation: Duplicate entry '%.*s' for key 'PRIMARY'",
                      head(id, QUOTE_CHARS), id);
    else if (r->err)
        request_db_error(req, r);
    else /* the body as it was sent, its keys in its order */
        request_reply(req, 200, json_pack("{s:O}", "new_record",
                                          request_json(req, &(const char *){NULL})));
}

void inventory_add(struct request *req)
{
    const char *id = instance_id(req);
    json_t *body = id ? instance_of(req) : NULL;
    char *packages;

    if (body == NULL)
        return;
    packages = json_dumps(json_object_get(body, "packages"), JSON_COMPACT);
    if (packages == NULL) {
        request_error(req, 500, "Out of memory.");
        return;
    }
    request_query_db(req, SQL_INSTANCE_ADD, 5,
                     (const char *[]){id, field_text(body, "aws_region"),
                                      field_text(body, "aws_account"),
                                      packages, cause(req)},
                     on_added);
    free(packages);
}

/* ---- GET /ec2/{aws_instance_id} -------------------------------------------- */

static void on_got(struct request *req, const struct db_result *r)
{
    if (r->err)
        request_db_error(req, r);
    else if (PQntuples(r->res) == 0)
        request_reply(req, 200, json_pack("{s:{}, s:b}", "record", "record_found", 0));
    else
        request_reply_json_text(req, 200, PQgetvalue(r->res, 0, 0),
                                (size_t)PQgetlength(r->res, 0, 0));
}

void inventory_get(struct request *req)
{
    const char *id = instance_id(req);

    if (id)
        request_query_db(req, SQL_INSTANCE_GET, 1, &id, on_got);
}

/* ---- DELETE /ec2/{aws_instance_id} ----------------------------------------- */

static void on_deleted(struct request *req, const struct db_result *r)
{
    const char *id = request_param(req, "aws_instance_id");

    if (r->err)
        request_db_error(req, r);
    else if (PQntuples(r->res) == 0)
        request_error(req, 404, "Instance '%.*s' not found.", head(id, QUOTE_CHARS), id);
    else
        request_reply(req, 200, json_pack("{s:b}", "deleted", 1));
}

void inventory_delete(struct request *req)
{
    const char *id = instance_id(req);

    if (id)
        request_query_db(req, SQL_INSTANCE_DELETE, 2, (const char *[]){id, cause(req)},
                         on_deleted);
}

/* ---- GET /ec2?package_name=&package_version= ------------------------------- */

static void on_running(struct request *req, const struct db_result *r)
{
    json_t *records, *record;

    if (r->err) {
        request_db_error(req, r);
        return;
    }
    records = json_array();
    for (int i = 0, n = PQntuples(r->res); i < n; i++) {
        if ((record = record_at(r->res, i)) == NULL) {
            json_decref(records);
            request_error(req, 500, "A storage error occurred.");
            return;
        }
        json_array_append_new(records, record);
    }
    request_reply(req, 200, json_pack("{s:o}", "records", records));
}

/* True when every key of the query string is one of those accepted. */
static bool query_keys_ok(struct request *req)
{
    static const char *const accepted[] = {"package_name", "package_version", "limit",
                                           "offset"};
    char *q = strcpy(request_alloc(req, strlen(req->query) + 1), req->query), *save;

    for (char *k = strtok_r(q, "&", &save); k; k = strtok_r(NULL, "&", &save)) {
        size_t i = 0;

        k[strcspn(k, "=")] = '\0';
        while (i < sizeof(accepted) / sizeof(accepted[0]) && strcmp(k, accepted[i]) != 0)
            i++;
        if (i == sizeof(accepted) / sizeof(accepted[0]))
            return false;
    }
    return true;
}

void inventory_running(struct request *req)
{
    const char *name = request_query(req, "package_name");
    const char *version = request_query(req, "package_version");
    struct page p;

    if (!query_keys_ok(req))
        request_error(req, 400, "Invalid input - the query accepts package_name, "
                      "package_version, limit and offset only.");
    else if (!request_page(req, &p))
        return;
    else if (name == NULL)
        request_error(req, 400, "Invalid input - query parameter 'package_name' is required.");
    else if (!text_ok(name, PACKAGE_NAME_MAX_CHARS))
        request_error(req, 400, "Invalid input - query parameter 'package_name' must be 1 to "
                      "%d characters of UTF-8.", PACKAGE_NAME_MAX_CHARS);
    else if (version && !text_ok(version, PACKAGE_VERSION_MAX_CHARS))
        request_error(req, 400, "Invalid input - query parameter 'package_version' must be 1 "
                      "to %d characters of UTF-8.", PACKAGE_VERSION_MAX_CHARS);
    else if (version)
        request_query_db(req, SQL_RUNNING_PACKAGE_VERSION, 4,
                         (const char *[]){name, version, p.limit, p.offset}, on_running);
    else
        request_query_db(req, SQL_RUNNING_PACKAGE, 3, (const char *[]){name, p.limit, p.offset},
                         on_running);
}
