/* users.h - the users API (seeds 003 and 004 merged, see contract.md). */
#ifndef TRACKER_USERS_H
#define TRACKER_USERS_H

#include "service.h"

void users_list(struct request *req);
void users_get(struct request *req);
void users_put(struct request *req);
void users_delete(struct request *req);
void users_book_add(struct request *req);

#endif
