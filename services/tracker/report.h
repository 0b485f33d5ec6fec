/* report.h - POST /api/items:report: the active work items, emailed as the
 * original did (seed 002, report.py), through the notifier. */
#ifndef TRACKER_REPORT_H
#define TRACKER_REPORT_H

#include "cfg.h"
#include "service.h"

extern const struct cfg_key report_cfg[]; /* MAIL_FROM */

/* The service's start hook: refuses a MAIL_FROM the notifier would refuse. */
int report_start(const struct service_ctx *ctx);

void items_report(struct request *req);

#endif
