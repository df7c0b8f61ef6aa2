/*
 * unit_netaddr - table tests of smtpd_listen and mynetworks parsing and matching
 *
 * A table of smtpd_listen words (good ones with their family and port, bad
 * ones with a piece of the reason), then a table of clients against one
 * mynetworks list: IPv4 and IPv6 networks, a bare address, prefixes that
 * end inside a byte, and an IPv4 client seen on an IPv6 socket.
 */
#include "config.h"

#include <arpa/inet.h>
#include <string.h>

#include "netaddr.h"
#include "tap.h"
#include "vstr.h"

static const struct listen_case {
    const char *word;
    int family; /* 0: refused */
    unsigned port;
    const char *reason; /* a piece of the reason when refused */
} listen_cases[] = {
    {"127.0.0.1:25", AF_INET, 25, NULL},
    {"0.0.0.0:587", AF_INET, 587, NULL},
    {"[::1]:25", AF_INET6, 25, NULL},
    {"[::]:0", AF_INET6, 0, NULL},
    {"127.0.0.1", 0, 0, "ADDRESS:PORT"},
    {"127.0.0.1:", 0, 0, "ADDRESS:PORT"},
    {"127.0.0.1:65536", 0, 0, "ADDRESS:PORT"},
    {"127.0.0.1:2x", 0, 0, "ADDRESS:PORT"},
    {"localhost:25", 0, 0, "not a numeric IPv4 address"},
    {"::1:25", 0, 0, "ADDRESS:PORT"},
    {"[127.0.0.1]:25", 0, 0, "not a numeric IPv6 address"},
    {"[::1:25", 0, 0, "ADDRESS:PORT"},
    {"[fe80::1%eth0]:25", 0, 0, "not a numeric IPv6 address"},
};

static const char *const networks = "127.0.0.0/8, 192.0.2.128/25 [2001:db8::]/32 10.1.2.3 ::1/128";

static const struct match_case {
    const char *addr;
    int match;
} match_cases[] = {
    {"127.0.0.1", 1},
    {"127.255.255.254", 1},
    {"128.0.0.1", 0},
    {"192.0.2.128", 1},
    {"192.0.2.255", 1},
    {"192.0.2.127", 0},
    {"10.1.2.3", 1},
    {"10.1.2.4", 0},
    {"::1", 1},
    {"::2", 0},
    {"2001:db8::5", 1},
    {"2001:db9::5", 0},
    {"::ffff:127.0.0.1", 1},
    {"::ffff:192.0.2.1", 0},
};

/* sockaddr_of - a socket address of a numeric address */
static void sockaddr_of(const char *text, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, text, &((struct sockaddr_in *)ss)->sin_addr) == 1)
        ss->ss_family = AF_INET;
    else if (inet_pton(AF_INET6, text, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1)
        ss->ss_family = AF_INET6;
}

/* count_word - a listen walk's callback: count the words */
static int count_word(const char *word, const struct sockaddr *sa, socklen_t len, void *ctx)
{
    (void)word;
    (void)sa;
    (void)len;
    ++*(int *)ctx;
    return 0;
}

int main(void)
{
    VSTR *why = vstr_alloc(100);
    struct sockaddr_storage ss;
    socklen_t len;
    NETMASK_LIST *nl;
    int words = 0;

    for (size_t i = 0; i < sizeof(listen_cases) / sizeof(listen_cases[0]); i++) {
        const struct listen_case *c = listen_cases + i;
        int rc = netaddr_listen_parse(c->word, &ss, &len, why);
        unsigned port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                       : ((struct sockaddr_in *)&ss)->sin_port);

        if (c->family != 0)
            tap_ok(rc == 0 && ss.ss_family == c->family && port == c->port,
                   "smtpd_listen \"%s\": family %d, port %u", c->word, ss.ss_family, port);
        else
            tap_ok(rc < 0 && strstr(vstr_str(why), c->reason) != NULL,
                   "smtpd_listen \"%s\" refused: %s", c->word, vstr_str(why));
    }
    tap_ok(netaddr_listen_each("127.0.0.1:25, [::1]:25\t10.0.0.1:2525", count_word, &words, why) ==
                   0 &&
               words == 3,
           "a list of three, comma and blank separated");
    tap_ok(netaddr_listen_each("127.0.0.1:25, nonsense", NULL, NULL, why) < 0 &&
               strstr(vstr_str(why), "\"nonsense\"") != NULL,
           "a list with a bad word names it: %s", vstr_str(why));
    tap_ok(netaddr_listen_each("", count_word, &words, why) == 0 && words == 3,
           "an empty list: no listener");

    nl = netmask_list_parse(networks, why);
    tap_ok(nl != NULL, "mynetworks \"%s\" parses", networks);
    for (size_t i = 0; nl != NULL && i < sizeof(match_cases) / sizeof(match_cases[0]); i++) {
        const struct match_case *c = match_cases + i;

        sockaddr_of(c->addr, &ss);
        tap_ok(netmask_list_match(nl, (struct sockaddr *)&ss) == c->match, "%s %s", c->addr,
               c->match ? "is in mynetworks" : "is not");
    }
    netmask_list_free(nl);
    tap_ok(netmask_list_parse("127.0.0.0/33", why) == NULL && strstr(vstr_str(why), "127.0.0.0/33"),
           "a prefix longer than the address is refused: %s", vstr_str(why));
    tap_ok(netmask_list_parse("10.0.0.0/8 example.com", why) == NULL &&
               strstr(vstr_str(why), "example.com"),
           "a host name is refused: %s", vstr_str(why));
    vstr_free(why);
    return tap_done();
}
