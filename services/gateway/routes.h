/* routes.h - the route table (proto/routes.txt) and path matching: method +
 * path pattern -> NATS subject, with {parameters}. */
#ifndef GATEWAY_ROUTES_H
#define GATEWAY_ROUTES_H

#include <stddef.h>

#include "errbody.h"

#define ROUTES_MAX 256
#define ROUTE_PARAMS_MAX 8

struct route {
    char method[8];
    char pattern[128];
    char subject[128];
    enum errbody_style errors; /* the body of the gateway's own errors */
};

struct route_table {
    struct route routes[ROUTES_MAX];
    int n;
};

struct route_param {
    const char *name;  /* points into the route's pattern; name_len bytes */
    size_t name_len;
    const char *value; /* points into the path; value_len bytes, still encoded */
    size_t value_len;
};

enum route_result { ROUTE_FOUND, ROUTE_NO_PATH, ROUTE_NO_METHOD };

/* Parses the text of routes.txt: "METHOD PATTERN SUBJECT" lines, and
 * "@errors STYLE" lines that set the error body of the routes after them
 * (errbody.h; "error" until the first). Returns 0, or -1 with "line N:
 * reason" in 'err'. */
int routes_parse(struct route_table *t, const char *text, char *err, size_t errsize);

/* Finds the first route matching 'method' and 'path' (path without query;
 * one trailing slash is ignored). On ROUTE_FOUND sets *route and the
 * parameters (*nparams); on ROUTE_NO_METHOD writes the methods that would
 * match into 'allow' ("GET, PUT") and sets *route to the first of them. */
enum route_result routes_match(const struct route_table *t, const char *method,
                               const char *path, size_t path_len, const struct route **route,
                               struct route_param *params, int *nparams, char *allow,
                               size_t allow_size);

#endif
