/* main.c - the library service: books, authors, patrons and loans (seed 000). */
#include "errbody.h"
#include "library.h"
#include "sql.h"

const char *const library_sql[SQL_COUNT] = {
#define X(name, text) [SQL_##name] = text,
    LIBRARY_SQL(X)
#undef X
};

/* Chalice's error shape and names, which the original's clients read. */
static json_t *error_body(int status, const char *message)
{
    return errbody(ERRBODY_CHALICE, status, message);
}

static const struct endpoint endpoints[] = {
    {"library.index", library_index},
    {"library.books.list", library_books},
    {"library.books.by_author", library_books_by_author},
    {"library.books.add", library_book_add},
    {"library.authors.list", library_authors},
    {"library.patrons.list", library_patrons},
    {"library.patrons.add", library_patron_add},
    {"library.patrons.delete", library_patron_delete},
    {"library.lending.list", library_loans},
    {"library.lending.lend", library_lend},
    {"library.lending.return", library_return},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    static const struct service_def library = {
        .name = "library",
        .endpoints = endpoints,
        .sql = library_sql,
        .nsql = SQL_COUNT,
        .error_body = error_body,
    };

    return service_run(&library, argc, argv);
}
