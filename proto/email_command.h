/* email_command.h - the notifier's command subject (proto/notifier.md): what a
 * sender publishes to JetStream to have an email sent. */
#ifndef PROTO_EMAIL_COMMAND_H
#define PROTO_EMAIL_COMMAND_H

#define NOTIFIER_SEND_SUBJECT "notifier.email.send"  /* the command */
#define NOTIFIER_STREAM_SUBJECTS "notifier.email.>"  /* what the stream holds */

#endif
