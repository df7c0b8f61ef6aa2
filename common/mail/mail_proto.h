/*
 * mail_proto.h - names shared by relayq's processes: sockets, protocols,
 * record types and queue subdirectories
 */
#ifndef RELAYQ_MAIL_PROTO_H
#define RELAYQ_MAIL_PROTO_H

/* Queue subdirectories. */
#define QDIR_MAILDROP "maildrop" /* new mail from the sendmail command */
#define QDIR_PRIVATE "private"   /* sockets only relayq's processes use */
#define QDIR_PUBLIC "public"     /* sockets the commands use */
#define QDIR_PID "pid"           /* master's lock and pid file */
#define QDIR_DB "db"             /* the LMDB environment */
#define QDIR_CORRUPT "corrupt"   /* maildrop files that could not be read */

/* Sockets, relative to the queue directory. */
#define SOCK_QMGR "private/qmgr"      /* pickup wake-ups, smtpout workers */
#define SOCK_CONTROL "public/control" /* relayq commands -> qmgr */
#define SOCK_PICKUP "public/pickup"   /* sendmail wake-ups -> pickup */
#define SOCK_MASTER "public/master"   /* relayq status -> master */

/* Protocols announced in the server's hello record. */
#define PROTO_QMGR "relayq-qmgr-1"
#define PROTO_CONTROL "relayq-control-1"
#define PROTO_PICKUP "relayq-pickup-1"
#define PROTO_MASTER "relayq-master-1"

/*
 * public/pickup: the sendmail command sends "wakeup" after it drops a file
 * in maildrop/, or hands a message over whole: "submit size=N" followed
 * by N bytes in a maildrop file's form (at most PICKUP_SUBMIT_MAX), then
 * waits for "queued queue_id=QID" (committed) or "refused
 * status=tempfail|nospace|rejected reason=TEXT".
 */
#define PICKUP_SUBMIT_MAX (1024 * 1024)

/* Master's lock file, relative to the queue directory. */
#define MASTER_LOCK_FILE "pid/master.pid"

#endif
