/* test_cfg.c - configuration parsing: defaults, bounds, bad values. */
#include <stdlib.h>

#include "cfg.h"
#include "test.h"

static const char *url;
static long port, pool;

static const struct cfg_key keys[] = {
    CFG_STR("T_URL", &url, "nats://127.0.0.1:4222", "url"),
    CFG_INT("T_PORT", &port, "8080", 1, 65535, "port"),
    CFG_INT("T_POOL", &pool, "4", 1, 64, "pool"),
};

int main(void)
{
    long v = 7;
    FILE *devnull = fopen("/dev/null", "w");

    CHECK(cfg_parse_int("42", 0, 100, &v) == 0 && v == 42);
    CHECK(cfg_parse_int("-1", -5, 5, &v) == 0 && v == -1);
    CHECK(cfg_parse_int("101", 0, 100, &v) == -1 && v == -1);
    CHECK(cfg_parse_int("", 0, 100, &v) == -1);
    CHECK(cfg_parse_int("12abc", 0, 100, &v) == -1);
    CHECK(cfg_parse_int(" 12", 0, 100, &v) == -1);
    CHECK(cfg_parse_int("+12", 0, 100, &v) == -1);
    CHECK(cfg_parse_int("99999999999999999999", 0, 100, &v) == -1);

    unsetenv("T_URL");
    unsetenv("T_PORT");
    unsetenv("T_POOL");
    CHECK(cfg_load(keys, 3, devnull) == 0);
    CHECK(port == 8080 && pool == 4);

    setenv("T_PORT", "9090", 1);
    setenv("T_URL", "nats://x:1", 1);
    CHECK(cfg_load(keys, 3, devnull) == 0);
    CHECK(port == 9090);

    setenv("T_PORT", "70000", 1);
    CHECK(cfg_load(keys, 3, devnull) == -1);
    setenv("T_PORT", "eighty", 1);
    CHECK(cfg_load(keys, 3, devnull) == -1);
    setenv("T_PORT", "", 1); /* empty means default */
    CHECK(cfg_load(keys, 3, devnull) == 0 && port == 8080);

    fclose(devnull);
    return test_done();
}
