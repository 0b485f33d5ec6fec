/* cfg.h - configuration from environment variables: one table per binary,
 * read and validated once at start, immutable afterwards. */
#ifndef CORE_CFG_H
#define CORE_CFG_H

#include <stddef.h>
#include <stdio.h>

enum cfg_type { CFG_T_STR, CFG_T_INT };

struct cfg_key {
    const char *name;  /* the environment variable */
    enum cfg_type type;
    const char *def;   /* default, as text */
    long min, max;     /* inclusive bounds, CFG_T_INT only */
    void *dst;         /* const char ** or long * */
    const char *help;  /* one line for the README and --help */
};

#define CFG_STR(name, dst, def, help) {name, CFG_T_STR, def, 0, 0, dst, help}
#define CFG_INT(name, dst, def, min, max, help) {name, CFG_T_INT, def, min, max, dst, help}

/* Reads every key of 'keys' from the environment (or its default). On the
 * first bad value writes "NAME: reason" to 'err' and returns -1. Strings are
 * borrowed from the environment or the table and live as long as the process. */
int cfg_load(const struct cfg_key *keys, size_t n, FILE *err);

/* Parses a whole decimal integer in [min, max]; 0 on success, -1 otherwise
 * ('out' untouched). */
int cfg_parse_int(const char *s, long min, long max, long *out);

/* Prints the table as "NAME<TAB>default<TAB>help" lines (for --config). */
void cfg_print(const struct cfg_key *keys, size_t n, FILE *out);

#endif
