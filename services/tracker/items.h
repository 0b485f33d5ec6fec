/* items.h - handlers of the work-items API (seed 002). */
#ifndef TRACKER_ITEMS_H
#define TRACKER_ITEMS_H

#include "service.h"

void items_list(struct request *req);
void items_get(struct request *req);
void items_create(struct request *req);
void items_action(struct request *req);

#endif
