/*
 * netaddr - listening addresses and client networks, as relayq.conf writes them
 *
 * netaddr_listen_parse()
 *	one smtpd_listen word: "ADDRESS:PORT" with a numeric IPv4 address,
 *	or "[ADDRESS]:PORT" with a numeric IPv6 one (no host names: a
 *	listener never waits for DNS). The port is 1 to 65535, or 0 for one
 *	the system picks (tests). Fills a socket address; -1 with a reason.
 * netaddr_listen_each()
 *	every word of an smtpd_listen list (comma or blank separated), in
 *	order, to a callback; stops at the first bad word, whose reason
 *	names it.
 * netmask_list_parse(), netmask_list_match(), netmask_list_free()
 *	a mynetworks list: "ADDRESS/BITS" or "[ADDRESS]/BITS" (IPv6), or a
 *	bare address (all its bits), comma or blank separated; and whether a
 *	client's address is in one of them. An IPv4 client that reaches an
 *	IPv6 socket as ::ffff:a.b.c.d is matched as a.b.c.d.
 *
 * Untrusted input: the configuration; every length and number is bounded
 * and the reason says which word is wrong.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mymalloc.h"
#include "netaddr.h"

#define NETADDR_WORD_MAX 64 /* the longest word: "[IPv6]:port" or "[IPv6]/bits" */

/* One network of a mynetworks list. */
typedef struct NETMASK {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    int bits;
} NETMASK;

struct NETMASK_LIST {
    NETMASK *masks;
    size_t count;
};

/* netaddr_split - an address, bracketed when IPv6, then a separator and a number */
static int netaddr_split(const char *word, int sep, char *host, size_t host_size, long *number,
                         int *bracketed)
{
    const char *end, *num;
    char *stop;

    if (strlen(word) >= NETADDR_WORD_MAX)
        return -1;
    *bracketed = word[0] == '[';
    if (*bracketed) {
        if ((end = strchr(word, ']')) == NULL)
            return -1;
        num = end + 1;
        word++;
    } else {
        if ((end = strchr(word, sep)) == NULL)
            end = word + strlen(word);
        num = end;
    }
    if ((size_t)(end - word) >= host_size || end == word)
        return -1;
    memcpy(host, word, (size_t)(end - word));
    host[end - word] = '\0';
    if (*num == '\0') {
        *number = -1; /* none given */
        return 0;
    }
    if (*num != sep || num[1] < '0' || num[1] > '9')
        return -1;
    errno = 0;
    *number = strtol(num + 1, &stop, 10);
    return *stop != '\0' || errno != 0 ? -1 : 0;
}

/* netaddr_listen_parse - one "ADDRESS:PORT" or "[ADDRESS]:PORT" */
int netaddr_listen_parse(const char *word, struct sockaddr_storage *ss, socklen_t *len, VSTR *why)
{
    char host[NETADDR_WORD_MAX];
    long port;
    int bracketed;

    memset(ss, 0, sizeof(*ss));
    if (netaddr_split(word, ':', host, sizeof(host), &port, &bracketed) < 0 || port < 0 ||
        port > 65535) {
        vstr_sprintf(why, "\"%.*s\" is not ADDRESS:PORT or [IPV6-ADDRESS]:PORT", NETADDR_WORD_MAX,
                     word);
        return -1;
    }
    if (!bracketed) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;

        if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
            vstr_sprintf(why, "\"%s\" is not a numeric IPv4 address (IPv6: [ADDRESS]:PORT)", host);
            return -1;
        }
        sin->sin_family = AF_INET;
        sin->sin_port = htons((unsigned short)port);
        *len = sizeof(*sin);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

        if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1) {
            vstr_sprintf(why, "\"%s\" is not a numeric IPv6 address", host);
            return -1;
        }
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((unsigned short)port);
        *len = sizeof(*sin6);
    }
    return 0;
}

/* netaddr_listen_each - every word of an smtpd_listen list, in order */
int netaddr_listen_each(const char *list, NETADDR_LISTEN_FN each, void *ctx, VSTR *why)
{
    char *copy = mystrdup(list), *save = NULL, *word;
    struct sockaddr_storage ss;
    socklen_t len;
    int ret = 0;

    for (word = strtok_r(copy, ", \t", &save); word != NULL && ret == 0;
         word = strtok_r(NULL, ", \t", &save)) {
        if ((ret = netaddr_listen_parse(word, &ss, &len, why)) == 0 && each != NULL)
            ret = each(word, (struct sockaddr *)&ss, len, ctx);
    }
    myfree(copy);
    return ret;
}

/* netmask_parse - one network of mynetworks; -1 when it is not one */
static int netmask_parse(const char *word, NETMASK *mask)
{
    char host[NETADDR_WORD_MAX];
    long bits;
    int bracketed, max;

    if (netaddr_split(word, '/', host, sizeof(host), &bits, &bracketed) < 0)
        return -1;
    memset(mask, 0, sizeof(*mask));
    if (inet_pton(AF_INET, host, mask->addr) == 1 && !bracketed)
        mask->family = AF_INET;
    else if (inet_pton(AF_INET6, host, mask->addr) == 1)
        mask->family = AF_INET6;
    else
        return -1;
    max = mask->family == AF_INET ? 32 : 128;
    if (bits > max)
        return -1;
    mask->bits = bits < 0 ? max : (int)bits;
    return 0;
}

/* netmask_list_parse - a mynetworks list; NULL with a reason */
NETMASK_LIST *netmask_list_parse(const char *list, VSTR *why)
{
    NETMASK_LIST *nl = mycalloc(1, sizeof(*nl));
    char *copy = mystrdup(list), *save = NULL, *word;

    for (word = strtok_r(copy, ", \t", &save); word != NULL; word = strtok_r(NULL, ", \t", &save)) {
        nl->masks = myrealloc(nl->masks, sizeof(*nl->masks) * (nl->count + 1));
        if (netmask_parse(word, nl->masks + nl->count) < 0) {
            vstr_sprintf(why, "\"%.*s\" is not ADDRESS/BITS or [IPV6-ADDRESS]/BITS",
                         NETADDR_WORD_MAX, word);
            myfree(copy);
            netmask_list_free(nl);
            return NULL;
        }
        nl->count++;
    }
    myfree(copy);
    return nl;
}

/* netmask_covers - whether the first `bits` bits of two addresses agree */
static int netmask_covers(const unsigned char *net, const unsigned char *addr, int bits)
{
    int whole = bits / 8, rest = bits % 8;

    if (memcmp(net, addr, (size_t)whole) != 0)
        return 0;
    return rest == 0 || ((net[whole] ^ addr[whole]) & (0xff << (8 - rest)) & 0xff) == 0;
}

/* netmask_list_match - is a client's address in the list */
int netmask_list_match(const NETMASK_LIST *nl, const struct sockaddr *sa)
{
    static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    const unsigned char *addr;
    int family = sa->sa_family;

    if (family == AF_INET) {
        addr = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
    } else if (family == AF_INET6) {
        addr = (const unsigned char *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (memcmp(addr, v4mapped, sizeof(v4mapped)) == 0) {
            family = AF_INET;
            addr += sizeof(v4mapped);
        }
    } else {
        return 0;
    }
    for (size_t i = 0; i < nl->count; i++)
        if (nl->masks[i].family == family &&
            netmask_covers(nl->masks[i].addr, addr, nl->masks[i].bits))
            return 1;
    return 0;
}

/* netmask_list_free - release a list */
void netmask_list_free(NETMASK_LIST *nl)
{
    if (nl == NULL)
        return;
    myfree(nl->masks);
    myfree(nl);
}
