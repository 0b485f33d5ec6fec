/* errbody.h - the error bodies the seeds' clients read (contract principle
 * 7): {"error": m} (items, users), {"Code": c, "Message": m} (the library,
 * as Chalice sent them) and {"error_message": m} (the inventory). The
 * gateway and the services build them here, so both speak alike. */
#ifndef CORE_ERRBODY_H
#define CORE_ERRBODY_H

#include <jansson.h>

enum errbody_style { ERRBODY_ERROR, ERRBODY_CHALICE, ERRBODY_ERROR_MESSAGE };

/* The style named 'name' ("error", "chalice", "error_message"), or -1. */
int errbody_style_of(const char *name);

/* A new JSON object in 'style' for 'status' and 'message'. */
json_t *errbody(enum errbody_style style, int status, const char *message);

#endif
