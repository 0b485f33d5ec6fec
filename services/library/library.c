/* library.c - handlers of the lending library API (seed 000): books,
 * authors, patrons and loans. All SQL is in sql.h; rows are answered with the
 * original's "Table.Column" keys, in its order. */
#include "library.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "sql.h"

#define NAME_MAX_CHARS 200
#define TITLE_MAX_CHARS 500

static json_int_t int_at(const PGresult *res, int row, int col)
{
    return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/* A path parameter that must be an id, or NULL after answering 400. */
static const char *id_param(struct request *req, const char *name)
{
    const char *id = request_param(req, name);
    long v;

    if (check_int32(id, &v) != 0) {
        request_error(req, 400, "%s '%.64s' is not an integer.", name, id ? id : "");
        return NULL;
    }
    return id;
}

/* The request id as an event's parameter. */
static const char *cause(const struct request *req)
{
    return *req->id ? req->id : NULL;
}

/* ---- GET /api/ ------------------------------------------------------------ */

void library_index(struct request *req)
{
    request_reply(req, 200, json_pack("{s:s}", "description",
                                      "A simple lending library REST API: books, authors, "
                                      "patrons and loans."));
}

/* ---- books and authors --------------------------------------------------- */

static void on_books(struct request *req, const struct db_result *r)
{
    if (r->err)
        request_db_error(req, r);
    else
        request_reply_values(req, 200, "books", r->res);
}

void library_books(struct request *req)
{
    struct page p;

    if (request_page(req, &p))
        request_query_db(req, SQL_BOOKS_LIST, 2, (const char *[]){p.limit, p.offset}, on_books);
}

void library_books_by_author(struct request *req)
{
    const char *author = id_param(req, "author_id");
    struct page p;

    if (author && request_page(req, &p))
        request_query_db(req, SQL_BOOKS_BY_AUTHOR, 3,
                         (const char *[]){p.limit, p.offset, author}, on_books);
}

static const struct field book_fields[] = {
    {"Books.Title", F_STRING, true, TITLE_MAX_CHARS},
    {"Authors.FirstName", F_STRING, true, NAME_MAX_CHARS},
    {"Authors.LastName", F_STRING, true, NAME_MAX_CHARS},
    {NULL, 0, false, 0},
};

static void on_book_added(struct request *req, const struct db_result *r)
{
    if (r->err) {
        request_db_error(req, r);
        return;
    }
    request_reply(req, 200, json_pack("{s:I, s:I}", "Authors.AuthorID", int_at(r->res, 0, 0),
                                      "Books.BookID", int_at(r->res, 0, 1)));
}

void library_book_add(struct request *req)
{
    json_t *body = request_body(req, book_fields);
    const char *title;

    if (body == NULL)
        return;
    title = field_text(body, "Books.Title");
    if (*title == '\0' || *field_text(body, "Authors.LastName") == '\0') {
        request_error(req, 400, "Fields 'Books.Title' and 'Authors.LastName' must not be empty.");
        return;
    }
    request_query_db(req, SQL_BOOK_ADD, 4,
                     (const char *[]){title, field_text(body, "Authors.FirstName"),
                                      field_text(body, "Authors.LastName"), cause(req)},
                     on_book_added);
}

/* Authors and patrons share a row shape: {"T.TID", "T.FirstName", "T.LastName"}. */
static void reply_people(struct request *req, const struct db_result *r, const char *list,
                         const char *const keys[3])
{
    const struct json_column person[] = {
        {keys[0], 0, JSON_KIND_NUMBER},
        {keys[1], 1, JSON_KIND_STRING},
        {keys[2], 2, JSON_KIND_STRING},
    };

    if (r->err)
        request_db_error(req, r);
    else
        request_reply_rows(req, 200, list, r->res, person, JSON_NCOLUMNS(person));
}

static void on_authors(struct request *req, const struct db_result *r)
{
    static const char *const keys[3] = {"Authors.AuthorID", "Authors.FirstName",
                                        "Authors.LastName"};

    reply_people(req, r, "authors", keys);
}

void library_authors(struct request *req)
{
    struct page p;

    if (request_page(req, &p))
        request_query_db(req, SQL_AUTHORS_LIST, 2, (const char *[]){p.limit, p.offset},
                         on_authors);
}

/* ---- patrons ------------------------------------------------------------- */

static void on_patrons(struct request *req, const struct db_result *r)
{
    static const char *const keys[3] = {"Patrons.PatronID", "Patrons.FirstName",
                                        "Patrons.LastName"};

    reply_people(req, r, "patrons", keys);
}

void library_patrons(struct request *req)
{
    struct page p;

    if (request_page(req, &p))
        request_query_db(req, SQL_PATRONS_LIST, 2, (const char *[]){p.limit, p.offset},
                         on_patrons);
}

/* The demo sends the bare names, the original's docstring the prefixed ones. */
static const struct field patron_fields[2][3] = {
    {{"FirstName", F_STRING, true, NAME_MAX_CHARS},
     {"LastName", F_STRING, true, NAME_MAX_CHARS},
     {NULL, 0, false, 0}},
    {{"Patrons.FirstName", F_STRING, true, NAME_MAX_CHARS},
     {"Patrons.LastName", F_STRING, true, NAME_MAX_CHARS},
     {NULL, 0, false, 0}},
};

static void on_patron_added(struct request *req, const struct db_result *r)
{
    if (r->err) {
        request_db_error(req, r);
        return;
    }
    request_reply(req, 200, json_pack("{s:I}", "Patrons.PatronID", int_at(r->res, 0, 0)));
}

void library_patron_add(struct request *req)
{
    const struct field *f;
    json_t *body = request_json(req, &(const char *){NULL});
    char err[160];

    /* Either form, whole; the first one's messages otherwise. */
    f = json_object_get(body, patron_fields[1][0].name) ? patron_fields[1] : patron_fields[0];
    if ((body = request_body(req, f)) == NULL)
        return;
    if (*field_text(body, f[0].name) == '\0' || *field_text(body, f[1].name) == '\0') {
        snprintf(err, sizeof(err), "Fields '%s' and '%s' must not be empty.", f[0].name,
                 f[1].name);
        request_error(req, 400, "%s", err);
        return;
    }
    request_query_db(req, SQL_PATRON_ADD, 3,
                     (const char *[]){field_text(body, f[0].name), field_text(body, f[1].name),
                                      cause(req)},
                     on_patron_added);
}

static void on_patron_deleted(struct request *req, const struct db_result *r)
{
    if (r->err == DB_ERR_NOT_FOUND) /* the foreign key of an open loan */
        request_error(req, 409, "Patron %s has books out; they must be returned first.",
                      request_param(req, "id"));
    else if (r->err)
        request_db_error(req, r);
    else if (PQntuples(r->res) == 0)
        request_error(req, 404, "Patron %s not found.", request_param(req, "id"));
    else
        request_reply(req, 200, NULL);
}

void library_patron_delete(struct request *req)
{
    const char *id = id_param(req, "id");

    if (id)
        request_query_db(req, SQL_PATRON_DELETE, 2, (const char *[]){id, cause(req)},
                         on_patron_deleted);
}

/* ---- lending ------------------------------------------------------------- */

static void on_loans(struct request *req, const struct db_result *r)
{
    static const struct json_column loan[] = {
        {"Lending.LendingID", 0, JSON_KIND_NUMBER},  {"Books.BookID", 1, JSON_KIND_NUMBER},
        {"Books.Title", 2, JSON_KIND_STRING},        {"Authors.AuthorID", 3, JSON_KIND_NUMBER},
        {"Authors.FirstName", 4, JSON_KIND_STRING},  {"Authors.LastName", 5, JSON_KIND_STRING},
        {"Patrons.PatronID", 6, JSON_KIND_NUMBER},   {"Patrons.FirstName", 7, JSON_KIND_STRING},
        {"Patrons.LastName", 8, JSON_KIND_STRING},   {"Lending.Lent", 9, JSON_KIND_STRING},
        {"Lending.Returned", 10, JSON_KIND_STRING}, /* open loans: always null */
    };

    if (r->err)
        request_db_error(req, r);
    else
        request_reply_rows(req, 200, "books", r->res, loan, JSON_NCOLUMNS(loan));
}

void library_loans(struct request *req)
{
    struct page p;

    if (request_page(req, &p))
        request_query_db(req, SQL_LOANS_OPEN, 2, (const char *[]){p.limit, p.offset}, on_loans);
}

/* Loans are gathered, many to a statement (request_gather, sql.h). */
static void loan_params(struct request *req, const char **values)
{
    values[0] = request_param(req, "book_id");
    values[1] = request_param(req, "patron_id");
    values[2] = cause(req);
}

static bool made(const struct db_result *r, int row)
{
    return PQgetvalue(r->res, row, 0)[0] == 't';
}

static void on_lent(struct request *req, const struct db_result *r, int row)
{
    if (r->err == DB_ERR_NOT_FOUND)
        request_error(req, 404, "Book %s or patron %s not found.",
                      request_param(req, "book_id"), request_param(req, "patron_id"));
    else if (r->err)
        request_db_error(req, r);
    else if (made(r, row))
        request_reply(req, 200, NULL);
    else
        request_error(req, 409, "Book %s is already lent.", request_param(req, "book_id"));
}

static void on_returned(struct request *req, const struct db_result *r, int row)
{
    if (r->err)
        request_db_error(req, r);
    else if (made(r, row))
        request_reply(req, 200, NULL);
    else
        request_error(req, 404, "Book %s is not lent to patron %s.",
                      request_param(req, "book_id"), request_param(req, "patron_id"));
}

static struct gather lends = GATHER(SQL_LEND, SQL_LEND_MANY, 3, loan_params, on_lent);
static struct gather returns = GATHER(SQL_RETURN, SQL_RETURN_MANY, 3, loan_params, on_returned);

static void loan(struct request *req, struct gather *g)
{
    if (id_param(req, "book_id") && id_param(req, "patron_id"))
        request_gather(req, g);
}

void library_lend(struct request *req)
{
    loan(req, &lends);
}

void library_return(struct request *req)
{
    loan(req, &returns);
}
