/*
 * params - relayq's parameter registry and the process-wide configuration
 *
 * params_table[]
 *	every parameter relayq knows: name, type, default and bounds, in one
 *	table made from PARAMS_LIST() (params_list.h). Names and defaults
 *	follow Postfix where Postfix has the parameter, so a Postfix user
 *	already knows them.
 * params_default_path()
 *	the configuration file to use without -c: $RELAYQ_CONFIG when set and
 *	not empty, else DEFAULT_CONFIG_FILE.
 * params_read()
 *	read and check a file against the table, with the Postfix hints,
 *	without making it the process's configuration (for a reload that
 *	must check before it replaces). Unknown names are all listed in one
 *	error (cfgfile.c); a Postfix parameter among them says so, with
 *	what relayq has instead.
 * params_adopt()
 *	make a configuration the process-wide var_config as it is (an empty
 *	myhostname stays empty), freeing the one before: for the front,
 *	which must not ask the system's resolver (params_load.c does).
 * params_hint()
 *	append what relayq says of a Postfix parameter it does not have
 *	(" (a Postfix parameter; in relayq use ...)") to a message; nothing for other names.
 * params_find()
 *	the table entry of a name, or NULL.
 * params_parse_relay()
 *	split a relayhost value into host, port and the [bracket] flag.
 * params_parse_relays()
 *	the same for each relay of a list (comma or blank separated), in
 *	order, calling each() for every one; stops at the first bad one.
 * params_nexthop()
 *	the relay list of a transport_maps value: Postfix's "smtp:" or
 *	"relay:" prefix removed; "" (the default route) for ":" or a bare
 *	prefix.
 *
 * Ownership: var_config belongs to this module; params_adopt() (and
 * params_load(), through it) replaces it. RELAY_ADDR is the caller's.
 *
 * Failures: params_read() and params_parse_relay() return an error with a
 * one-line reason in `why`. Allocation failure is fatal (mymalloc).
 *
 * Nothing here asks the system's user database or resolver: the front
 * links this file without the dynamic loader (params_load.c does the
 * lookup of myhostname).
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cfgfile.h"
#include "msg.h"
#include "mymalloc.h"
#include "netaddr.h"
#include "params.h"
#include "vstr.h"

#ifndef DAEMON_DIRECTORY
#define DAEMON_DIRECTORY "/usr/local/libexec/relayq"
#endif

#ifndef DEFAULT_CONFIG_FILE
#define DEFAULT_CONFIG_FILE "/etc/relayq/relayq.conf"
#endif

#define DAY 86400L

CONFIG *var_config;

/* params_is_dns_name - LDH labels of 1..63 octets, at most 253 octets, last not numeric */
static int params_is_dns_name(const char *name, size_t len)
{
    size_t label = 0;
    size_t i;
    int numeric = 1;

    if (len == 0 || len > 253)
        return 0;
    for (i = 0; i <= len; i++) {
        char ch = i < len ? name[i] : '.';

        if (ch == '.') {
            if (label == 0 || label > 63 || name[i - 1] == '-' || name[i - label] == '-')
                return 0;
            if (i < len)
                numeric = 1;
            label = 0;
        } else if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '-') {
            numeric = 0;
            label++;
        } else if (ch >= '0' && ch <= '9') {
            label++;
        } else {
            return 0;
        }
    }
    /* "1.2.3.999" is a mistyped address, not a name: no top-level domain is all digits. */
    return !numeric;
}

/* params_quote - append a relayhost value to a message, bounded and printable */
static void params_quote(VSTR *why, const char *text)
{
    size_t i;

    vstr_addch(why, '"');
    for (i = 0; text[i] && i < 100; i++)
        vstr_addch(why,
                   (unsigned char)text[i] >= 0x20 && (unsigned char)text[i] < 0x7f ? text[i] : '?');
    vstr_addch(why, '"');
    if (text[i])
        vstr_strcat(why, "...");
}

/* params_relay_reason - parse a relay; NULL, or what is wrong with it */
static const char *params_relay_reason(const char *text, RELAY_ADDR *relay)
{
    const char *host;
    const char *port = NULL;
    const char *cp;
    size_t host_len;
    unsigned long num;
    unsigned char addr[sizeof(struct in6_addr)];

    if (*text == '\0')
        return "empty";
    if (text[0] == '[') {
        host = text + 1;
        if ((cp = strchr(host, ']')) == NULL)
            return "missing \"]\"";
        host_len = (size_t)(cp - host);
        if (cp[1] == ':')
            port = cp + 2;
        else if (cp[1] != '\0')
            return "unexpected text after \"]\"";
    } else {
        host = text;
        if ((cp = strchr(text, ':')) != NULL) {
            if (strchr(cp + 1, ':') != NULL)
                return "an IPv6 address must be in brackets: [address]";
            port = cp + 1;
        }
        host_len = cp ? (size_t)(cp - text) : strlen(text);
        if (memchr(host, '[', host_len) || memchr(host, ']', host_len))
            return "misplaced \"[\" or \"]\"";
    }
    if (host_len == 0)
        return "empty host name";
    if (host_len >= sizeof(relay->host))
        return "host name longer than 255 octets";
    memcpy(relay->host, host, host_len);
    relay->host[host_len] = '\0';
    if (inet_pton(AF_INET, relay->host, addr) != 1 &&
        !(text[0] == '[' && inet_pton(AF_INET6, relay->host, addr) == 1) &&
        !params_is_dns_name(relay->host, host_len))
        return "host is not a valid DNS name or IP address";
    relay->bracketed = text[0] == '[';
    relay->port = 25;
    if (port != NULL) {
        /* Decimal digits only: strtoul would accept signs, blanks and hex prefixes. */
        if (*port == '\0' || strspn(port, "0123456789") != strlen(port) || strlen(port) > 5)
            return "port must be a number from 1 to 65535";
        num = strtoul(port, NULL, 10);
        if (num < 1 || num > 65535)
            return "port must be a number from 1 to 65535";
        relay->port = (unsigned)num;
    }
    return NULL;
}

/* params_parse_relay - split "[host]:port", "host:port", "[host]" or "host" */
int params_parse_relay(const char *text, RELAY_ADDR *relay, VSTR *why)
{
    RELAY_ADDR parsed;
    const char *reason;

    /* Fill the caller's struct only on success: no half-parsed relay escapes. */
    if ((reason = params_relay_reason(text, &parsed)) != NULL) {
        vstr_strcpy(why, "bad relayhost ");
        params_quote(why, text);
        vstr_strcat(why, ": ");
        vstr_strcat(why, reason);
        return -1;
    }
    *relay = parsed;
    return 0;
}

/* params_parse_relays - parse each relay of a list */
int params_parse_relays(const char *list, void (*each)(const RELAY_ADDR *relay, void *ctx),
                        void *ctx, VSTR *why)
{
    char *copy = mystrdup(list), *save = NULL, *word;
    RELAY_ADDR relay;
    int ret = 0;

    for (word = strtok_r(copy, ", \t", &save); word; word = strtok_r(NULL, ", \t", &save)) {
        if ((ret = params_parse_relay(word, &relay, why)) < 0)
            break;
        if (each)
            each(&relay, ctx);
    }
    myfree(copy);
    return ret;
}

/* params_nexthop - the relay list of a transport_maps value */
const char *params_nexthop(const char *transport_value)
{
    if (strncmp(transport_value, "smtp:", 5) == 0)
        return transport_value + 5;
    if (strncmp(transport_value, "relay:", 6) == 0)
        return transport_value + 6;
    if (strcmp(transport_value, ":") == 0)
        return "";
    return transport_value;
}

/* params_check_relay - relayhost: empty, or relays to try in order, comma-separated */
static int params_check_relay(const char *value, VSTR *why)
{
    RELAY_ADDR relay;
    const char *reason = NULL;
    char *copy = mystrdup(value), *save = NULL, *word;

    for (word = strtok_r(copy, ", \t", &save); word && reason == NULL;
         word = strtok_r(NULL, ", \t", &save))
        reason = params_relay_reason(word, &relay);
    myfree(copy);
    if (reason == NULL)
        return 0;
    /* config names the parameter and quotes the value: only the reason here. */
    vstr_strcpy(why, reason);
    return -1;
}

/* params_check_listen - smtpd_listen: empty, or ADDRESS:PORT and [IPV6-ADDRESS]:PORT words */
static int params_check_listen(const char *value, VSTR *why)
{
    return netaddr_listen_each(value, NULL, NULL, why);
}

/* params_count_word - netaddr_listen_each callback: count the words */
static int params_count_word(const char *word, const struct sockaddr *sa, socklen_t len, void *ctx)
{
    (void)word;
    (void)sa;
    (void)len;
    ++*(int *)ctx;
    return 0;
}

/* params_check_metrics_listen - metrics_listen: empty, or one ADDRESS:PORT or [IPV6-ADDRESS]:PORT
 */
static int params_check_metrics_listen(const char *value, VSTR *why)
{
    int words = 0;

    if (netaddr_listen_each(value, params_count_word, &words, why) < 0)
        return -1;
    if (words > 1) {
        vstr_strcpy(why,
                    "one address only: ADDRESS:PORT or [IPV6-ADDRESS]:PORT, as 127.0.0.1:9465");
        return -1;
    }
    return 0;
}

/* params_check_mynetworks - mynetworks: ADDRESS/BITS and [IPV6-ADDRESS]/BITS words */
static int params_check_mynetworks(const char *value, VSTR *why)
{
    NETMASK_LIST *nl = netmask_list_parse(value, why);

    netmask_list_free(nl);
    return nl == NULL ? -1 : 0;
}

/* params_check_hostname - myhostname: empty (ask the system) or a DNS name */
static int params_check_hostname(const char *value, VSTR *why)
{
    if (*value == '\0' || params_is_dns_name(value, strlen(value)))
        return 0;
    vstr_strcpy(why, "not a valid DNS name");
    return -1;
}

/* params_check_helo - smtp_helo_name: a DNS name or an address literal */
static int params_check_helo(const char *value, VSTR *why)
{
    size_t len = strlen(value);
    unsigned char addr[sizeof(struct in6_addr)];
    char *inner;
    int ok;

    if (len == 0 || params_is_dns_name(value, len))
        return 0;
    if (len > 2 && value[0] == '[' && value[len - 1] == ']') {
        inner = mystrndup(value + 1, len - 2);
        ok = inet_pton(AF_INET, inner, addr) == 1 ||
             (strncasecmp(inner, "IPv6:", 5) == 0 && inet_pton(AF_INET6, inner + 5, addr) == 1);
        myfree(inner);
        if (ok)
            return 0;
    }
    vstr_strcpy(why, "not a DNS name or an address literal like [192.0.2.1] or [IPv6:2001:db8::1]");
    return -1;
}

/* params_check_abspath - directories are used after chdir(): they must be absolute */
static int params_check_abspath(const char *value, VSTR *why)
{
    if (value[0] == '/')
        return 0;
    vstr_strcpy(why, "not an absolute path");
    return -1;
}

/* params_check_nonempty - a value the programs cannot do without */
static int params_check_nonempty(const char *value, VSTR *why)
{
    if (*value != '\0')
        return 0;
    vstr_strcpy(why, "must not be empty");
    return -1;
}

/* params_check_rate - a non-negative decimal number of messages per second */
static int params_check_rate(const char *value, VSTR *why)
{
    char *end;
    double rate = strtod(value, &end);

    if (*value == '\0' || *end != '\0' || !(rate >= 0) || rate > 1e6) {
        vstr_strcpy(why, "not a rate (messages per second, a decimal number from 0 to 1000000)");
        return -1;
    }
    return 0;
}

/* params_check_shared_server - empty, or redis://[:password@]host[:port][/db] */
static int params_check_shared_server(const char *value, VSTR *why)
{
    const char *host = value + 8, *at;

    if (*value == '\0')
        return 0;
    if (strncmp(value, "redis://", 8) != 0) {
        vstr_sprintf(why, "not a Redis address: redis://[:password@]host[:port][/db]%s",
                     strncmp(value, "rediss://", 9) == 0 ? " (TLS is not supported yet)" : "");
        return -1;
    }
    if ((at = strrchr(host, '@')) != NULL)
        host = at + 1;
    if (*host == '\0' || *host == ':' || *host == '/') {
        vstr_strcpy(why, "not a Redis address: no host");
        return -1;
    }
    return 0;
}

/* params_check_share - empty (1/instances), or a fraction above 0, at most 1 */
static int params_check_share(const char *value, VSTR *why)
{
    char *end;
    double share;

    if (*value == '\0')
        return 0;
    share = strtod(value, &end);
    if (*end != '\0' || !(share > 0) || share > 1) {
        vstr_strcpy(why, "not a share: a decimal number above 0 and at most 1, or empty");
        return -1;
    }
    return 0;
}

/* params_check_syslog_name - the log tag: "relayq", "relayq-out", "relayq/eu" */
static int params_check_syslog_name(const char *value, VSTR *why)
{
    size_t len = strlen(value);

    if (len >= 1 && len <= MSG_SYSLOG_NAME_MAX && value[0] != '/' &&
        strspn(value, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-/") == len)
        return 0;
    vstr_sprintf(why,
                 "not a syslog name: 1 to %d letters, digits, \".\", \"_\", \"-\" or \"/\", "
                 "not starting with \"/\"",
                 MSG_SYSLOG_NAME_MAX);
    return -1;
}

#define PARAM_STR(name, def, check)                                                                \
    {                                                                                              \
        name, CONFIG_STR, def, 0, 0, NULL, check                                                   \
    }
#define PARAM_INT(name, def, lo, hi)                                                               \
    {                                                                                              \
        name, CONFIG_INT, def, lo, hi, NULL, NULL                                                  \
    }
#define PARAM_TIME(name, def, lo, hi)                                                              \
    {                                                                                              \
        name, CONFIG_TIME, def, lo, hi, NULL, NULL                                                 \
    }
#define PARAM_SIZE(name, def, lo, hi)                                                              \
    {                                                                                              \
        name, CONFIG_SIZE, def, lo, hi, NULL, NULL                                                 \
    }
#define PARAM_BOOL(name, def)                                                                      \
    {                                                                                              \
        name, CONFIG_BOOL, def, 0, 1, NULL, NULL                                                   \
    }
#define PARAM_ENUM(name, def, choices)                                                             \
    {                                                                                              \
        name, CONFIG_ENUM, def, 0, 0, choices, NULL                                                \
    }

/* PARAMS_TABLE_ROW - one row of params_table[], from PARAMS_LIST() */
#define PARAMS_TABLE_ROW(kind, name, ...) PARAM_##kind(#name, __VA_ARGS__),

const CONFIG_PARAM params_table[] = {
    PARAMS_LIST(PARAMS_TABLE_ROW) /* params_list.h, then the end: */
    {NULL, CONFIG_STR, NULL, 0, 0, NULL, NULL},
};

/*
 * The Postfix parameters a null client's main.cf commonly holds that relayq
 * does not have, and what relayq says of each: its equivalent, why a null
 * client does not need it, or that it is not implemented. A name ending in
 * "*" stands for every name with that prefix.
 */
#define PARAMS_USE "; in relayq use "
#define PARAMS_NOT_NEEDED " relayq does not need: "
#define PARAMS_NOT_DONE " relayq does not implement"
#define PARAMS_NO_LOCAL PARAMS_NOT_NEEDED "it delivers nothing locally, it relays all mail"
#define PARAMS_SMTPD                                                                               \
    PARAMS_NOT_DONE ": its SMTP listener takes the smtpd_ parameters relayq.conf(5) lists"
#define PARAMS_NO_REWRITE PARAMS_NOT_DONE ": it does not rewrite addresses or headers"
#define PARAMS_NO_PATH PARAMS_NOT_NEEDED "a path of a Postfix installation"

static const struct {
    const char *name;
    const char *hint;
} params_postfix[] = {
    {"default_transport", PARAMS_USE "relayhost, and transport_maps for routes by domain"},
    {"relay_transport", PARAMS_USE "relayhost, and transport_maps for routes by domain"},
    {"smtp_destination_concurrency_limit", PARAMS_USE "default_destination_concurrency_limit"},
    {"smtp_destination_recipient_limit", PARAMS_USE "default_destination_recipient_limit"},
    {"smtp_destination_rate_delay", PARAMS_USE "default_destination_rate_delay"},
    {"default_process_limit", PARAMS_USE "smtpout_workers"},
    {"smtp_use_tls", PARAMS_USE "smtp_tls_security_level = may"},
    {"smtp_enforce_tls", PARAMS_USE "smtp_tls_security_level = encrypt"},
    {"smtp_tls_policy_maps", PARAMS_USE "smtp_tls_security_level, for every relay"},
    {"smtp_tls_CApath", PARAMS_USE "smtp_tls_CAfile (empty: the system's trusted CAs)"},
    {"smtp_connection_cache_time_limit", PARAMS_USE "smtp_connection_idle_timeout"},
    {"smtp_connection_cache_on_demand",
     PARAMS_NOT_NEEDED "it always keeps its connections open and reuses them"},
    {"smtp_connection_cache_destinations",
     PARAMS_NOT_NEEDED "it always keeps its connections open and reuses them"},
    {"smtp_tls_session_cache_database",
     PARAMS_NOT_NEEDED "it keeps its TLS connections open instead of resuming sessions"},
    {"smtp_tls_session_cache_timeout",
     PARAMS_NOT_NEEDED "it keeps its TLS connections open instead of resuming sessions"},
    {"smtp_sasl_security_options",
     PARAMS_NOT_NEEDED "it picks XOAUTH2, PLAIN or LOGIN as the relay offers them"},
    {"smtp_sasl_tls_security_options",
     PARAMS_NOT_NEEDED "it picks XOAUTH2, PLAIN or LOGIN as the relay offers them"},
    {"smtp_sasl_mechanism_filter",
     PARAMS_NOT_NEEDED "it picks XOAUTH2, PLAIN or LOGIN as the relay offers them"},
    {"smtp_sasl_type", PARAMS_NOT_NEEDED "it has its own SASL client"},
    {"smtp_always_send_ehlo", PARAMS_NOT_NEEDED "it always sends EHLO"},
    {"tls_random_source", PARAMS_NOT_NEEDED "randomness comes from the kernel"},
    {"mydomain", PARAMS_NOT_DONE ": write the domain in myorigin"},
    {"mydestination", PARAMS_NO_LOCAL},
    {"local_*", PARAMS_NO_LOCAL},
    {"alias_maps", PARAMS_NO_LOCAL},
    {"alias_database", PARAMS_NO_LOCAL},
    {"mailbox_*", PARAMS_NO_LOCAL},
    {"home_mailbox", PARAMS_NO_LOCAL},
    {"mail_spool_directory", PARAMS_NO_LOCAL},
    {"recipient_delimiter", PARAMS_NO_LOCAL},
    {"biff", PARAMS_NO_LOCAL},
    {"virtual_*", PARAMS_NO_LOCAL},
    {"lmtp_*", PARAMS_NO_LOCAL},
    {"inet_interfaces", PARAMS_USE "smtpd_listen, the SMTP listener's addresses"},
    {"mynetworks_style", PARAMS_USE "mynetworks"},
    {"relay_domains",
     PARAMS_NOT_NEEDED "it relays to any domain, for clients in mynetworks and clients that "
                       "authenticate"},
    {"smtpd_sasl_auth_enable", PARAMS_USE "smtpd_sasl_password_file"},
    {"smtpd_tls_security_level",
     PARAMS_NOT_NEEDED "STARTTLS is offered whenever smtpd_tls_cert_file is set"},
    {"smtpd_tls_auth_only", PARAMS_NOT_NEEDED "AUTH is only ever offered inside TLS"},
    {"smtpd_tls_wrappermode", PARAMS_USE "smtpd_tls_listen"},
    {"smtpd_*", PARAMS_SMTPD},
    {"postscreen_*", PARAMS_NOT_NEEDED "its SMTP listener takes submissions, not mail from the "
                                       "Internet"},
    {"compatibility_level", PARAMS_NOT_NEEDED "it has one set of defaults"},
    {"command_directory", PARAMS_NO_PATH},
    {"data_directory", PARAMS_NO_PATH},
    {"meta_directory", PARAMS_NO_PATH},
    {"shlib_directory", PARAMS_NO_PATH},
    {"html_directory", PARAMS_NO_PATH},
    {"manpage_directory", PARAMS_NO_PATH},
    {"readme_directory", PARAMS_NO_PATH},
    {"sample_directory", PARAMS_NO_PATH},
    {"sendmail_path", PARAMS_NO_PATH},
    {"newaliases_path", PARAMS_NO_PATH},
    {"mailq_path", PARAMS_NO_PATH},
    {"append_dot_mydomain", PARAMS_NO_REWRITE},
    {"masquerade_domains", PARAMS_NO_REWRITE},
    {"canonical_maps", PARAMS_NO_REWRITE},
    {"sender_canonical_maps", PARAMS_NO_REWRITE},
    {"recipient_canonical_maps", PARAMS_NO_REWRITE},
    {"smtp_generic_maps", PARAMS_NO_REWRITE},
    {"header_checks", PARAMS_NO_REWRITE},
    {"smtp_header_checks", PARAMS_NO_REWRITE},
    {"content_filter", PARAMS_NOT_DONE},
    {"non_smtpd_milters", PARAMS_NOT_DONE},
    {"milter_*", PARAMS_NOT_DONE},
    {"inet_protocols", PARAMS_NOT_DONE},
    {"smtp_bind_address", PARAMS_NOT_DONE},
    {"smtp_bind_address6", PARAMS_NOT_DONE},
    {"smtp_host_lookup", PARAMS_NOT_DONE ": write relayhost as [host] to skip the MX lookup"},
    {"disable_dns_lookups", PARAMS_NOT_DONE ": write relayhost as [host] to skip the MX lookup"},
    {"smtp_dns_support_level", PARAMS_NOT_DONE},
    {"smtp_tls_cert_file", PARAMS_NOT_DONE ": it presents no client certificate"},
    {"smtp_tls_key_file", PARAMS_NOT_DONE ": it presents no client certificate"},
    {"smtp_tls_protocols", PARAMS_NOT_DONE ": GnuTLS's system-wide defaults apply"},
    {"smtp_tls_mandatory_protocols", PARAMS_NOT_DONE ": GnuTLS's system-wide defaults apply"},
    {"smtp_tls_ciphers", PARAMS_NOT_DONE ": GnuTLS's system-wide defaults apply"},
    {"smtp_tls_mandatory_ciphers", PARAMS_NOT_DONE ": GnuTLS's system-wide defaults apply"},
    {"smtp_tls_loglevel", PARAMS_NOT_DONE},
    {"smtp_tls_note_starttls_offer", PARAMS_NOT_DONE},
    {"soft_bounce", PARAMS_NOT_DONE},
    {"notify_classes", PARAMS_NOT_DONE},
    {"bounce_notice_recipient", PARAMS_NOT_DONE},
    {"debug_peer_list", PARAMS_NOT_DONE},
    {"debug_peer_level", PARAMS_NOT_DONE},
};

/* params_find - the table entry of a name, or NULL */
const CONFIG_PARAM *params_find(const char *name)
{
    for (const CONFIG_PARAM *param = params_table; param->name != NULL; param++)
        if (strcmp(param->name, name) == 0)
            return param;
    return NULL;
}

/* params_hint - what relayq says of a Postfix parameter it does not have */
void params_hint(const char *name, VSTR *message)
{
    for (size_t i = 0; i < sizeof(params_postfix) / sizeof(params_postfix[0]); i++) {
        const char *entry = params_postfix[i].name;
        size_t len = strlen(entry);

        if (entry[len - 1] == '*' ? strncmp(entry, name, len - 1) == 0 : strcmp(entry, name) == 0) {
            vstr_sprintf_append(message, " (a Postfix parameter%s)", params_postfix[i].hint);
            return;
        }
    }
}

/* params_read - read and check a file, without making it the process's configuration */
CONFIG *params_read(const char *path, VSTR *why)
{
    return config_load_hinted(params_table, params_hint, path, why);
}

/* params_default_path - the file to read when no -c was given */
const char *params_default_path(void)
{
    const char *env = getenv("RELAYQ_CONFIG");

    return env != NULL && *env != '\0' ? env : DEFAULT_CONFIG_FILE;
}

/* params_adopt - make a configuration the process's, freeing the one before */
void params_adopt(CONFIG *cfg)
{
    if (cfg == var_config)
        return;
    config_free(var_config);
    var_config = cfg;
}
