/* inventory.h - the EC2 inventory's handlers (seed 001). */
#ifndef INVENTORY_H
#define INVENTORY_H

#include "service.h"

void inventory_add(struct request *req);
void inventory_get(struct request *req);
void inventory_delete(struct request *req);
void inventory_running(struct request *req);

#endif
