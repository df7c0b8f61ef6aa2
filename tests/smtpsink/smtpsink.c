/*
 * smtpsink - scripted SMTP server used as the upstream relay in tests
 *
 * main() parses the command line (see usage()), binds the listening
 * socket (with --stall CONNECT, a listen queue of length 0 that the
 * server's own connection keeps full for SECONDS, so that the kernel
 * drops clients' SYNs and their connect(2) waits; with --stall BODY, a
 * small receive buffer), writes --pid-file and --port-file, and runs a
 * single-threaded poll(2) loop over non-blocking sockets: accepting
 * connections, passing poll results and expired timers to conn.c, and
 * handling signals through a self-pipe (SIGTERM/SIGINT: stop listening,
 * close every connection, exit 0; SIGUSR1: append a "stats" line to the
 * event log, "stats connections=N messages=N tls=N auth_ok=N auth_fail=N
 * reads=N", reads being the reads of all connections that returned data,
 * as conn.c counts them). The poll timeout is the earliest timer of any
 * connection, the replies --delay holds back included, so waiting costs
 * no busy loop. --help (or a bad option) prints the options and the
 * fault vocabulary.
 *
 * Failure policy: bad options and set-up problems (bind, certificates,
 * files) are fatal with a message on stderr and exit status 1 (2 for
 * usage errors); once running, only the affected connection suffers.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "smtpsink.h"

struct sink_config cfg;
struct sink_stats stats;
long long sink_now;
int sink_tls_enabled;

static int sig_pipe[2] = {-1, -1};
static volatile sig_atomic_t sig_stop, sig_stats;

static struct conn **conns;
static size_t n_conns, cap_conns;

/* --stall CONNECT: our own connection that keeps the listen queue full */
static int filler_fd = -1;
static int filler_port; /* its local port, so that it is not served once accepted */
static long long connect_stall_until;

/* usage - print the command line summary and exit 2 */
static void usage(void)
{
    fprintf(stderr,
            "usage: smtpsink --listen ADDR:PORT [--port-file FILE] [--pid-file FILE]\n"
            "  [--log FILE] [--maildir DIR] [--hostname NAME] [--size N]\n"
            "  [--no-pipelining] [--no-8bitmime] [--smtputf8] [--dsn] [--chunking]\n"
            "  [--tls-cert FILE --tls-key FILE] [--tls-priority STRING] [--implicit-tls]\n"
            "  [--auth-file FILE] [--require-auth] [--require-tls]\n"
            "  [--reply CMD:NNN text[@TIMES]]... [--rcpt-reply ADDR=NNN text[@TIMES]]...\n"
            "  [--bad-reply CMD:garbage|long|flood|mixed|big[@TIMES]]...\n"
            "  [--421-after K] [--drop-in-data before|after[@TIMES]] [--drop-every N]\n"
            "  [--stall CMD:SECONDS[@TIMES]]... [--idle-close SECONDS] [--rate-limit N]\n"
            "  [--max-connections N] [--max-rcpts N] [--delay MS] [--timestamps]\n"
            "CMD: GREETING EHLO HELO STARTTLS AUTH MAIL RCPT DATA DOT BDAT NOOP RSET QUIT VRFY\n"
            "  HELP, and for --stall also CONNECT (the listen queue is kept full for\n"
            "  SECONDS after start-up, so TCP handshakes do not complete), TLS (the\n"
            "  handshake waits) and BODY (the content is not read after the 354 or the\n"
            "  transaction's first BDAT line); --bad-reply TLS takes only garbage (sent\n"
            "  instead of the handshake, then the server closes).\n"
            "--chunking: EHLO offers CHUNKING and BDAT SIZE [LAST] is served (RFC 3030):\n"
            "  SIZE raw octets follow the line, each chunk is answered once read, LAST\n"
            "  ends the message like the dot; --reply BDAT:NNN text answers chunks (the\n"
            "  LAST one too), --drop-in-data acts at BDAT LAST as at the dot. A chunk\n"
            "  without MAIL and RCPT gets 503, one over --size 552 (its octets are read\n"
            "  and discarded); a SIZE of more than 20 digits gets 501 at once.\n"
            "@TIMES: the fault acts the first TIMES times only (over all connections).\n"
            "--delay MS: every reply (greeting, each command's, the one after the\n"
            "  content) leaves MS milliseconds after it would; each is due MS after\n"
            "  its command was read, so pipelined replies keep their order and are\n"
            "  not delayed one after another, and other connections go on meanwhile.\n"
            "--timestamps: each \"message\" line ends in \" t=MS\", the wall-clock\n"
            "  milliseconds when the message was accepted (rates measured by tests).\n"
            "--max-rcpts N: a RCPT TO after N accepted recipients of a transaction gets\n"
            "  \"452 4.5.3 Error: too many recipients\" (default and most: %d).\n"
            "--reply AUTH:334 text: every later line of the exchange, \"*\" included,\n"
            "  gets that 334 again (a server that never stops challenging).\n"
            "--bad-reply: garbage replaces the reply with a line that is no SMTP reply;\n"
            "  long with 100,000 octets and no line end; flood sends 5,000 continuation\n"
            "  lines before the reply, mixed one of another code, big 990 lines of\n"
            "  4,000 octets (a valid reply of 4 MB). The command itself takes effect\n"
            "  as usual (DOT: the message is stored).\n",
            SINK_MAX_RCPT);
    exit(2);
}

/* parse_ulong - a positive decimal option value */
static unsigned long long parse_ulong(const char *opt, const char *s)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-')
        sink_die("%s: bad number \"%s\"", opt, s);
    return v;
}

/* parse_seconds - a non-negative, possibly fractional, number of seconds as milliseconds */
static long long parse_seconds(const char *opt, const char *s)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end || v < 0 || v > 1e7)
        sink_die("%s: bad number of seconds \"%s\"", opt, s);
    return (long long)(v * 1000 + 0.5);
}

/* check_reply - validate an "NNN text" reply given on the command line */
static void check_reply(const char *opt, const char *text)
{
    if (strlen(text) < 3 || text[0] < '2' || text[0] > '5' || text[1] < '0' || text[1] > '9' ||
        text[2] < '0' || text[2] > '9' || (text[3] != 0 && text[3] != ' '))
        sink_die("%s: reply must look like \"NNN text\": \"%s\"", opt, text);
    if (strpbrk(text, "\r\n"))
        sink_die("%s: reply must be one line", opt);
}

/* option_cmd - split "CMD:rest" and look up CMD; returns rest */
static const char *option_cmd(const char *opt, const char *arg, int *cmd)
{
    const char *colon = strchr(arg, ':');

    if (colon == NULL)
        sink_die("%s: expected CMD:VALUE, got \"%s\"", opt, arg);
    *cmd = sink_cmd_lookup(arg, (size_t)(colon - arg));
    if (*cmd < 0 || *cmd == CMD_OTHER)
        sink_die("%s: unknown command \"%.*s\"", opt, (int)(colon - arg), arg);
    return colon + 1;
}

/* split_times - a copy of value without its "@TIMES" suffix; times 0 when there is none */
static char *split_times(const char *opt, const char *value, unsigned long *times)
{
    char *copy = sink_strndup(value, strlen(value));
    char *at = strrchr(copy, '@');

    *times = 0;
    /* "@TIMES" only when the last '@' is followed by digits alone. */
    if (at && at[1] && strspn(at + 1, "0123456789") == strlen(at + 1)) {
        *times = (unsigned long)parse_ulong(opt, at + 1);
        if (*times == 0)
            sink_die("%s: @TIMES must be positive", opt);
        *at = 0;
    }
    return copy;
}

/* add_rcpt_reply - parse "ADDR=NNN text[@TIMES]" */
static void add_rcpt_reply(const char *arg)
{
    const char *eq = strchr(arg, '=');
    struct rcpt_reply *rr;

    if (eq == NULL || eq == arg)
        sink_die("--rcpt-reply: expected ADDR=NNN text[@TIMES], got \"%s\"", arg);
    cfg.rcpt_replies =
        realloc(cfg.rcpt_replies, (cfg.n_rcpt_replies + 1) * sizeof(*cfg.rcpt_replies));
    if (cfg.rcpt_replies == NULL)
        sink_die("out of memory");
    rr = &cfg.rcpt_replies[cfg.n_rcpt_replies++];
    memset(rr, 0, sizeof(*rr));
    rr->addr = sink_strndup(arg, (size_t)(eq - arg));
    rr->reply = split_times("--rcpt-reply", eq + 1, &rr->times);
    check_reply("--rcpt-reply", rr->reply);
}

/* is_moment - CONNECT, TLS, BODY: moments of the dialogue, not commands that get a reply */
static int is_moment(int cmd)
{
    return cmd == CMD_CONNECT || cmd == CMD_TLS || cmd == CMD_BODY;
}

/* add_bad_reply - parse "CMD:KIND[@TIMES]" */
static void add_bad_reply(const char *arg)
{
    static const char *const kinds[] = {"", "garbage", "long", "flood", "mixed", "big"};
    unsigned long times;
    const char *rest;
    char *kind;
    int cmd;
    size_t i;

    rest = option_cmd("--bad-reply", arg, &cmd);
    kind = split_times("--bad-reply", rest, &times);
    for (i = 1; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (strcmp(kind, kinds[i]) == 0)
            break;
    if (i == sizeof(kinds) / sizeof(kinds[0]))
        sink_die("--bad-reply: expected garbage, long, flood, mixed or big, got \"%s\"", kind);
    if (cmd == CMD_CONNECT || cmd == CMD_BODY || (cmd == CMD_TLS && i != BAD_GARBAGE))
        sink_die("--bad-reply: %s takes no %s reply", sink_cmd_name(cmd), kind);
    free(kind);
    cfg.bad_reply[cmd] = (enum bad_reply)i;
    cfg.bad_limit[cmd].times = times;
}

/* write_file_atomic - write text to path via a temporary name and rename */
static void write_file_atomic(const char *path, const char *text)
{
    char *tmp;
    int fd;
    size_t len = strlen(text);

    if (asprintf(&tmp, "%s.tmp.%ld", path, (long)getpid()) < 0)
        sink_die("out of memory");
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        sink_die("open %s: %s", tmp, strerror(errno));
    if (write(fd, text, len) != (ssize_t)len || close(fd) < 0)
        sink_die("write %s: %s", tmp, strerror(errno));
    if (rename(tmp, path) < 0)
        sink_die("rename %s: %s", tmp, strerror(errno));
    free(tmp);
}

/* parse_options - fill cfg from argv */
static void parse_options(int argc, char **argv)
{
    enum {
        O_LISTEN = 256,
        O_PORT_FILE,
        O_PID_FILE,
        O_LOG,
        O_MAILDIR,
        O_HOSTNAME,
        O_SIZE,
        O_NO_PIPELINING,
        O_NO_8BITMIME,
        O_SMTPUTF8,
        O_DSN,
        O_CHUNKING,
        O_TLS_CERT,
        O_TLS_KEY,
        O_TLS_PRIORITY,
        O_IMPLICIT_TLS,
        O_AUTH_FILE,
        O_REQUIRE_AUTH,
        O_REQUIRE_TLS,
        O_REPLY,
        O_RCPT_REPLY,
        O_BAD_REPLY,
        O_421_AFTER,
        O_DROP_IN_DATA,
        O_DROP_EVERY,
        O_STALL,
        O_IDLE_CLOSE,
        O_RATE_LIMIT,
        O_MAX_CONNECTIONS,
        O_MAX_RCPTS,
        O_DELAY,
        O_TIMESTAMPS,
        O_HELP
    };
    static const struct option opts[] = {
        {"listen", required_argument, NULL, O_LISTEN},
        {"port-file", required_argument, NULL, O_PORT_FILE},
        {"pid-file", required_argument, NULL, O_PID_FILE},
        {"log", required_argument, NULL, O_LOG},
        {"maildir", required_argument, NULL, O_MAILDIR},
        {"hostname", required_argument, NULL, O_HOSTNAME},
        {"size", required_argument, NULL, O_SIZE},
        {"no-pipelining", no_argument, NULL, O_NO_PIPELINING},
        {"no-8bitmime", no_argument, NULL, O_NO_8BITMIME},
        {"smtputf8", no_argument, NULL, O_SMTPUTF8},
        {"dsn", no_argument, NULL, O_DSN},
        {"chunking", no_argument, NULL, O_CHUNKING},
        {"tls-cert", required_argument, NULL, O_TLS_CERT},
        {"tls-key", required_argument, NULL, O_TLS_KEY},
        {"tls-priority", required_argument, NULL, O_TLS_PRIORITY},
        {"implicit-tls", no_argument, NULL, O_IMPLICIT_TLS},
        {"auth-file", required_argument, NULL, O_AUTH_FILE},
        {"require-auth", no_argument, NULL, O_REQUIRE_AUTH},
        {"require-tls", no_argument, NULL, O_REQUIRE_TLS},
        {"reply", required_argument, NULL, O_REPLY},
        {"rcpt-reply", required_argument, NULL, O_RCPT_REPLY},
        {"bad-reply", required_argument, NULL, O_BAD_REPLY},
        {"421-after", required_argument, NULL, O_421_AFTER},
        {"drop-in-data", required_argument, NULL, O_DROP_IN_DATA},
        {"drop-every", required_argument, NULL, O_DROP_EVERY},
        {"stall", required_argument, NULL, O_STALL},
        {"idle-close", required_argument, NULL, O_IDLE_CLOSE},
        {"rate-limit", required_argument, NULL, O_RATE_LIMIT},
        {"max-connections", required_argument, NULL, O_MAX_CONNECTIONS},
        {"max-rcpts", required_argument, NULL, O_MAX_RCPTS},
        {"delay", required_argument, NULL, O_DELAY},
        {"timestamps", no_argument, NULL, O_TIMESTAMPS},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    unsigned long times;
    int ch, cmd;
    const char *rest;
    char *value;

    cfg.hostname = "smtpsink.test";
    cfg.pipelining = 1;
    cfg.eightbitmime = 1;
    cfg.tls_priority = "NORMAL";
    cfg.drop_every = 1;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case O_LISTEN:
            cfg.listen = optarg;
            break;
        case O_PORT_FILE:
            cfg.port_file = optarg;
            break;
        case O_PID_FILE:
            cfg.pid_file = optarg;
            break;
        case O_LOG:
            cfg.log_file = optarg;
            break;
        case O_MAILDIR:
            cfg.maildir = optarg;
            break;
        case O_HOSTNAME:
            cfg.hostname = optarg;
            break;
        case O_SIZE:
            cfg.size_limit = parse_ulong("--size", optarg);
            break;
        case O_NO_PIPELINING:
            cfg.pipelining = 0;
            break;
        case O_NO_8BITMIME:
            cfg.eightbitmime = 0;
            break;
        case O_SMTPUTF8:
            cfg.smtputf8 = 1;
            break;
        case O_DSN:
            cfg.dsn = 1;
            break;
        case O_CHUNKING:
            cfg.chunking = 1;
            break;
        case O_TLS_CERT:
            cfg.tls_cert = optarg;
            break;
        case O_TLS_KEY:
            cfg.tls_key = optarg;
            break;
        case O_TLS_PRIORITY:
            cfg.tls_priority = optarg;
            break;
        case O_IMPLICIT_TLS:
            cfg.implicit_tls = 1;
            break;
        case O_AUTH_FILE:
            cfg.auth_file = optarg;
            break;
        case O_REQUIRE_AUTH:
            cfg.require_auth = 1;
            break;
        case O_REQUIRE_TLS:
            cfg.require_tls = 1;
            break;
        case O_REPLY:
            rest = option_cmd("--reply", optarg, &cmd);
            if (is_moment(cmd))
                sink_die("--reply: %s gets no reply", sink_cmd_name(cmd));
            value = split_times("--reply", rest, &cfg.reply_limit[cmd].times);
            check_reply("--reply", value);
            cfg.reply[cmd] = value;
            break;
        case O_RCPT_REPLY:
            add_rcpt_reply(optarg);
            break;
        case O_BAD_REPLY:
            add_bad_reply(optarg);
            break;
        case O_421_AFTER:
            cfg.after421 = (unsigned long)parse_ulong("--421-after", optarg);
            break;
        case O_DROP_IN_DATA:
            value = split_times("--drop-in-data", optarg, &cfg.drop_limit.times);
            if (strcmp(value, "before") == 0)
                cfg.drop = DROP_BEFORE;
            else if (strcmp(value, "after") == 0)
                cfg.drop = DROP_AFTER;
            else
                sink_die("--drop-in-data: expected before or after");
            free(value);
            break;
        case O_DROP_EVERY:
            cfg.drop_every = (unsigned long)parse_ulong("--drop-every", optarg);
            if (cfg.drop_every == 0)
                sink_die("--drop-every must be positive");
            break;
        case O_STALL:
            rest = option_cmd("--stall", optarg, &cmd);
            value = split_times("--stall", rest, &times);
            if (cmd == CMD_CONNECT && times > 0)
                sink_die("--stall: CONNECT is one window from start-up, without @TIMES");
            cfg.stall_ms[cmd] = parse_seconds("--stall", value);
            cfg.stall_limit[cmd].times = times;
            free(value);
            break;
        case O_IDLE_CLOSE:
            cfg.idle_ms = parse_seconds("--idle-close", optarg);
            break;
        case O_RATE_LIMIT:
            cfg.rate_limit = (unsigned long)parse_ulong("--rate-limit", optarg);
            if (cfg.rate_limit == 0)
                sink_die("--rate-limit must be positive");
            break;
        case O_MAX_CONNECTIONS:
            cfg.max_conns = (unsigned long)parse_ulong("--max-connections", optarg);
            break;
        case O_MAX_RCPTS:
            cfg.max_rcpts = (size_t)parse_ulong("--max-rcpts", optarg);
            if (cfg.max_rcpts == 0 || cfg.max_rcpts > SINK_MAX_RCPT)
                sink_die("--max-rcpts: 1 to %d", SINK_MAX_RCPT);
            break;
        case O_TIMESTAMPS:
            cfg.timestamps = 1;
            break;
        case O_DELAY:
            cfg.delay_ms = (long long)parse_ulong("--delay", optarg);
            if (cfg.delay_ms > SINK_MAX_DELAY)
                sink_die("--delay: at most %d milliseconds", SINK_MAX_DELAY);
            break;
        default:
            usage();
        }
    }
    if (optind != argc || cfg.listen == NULL)
        usage();
    if (!cfg.tls_cert != !cfg.tls_key)
        sink_die("--tls-cert and --tls-key go together");
    if (cfg.implicit_tls && !cfg.tls_cert)
        sink_die("--implicit-tls needs --tls-cert and --tls-key");
    if (cfg.require_tls && !cfg.tls_cert)
        sink_die("--require-tls needs --tls-cert and --tls-key");
    if (cfg.require_auth && !cfg.auth_file)
        sink_die("--require-auth needs --auth-file");
}

/* sockaddr_port - the port of an IPv4 or IPv6 socket address */
static int sockaddr_port(const struct sockaddr_storage *ss)
{
    return ntohs(ss->ss_family == AF_INET6 ? ((const struct sockaddr_in6 *)ss)->sin6_port
                                           : ((const struct sockaddr_in *)ss)->sin_port);
}

/* open_listener - bind and listen on ADDR:PORT ([v6]:PORT accepted); returns the socket */
static int open_listener(const char *spec, int *port)
{
    char *host, *colon, *service;
    struct addrinfo hints, *res = NULL;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    int fd, r, one = 1, body_stall_rcvbuf = 32768;

    host = sink_strndup(spec, strlen(spec));
    if ((colon = strrchr(host, ':')) == NULL)
        sink_die("--listen: expected ADDR:PORT, got \"%s\"", spec);
    *colon = 0;
    service = colon + 1;
    if (host[0] == '[') {
        size_t hl = strlen(host);
        if (hl < 2 || host[hl - 1] != ']')
            sink_die("--listen: bad address \"%s\"", spec);
        host[hl - 1] = 0;
        memmove(host, host + 1, hl - 1);
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    r = getaddrinfo(host[0] && strcmp(host, "*") != 0 ? host : NULL, service, &hints, &res);
    if (r != 0)
        sink_die("--listen %s: %s", spec, gai_strerror(r));
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        sink_die("socket: %s", strerror(errno));
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    /* --stall BODY: a small window, so that the client's writes block soon. */
    if (cfg.stall_ms[CMD_BODY] > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &body_stall_rcvbuf, sizeof(body_stall_rcvbuf));
    if (res->ai_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, res->ai_addr, res->ai_addrlen) < 0)
        sink_die("bind %s: %s", spec, strerror(errno));
    if (listen(fd, SOMAXCONN) < 0)
        sink_die("listen: %s", strerror(errno));
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
        sink_die("getsockname: %s", strerror(errno));
    *port = sockaddr_port(&ss);
    freeaddrinfo(res);
    free(host);
    return fd;
}

/* on_signal - record the signal and wake the poll loop */
static void on_signal(int sig)
{
    int saved = errno;
    char b = 0;

    if (sig == SIGUSR1)
        sig_stats = 1;
    else
        sig_stop = 1;
    if (write(sig_pipe[1], &b, 1) < 0) {
        /* pipe full: a wake-up is already pending */
    }
    errno = saved;
}

/* setup_signals - self-pipe and handlers; SIGPIPE is ignored (send errors are handled) */
static void setup_signals(void)
{
    struct sigaction sa;

    if (pipe2(sig_pipe, O_NONBLOCK | O_CLOEXEC) < 0)
        sink_die("pipe: %s", strerror(errno));
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}

/* raise_fd_limit - allow as many descriptors as the hard limit permits */
static void raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* live_connections - connections still in a dialogue (for --max-connections) */
static unsigned long live_connections(void)
{
    unsigned long n = 0;
    size_t i;

    for (i = 0; i < n_conns; i++)
        if (conns[i]->state == CS_SMTP || conns[i]->state == CS_HANDSHAKE)
            n++;
    return n;
}

/*
 * connect_stall_begin - --stall CONNECT: a listen queue of length 0 that
 * our own connection fills, so that the kernel drops every other SYN and
 * a client's connect(2) waits, as with an unreachable host
 */
static void connect_stall_begin(int lfd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);

    if (listen(lfd, 0) < 0 || getsockname(lfd, (struct sockaddr *)&ss, &sl) < 0)
        sink_die("--stall CONNECT: listen: %s", strerror(errno));
    filler_fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (filler_fd < 0 || connect(filler_fd, (struct sockaddr *)&ss, sl) < 0)
        sink_die("--stall CONNECT: connect to the listening socket: %s", strerror(errno));
    sl = sizeof(ss);
    if (getsockname(filler_fd, (struct sockaddr *)&ss, &sl) < 0)
        sink_die("--stall CONNECT: getsockname: %s", strerror(errno));
    filler_port = sockaddr_port(&ss);
    connect_stall_until = sink_now + cfg.stall_ms[CMD_CONNECT];
    sink_log("stall cmd=CONNECT ms=%lld", cfg.stall_ms[CMD_CONNECT]);
}

/* connect_stall_end - a full-length listen queue again; the filler goes */
static void connect_stall_end(int lfd)
{
    if (listen(lfd, SOMAXCONN) < 0)
        sink_die("listen: %s", strerror(errno));
    close(filler_fd);
    filler_fd = -1;
    connect_stall_until = 0;
    sink_log("stall-end cmd=CONNECT");
}

/* accept_all - accept every pending connection; returns -1 when out of descriptors */
static int accept_all(int lfd)
{
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        char addr[INET6_ADDRSTRLEN] = "?";
        int fd, one = 1, over;

        fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                fprintf(stderr, "smtpsink: accept: %s\n", strerror(errno));
                return -1;
            }
            return 0;
        }
        if (filler_port != 0 && sockaddr_port(&ss) == filler_port) {
            filler_port = 0; /* the --stall CONNECT filler: no client of ours */
            close(fd);
            continue;
        }
        /* Small replies must not wait for Nagle under pipelining. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (ss.ss_family == AF_INET6)
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, addr, sizeof(addr));
        else if (ss.ss_family == AF_INET)
            inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, addr, sizeof(addr));
        over = cfg.max_conns > 0 && live_connections() >= cfg.max_conns;
        if (n_conns == cap_conns) {
            cap_conns = cap_conns ? cap_conns * 2 : 64;
            conns = realloc(conns, cap_conns * sizeof(*conns));
            if (conns == NULL)
                sink_die("out of memory");
        }
        conns[n_conns++] = conn_create(fd, addr, over);
    }
}

/* sweep - free connections that have finished */
static void sweep(void)
{
    size_t i, j = 0;

    for (i = 0; i < n_conns; i++) {
        if (conns[i]->state == CS_DEAD)
            conn_destroy(conns[i]);
        else
            conns[j++] = conns[i];
    }
    n_conns = j;
}

/* log_stats - the SIGUSR1 "stats" line */
static void log_stats(void)
{
    sink_log("stats connections=%lu messages=%lu tls=%lu auth_ok=%lu auth_fail=%lu reads=%lu",
             stats.connections, stats.messages, stats.tls, stats.auth_ok, stats.auth_fail,
             stats.reads);
}

/* main - set up, then run the poll loop until SIGTERM/SIGINT */
int main(int argc, char **argv)
{
    struct pollfd *pfds = NULL;
    size_t cap_pfds = 0, i;
    int lfd, port;
    long long accept_pause = 0;
    char text[64];

    parse_options(argc, argv);
    setup_signals();
    raise_fd_limit();
    sink_now = sink_clock();
    if (cfg.log_file)
        sink_log_open(cfg.log_file);
    if (cfg.tls_cert)
        sink_tls_setup(cfg.tls_cert, cfg.tls_key, cfg.tls_priority);
    if (cfg.auth_file)
        smtp_load_users(cfg.auth_file);
    if (cfg.rate_limit)
        smtp_rate_init(cfg.rate_limit);
    lfd = open_listener(cfg.listen, &port);
    if (cfg.stall_ms[CMD_CONNECT] > 0)
        connect_stall_begin(lfd);
    if (cfg.pid_file) {
        snprintf(text, sizeof(text), "%ld\n", (long)getpid());
        write_file_atomic(cfg.pid_file, text);
    }
    sink_log("listen port=%d", port);
    if (cfg.port_file) {
        snprintf(text, sizeof(text), "%d\n", port);
        write_file_atomic(cfg.port_file, text);
    }

    while (!sig_stop) {
        long long next = 0;
        int timeout = 1000, ready = 0, nfds;
        size_t base = 2;

        sink_now = sink_clock();
        if (connect_stall_until && sink_now >= connect_stall_until)
            connect_stall_end(lfd);
        else if (connect_stall_until)
            next = connect_stall_until;
        for (i = 0; i < n_conns; i++) {
            struct conn *c = conns[i];
            long long d;

            conn_timers(c);
            if (c->state == CS_CLOSING || (c->state == CS_SMTP && sbuf_avail(&c->out) > 0))
                conn_flush(c);
            d = conn_deadline(c);
            if (d && (next == 0 || d < next))
                next = d;
            if (conn_tls_pending(c))
                ready = 1;
        }
        sweep();
        if (cap_pfds < n_conns + base) {
            cap_pfds = (n_conns + base) * 2;
            pfds = realloc(pfds, cap_pfds * sizeof(*pfds));
            if (pfds == NULL)
                sink_die("out of memory");
        }
        pfds[0].fd = sig_pipe[0];
        pfds[0].events = POLLIN;
        pfds[1].fd = accept_pause > sink_now || connect_stall_until ? -1 : lfd;
        pfds[1].events = POLLIN;
        for (i = 0; i < n_conns; i++) {
            pfds[base + i].fd = conns[i]->fd;
            pfds[base + i].events = conn_poll_events(conns[i]);
            pfds[base + i].revents = 0;
        }
        if (ready)
            timeout = 0;
        else if (next)
            timeout =
                next <= sink_now ? 0 : (next - sink_now < 1000 ? (int)(next - sink_now) : 1000);
        if (accept_pause > sink_now && timeout > 100)
            timeout = 100;
        nfds = poll(pfds, n_conns + base, timeout);
        if (nfds < 0) {
            if (errno == EINTR)
                continue;
            sink_die("poll: %s", strerror(errno));
        }
        sink_now = sink_clock();
        if (pfds[0].revents) {
            char drain[64];

            while (read(sig_pipe[0], drain, sizeof(drain)) > 0)
                ;
            if (sig_stats) {
                sig_stats = 0;
                log_stats();
            }
        }
        /* Connections first: accept_all may grow the conns array. */
        for (i = 0; i < n_conns; i++) {
            struct conn *c = conns[i];
            short rev = pfds[base + i].revents;

            if (conn_tls_pending(c))
                rev |= POLLIN;
            if (rev)
                conn_service(c, rev);
        }
        if (pfds[1].fd >= 0 && pfds[1].revents && accept_all(lfd) < 0)
            accept_pause = sink_now + 100;
        sweep();
    }

    close(lfd);
    for (i = 0; i < n_conns; i++) {
        conn_log_close(conns[i], "shutdown");
        conn_destroy(conns[i]);
    }
    free(conns);
    free(pfds);
    return 0;
}
