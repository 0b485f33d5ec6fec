/* library.h - the lending library's handlers (seed 000). */
#ifndef LIBRARY_H
#define LIBRARY_H

#include "service.h"

void library_index(struct request *req);
void library_books(struct request *req);
void library_books_by_author(struct request *req);
void library_book_add(struct request *req);
void library_authors(struct request *req);
void library_patrons(struct request *req);
void library_patron_add(struct request *req);
void library_patron_delete(struct request *req);
void library_loans(struct request *req);
void library_lend(struct request *req);
void library_return(struct request *req);

#endif
