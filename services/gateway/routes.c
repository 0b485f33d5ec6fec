/* routes.c - the route table and path matching. A pattern segment mixes
 * literal text and {parameters}; a parameter takes one or more characters up
 * to the next literal character of its segment, never a '/'. */
#include "routes.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static bool valid_method(const char *m)
{
    static const char *const methods[] = {"GET", "POST", "PUT", "DELETE", "PATCH", NULL};

    for (int i = 0; methods[i]; i++)
        if (strcmp(m, methods[i]) == 0)
            return true;
    return false;
}

static bool valid_pattern(const char *p)
{
    bool in_param = false;

    if (p[0] != '/')
        return false;
    for (; *p; p++) {
        if (*p == '{') {
            if (in_param || p[1] == '}' || p[-1] == '}')
                return false; /* nested, empty, or two parameters side by side */
            in_param = true;
        } else if (*p == '}') {
            if (!in_param)
                return false;
            in_param = false;
        } else if (in_param && *p == '/') {
            return false;
        }
    }
    return !in_param;
}

int routes_parse(struct route_table *t, const char *text, char *err, size_t errsize)
{
    enum errbody_style errors = ERRBODY_ERROR;
    int lineno = 0;

    t->n = 0;
    while (*text) {
        const char *eol = strchr(text, '\n');
        size_t len = eol ? (size_t)(eol - text) : strlen(text);
        char line[512], extra[2];
        struct route r;

        lineno++;
        if (len >= sizeof(line)) {
            snprintf(err, errsize, "line %d: too long", lineno);
            return -1;
        }
        memcpy(line, text, len);
        line[len] = '\0';
        text += len + (eol ? 1 : 0);
        line[strcspn(line, "#")] = '\0';
        if (line[strspn(line, " \t\r")] == '\0')
            continue;
        if (strncmp(line, "@errors", 7) == 0) {
            char name[32];
            int style;

            if (sscanf(line + 7, "%31s %1s", name, extra) != 1 ||
                (style = errbody_style_of(name)) < 0) {
                snprintf(err, errsize, "line %d: want @errors error|chalice|error_message",
                         lineno);
                return -1;
            }
            errors = (enum errbody_style)style;
            continue;
        }
        if (sscanf(line, "%7s %127s %127s %1s", r.method, r.pattern, r.subject, extra) != 3) {
            snprintf(err, errsize, "line %d: want METHOD PATTERN SUBJECT", lineno);
            return -1;
        }
        if (!valid_method(r.method)) {
            snprintf(err, errsize, "line %d: unknown method %s", lineno, r.method);
            return -1;
        }
        if (!valid_pattern(r.pattern)) {
            snprintf(err, errsize, "line %d: bad pattern %s", lineno, r.pattern);
            return -1;
        }
        if (strpbrk(r.subject, "*>") || r.subject[0] == '.' || strstr(r.subject, "..")) {
            snprintf(err, errsize, "line %d: bad subject %s", lineno, r.subject);
            return -1;
        }
        if (t->n == ROUTES_MAX) {
            snprintf(err, errsize, "line %d: more than %d routes", lineno, ROUTES_MAX);
            return -1;
        }
        r.errors = errors;
        t->routes[t->n++] = r;
    }
    return 0;
}

/* Matches 'path' against 'pattern'; fills params on success. */
static bool match(const char *pattern, const char *path, size_t len, struct route_param *params,
                  int *nparams)
{
    const char *p = pattern, *s = path, *end = path + len;
    int n = 0;

    while (*p) {
        if (*p == '{') {
            const char *close = strchr(p, '}');
            char stop = close[1]; /* the literal after the parameter, or '\0' */
            const char *v = s;

            while (s < end && *s != '/' && *s != stop)
                s++;
            if (s == v || n == ROUTE_PARAMS_MAX)
                return false;
            params[n++] = (struct route_param){p + 1, (size_t)(close - p - 1), v,
                                               (size_t)(s - v)};
            p = close + 1;
        } else {
            if (s == end || *s != *p)
                return false;
            p++;
            s++;
        }
    }
    if (s != end)
        return false;
    *nparams = n;
    return true;
}

enum route_result routes_match(const struct route_table *t, const char *method,
                               const char *path, size_t path_len, const struct route **route,
                               struct route_param *params, int *nparams, char *allow,
                               size_t allow_size)
{
    struct route_param scratch[ROUTE_PARAMS_MAX];
    bool path_known = false;
    size_t used = 0;
    int ns;

    if (path_len > 1 && path[path_len - 1] == '/')
        path_len--;
    if (allow_size)
        allow[0] = '\0';
    for (int i = 0; i < t->n; i++) {
        const struct route *r = &t->routes[i];

        if (strcmp(r->method, method) == 0) {
            if (match(r->pattern, path, path_len, params, nparams)) {
                *route = r;
                return ROUTE_FOUND;
            }
        } else if (match(r->pattern, path, path_len, scratch, &ns)) {
            if (!path_known)
                *route = r;
            path_known = true;
            if (!strstr(allow, r->method) && used + strlen(r->method) + 3 < allow_size)
                used += (size_t)snprintf(allow + used, allow_size - used, "%s%s",
                                         used ? ", " : "", r->method);
        }
    }
    return path_known ? ROUTE_NO_METHOD : ROUTE_NO_PATH;
}
