/* envelope.h - how an HTTP request and its reply travel over NATS
 * (proto/envelope.md is the specification; these are its header names). */
#ifndef PROTO_ENVELOPE_H
#define PROTO_ENVELOPE_H

/* Request: NATS headers, the raw HTTP body as payload. */
#define ENV_METHOD "Method"              /* "GET", "POST", ... */
#define ENV_PATH "Path"                  /* path without query, percent-encoded as received */
#define ENV_QUERY "Query"                /* raw query string without '?'; absent when empty */
#define ENV_CONTENT_TYPE "Content-Type"  /* absent when the request had none */
#define ENV_REQUEST_ID "X-Request-Id"    /* always present */
#define ENV_PARAM_PREFIX "Param-"        /* "Param-<name>": each path parameter, decoded */

/* Reply: the HTTP status as text, the body as payload (JSON unless
 * Content-Type says otherwise). */
#define ENV_STATUS "Status"
#define ENV_ALLOW "Allow"

#endif
