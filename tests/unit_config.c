/*
 * unit_config - table tests of the configuration file parser and relayq's
 * parameter registry
 *
 * Each file case is the text of a configuration file (written to a fresh
 * temporary directory, never the source tree), the table to read it with,
 * and either the exact error line ("%F" stands for the file name) or the
 * values expected: "name=text" compares config_str(), "name#N"
 * config_int(), "name?B" config_bool(), separated by ";". Files too large
 * to write inline are generated. Then config_defaults(), config_set(),
 * the relayhost parser, params_default_path(), params_load() and the
 * panics on caller bugs.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cfgfile.h"
#include "params.h"
#include "tap.h"
#include "vstr.h"

/* check_lower - an extra check: no upper-case letters */
static int check_lower(const char *value, VSTR *why)
{
    for (; *value; value++) {
        if (*value >= 'A' && *value <= 'Z') {
            vstr_strcpy(why, "must be lower case");
            return -1;
        }
    }
    return 0;
}

/* A generic table that knows nothing of mail. */
static const CONFIG_PARAM test_table[] = {
    {"t_str", CONFIG_STR, "hello", 0, 0, NULL, NULL},
    {"t_ref", CONFIG_STR, "$t_str world", 0, 0, NULL, NULL},
    {"t_int", CONFIG_INT, "5", -10, 100, NULL, NULL},
    {"t_big", CONFIG_INT, "0", LONG_MIN, LONG_MAX, NULL, NULL},
    {"t_time", CONFIG_TIME, "30s", 0, 30 * 86400, NULL, NULL},
    {"t_size", CONFIG_SIZE, "1k", 0, LONG_MAX, NULL, NULL},
    {"t_bool", CONFIG_BOOL, "no", 0, 1, NULL, NULL},
    {"t_enum", CONFIG_ENUM, "may", 0, 0, "none,may,encrypt", NULL},
    {"t_lower", CONFIG_STR, "", 0, 0, NULL, check_lower},
    {"t_e0", CONFIG_STR, "", 0, 0, NULL, NULL},
    {"t_e1", CONFIG_STR, "", 0, 0, NULL, NULL},
    {"t_e2", CONFIG_STR, "", 0, 0, NULL, NULL},
    {"T_Mixed9", CONFIG_STR, "", 0, 0, NULL, NULL},
    {NULL, CONFIG_STR, NULL, 0, 0, NULL, NULL},
};

/* A file text with NUL bytes: the text and its length. */
#define BIN(text) text, sizeof(text) - 1

#define T 0 /* test_table */
#define P 1 /* params_table */
#define H 2 /* params_table through params_read(): with the Postfix hints */

/* One configuration file and what loading it must give. */
struct file_case {
    const char *name;
    int table;
    const char *text;
    size_t len;         /* 0: strlen(text) */
    const char *why;    /* exact error with %F for the path, or NULL */
    const char *expect; /* checks when it loads */
};

static const struct file_case file_cases[] = {
    /* Files that load. */
    {"empty file: all defaults", T, "", 0, NULL,
     "t_str=hello;t_ref=hello world;t_int#5;t_big#0;t_time#30;t_size#1024;t_bool?0;"
     "t_enum=may;t_lower="},
    {"comments and blank lines", T, "# comment\n\n   \n\t# indented comment\nt_str = x\n", 0, NULL,
     "t_str=x;t_ref=x world"},
    {"no blanks around =", T, "t_str=x\n", 0, NULL, "t_str=x"},
    {"value trimmed", T, "t_str =   a  b \t \n", 0, NULL, "t_str=a  b"},
    {"empty value", T, "t_str =\n", 0, NULL, "t_str=;t_ref= world"},
    {"value with =", T, "t_str = a=b\n", 0, NULL, "t_str=a=b"},
    {"# inside a value is text", T, "t_str = a # b\n", 0, NULL, "t_str=a # b"},
    {"continuation lines joined with one space", T, "t_str = a\n  b\n\t\tc  \n", 0, NULL,
     "t_str=a b c"},
    {"continuation across comments and blanks", T, "t_str = a\n# note\n\n  b\nt_int = 3\n", 0, NULL,
     "t_str=a b;t_int#3"},
    {"continuation of the last line without newline", T, "t_str = a\n b", 0, NULL, "t_str=a b"},
    {"CRLF line ends", T, "t_str = x\r\nt_int = 7\r\n", 0, NULL, "t_str=x;t_int#7"},
    {"last line without newline", T, "t_int = 9", 0, NULL, "t_int#9"},
    {"last assignment wins", T, "t_int = 1\nt_int = 2\n", 0, NULL, "t_int#2"},
    {"later bad value replaced by a good one", T, "t_int = abc\nt_int = 2\n", 0, NULL, "t_int#2"},
    {"$$ is a literal $", T, "t_str = a$$b$$\n", 0, NULL, "t_str=a$b$"},
    {"$$name is not expanded", T, "t_str = $$t_int\n", 0, NULL, "t_str=$t_int"},
    {"${name}", T, "t_str = ${t_int}x\n", 0, NULL, "t_str=5x"},
    {"$(name)", T, "t_str = $(t_int)x\n", 0, NULL, "t_str=5x"},
    {"$name ends at a non-name byte", T, "t_str = <$t_int>\n", 0, NULL, "t_str=<5>"},
    {"forward reference", T, "t_str = $t_enum\nt_enum = encrypt\n", 0, NULL,
     "t_str=encrypt;t_ref=encrypt world"},
    {"chained references", T, "t_e0 = a\nt_e1 = $t_e0$t_e0\nt_e2 = ${t_e1}-$t_e1\n", 0, NULL,
     "t_e2=aa-aa"},
    {"reference to a number gets its text", T, "t_str = $t_time\nt_time = 2h\n", 0, NULL,
     "t_str=2h;t_time#7200"},
    {"enum is case-insensitive, table spelling returned", T, "t_enum = ENCRYPT\n", 0, NULL,
     "t_enum=encrypt"},
    {"time units", T, "t_time = 1w\n", 0, NULL, "t_time#604800"},
    {"time minutes", T, "t_time = 5m\n", 0, NULL, "t_time#300"},
    {"time days", T, "t_time = 2d\n", 0, NULL, "t_time#172800"},
    {"time without unit", T, "t_time = 0\n", 0, NULL, "t_time#0"},
    {"size units", T, "t_size = 2m\n", 0, NULL, "t_size#2097152"},
    {"size G", T, "t_size = 3G\n", 0, NULL, "t_size#3221225472"},
    {"size bytes", T, "t_size = 0\n", 0, NULL, "t_size#0"},
    {"bool yes", T, "t_bool = yes\n", 0, NULL, "t_bool?1;t_bool#1"},
    {"bool YES", T, "t_bool = YES\n", 0, NULL, "t_bool?1"},
    {"negative int", T, "t_int = -10\n", 0, NULL, "t_int#-10"},
    {"LONG_MIN", T, "t_big = -9223372036854775808\n", 0, NULL, "t_big#-9223372036854775808"},
    {"LONG_MAX", T, "t_big = 9223372036854775807\n", 0, NULL, "t_big#9223372036854775807"},
    {"leading zeros", T, "t_int = 007\n", 0, NULL, "t_int#7"},
    {"mixed-case name", T, "T_Mixed9 = v\n", 0, NULL, "T_Mixed9=v"},
    {"extra check passes", T, "t_lower = abc\n", 0, NULL, "t_lower=abc"},
    {"relayq defaults", P, "", 0, NULL,
     "queue_directory=/var/spool/relayq;mail_owner=relayq;smtpout_workers#4;"
     "smtp_connect_timeout#30;maximal_queue_lifetime#432000;queue_map_size#1073741824;"
     "message_size_limit#10240000;smtp_tls_security_level=may;smtp_tls_wrappermode?0;"
     "smtp_connection_reuse_count_limit#1000;relayhost=;syslog_name=relayq"},
    {"syslog_name of a second instance", P, "syslog_name = relayq-eu/out_2.x\n", 0, NULL,
     "syslog_name=relayq-eu/out_2.x"},
    {"relayq file", P,
     "# relayq\nrelayhost = [smtp.example.com]:587\nsmtp_connect_timeout = 1m\n"
     "message_size_limit = 50m\nsmtp_tls_security_level = verify\n"
     "smtp_sasl_auth_enable = yes\nmyhostname = mx.example.com\n",
     0, NULL,
     "relayhost=[smtp.example.com]:587;smtp_connect_timeout#60;message_size_limit#52428800;"
     "smtp_tls_security_level=verify;smtp_sasl_auth_enable?1;myorigin=mx.example.com;"
     "smtp_helo_name=mx.example.com"},
    {"queue_map_size at its maximum", P, "queue_map_size = 1024g\n", 0, NULL,
     "queue_map_size#1099511627776"},
    {"reuse count 0 means no limit", P, "smtp_connection_reuse_count_limit = 0\n", 0, NULL,
     "smtp_connection_reuse_count_limit#0"},
    {"helo name address literal", P, "smtp_helo_name = [192.0.2.1]\n", 0, NULL,
     "smtp_helo_name=[192.0.2.1]"},

    /* Syntax errors. */
    {"unknown parameter", P, "# x\n\nsmtp_foo = 1\n", 0, "%F:3: unknown parameter \"smtp_foo\"",
     NULL},
    {"unknown parameter in generic table", T, "t_int = 1\nt_foo = 1\n", 0,
     "%F:2: unknown parameter \"t_foo\"", NULL},
    {"names are case-sensitive", T, "T_STR = 1\n", 0, "%F:1: unknown parameter \"T_STR\"", NULL},
    {"missing =", T, "t_str x\n", 0, "%F:1: missing \"=\" after \"t_str\"", NULL},
    {"lone word", T, "\n\njustaword\n", 0, "%F:3: missing \"=\" after \"justaword\"", NULL},
    {"missing name", T, "= x\n", 0, "%F:1: missing parameter name before \"=\"", NULL},
    {"indented \"= x\" continues the line before", T, "  \nt_int = 1\n \t = x\n", 0,
     "%F:2: bad value \"1 = x\" for t_int: not a decimal integer", NULL},
    {"space inside name", T, "t str = x\n", 0, "%F:1: bad parameter name \"t str\"", NULL},
    {"hyphen in name", T, "t-str = x\n", 0, "%F:1: bad parameter name \"t-str\"", NULL},
    {"indented first line", T, "  t_str = x\n", 0, "%F:1: indented line continues nothing", NULL},
    {"continuation of a line without =", T, "t_str\n  = x\n", 0, NULL, "t_str=x"},
    {"NUL byte", T, BIN("t_str = a\0b\n"), "%F:1: contains a NUL byte", NULL},
    {"NUL byte on line 3", T, BIN("# a\nt_int = 1\nt_str = \0\n"), "%F:3: contains a NUL byte",
     NULL},
    {"NUL byte in a comment", T, BIN("# a\0b\n"), "%F:1: contains a NUL byte", NULL},
    {"carriage return inside a line", T, "t_str = a\rb\n", 0, "%F:1: contains a carriage return",
     NULL},
    {"escape sequence", T, "t_str = \x1b[31mred\n", 0, "%F:1: contains a control character", NULL},
    {"DEL byte", T, "t_str = a\x7f\n", 0, "%F:1: contains a control character", NULL},
    {"form feed", T, "\f\n", 0, "%F:1: contains a control character", NULL},
    {"syntax error before value error", T, "t_int = abc\nt_foo = 1\n", 0,
     "%F:2: unknown parameter \"t_foo\"", NULL},

    /* Bad values. */
    {"not a time (spec example)", P, "# x\nmyorigin = a\nsmtp_connect_timeout = abc\n", 0,
     "%F:3: bad value \"abc\" for smtp_connect_timeout: not a time (number with optional unit "
     "s, m, h, d, w)",
     NULL},
    {"below the minimum (spec example)", P, "smtpout_workers = 0\n", 0,
     "%F:1: 0 is below the minimum 1 for smtpout_workers", NULL},
    {"above the maximum", P, "smtpout_workers = 257\n", 0,
     "%F:1: 257 is above the maximum 256 for smtpout_workers", NULL},
    {"time above the maximum", P, "smtp_connect_timeout = 2h\n", 0,
     "%F:1: 2h is above the maximum 3600s for smtp_connect_timeout", NULL},
    {"time below the minimum", P, "smtp_connect_timeout = 0s\n", 0,
     "%F:1: 0s is below the minimum 1s for smtp_connect_timeout", NULL},
    {"size above the maximum", P, "message_size_limit = 2g\n", 0,
     "%F:1: 2g is above the maximum 1073741824 bytes for message_size_limit", NULL},
    {"size below the minimum", P, "queue_map_size = 1023k\n", 0,
     "%F:1: 1023k is below the minimum 1048576 bytes for queue_map_size", NULL},
    {"bad time unit", T, "t_time = 5x\n", 0,
     "%F:1: bad value \"5x\" for t_time: not a time (number with optional unit s, m, h, d, w)",
     NULL},
    {"time unit upper case", T, "t_time = 5S\n", 0,
     "%F:1: bad value \"5S\" for t_time: not a time (number with optional unit s, m, h, d, w)",
     NULL},
    {"time with space before unit", T, "t_time = 5 s\n", 0,
     "%F:1: bad value \"5 s\" for t_time: not a time (number with optional unit s, m, h, d, w)",
     NULL},
    {"time with two units", T, "t_time = 5ss\n", 0,
     "%F:1: bad value \"5ss\" for t_time: not a time (number with optional unit s, m, h, d, "
     "w)",
     NULL},
    {"negative time", T, "t_time = -5s\n", 0,
     "%F:1: bad value \"-5s\" for t_time: not a time (number with optional unit s, m, h, d, "
     "w)",
     NULL},
    {"unit without number", T, "t_time = s\n", 0,
     "%F:1: bad value \"s\" for t_time: not a time (number with optional unit s, m, h, d, w)",
     NULL},
    {"empty time", T, "t_time =\n", 0,
     "%F:1: bad value \"\" for t_time: not a time (number with optional unit s, m, h, d, w)", NULL},
    {"time overflow in the unit", T, "t_time = 30000000000000000w\n", 0,
     "%F:1: bad value \"30000000000000000w\" for t_time: time out of range", NULL},
    {"time overflow in the number", T, "t_time = 99999999999999999999\n", 0,
     "%F:1: bad value \"99999999999999999999\" for t_time: time out of range", NULL},
    {"time within range before the unit, above after", T, "t_time = 31d\n", 0,
     "%F:1: 31d is above the maximum 2592000s for t_time", NULL},
    {"int overflow", T, "t_int = 99999999999999999999\n", 0,
     "%F:1: bad value \"99999999999999999999\" for t_int: number out of range", NULL},
    {"LONG_MAX + 1", T, "t_big = 9223372036854775808\n", 0,
     "%F:1: bad value \"9223372036854775808\" for t_big: number out of range", NULL},
    {"LONG_MIN - 1", T, "t_big = -9223372036854775809\n", 0,
     "%F:1: bad value \"-9223372036854775809\" for t_big: number out of range", NULL},
    {"int with plus", T, "t_int = +5\n", 0,
     "%F:1: bad value \"+5\" for t_int: not a decimal integer", NULL},
    {"int hex", T, "t_int = 0x10\n", 0, "%F:1: bad value \"0x10\" for t_int: not a decimal integer",
     NULL},
    {"int minus only", T, "t_int = -\n", 0,
     "%F:1: bad value \"-\" for t_int: not a decimal integer", NULL},
    {"int exponent", T, "t_int = 1e3\n", 0,
     "%F:1: bad value \"1e3\" for t_int: not a decimal integer", NULL},
    {"int two numbers", T, "t_int = 5 6\n", 0,
     "%F:1: bad value \"5 6\" for t_int: not a decimal integer", NULL},
    {"int with unit", T, "t_int = 5s\n", 0,
     "%F:1: bad value \"5s\" for t_int: not a decimal integer", NULL},
    {"int above the maximum", T, "t_int = 101\n", 0, "%F:1: 101 is above the maximum 100 for t_int",
     NULL},
    {"int below the minimum", T, "t_int = -11\n", 0, "%F:1: -11 is below the minimum -10 for t_int",
     NULL},
    {"bad size unit", T, "t_size = 1t\n", 0,
     "%F:1: bad value \"1t\" for t_size: not a size (number with optional unit k, m, g)", NULL},
    {"size overflow", T, "t_size = 9999999999g\n", 0,
     "%F:1: bad value \"9999999999g\" for t_size: size out of range", NULL},
    {"bool true", T, "t_bool = true\n", 0,
     "%F:1: bad value \"true\" for t_bool: not \"yes\" or \"no\"", NULL},
    {"bool 1", T, "t_bool = 1\n", 0, "%F:1: bad value \"1\" for t_bool: not \"yes\" or \"no\"",
     NULL},
    {"bool empty", T, "t_bool =\n", 0, "%F:1: bad value \"\" for t_bool: not \"yes\" or \"no\"",
     NULL},
    {"enum", T, "t_enum = maybe\n", 0,
     "%F:1: bad value \"maybe\" for t_enum: not one of none, may, encrypt", NULL},
    {"enum prefix", T, "t_enum = ma\n", 0,
     "%F:1: bad value \"ma\" for t_enum: not one of none, may, encrypt", NULL},
    {"enum with comma", T, "t_enum = none,may\n", 0,
     "%F:1: bad value \"none,may\" for t_enum: not one of none, may, encrypt", NULL},
    {"enum empty", T, "t_enum =\n", 0,
     "%F:1: bad value \"\" for t_enum: not one of none, may, encrypt", NULL},
    {"extra check", T, "t_lower = ABC\n", 0,
     "%F:1: bad value \"ABC\" for t_lower: must be lower case", NULL},
    {"extra check after expansion", T, "t_str = ABC\nt_lower = $t_str\n", 0,
     "%F:2: bad value \"ABC\" for t_lower: must be lower case", NULL},
    {"earliest bad line reported", T, "t_str = x\nt_int = abc\nt_bool = maybe\n", 0,
     "%F:2: bad value \"abc\" for t_int: not a decimal integer", NULL},
    {"bad relayhost", P, "relayhost = [x:25\n", 0,
     "%F:1: bad value \"[x:25\" for relayhost: missing \"]\"", NULL},
    {"bad relayhost port", P, "relayhost = smtp.example.com:0\n", 0,
     "%F:1: bad value \"smtp.example.com:0\" for relayhost: port must be a number from 1 to "
     "65535",
     NULL},
    {"bad tls level", P, "smtp_tls_security_level = secure\n", 0,
     "%F:1: bad value \"secure\" for smtp_tls_security_level: not one of none, may, encrypt, "
     "verify",
     NULL},
    {"relative queue directory", P, "queue_directory = spool\n", 0,
     "%F:1: bad value \"spool\" for queue_directory: not an absolute path", NULL},
    {"bad myhostname", P, "myhostname = my host\n", 0,
     "%F:1: bad value \"my host\" for myhostname: not a valid DNS name", NULL},
    {"syslog_name with a blank", P, "syslog_name = relayq eu\n", 0,
     "%F:1: bad value \"relayq eu\" for syslog_name: not a syslog name: 1 to 64 letters, digits, "
     "\".\", \"_\", \"-\" or \"/\", not starting with \"/\"",
     NULL},
    {"syslog_name with a bracket", P, "syslog_name = relayq[1]\n", 0,
     "%F:1: bad value \"relayq[1]\" for syslog_name: not a syslog name: 1 to 64 letters, digits, "
     "\".\", \"_\", \"-\" or \"/\", not starting with \"/\"",
     NULL},
    {"empty syslog_name", P, "syslog_name =\n", 0,
     "%F:1: bad value \"\" for syslog_name: not a syslog name: 1 to 64 letters, digits, "
     "\".\", \"_\", \"-\" or \"/\", not starting with \"/\"",
     NULL},
    {"long bad value quoted at 100 bytes", T,
     "t_int = 1234567890123456789012345678901234567890123456789012345678901234567890"
     "1234567890123456789012345678901234567890x\n",
     0,
     "%F:1: bad value \"1234567890123456789012345678901234567890123456789012345678901234567890"
     "123456789012345678901234567890\"... for t_int: number out of range",
     NULL},

    /* Expansion errors. */
    {"unknown parameter in expansion", T, "t_str = $nope\n", 0,
     "%F:1: unknown parameter \"nope\" in the value of t_str", NULL},
    {"unknown parameter in braces", T, "t_str = x${nope}y\n", 0,
     "%F:1: unknown parameter \"nope\" in the value of t_str", NULL},
    {"error on the line that holds the reference", T, "t_int = 1\nt_str = $t_e0\nt_e0 = $bad\n", 0,
     "%F:3: unknown parameter \"bad\" in the value of t_e0", NULL},
    {"bad value reported on its own line", T, "t_str = $t_int\nt_int = abc\n", 0,
     "%F:2: bad value \"abc\" for t_int: not a decimal integer", NULL},
    {"self reference", T, "t_str = x$t_str\n", 0, "%F:1: the value of t_str refers back to itself",
     NULL},
    {"cycle through a default", T, "t_str = $t_ref\n", 0,
     "%F:1: the value of t_str refers back to itself", NULL},
    {"cycle of three", T, "t_e0 = $t_e1\nt_e1 = $t_e2\nt_e2 = $t_e0\n", 0,
     "%F:1: the value of t_e0 refers back to itself", NULL},
    {"lone $", T, "t_str = a $ b\n", 0,
     "%F:1: bad value \"a $ b\" for t_str: \"$\" without a parameter name (write \"$$\" for a "
     "literal \"$\")",
     NULL},
    {"$ at the end", T, "t_str = a$\n", 0,
     "%F:1: bad value \"a$\" for t_str: \"$\" without a parameter name (write \"$$\" for a "
     "literal \"$\")",
     NULL},
    {"unterminated ${", T, "t_str = ${t_int\n", 0,
     "%F:1: bad value \"${t_int\" for t_str: missing closing bracket after \"$\"", NULL},
    {"mismatched brackets", T, "t_str = ${t_int)\n", 0,
     "%F:1: bad value \"${t_int)\" for t_str: bad parameter name after \"$\"", NULL},
    {"empty ${}", T, "t_str = ${}\n", 0,
     "%F:1: bad value \"${}\" for t_str: bad parameter name after \"$\"", NULL},
    {"conditional syntax not supported", T, "t_str = ${t_int?x}\n", 0,
     "%F:1: bad value \"${t_int?x}\" for t_str: bad parameter name after \"$\"", NULL},

    /* Every unknown name in one error, in file order. */
    {"two unknown names, both listed", T, "t_a = 1\nt_int = 2\nt_b = 3\n", 0,
     "%F:1: unknown parameter \"t_a\"; %F:3: unknown parameter \"t_b\"", NULL},
    {"unknown names, then the syntax error that stopped the reading", T,
     "t_a = 1\nt_b = 2\njustaword\nt_c = 3\n", 0,
     "%F:1: unknown parameter \"t_a\"; %F:2: unknown parameter \"t_b\"; %F:3: missing \"=\" "
     "after \"justaword\"",
     NULL},
    {"unknown names come before a bad value", T, "t_int = abc\nt_a = 1\n", 0,
     "%F:2: unknown parameter \"t_a\"", NULL},
    {"at most ten listed, then how many more", T,
     "a1=1\na2=1\na3=1\na4=1\na5=1\na6=1\na7=1\na8=1\na9=1\na10=1\na11=1\na12=1\n", 0,
     "%F:1: unknown parameter \"a1\"; %F:2: unknown parameter \"a2\"; %F:3: unknown parameter "
     "\"a3\"; %F:4: unknown parameter \"a4\"; %F:5: unknown parameter \"a5\"; %F:6: unknown "
     "parameter \"a6\"; %F:7: unknown parameter \"a7\"; %F:8: unknown parameter \"a8\"; %F:9: "
     "unknown parameter \"a9\"; %F:10: unknown parameter \"a10\"; and 2 more unknown parameters",
     NULL},
    {"no hints without params_read", P, "inet_interfaces = all\n", 0,
     "%F:1: unknown parameter \"inet_interfaces\"", NULL},
    {"three Postfix parameters: one error, each with its hint", H,
     "myhostname = a.example\ninet_interfaces = loopback-only\nmydestination =\n"
     "smtp_destination_concurrency_limit = 2\n",
     0,
     "%F:2: unknown parameter \"inet_interfaces\" (a Postfix parameter; in relayq use "
     "smtpd_listen, the SMTP listener's addresses); %F:3: unknown parameter "
     "\"mydestination\" (a Postfix parameter relayq does not need: it delivers nothing locally, "
     "it relays all mail); %F:4: unknown parameter \"smtp_destination_concurrency_limit\" (a "
     "Postfix parameter; in relayq use default_destination_concurrency_limit)",
     NULL},
    {"a prefix stands for a family of Postfix parameters", H,
     "smtpd_helo_restrictions = x\nvirtual_mailbox_maps = y\n", 0,
     "%F:1: unknown parameter \"smtpd_helo_restrictions\" (a Postfix parameter relayq does not "
     "implement: its SMTP listener takes the smtpd_ parameters relayq.conf(5) lists); %F:2: "
     "unknown parameter "
     "\"virtual_mailbox_maps\" (a Postfix parameter relayq does not need: it delivers nothing "
     "locally, it relays all mail)",
     NULL},
    {"Postfix and other unknown names together", H,
     "default_transport = smtp\nsmtp_fooo = 1\nsmtp_tls_cert_file = c.pem\n", 0,
     "%F:1: unknown parameter \"default_transport\" (a Postfix parameter; in relayq use "
     "relayhost, and transport_maps for routes by domain); %F:2: unknown parameter \"smtp_fooo\"; "
     "%F:3: unknown parameter \"smtp_tls_cert_file\" (a Postfix parameter relayq does not "
     "implement: it presents no client certificate)",
     NULL},
    {"a known parameter is never hinted", H, "smtp_sasl_password_maps = /etc/x\n", 0, NULL,
     "smtp_sasl_password_maps=/etc/x"},
};

static char tmpdir[256];
static int file_serial;

/* write_file - a fresh file in the test directory; its name */
static char *write_file(const char *data, size_t len)
{
    char *path = malloc(strlen(tmpdir) + 32);
    FILE *fp;

    sprintf(path, "%s/%d.conf", tmpdir, ++file_serial);
    if ((fp = fopen(path, "w")) == NULL || fwrite(data, 1, len, fp) != len || fclose(fp) != 0) {
        perror(path);
        exit(2);
    }
    return path;
}

/* expand_path - replace %F in a pattern */
static void expand_path(VSTR *out, const char *pattern, const char *path)
{
    const char *cp;

    vstr_reset(out);
    for (cp = pattern; *cp; cp++) {
        if (cp[0] == '%' && cp[1] == 'F') {
            vstr_strcat(out, path);
            cp++;
        } else {
            vstr_addch(out, *cp);
        }
    }
}

/* verify_values - run "name=text;name#N;name?B" checks; 0 or the failing item in why */
static int verify_values(const CONFIG *cfg, const char *checks, VSTR *why)
{
    char *copy = strdup(checks);
    char *item;
    char *save = NULL;
    char *op;
    int ok = 1;

    for (item = strtok_r(copy, ";", &save); item && ok; item = strtok_r(NULL, ";", &save)) {
        op = item + strcspn(item, "=#?");
        if (*op == '=') {
            *op = '\0';
            ok = strcmp(config_str(cfg, item), op + 1) == 0;
            if (!ok)
                vstr_sprintf(why, "%s is \"%s\"", item, config_str(cfg, item));
        } else if (*op == '#') {
            *op = '\0';
            ok = config_int(cfg, item) == strtol(op + 1, NULL, 10);
            if (!ok)
                vstr_sprintf(why, "%s is %ld", item, config_int(cfg, item));
        } else if (*op == '?') {
            *op = '\0';
            ok = config_bool(cfg, item) == atoi(op + 1);
            if (!ok)
                vstr_sprintf(why, "%s is %d", item, config_bool(cfg, item));
        }
    }
    free(copy);
    return ok ? 0 : -1;
}

/* run_file_cases - the table */
static void run_file_cases(void)
{
    VSTR *why = vstr_alloc(64);
    VSTR *expect = vstr_alloc(64);
    size_t i;

    for (i = 0; i < sizeof(file_cases) / sizeof(file_cases[0]); i++) {
        const struct file_case *c = file_cases + i;
        size_t len = c->len ? c->len : strlen(c->text);
        char *path = write_file(c->text, len);
        CONFIG *cfg;

        vstr_strcpy(why, "(none)");
        cfg = c->table == H ? params_read(path, why)
                            : config_load(c->table == P ? params_table : test_table, path, why);
        if (c->why != NULL) {
            expand_path(expect, c->why, path);
            tap_ok(cfg == NULL && strcmp(vstr_str(why), vstr_str(expect)) == 0, "%s (got: %s)",
                   c->name, vstr_str(why));
        } else {
            tap_ok(cfg != NULL && verify_values(cfg, c->expect, why) == 0 &&
                       strcmp(config_path(cfg), path) == 0,
                   "%s (%s)", c->name, cfg ? "checks" : vstr_str(why));
            if (cfg && vstr_len(why) && strcmp(vstr_str(why), "(none)") != 0)
                tap_diag("%s", vstr_str(why));
        }
        config_free(cfg);
        unlink(path);
        free(path);
    }
    vstr_free(why);
    vstr_free(expect);
}

/* run_file_generated - sizes and limits too large for the table */
static void run_file_generated(void)
{
    VSTR *data = vstr_alloc(8192);
    VSTR *why = vstr_alloc(64);
    VSTR *expect = vstr_alloc(64);
    CONFIG *cfg;
    char *path;
    int i;

    /* A line of exactly 4096 bytes loads; 4097 does not. */
    vstr_strcpy(data, "t_str = ");
    while (vstr_len(data) < 4096)
        vstr_addch(data, 'a');
    path = write_file(vstr_str(data), vstr_len(data));
    cfg = config_load(test_table, path, why);
    tap_ok(cfg != NULL && strlen(config_str(cfg, "t_str")) == 4096 - 8, "4096-byte line");
    config_free(cfg);
    unlink(path);
    free(path);
    vstr_addch(data, 'a');
    path = write_file(vstr_str(data), vstr_len(data));
    cfg = config_load(test_table, path, why);
    expand_path(expect, "%F:1: line longer than 4096 bytes", path);
    tap_ok(cfg == NULL && strcmp(vstr_str(why), vstr_str(expect)) == 0, "4097-byte line (%s)",
           vstr_str(why));
    unlink(path);
    free(path);

    /* A long comment line is refused too: the limit is on physical lines. */
    vstr_strcpy(data, "# ");
    while (vstr_len(data) < 10000)
        vstr_addch(data, 'c');
    path = write_file(vstr_str(data), vstr_len(data));
    cfg = config_load(test_table, path, why);
    tap_ok(cfg == NULL, "10000-byte comment line (%s)", vstr_str(why));
    unlink(path);
    free(path);

    /* Many continuation lines build a long value; each physical line is short. */
    vstr_strcpy(data, "t_str = start\n");
    for (i = 0; i < 1001; i++)
        vstr_strcat(data, "  more\n");
    path = write_file(vstr_str(data), vstr_len(data));
    cfg = config_load(test_table, path, why);
    tap_ok(cfg != NULL && strlen(config_str(cfg, "t_str")) == 5 + 1001 * 5,
           "1001 continuation lines joined (%s)", cfg ? "ok" : vstr_str(why));
    config_free(cfg);
    unlink(path);
    free(path);

    /* 1 MB of comments loads; one byte more does not. */
    vstr_reset(data);
    while (vstr_len(data) + 100 <= 1024 * 1024)
        vstr_strcat(data, "# ......................................................................"
                          "...........................\n");
    while (vstr_len(data) < 1024 * 1024 - 1)
        vstr_addch(data, '#');
    vstr_addch(data, '\n');
    path = write_file(vstr_str(data), vstr_len(data));
    cfg = config_load(test_table, path, why);
    tap_ok(cfg != NULL, "1048576-byte file (%s)", cfg ? "ok" : vstr_str(why));
    config_free(cfg);
    unlink(path);
    free(path);
    vstr_addch(data, '\n');
    path = write_file(vstr_str(data), vstr_len(data));
    cfg = config_load(test_table, path, why);
    expand_path(expect, "%F: larger than 1048576 bytes", path);
    tap_ok(cfg == NULL && strcmp(vstr_str(why), vstr_str(expect)) == 0, "1048577-byte file (%s)",
           vstr_str(why));
    unlink(path);
    free(path);

    /* Expansion that doubles and doubles is stopped at 1 MB. */
    vstr_strcpy(data, "t_e0 = ");
    for (i = 0; i < 4000; i++)
        vstr_addch(data, 'x');
    vstr_strcat(data, "\nt_e1 = ");
    for (i = 0; i < 20; i++)
        vstr_strcat(data, "$t_e0");
    vstr_strcat(data, "\nt_e2 = ");
    for (i = 0; i < 20; i++)
        vstr_strcat(data, "$t_e1");
    vstr_strcat(data, "\n");
    path = write_file(vstr_str(data), vstr_len(data));
    cfg = config_load(test_table, path, why);
    expand_path(expect, "%F:3: value of t_e2 is longer than 1048576 bytes after expansion", path);
    tap_ok(cfg == NULL && strcmp(vstr_str(why), vstr_str(expect)) == 0,
           "expansion bomb stopped (%s)", vstr_str(why));
    unlink(path);
    free(path);

    /* A file that is not there, and a directory. */
    vstr_sprintf(data, "%s/missing.conf", tmpdir);
    cfg = config_load(test_table, vstr_str(data), why);
    expand_path(expect, "%F: cannot open: No such file or directory", vstr_str(data));
    tap_ok(cfg == NULL && strcmp(vstr_str(why), vstr_str(expect)) == 0, "missing file (%s)",
           vstr_str(why));
    cfg = config_load(test_table, tmpdir, why);
    expand_path(expect, "%F: cannot read: Is a directory", tmpdir);
    tap_ok(cfg == NULL && strcmp(vstr_str(why), vstr_str(expect)) == 0, "directory (%s)",
           vstr_str(why));

    vstr_free(data);
    vstr_free(why);
    vstr_free(expect);
}

/* run_defaults - config_defaults() checks defaults like file values */
static void run_defaults(void)
{
    static const CONFIG_PARAM bad_int[] = {
        {"d_int", CONFIG_INT, "x", 0, 10, NULL, NULL},
        {NULL, CONFIG_STR, NULL, 0, 0, NULL, NULL},
    };
    static const CONFIG_PARAM bad_range[] = {
        {"d_int", CONFIG_INT, "0", 1, 10, NULL, NULL},
        {NULL, CONFIG_STR, NULL, 0, 0, NULL, NULL},
    };
    static const CONFIG_PARAM bad_ref[] = {
        {"d_str", CONFIG_STR, "$nope", 0, 0, NULL, NULL},
        {NULL, CONFIG_STR, NULL, 0, 0, NULL, NULL},
    };
    static const CONFIG_PARAM empty[] = {
        {NULL, CONFIG_STR, NULL, 0, 0, NULL, NULL},
    };
    VSTR *why = vstr_alloc(64);
    CONFIG *cfg;

    cfg = config_defaults(test_table, why);
    tap_ok(cfg != NULL && strcmp(config_path(cfg), "(defaults)") == 0 &&
               strcmp(config_str(cfg, "t_ref"), "hello world") == 0 &&
               config_int(cfg, "t_size") == 1024,
           "generic defaults");
    config_free(cfg);
    cfg = config_defaults(params_table, why);
    tap_ok(cfg != NULL && config_int(cfg, "bounce_queue_lifetime") == 5 * 86400 &&
               config_int(cfg, "maximal_backoff_time") == 4000 &&
               strcmp(config_str(cfg, "myorigin"), "") == 0 &&
               strcmp(config_str(cfg, "daemon_directory"), "") != 0,
           "relayq defaults (%s)", cfg ? "ok" : vstr_str(why));
    config_free(cfg);
    cfg = config_defaults(bad_int, why);
    tap_ok(cfg == NULL && strcmp(vstr_str(why),
                                 "bad default value \"x\" for d_int: not a decimal integer") == 0,
           "bad default (%s)", vstr_str(why));
    cfg = config_defaults(bad_range, why);
    tap_ok(cfg == NULL && strcmp(vstr_str(why), "0 is below the minimum 1 for d_int") == 0,
           "default out of range (%s)", vstr_str(why));
    cfg = config_defaults(bad_ref, why);
    tap_ok(cfg == NULL &&
               strcmp(vstr_str(why), "unknown parameter \"nope\" in the value of d_str") == 0,
           "default with an unknown reference (%s)", vstr_str(why));
    cfg = config_defaults(empty, why);
    tap_ok(cfg != NULL, "empty table");
    config_free(cfg);
    config_free(NULL);
    vstr_free(why);
}

/* One config_set() call and its outcome. */
struct set_case {
    const char *name;
    const char *value;
    const char *why;    /* exact, or NULL */
    const char *expect; /* checks afterwards (also after a failure: nothing changed) */
};

static const struct set_case set_cases[] = {
    {"t_str", "new", NULL, "t_str=new;t_ref=new world"},
    {"t_int", " 7 ", NULL, "t_int#7"},
    {"t_str", "${t_int}x", NULL, "t_str=7x;t_ref=7x world"},
    {"t_int", "abc", "bad value \"abc\" for t_int: not a decimal integer", "t_int#7;t_str=7x"},
    {"t_int", "101", "101 is above the maximum 100 for t_int", "t_int#7"},
    {"t_str", "a\nb", "bad value \"a?b\" for t_str: contains a line break", "t_str=7x"},
    {"t_str", "a\r\nt_int = 1", "bad value \"a??t_int = 1\" for t_str: contains a line break",
     "t_str=7x"},
    {"t_str", "a\x1b", "bad value \"a?\" for t_str: contains a control character", "t_str=7x"},
    {"zzz", "1", "unknown parameter \"zzz\"", "t_str=7x"},
    {"t_str", "$t_ref", "the value of t_str refers back to itself", "t_str=7x;t_ref=7x world"},
    {"t_str", "$nope", "unknown parameter \"nope\" in the value of t_str", "t_str=7x"},
    {"t_lower", "X", "bad value \"X\" for t_lower: must be lower case", "t_lower="},
    {"t_str", "BIG", NULL, "t_str=BIG"},
    {"t_lower", "$t_str", "bad value \"BIG\" for t_lower: must be lower case", "t_lower="},
    {"t_enum", "None", NULL, "t_enum=none"},
    {"t_bool", "yes", NULL, "t_bool?1"},
    {"t_time", "1h", NULL, "t_time#3600"},
    {"t_time", "31d", "31d is above the maximum 2592000s for t_time", "t_time#3600"},
};

/* run_set - config_set() over a loaded file */
static void run_set(void)
{
    VSTR *why = vstr_alloc(64);
    VSTR *check = vstr_alloc(64);
    char *path = write_file("t_int = 3\nt_str = file\n", 22);
    CONFIG *cfg = config_load(test_table, path, why);
    size_t i;
    int ret;

    tap_ok(cfg != NULL, "file for config_set loads");
    for (i = 0; cfg && i < sizeof(set_cases) / sizeof(set_cases[0]); i++) {
        const struct set_case *c = set_cases + i;

        vstr_strcpy(why, "(none)");
        ret = config_set(cfg, c->name, c->value, why);
        if (c->why == NULL)
            tap_ok(ret == 0 && verify_values(cfg, c->expect, check) == 0, "set %s: %s (%s)",
                   c->name, c->expect, ret ? vstr_str(why) : "ok");
        else
            tap_ok(ret == -1 && strcmp(vstr_str(why), c->why) == 0 &&
                       verify_values(cfg, c->expect, check) == 0,
                   "set %s fails: %s (%s)", c->name, c->why, vstr_str(why));
    }
    config_free(cfg);
    unlink(path);
    free(path);
    vstr_free(why);
    vstr_free(check);
}

/* One relayhost and its parse. */
struct relay_case {
    const char *text;
    const char *host; /* NULL: error */
    unsigned port;
    int bracketed;
    const char *why;
};

static const struct relay_case relay_cases[] = {
    {"smtp.example.com", "smtp.example.com", 25, 0, NULL},
    {"smtp.example.com:587", "smtp.example.com", 587, 0, NULL},
    {"[smtp.example.com]", "smtp.example.com", 25, 1, NULL},
    {"[smtp.example.com]:465", "smtp.example.com", 465, 1, NULL},
    {"[192.0.2.1]:2525", "192.0.2.1", 2525, 1, NULL},
    {"192.0.2.1", "192.0.2.1", 25, 0, NULL},
    {"[::1]:2525", "::1", 2525, 1, NULL},
    {"[2001:db8::25]", "2001:db8::25", 25, 1, NULL},
    {"localhost:1", "localhost", 1, 0, NULL},
    {"relay:65535", "relay", 65535, 0, NULL},
    {"x-1.example", "x-1.example", 25, 0, NULL},
    {"[x:25", NULL, 0, 0, "bad relayhost \"[x:25\": missing \"]\""},
    {"", NULL, 0, 0, "bad relayhost \"\": empty"},
    {"[]", NULL, 0, 0, "bad relayhost \"[]\": empty host name"},
    {":25", NULL, 0, 0, "bad relayhost \":25\": empty host name"},
    {"[host]x", NULL, 0, 0, "bad relayhost \"[host]x\": unexpected text after \"]\""},
    {"[host]:", NULL, 0, 0, "bad relayhost \"[host]:\": port must be a number from 1 to 65535"},
    {"host:", NULL, 0, 0, "bad relayhost \"host:\": port must be a number from 1 to 65535"},
    {"host:0", NULL, 0, 0, "bad relayhost \"host:0\": port must be a number from 1 to 65535"},
    {"host:65536", NULL, 0, 0,
     "bad relayhost \"host:65536\": port must be a number from 1 to 65535"},
    {"host:99999999999999999999", NULL, 0, 0,
     "bad relayhost \"host:99999999999999999999\": port must be a number from 1 to 65535"},
    {"host:-25", NULL, 0, 0, "bad relayhost \"host:-25\": port must be a number from 1 to 65535"},
    {"host:+25", NULL, 0, 0, "bad relayhost \"host:+25\": port must be a number from 1 to 65535"},
    {"host: 25", NULL, 0, 0, "bad relayhost \"host: 25\": port must be a number from 1 to 65535"},
    {"host:0x19", NULL, 0, 0, "bad relayhost \"host:0x19\": port must be a number from 1 to 65535"},
    {"host:smtp", NULL, 0, 0, "bad relayhost \"host:smtp\": port must be a number from 1 to 65535"},
    {"::1", NULL, 0, 0, "bad relayhost \"::1\": an IPv6 address must be in brackets: [address]"},
    {"2001:db8::1:25", NULL, 0, 0,
     "bad relayhost \"2001:db8::1:25\": an IPv6 address must be in brackets: [address]"},
    {"host]", NULL, 0, 0, "bad relayhost \"host]\": misplaced \"[\" or \"]\""},
    {"ho[st", NULL, 0, 0, "bad relayhost \"ho[st\": misplaced \"[\" or \"]\""},
    {"bad_host", NULL, 0, 0,
     "bad relayhost \"bad_host\": host is not a valid DNS name or IP address"},
    {"-host.example", NULL, 0, 0,
     "bad relayhost \"-host.example\": host is not a valid DNS name or IP address"},
    {"host..example", NULL, 0, 0,
     "bad relayhost \"host..example\": host is not a valid DNS name or IP address"},
    {"192.0.2.999", NULL, 0, 0,
     "bad relayhost \"192.0.2.999\": host is not a valid DNS name or IP address"},
    {"[192.0.2.999]", NULL, 0, 0,
     "bad relayhost \"[192.0.2.999]\": host is not a valid DNS name or IP address"},
    {"[::g]", NULL, 0, 0, "bad relayhost \"[::g]\": host is not a valid DNS name or IP address"},
    {"host name", NULL, 0, 0,
     "bad relayhost \"host name\": host is not a valid DNS name or IP address"},
    {"host\r\n", NULL, 0, 0,
     "bad relayhost \"host??\": host is not a valid DNS name or IP address"},
    {"[ho\"st]", NULL, 0, 0,
     "bad relayhost \"[ho\"st]\": host is not a valid DNS name or IP address"},
};

/* run_relay - params_parse_relay over the table and some generated names */
static void run_relay(void)
{
    VSTR *why = vstr_alloc(64);
    VSTR *text = vstr_alloc(512);
    RELAY_ADDR relay;
    size_t i;
    int ret;

    for (i = 0; i < sizeof(relay_cases) / sizeof(relay_cases[0]); i++) {
        const struct relay_case *c = relay_cases + i;

        memset(&relay, 0x55, sizeof(relay));
        vstr_strcpy(why, "(none)");
        ret = params_parse_relay(c->text, &relay, why);
        if (c->host != NULL)
            tap_ok(ret == 0 && strcmp(relay.host, c->host) == 0 && relay.port == c->port &&
                       relay.bracketed == c->bracketed,
                   "relay \"%s\" (%s)", c->text, ret ? vstr_str(why) : "ok");
        else
            tap_ok(ret == -1 && strcmp(vstr_str(why), c->why) == 0, "relay error: %s (got %s)",
                   c->why, vstr_str(why));
    }

    /* A 63-octet label is fine, 64 is not; 253 octets in all is fine, more is not. */
    vstr_reset(text);
    for (i = 0; i < 63; i++)
        vstr_addch(text, 'a');
    vstr_strcat(text, ".example");
    tap_ok(params_parse_relay(vstr_str(text), &relay, why) == 0, "63-octet label");
    vstr_strcpy(text, "a");
    for (i = 0; i < 63; i++)
        vstr_addch(text, 'a');
    vstr_strcat(text, ".example");
    tap_ok(params_parse_relay(vstr_str(text), &relay, why) == -1, "64-octet label");
    vstr_reset(text);
    while (vstr_len(text) < 250)
        vstr_strcat(text, "abcdefghi.");
    vstr_strcat(text, "com");
    tap_ok(params_parse_relay(vstr_str(text), &relay, why) == 0 && strlen(relay.host) == 253,
           "253-octet name");
    vstr_strcat(text, "x");
    tap_ok(params_parse_relay(vstr_str(text), &relay, why) == -1, "254-octet name");
    vstr_reset(text);
    vstr_addch(text, '[');
    for (i = 0; i < 300; i++)
        vstr_addch(text, 'a');
    vstr_strcat(text, "]:25");
    tap_ok(params_parse_relay(vstr_str(text), &relay, why) == -1 &&
               strstr(vstr_str(why), "host name longer than 255 octets") != NULL &&
               strstr(vstr_str(why), "...") != NULL,
           "300-octet bracketed host, quote cut (%zu bytes)", vstr_len(why));
    vstr_free(why);
    vstr_free(text);
}

/* run_default_path - $RELAYQ_CONFIG when set and not empty */
static void run_default_path(void)
{
    const char *builtin;

    unsetenv("RELAYQ_CONFIG");
    builtin = params_default_path();
    tap_ok(builtin[0] == '/', "default path without RELAYQ_CONFIG is absolute (%s)", builtin);
    setenv("RELAYQ_CONFIG", "", 1);
    tap_ok(strcmp(params_default_path(), builtin) == 0, "empty RELAYQ_CONFIG is ignored");
    setenv("RELAYQ_CONFIG", "/tmp/x.conf", 1);
    tap_ok(strcmp(params_default_path(), "/tmp/x.conf") == 0, "RELAYQ_CONFIG used");
    unsetenv("RELAYQ_CONFIG");
}

/* run_params_load - the process configuration, host name, die on error */
static void run_params_load(void)
{
    VSTR *why = vstr_alloc(64);
    VSTR *expect = vstr_alloc(64);
    char *good = write_file("smtpout_workers = 8\n", 20);
    char *named = write_file("myhostname = mx.example.com\n", 28);
    char *bad = write_file("# x\nsmtp_bar = 1\n", 17);
    CONFIG *cfg;
    CONFIG *prev;
    int pipefd[2];
    char buf[512];
    ssize_t got;
    size_t have = 0;
    pid_t pid;
    int status;

    cfg = params_load(good, why);
    tap_ok(cfg != NULL && cfg == var_config && var_int(smtpout_workers) == 8,
           "params_load sets var_config (%s)", cfg ? "ok" : vstr_str(why));
    tap_ok(cfg != NULL && *var_str(myhostname) != '\0' &&
               strcmp(var_str(myorigin), var_str(myhostname)) == 0 &&
               strcmp(var_str(smtp_helo_name), var_str(myhostname)) == 0,
           "empty myhostname filled from the system (%s), $myhostname follows",
           cfg ? var_str(myhostname) : "-");
    prev = var_config;
    cfg = params_load(named, why);
    tap_ok(cfg != NULL && cfg != prev && strcmp(var_str(myhostname), "mx.example.com") == 0 &&
               strcmp(var_str(myorigin), "mx.example.com") == 0 && var_int(smtpout_workers) == 4,
           "second params_load replaces var_config");
    prev = var_config;
    cfg = params_load(bad, why);
    expand_path(expect, "%F:2: unknown parameter \"smtp_bar\"", bad);
    tap_ok(cfg == NULL && var_config == prev && strcmp(vstr_str(why), vstr_str(expect)) == 0,
           "failed params_load keeps var_config (%s)", vstr_str(why));
    setenv("RELAYQ_CONFIG", named, 1);
    cfg = params_load(NULL, why);
    tap_ok(cfg != NULL && strcmp(config_path(cfg), named) == 0,
           "params_load(NULL) reads $RELAYQ_CONFIG");
    unsetenv("RELAYQ_CONFIG");

    /* params_load_or_die: exit status 1, the file:line: reason line on stderr. */
    if (pipe(pipefd) < 0) {
        perror("pipe");
        exit(2);
    }
    fflush(stdout);
    if ((pid = fork()) == 0) {
        dup2(pipefd[1], 2);
        close(pipefd[0]);
        params_load_or_die(bad);
        _exit(0);
    }
    close(pipefd[1]);
    while (have < sizeof(buf) - 1 &&
           (got = read(pipefd[0], buf + have, sizeof(buf) - 1 - have)) > 0)
        have += (size_t)got;
    buf[have] = '\0';
    close(pipefd[0]);
    waitpid(pid, &status, 0);
    tap_ok(WIFEXITED(status) && WEXITSTATUS(status) == 1 && strstr(buf, vstr_str(expect)) != NULL &&
               strchr(buf, '\n') == buf + have - 1,
           "params_load_or_die exits 1 with one line: %.*s", (int)(have ? have - 1 : 0), buf);

    config_free(var_config);
    var_config = NULL;
    unlink(good);
    unlink(named);
    unlink(bad);
    free(good);
    free(named);
    free(bad);
    vstr_free(why);
    vstr_free(expect);
}

/* Caller bugs that must panic. */
enum { BUG_STR_UNKNOWN, BUG_INT_OF_STR, BUG_BOOL_OF_INT, BUG_INT_UNKNOWN, BUG_NO_CONFIG };

/* run_bug - make one caller bug in a child; whether it aborted */
static int run_bug(int bug)
{
    VSTR *why = vstr_alloc(64);
    CONFIG *cfg = config_defaults(test_table, why);
    pid_t pid;
    int status;

    fflush(stdout);
    if ((pid = fork()) == 0) {
        if (freopen("/dev/null", "w", stderr) == NULL)
            _exit(3);
        switch (bug) {
        case BUG_STR_UNKNOWN:
            config_str(cfg, "nope");
            break;
        case BUG_INT_OF_STR:
            config_int(cfg, "t_str");
            break;
        case BUG_BOOL_OF_INT:
            config_bool(cfg, "t_int");
            break;
        case BUG_INT_UNKNOWN:
            config_int(cfg, "t_in");
            break;
        case BUG_NO_CONFIG:
            config_str(NULL, "t_str");
            break;
        }
        _exit(0);
    }
    waitpid(pid, &status, 0);
    config_free(cfg);
    vstr_free(why);
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

/* run_bugs - each caller bug panics */
static void run_bugs(void)
{
    tap_ok(run_bug(BUG_STR_UNKNOWN), "config_str of an unknown name panics");
    tap_ok(run_bug(BUG_INT_OF_STR), "config_int of a text parameter panics");
    tap_ok(run_bug(BUG_BOOL_OF_INT), "config_bool of a number parameter panics");
    tap_ok(run_bug(BUG_INT_UNKNOWN), "config_int of a name prefix panics");
    tap_ok(run_bug(BUG_NO_CONFIG), "lookup without a configuration panics");
}

/* run_raw - the text as written and the line that set it, as postconf shows them */
static void run_raw(void)
{
    static const char text[] = "t_str = $t_int x\n\n# note\nt_int = 7\n";
    static const struct {
        const char *name;
        const char *raw;
        int line;
    } cases[] = {
        {"t_str", "$t_int x", 1},     /* from the file, not expanded */
        {"t_int", "7", 4},            /* line of the assignment */
        {"t_ref", "$t_str world", 0}, /* the default */
        {"t_e0", "set", 0},           /* config_set() is not the file */
    };
    char *path = write_file(text, sizeof(text) - 1);
    VSTR *why = vstr_alloc(64);
    CONFIG *cfg = config_load(test_table, path, why);

    if (cfg == NULL || config_set(cfg, "t_e0", "set", why) < 0) {
        tap_ok(0, "raw: the file loads (%s)", vstr_str(why));
    } else {
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
            tap_ok(strcmp(config_raw_str(cfg, cases[i].name), cases[i].raw) == 0 &&
                       config_line(cfg, cases[i].name) == cases[i].line,
                   "raw %s is \"%s\" from line %d (got \"%s\", %d)", cases[i].name, cases[i].raw,
                   cases[i].line, config_raw_str(cfg, cases[i].name),
                   config_line(cfg, cases[i].name));
        tap_ok(strcmp(config_str(cfg, "t_str"), "7 x") == 0, "while config_str expands it");
    }
    config_free(cfg);
    vstr_free(why);
    unlink(path);
    free(path);
}

int main(void)
{
    const char *base = getenv("TMPDIR");

    /* Never the source tree: make distcheck builds from a read-only one. */
    if (base == NULL || *base == '\0' || strlen(base) > sizeof(tmpdir) - 32)
        base = "/tmp";
    snprintf(tmpdir, sizeof(tmpdir), "%s/unit_config.XXXXXX", base);
    if (mkdtemp(tmpdir) == NULL) {
        perror(tmpdir);
        return 2;
    }
    run_file_cases();
    run_file_generated();
    run_defaults();
    run_set();
    run_raw();
    run_relay();
    run_default_path();
    run_params_load();
    run_bugs();
    if (rmdir(tmpdir) < 0)
        tap_diag("cannot remove %s: %s", tmpdir, strerror(errno));
    return tap_done();
}
