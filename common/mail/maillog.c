/*
 * maillog - apply a daemon's logging parameters: syslog_name, maillog_file
 *
 * maillog_start()
 *	at start-up, after the configuration is loaded: log lines are tagged
 *	"SYSLOG_NAME/PROGRAM[PID]:" and go to maillog_file (empty: syslog).
 *	A log file that cannot be opened is fatal: the daemon would run blind.
 * maillog_reload()
 *	after a reload (SIGHUP): the same, with maillog_file opened again even
 *	when its name did not change, so that "relayq reload" after a log file
 *	was renamed away (rotation without copytruncate) moves every process
 *	to a new file at the configured name. A file that cannot be opened is
 *	a warning; lines go where they went before.
 *
 * Both read the process-wide configuration (params_load()).
 */
#include "config.h"

#include "maillog.h"
#include "msg.h"
#include "params.h"

/* maillog_start - the first log destination, or die */
void maillog_start(void)
{
    if (msg_set_log(var_str(syslog_name), var_str(maillog_file)) < 0)
        msg_fatal("open maillog_file %s: %m", var_str(maillog_file));
}

/* maillog_reload - follow the configuration's log destination again */
void maillog_reload(void)
{
    if (msg_set_log(var_str(syslog_name), var_str(maillog_file)) < 0)
        msg_warn("open maillog_file %s: %m; logging where it did before", var_str(maillog_file));
}
