/* cfg.c - configuration from environment variables: one table per binary,
 * read and validated once at start. */
#include "cfg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int cfg_parse_int(const char *s, long min, long max, long *out)
{
    char *end;
    long v;

    if (s == NULL || *s == '\0' || *s == ' ' || *s == '+')
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int cfg_load(const struct cfg_key *keys, size_t n, FILE *err)
{
    for (size_t i = 0; i < n; i++) {
        const struct cfg_key *k = &keys[i];
        const char *v = getenv(k->name);

        if (v == NULL || *v == '\0')
            v = k->def;
        switch (k->type) {
        case CFG_T_STR:
            *(const char **)k->dst = v;
            break;
        case CFG_T_INT:
            if (cfg_parse_int(v, k->min, k->max, (long *)k->dst) != 0) {
                fprintf(err, "%s: '%s' is not a whole number from %ld to %ld\n", k->name, v,
                        k->min, k->max);
                return -1;
            }
            break;
        }
    }
    return 0;
}

void cfg_print(const struct cfg_key *keys, size_t n, FILE *out)
{
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%s\t%s\t%s\n", keys[i].name, keys[i].def, keys[i].help);
}
