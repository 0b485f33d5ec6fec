/* test_routes.c - route table parsing and path matching. */
#include <string.h>

#include "routes.h"
#include "test.h"

static const char *const table =
    "# comment\n"
    "GET  /api/items              tracker.items.list\n"
    "POST /api/items              tracker.items.create\n"
    "GET  /api/items/{id}         tracker.items.get\n"
    "PUT  /api/items/{id}:{action} tracker.items.action\n"
    "PUT  /api/items/{id}         tracker.items.action\n"
    "\n"
    "PUT  /api/lending/{book}/{patron} library.lend\n";

static struct route_table t;

static enum route_result m(const char *method, const char *path, const struct route **r,
                           struct route_param *p, int *n, char *allow)
{
    return routes_match(&t, method, path, strlen(path), r, p, n, allow, 64);
}

int main(void)
{
    struct route_table bad;
    const struct route *r = NULL;
    struct route_param p[ROUTE_PARAMS_MAX];
    char err[128], allow[64];
    int n = -1;

    CHECK(routes_parse(&t, table, err, sizeof(err)) == 0 && t.n == 6);
    CHECK(routes_parse(&bad, "GET /x\n", err, sizeof(err)) == -1 && strstr(err, "line 1"));
    CHECK(routes_parse(&bad, "\nFETCH /x a.b\n", err, sizeof(err)) == -1 &&
          strstr(err, "line 2"));
    CHECK(routes_parse(&bad, "GET x a.b\n", err, sizeof(err)) == -1);
    CHECK(routes_parse(&bad, "GET /{a}{b} a.b\n", err, sizeof(err)) == -1);
    CHECK(routes_parse(&bad, "GET /{a/b} a.b\n", err, sizeof(err)) == -1);
    CHECK(routes_parse(&bad, "GET /a a.*\n", err, sizeof(err)) == -1);
    CHECK(routes_parse(&bad, "GET /a a.b extra\n", err, sizeof(err)) == -1);
    CHECK(routes_parse(&bad, "@errors xml\nGET /a a.b\n", err, sizeof(err)) == -1 &&
          strstr(err, "line 1"));
    CHECK(routes_parse(&bad, "@errors\n", err, sizeof(err)) == -1);
    CHECK(routes_parse(&bad, "GET /a a.b\n@errors chalice\nGET /b b.c\nPUT /b b.d\n", err,
                       sizeof(err)) == 0 && bad.n == 3);
    CHECK(bad.routes[0].errors == ERRBODY_ERROR && bad.routes[1].errors == ERRBODY_CHALICE);
    CHECK(routes_match(&bad, "DELETE", "/b", 2, &r, p, &n, allow, sizeof(allow)) ==
              ROUTE_NO_METHOD && r == &bad.routes[1] && strcmp(allow, "GET, PUT") == 0);

    CHECK(m("GET", "/api/items", &r, p, &n, allow) == ROUTE_FOUND && n == 0);
    CHECK(strcmp(r->subject, "tracker.items.list") == 0);
    CHECK(m("GET", "/api/items/", &r, p, &n, allow) == ROUTE_FOUND && n == 0);
    CHECK(m("POST", "/api/items", &r, p, &n, allow) == ROUTE_FOUND);
    CHECK(strcmp(r->subject, "tracker.items.create") == 0);

    CHECK(m("GET", "/api/items/42", &r, p, &n, allow) == ROUTE_FOUND && n == 1);
    CHECK(p[0].name_len == 2 && memcmp(p[0].name, "id", 2) == 0);
    CHECK(p[0].value_len == 2 && memcmp(p[0].value, "42", 2) == 0);

    CHECK(m("PUT", "/api/items/5:archive", &r, p, &n, allow) == ROUTE_FOUND && n == 2);
    CHECK(p[0].value_len == 1 && p[0].value[0] == '5');
    CHECK(p[1].value_len == 7 && memcmp(p[1].value, "archive", 7) == 0);
    CHECK(m("PUT", "/api/items/5", &r, p, &n, allow) == ROUTE_FOUND && n == 1);
    CHECK(strcmp(r->pattern, "/api/items/{id}") == 0);

    CHECK(m("PUT", "/api/lending/3/%41", &r, p, &n, allow) == ROUTE_FOUND && n == 2);
    CHECK(p[1].value_len == 3 && memcmp(p[1].value, "%41", 3) == 0);
    CHECK(m("PUT", "/api/lending/3", &r, p, &n, allow) == ROUTE_NO_PATH);
    CHECK(m("PUT", "/api/lending//4", &r, p, &n, allow) == ROUTE_NO_PATH);

    CHECK(m("DELETE", "/api/items/5", &r, p, &n, allow) == ROUTE_NO_METHOD);
    CHECK(strcmp(allow, "GET, PUT") == 0);
    CHECK(m("DELETE", "/api/items", &r, p, &n, allow) == ROUTE_NO_METHOD);
    CHECK(strcmp(allow, "GET, POST") == 0);
    CHECK(m("GET", "/api/nope", &r, p, &n, allow) == ROUTE_NO_PATH);
    CHECK(m("GET", "/", &r, p, &n, allow) == ROUTE_NO_PATH);
    CHECK(m("GET", "/api/items/1/2", &r, p, &n, allow) == ROUTE_NO_PATH);
    return test_done();
}
