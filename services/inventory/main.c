/* main.c - the inventory service: EC2 instances and their packages (seed 001). */
#include "errbody.h"
#include "inventory.h"
#include "sql.h"

const char *const inventory_sql[SQL_COUNT] = {
#define X(name, text) [SQL_##name] = text,
    INVENTORY_SQL(X)
#undef X
};

/* The original answered every error as {"error_message": str(exception)}. */
static json_t *error_body(int status, const char *message)
{
    return errbody(ERRBODY_ERROR_MESSAGE, status, message);
}

static const struct endpoint endpoints[] = {
    {"inventory.instance.add", inventory_add},
    {"inventory.instance.get", inventory_get},
    {"inventory.instance.delete", inventory_delete},
    {"inventory.instances.running", inventory_running},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    static const struct service_def inventory = {
        .name = "inventory",
        .endpoints = endpoints,
        .sql = inventory_sql,
        .nsql = SQL_COUNT,
        .error_body = error_body,
    };

    return service_run(&inventory, argc, argv);
}
