/* errbody.c - see errbody.h. */
#include "errbody.h"

#include <string.h>

static const char *const names[] = {
    [ERRBODY_ERROR] = "error",
    [ERRBODY_CHALICE] = "chalice",
    [ERRBODY_ERROR_MESSAGE] = "error_message",
};

int errbody_style_of(const char *name)
{
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(name, names[i]) == 0)
            return (int)i;
    return -1;
}

/* Chalice's exception names for a status. */
static const char *chalice_code(int status)
{
    switch (status) {
    case 400: return "BadRequestError";
    case 404: return "NotFoundError";
    case 405: return "MethodNotAllowedError";
    case 409: return "ConflictError";
    case 413: return "RequestEntityTooLargeError";
    case 415: return "UnsupportedMediaType";
    case 502: return "BadGatewayError";
    case 503: return "ServiceUnavailableError";
    case 504: return "GatewayTimeoutError";
    default: return status < 500 ? "BadRequestError" : "InternalServerError";
    }
}

json_t *errbody(enum errbody_style style, int status, const char *message)
{
    switch (style) {
    case ERRBODY_CHALICE:
        return json_pack("{s:s, s:s}", "Code", chalice_code(status), "Message", message);
    case ERRBODY_ERROR_MESSAGE:
        return json_pack("{s:s}", "error_message", message);
    case ERRBODY_ERROR:
    default:
        return json_pack("{s:s}", "error", message);
    }
}
