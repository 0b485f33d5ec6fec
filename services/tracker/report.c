/* report.c - POST /api/items:report {"email"}: renders the active work items
 * as the original's templates did (seed-apis.md §3.3) and hands the email to
 * the notifier: a command on JetStream (proto/notifier.md), answered
 * {"MessageId"} once the stream has stored it. Ten items or fewer: an HTML
 * table and the CSV as the text part; more: the CSV as work_items.csv. */
#include "report.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "email_command.h"
#include "js.h"
#include "log.h"
#include "mime.h"
#include "sql.h"
#include "strbuf.h"

#define INLINE_MAX 10                 /* more items go in an attachment */
#define COMMAND_MAX (1536 * 1024)     /* below NATS's max_payload (2 MB, deploy/) */
#define RULE "----------------------------------------------------------------------"

static const char *mail_from;

const struct cfg_key report_cfg[] = {
    CFG_STR("MAIL_FROM", &mail_from, "noreply@example.com", "sender of the work-items report"),
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

int report_start(const struct service_ctx *ctx)
{
    if (!mime_address_ok(mail_from)) {
        log_error(NULL, "MAIL_FROM '%s' is not an email address", mail_from);
        return -1;
    }
    return 0;
}

/* Row columns, in ITEM_COLUMNS order. */
enum { COL_ID, COL_DESCRIPTION, COL_GUIDE, COL_STATUS, COL_USERNAME, COL_ARCHIVED };

static const struct field report_fields[] = {
    {"email", F_STRING, true, 254},
    {NULL, 0, false, 0},
};

/* Python's csv module, QUOTE_MINIMAL: quoted when it holds , " CR or LF. */
static void csv_field(struct strbuf *b, const char *v, const char *sep)
{
    if (strpbrk(v, ",\"\r\n") == NULL) {
        sb_printf(b, "%s%s", v, sep);
        return;
    }
    sb_adds(b, "\"");
    for (; *v; v++)
        sb_adds(b, *v == '"' ? "\"\"" : (char[]){*v, '\0'});
    sb_printf(b, "\"%s", sep);
}

static void render_csv(struct strbuf *b, const PGresult *res)
{
    sb_adds(b, "description,guide,status,username,archived\r\n");
    for (int i = 0; i < PQntuples(res); i++) {
        csv_field(b, PQgetvalue(res, i, COL_DESCRIPTION), ",");
        csv_field(b, PQgetvalue(res, i, COL_GUIDE), ",");
        csv_field(b, PQgetvalue(res, i, COL_STATUS), ",");
        csv_field(b, PQgetvalue(res, i, COL_USERNAME), ",");
        sb_adds(b, PQgetvalue(res, i, COL_ARCHIVED)[0] == 't' ? "True\r\n" : "False\r\n");
    }
}

/* Jinja's autoescape (markupsafe). */
static void html_text(struct strbuf *b, const char *v)
{
    for (; *v; v++) {
        switch (*v) {
        case '&': sb_adds(b, "&amp;"); break;
        case '<': sb_adds(b, "&lt;"); break;
        case '>': sb_adds(b, "&gt;"); break;
        case '"': sb_adds(b, "&#34;"); break;
        case '\'': sb_adds(b, "&#39;"); break;
        default: sb_add(b, v, 1); break;
        }
    }
}

/* templates/report.html as Flask rendered it, whitespace included. */
static void render_html(struct strbuf *b, const PGresult *res, const char *snapshot)
{
    static const char *const cols[] = {"Description", "Guide", "Status", "User name", "Archived"};
    int n = PQntuples(res);

    sb_printf(b, "<!doctype html>\n<html lang=\"en\">\n  <head>\n    <meta charset=\"utf-8\">\n"
                 "    <title>Work items</title>\n  </head>\n  <body>\n    <h1>Work items</h1>\n"
                 "    <p>%s</p>\n    \n", snapshot);
    if (n > INLINE_MAX) {
        sb_adds(b, "    <p>See attachment for work items table.</p>\n    \n  </body>\n</html>");
        return;
    }
    sb_adds(b, "    <hr/>\n    <table class=\"table\">\n      <thead>\n      <tr>\n");
    for (int c = 0; c < 5; c++)
        sb_printf(b, "        <th scope=\"col\">%s</th>\n", cols[c]);
    sb_adds(b, "      </tr>\n      </thead>\n      <tbody>\n      ");
    for (int i = 0; i < n; i++) {
        sb_adds(b, "\n      <tr>\n");
        for (int c = COL_DESCRIPTION; c <= COL_USERNAME; c++) {
            sb_adds(b, "        <td>");
            html_text(b, PQgetvalue(res, i, c));
            sb_adds(b, "</td>\n");
        }
        sb_printf(b, "        <td>%s</td>\n      </tr>\n      ",
                  PQgetvalue(res, i, COL_ARCHIVED)[0] == 't' ? "Yes" : "No");
    }
    sb_adds(b, "\n      </tbody>\n    </table>\n    \n  </body>\n</html>");
}

/* templates/report.txt: the CSV itself, or a pointer to the attachment. */
static void render_text(struct strbuf *b, int n, const char *snapshot, const struct strbuf *csv)
{
    sb_printf(b, "Work items\n\n%s\n" RULE "\n", snapshot);
    if (n > INLINE_MAX)
        sb_adds(b, "See attachment for work items table.");
    else
        sb_add(b, csv->data, csv->len);
}

static int new_id(char out[37])
{
    unsigned char r[16];

    if (uv_random(NULL, NULL, r, sizeof(r), 0, NULL) != 0)
        return -1;
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40); /* version 4 */
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12],
             r[13], r[14], r[15]);
    return 0;
}

static void on_queued(void *arg, enum js_status status, const char *why)
{
    struct request *req = arg;

    if (status != JS_OK) {
        log_warn(req->id, "report email %s not queued: %s", (char *)req->data, why);
        request_error(req, 503, "The email service is not available; try again later.");
        return;
    }
    log_info(req->id, "report email %s queued", (char *)req->data);
    request_reply(req, 200, json_pack("{s:s}", "MessageId", (char *)req->data));
}

static void on_items(struct request *req, const struct db_result *r)
{
    struct strbuf csv = {0}, html = {0}, text = {0}, b64 = {0};
    const char *why;
    char snapshot[96], when[32], *command;
    json_t *cmd;
    time_t now = time(NULL);
    struct tm tm;
    int n;

    if (r->err) {
        request_db_error(req, r);
        return;
    }
    n = PQntuples(r->res);
    localtime_r(&now, &tm);
    strftime(when, sizeof(when), "%H:%M on %b %d %Y", &tm);
    snprintf(snapshot, sizeof(snapshot), "Snapshot of %d active work items taken at %s.", n, when);
    render_csv(&csv, r->res);
    render_html(&html, r->res, snapshot);
    render_text(&text, n, snapshot, &csv);
    req->data = request_alloc(req, 37);
    if (new_id(req->data) != 0) {
        request_error(req, 500, "An email error occurred.");
        goto out;
    }
    cmd = json_pack("{s:s, s:s, s:[s], s:s, s:s, s:s, s:s}", "id", (char *)req->data, "from",
                    mail_from, "to", field_text(request_json(req, &why), "email"),
                    "subject", "Work items", "text", text.data, "html", html.data,
                    "requestId", req->id);
    if (cmd == NULL) { /* only on text that is not UTF-8 */
        request_error(req, 500, "An email error occurred.");
        goto out;
    }
    if (n > INLINE_MAX) {
        mime_base64(&b64, csv.data, csv.len);
        json_object_set_new(cmd, "attachments",
                            json_pack("[{s:s, s:s, s:s}]", "filename", "work_items.csv",
                                      "contentType", "application/octet-stream", "content",
                                      b64.data));
    }
    command = json_dumps(cmd, JSON_COMPACT);
    json_decref(cmd);
    if (command == NULL || strlen(command) > COMMAND_MAX) {
        log_warn(req->id, "report of %d items: too large to send", n);
        request_error(req, 500, "An email error occurred.");
    } else {
        js_publish(req->bus, NOTIFIER_SEND_SUBJECT, req->data, command, (int)strlen(command),
                   on_queued, req);
    }
    free(command);
out:
    sb_free(&csv);
    sb_free(&html);
    sb_free(&text);
    sb_free(&b64);
}

void items_report(struct request *req)
{
    json_t *body = request_body(req, report_fields);
    const char *email;

    if (body == NULL)
        return;
    email = field_text(body, "email");
    if (!mime_address_ok(email)) {
        request_error(req, 400, "Field 'email' is not an email address.");
        return;
    }
    request_query_db(req, SQL_ITEMS_LIST_BY_ARCHIVED, 1, (const char *[]){"false"}, on_items);
}
