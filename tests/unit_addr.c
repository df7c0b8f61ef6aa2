/*
 * unit_addr - table tests of envelope address syntax and address lists
 *
 * addr_check cases give an address (with an explicit length when it holds
 * a NUL byte), flags, and either success or the exact reason. Address-list
 * cases give a header value and the addresses expected, joined with "|",
 * or the exact reason of the syntax error.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "tap.h"
#include "vstr.h"

#define E ADDR_ALLOW_EMPTY
#define U ADDR_ALLOW_UTF8

/* One address and the expected verdict. */
struct check_case {
    const char *addr;
    size_t len; /* 0: strlen(addr) */
    int flags;
    const char *why; /* NULL: valid */
};

static const struct check_case check_cases[] = {
    /* Valid. */
    {"user@example.com", 0, 0, NULL},
    {"a@b", 0, 0, NULL},
    {"user@localhost", 0, 0, NULL},
    {"first.last@sub.example.co.uk", 0, 0, NULL},
    {"user+tag@example.com", 0, 0, NULL},
    {"!#$%&'*+-/=?^_`{|}~@example.com", 0, 0, NULL},
    {"USER@EXAMPLE.COM", 0, 0, NULL},
    {"user@123.example", 0, 0, NULL},
    {"user@x-y.example", 0, 0, NULL},
    {"\"john doe\"@example.com", 0, 0, NULL},
    {"\"a@b\"@example.com", 0, 0, NULL},
    {"\"quote\\\"inside\"@example.com", 0, 0, NULL},
    {"\"back\\\\slash\"@example.com", 0, 0, NULL},
    {"\"\"@example.com", 0, 0, NULL},
    {"\"..\"@example.com", 0, 0, NULL},
    {"user@[192.0.2.1]", 0, 0, NULL},
    {"user@[IPv6:2001:db8::1]", 0, 0, NULL},
    {"user@[ipv6:::1]", 0, 0, NULL},
    {"", 0, E, NULL},
    {"j\xc3\xb6rg@b\xc3\xbc"
     "cher.example",
     0, U, NULL},
    {"\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a", 0, U, NULL},
    {"1234567890123456789012345678901234567890123456789012345678901234@example.com", 0, 0, NULL},
    {"user@123456789012345678901234567890123456789012345678901234567890123.example", 0, 0, NULL},

    /* Invalid. */
    {"", 0, 0, "empty address"},
    {"", 0, U, "empty address"},
    {"user", 0, 0, "missing @domain"},
    {"user.example.com", 0, 0, "missing @domain"},
    {"\"user\"", 0, 0, "missing @domain"},
    {"@example.com", 0, 0, "empty local part"},
    {"user@", 0, 0, "empty domain after @"},
    {"a@b@c", 0, 0, "more than one @ (quote the local part)"},
    {".user@example.com", 0, 0, "local part starts with a dot"},
    {"user.@example.com", 0, 0, "local part ends with a dot"},
    {"us..er@example.com", 0, 0, "local part contains \"..\""},
    {"us er@example.com", 0, 0, "local part contains ' ' (only allowed in a quoted local part)"},
    {"us(er@example.com", 0, 0, "local part contains '(' (only allowed in a quoted local part)"},
    {"<user@example.com>", 0, 0, "local part contains '<' (only allowed in a quoted local part)"},
    {"us\\er@example.com", 0, 0, "local part contains '\\' (only allowed in a quoted local part)"},
    {"\"unterminated@example.com", 0, 0, "unterminated quoted local part"},
    {"\"bad\\\"@example.com", 0, 0, "unterminated quoted local part"},
    {"\"a\"b@example.com", 0, 0, "text after the quoted local part"},
    {"user@example..com", 0, 0, "domain label is empty"},
    {"user@.example.com", 0, 0, "domain label is empty"},
    {"user@example.com.", 0, 0, "domain label is empty"},
    {"user@-example.com", 0, 0, "domain label starts or ends with a hyphen"},
    {"user@example-.com", 0, 0, "domain label starts or ends with a hyphen"},
    {"user@exa_mple.com", 0, 0, "domain label contains '_' (only letters, digits, hyphens)"},
    {"user@exa mple.com", 0, 0, "domain label contains ' ' (only letters, digits, hyphens)"},
    {"user@example.com>", 0, 0, "domain label contains '>' (only letters, digits, hyphens)"},
    {"user@1234567890123456789012345678901234567890123456789012345678901234.example", 0, 0,
     "domain label longer than 63 octets"},
    {"12345678901234567890123456789012345678901234567890123456789012345@example.com", 0, 0,
     "local part longer than 64 octets"},
    {"user@[192.0.2.256]", 0, 0, "bad IPv4 address literal"},
    {"user@[192.0.2]", 0, 0, "bad IPv4 address literal"},
    {"user@[IPv6:2001:db8::g]", 0, 0, "bad IPv6 address literal"},
    {"user@[2001:db8::1]", 0, 0, "unsupported address literal (use [IPv6:...] for IPv6)"},
    {"user@[192.0.2.1", 0, 0, "address literal without closing \"]\""},
    {"user@[]", 0, 0, "empty address literal"},
    {"user@[192.0.2.1]x", 0, 0, "address literal without closing \"]\""},
    {"user@example.com\r\nRCPT TO:<evil@example.com>", 0, 0, "contains a line break"},
    {"user@example.com\n", 0, 0, "contains a line break"},
    {"user\r@example.com", 0, 0, "contains a line break"},
    {"user@exam\0ple.com", 17, 0, "contains a NUL byte"},
    {"\0", 1, E, "contains a NUL byte"},
    {"user\t@example.com", 0, 0, "contains a control character"},
    {"user\x1b@example.com", 0, 0, "contains a control character"},
    {"user\x7f@example.com", 0, 0, "contains a control character"},
    {"\"a\tb\"@example.com", 0, 0, "contains a control character"},
    {"j\xc3\xb6rg@example.com", 0, 0, "contains non-ASCII characters (needs SMTPUTF8)"},
    {"user@b\xc3\xbc"
     "cher.example",
     0, E, "contains non-ASCII characters (needs SMTPUTF8)"},
    {"j\xf6rg@example.com", 0, U, "is not valid UTF-8"},
    {"j\xc0\xafrg@example.com", 0, U, "is not valid UTF-8"},
    {"j\xed\xa0\x80rg@example.com", 0, U, "is not valid UTF-8"},
    {"j\xf4\x90\x80\x80rg@example.com", 0, U, "is not valid UTF-8"},
    {"j\xc3@example.com", 0, U, "is not valid UTF-8"},
    {"user@example.\xc3", 0, U, "is not valid UTF-8"},
    {"\xff\xfe@example.com", 0, U, "is not valid UTF-8"},
};

/* One header value and the addresses found in it. */
struct list_case {
    const char *name;
    const char *value;
    size_t len;         /* 0: strlen(value) */
    int count;          /* -1: syntax error */
    const char *expect; /* addresses joined with "|", or the reason */
};

static const struct list_case list_cases[] = {
    {"one addr-spec", "user@example.com", 0, 1, "user@example.com"},
    {"two addr-specs", "a@example.com, b@example.org", 0, 2, "a@example.com|b@example.org"},
    {"angle-addr", "<a@example.com>", 0, 1, "a@example.com"},
    {"display name", "Joe User <joe@example.com>", 0, 1, "joe@example.com"},
    {"quoted display name with specials", "\"User, Joe <x@y>\" <joe@example.com>", 0, 1,
     "joe@example.com"},
    {"comment after", "joe@example.com (Joe User)", 0, 1, "joe@example.com"},
    {"nested comment", "joe@example.com (Joe (the (real) one) User)", 0, 1, "joe@example.com"},
    {"comment with escaped paren", "joe@example.com (a \\) b)", 0, 1, "joe@example.com"},
    {"comment inside addr-spec", "joe(x)@(y)example.com", 0, 1, "joe@example.com"},
    {"comment with comma", "a@x (one, two), b@y", 0, 2, "a@x|b@y"},
    {"group", "friends: a@example.com, Bee <b@example.com>;", 0, 2, "a@example.com|b@example.com"},
    {"group then address", "g: a@x; c@z", 0, 2, "a@x|c@z"},
    {"group then comma", "g: a@x;, c@z", 0, 2, "a@x|c@z"},
    {"empty group", "undisclosed-recipients:;", 0, 0, ""},
    {"empty group with spaces", "undisclosed-recipients: ;", 0, 0, ""},
    {"group without semicolon", "undisclosed-recipients:", 0, 0, ""},
    {"two groups", "a: x@a;b: y@b, z@b;", 0, 3, "x@a|y@b|z@b"},
    {"empty value", "", 0, 0, ""},
    {"white space only", " \t\r\n ", 0, 0, ""},
    {"empty elements", ", a@x, , b@y,", 0, 2, "a@x|b@y"},
    {"folded CRLF WSP", "Joe\r\n <joe@example.com>,\r\n\tann@example.com", 0, 2,
     "joe@example.com|ann@example.com"},
    {"bare LF folding", "a@x,\n b@y", 0, 2, "a@x|b@y"},
    {"obsolete spaces around dots", "joe . user @ example . com", 0, 1, "joe.user@example.com"},
    {"quoted local part", "\"joe user\"@example.com", 0, 1, "\"joe user\"@example.com"},
    {"quoted local part in angle", "Joe <\"joe,user\"@example.com>", 0, 1,
     "\"joe,user\"@example.com"},
    {"quoted string folded", "\"joe\r\n user\"@example.com", 0, 1, "\"joe user\"@example.com"},
    {"domain literal", "joe@[192.0.2.1]", 0, 1, "joe@[192.0.2.1]"},
    {"source route dropped", "<@relay.example,@other.example:joe@example.com>", 0, 1,
     "joe@example.com"},
    {"phrase without angle kept apart", "Joe joe@example.com", 0, 1, "Joe joe@example.com"},
    {"null angle-addr", "<>", 0, 1, ""},
    {"utf-8 display name", "J\xc3\xb6rg <j@example.com>", 0, 1, "j@example.com"},
    {"many addresses", "a@x,b@x,c@x,d@x,e@x,f@x,g@x,h@x", 0, 8, "a@x|b@x|c@x|d@x|e@x|f@x|g@x|h@x"},

    {"unbalanced quote", "\"Joe <joe@example.com>", 0, -1,
     "unbalanced quote (unterminated quoted string)"},
    {"unbalanced paren", "joe@example.com (Joe", 0, -1, "unbalanced \"(\" (unterminated comment)"},
    {"unbalanced nested paren", "joe@example.com (a (b)", 0, -1,
     "unbalanced \"(\" (unterminated comment)"},
    {"stray close paren", "joe@example.com)", 0, -1, "unbalanced \")\""},
    {"missing close angle", "Joe <joe@example.com", 0, -1, "unbalanced \"<\" (missing \">\")"},
    {"missing close angle before comma", "Joe <joe@example.com, b@x", 0, -1,
     "unbalanced \"<\" (missing \">\")"},
    {"stray close angle", "joe@example.com>", 0, -1, "unbalanced \">\""},
    {"nested angle", "<<joe@example.com>>", 0, -1, "nested \"<\""},
    {"unbalanced bracket", "joe@[192.0.2.1", 0, -1,
     "unbalanced \"[\" (unterminated domain literal)"},
    {"stray close bracket", "joe@192.0.2.1]", 0, -1, "unbalanced \"]\""},
    {"text after angle", "<a@x> b@y", 0, -1, "text after \">\" (missing \",\"?)"},
    {"two angles", "<a@x> <b@y>", 0, -1, "text after \">\" (missing \",\"?)"},
    {"nested group", "a: b: c@d;;", 0, -1, "nested group"},
    {"semicolon outside group", "a@x; b@y", 0, -1, "\";\" outside a group"},
    {"NUL byte", "a@x,\0b@y", 8, -1, "contains a NUL byte"},
    {"error after good addresses reports none", "a@x, b@y, (oops", 0, -1,
     "unbalanced \"(\" (unterminated comment)"},
};

/* What the found() callback saw. */
struct found {
    VSTR *out; /* addresses joined with "|" */
    int count;
};

/* collect - the found() callback */
static void collect(const char *addr, void *ctx)
{
    struct found *f = ctx;

    if (f->count++ > 0)
        vstr_addch(f->out, '|');
    vstr_strcat(f->out, addr);
}

/* extract - run addr_extract_list into a fresh result */
static int extract(const char *value, size_t len, struct found *f, VSTR *why)
{
    vstr_reset(f->out);
    f->count = 0;
    vstr_strcpy(why, "(none)");
    return addr_extract_list(value, len, collect, f, why);
}

/* run_check - addr_check over the table */
static void run_check(void)
{
    VSTR *why = vstr_alloc(64);
    size_t i;

    for (i = 0; i < sizeof(check_cases) / sizeof(check_cases[0]); i++) {
        const struct check_case *c = check_cases + i;
        size_t len = c->len ? c->len : strlen(c->addr);
        int ret;

        vstr_strcpy(why, "(none)");
        ret = addr_check(c->addr, len, c->flags, why);
        if (c->why == NULL)
            tap_ok(ret == 0, "addr_check #%zu valid (%s)", i, vstr_str(why));
        else
            tap_ok(ret == -1 && strcmp(vstr_str(why), c->why) == 0,
                   "addr_check #%zu: %s (got %d: %s)", i, c->why, ret, vstr_str(why));
    }
    vstr_free(why);
}

/* run_lengths - the RFC 5321 size limits at their edges */
static void run_lengths(void)
{
    VSTR *addr = vstr_alloc(1024);
    VSTR *why = vstr_alloc(64);
    int i;

    /* 64 + 1 + 191 = 256 octets: the longest path allowed. */
    vstr_reset(addr);
    for (i = 0; i < 64; i++)
        vstr_addch(addr, 'l');
    vstr_addch(addr, '@');
    while (vstr_len(addr) < 256) {
        vstr_strcat(addr, "d");
        if ((vstr_len(addr) - 65) % 60 == 59 && vstr_len(addr) < 255)
            vstr_addch(addr, '.');
    }
    tap_ok(addr_check(vstr_str(addr), vstr_len(addr), 0, why) == 0,
           "256-octet address accepted (%s)", vstr_str(why));
    vstr_strcat(addr, "d");
    tap_ok(addr_check(vstr_str(addr), vstr_len(addr), 0, why) == -1 &&
               strcmp(vstr_str(why), "longer than 256 octets") == 0,
           "257-octet address rejected (%s)", vstr_str(why));

    /* An over-long address with a line break: the line break is what is reported. */
    vstr_reset(addr);
    for (i = 0; i < 5000; i++)
        vstr_addch(addr, 'a');
    vstr_strcat(addr, "@x\n");
    tap_ok(addr_check(vstr_str(addr), vstr_len(addr), 0, why) == -1 &&
               strcmp(vstr_str(why), "contains a line break") == 0,
           "5000-octet address with a line break (%s)", vstr_str(why));

    /* A length shorter than the string: only len bytes count. */
    tap_ok(addr_check("a@b\r\nDATA", 3, 0, why) == 0, "len bounds the check");
    tap_ok(addr_check("a@b", 2, 0, why) == -1 && strcmp(vstr_str(why), "empty domain after @") == 0,
           "truncated len leaves an empty domain");

    vstr_free(addr);
    vstr_free(why);
}

/* run_domain - addr_domain and addr_needs_utf8 */
static void run_domain(void)
{
    static const struct {
        const char *addr;
        const char *domain;
        int utf8;
    } cases[] = {
        {"user@example.com", "example.com", 0},
        {"\"a@b\"@example.com", "example.com", 0},
        {"user", "", 0},
        {"", "", 0},
        {"user@", "", 0},
        {"j\xc3\xb6rg@example.com", "example.com", 1},
        {"user@b\xc3\xbc"
         "cher.example",
         "b\xc3\xbc"
         "cher.example",
         1},
        {"a@b@c", "c", 0},
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tap_ok(strcmp(addr_domain(cases[i].addr), cases[i].domain) == 0,
               "addr_domain #%zu is \"%s\"", i, cases[i].domain);
        tap_ok(addr_needs_utf8(cases[i].addr) == cases[i].utf8, "addr_needs_utf8 #%zu is %d", i,
               cases[i].utf8);
    }
}

/* run_list - addr_extract_list over the table */
static void run_list(void)
{
    struct found f = {vstr_alloc(64), 0};
    VSTR *why = vstr_alloc(64);
    size_t i;

    for (i = 0; i < sizeof(list_cases) / sizeof(list_cases[0]); i++) {
        const struct list_case *c = list_cases + i;
        int ret = extract(c->value, c->len ? c->len : strlen(c->value), &f, why);

        if (c->count >= 0)
            tap_ok(ret == c->count && f.count == c->count &&
                       strcmp(vstr_str(f.out), c->expect) == 0,
                   "list: %s (got %d: \"%s\" %s)", c->name, ret, vstr_str(f.out), vstr_str(why));
        else
            tap_ok(ret == -1 && strcmp(vstr_str(why), c->expect) == 0 && f.count == 0,
                   "list: %s (got %d: %s; found \"%s\")", c->name, ret, vstr_str(why),
                   vstr_str(f.out));
    }
    vstr_free(f.out);
    vstr_free(why);
}

/* run_list_hostile - generated inputs: deep nesting, many addresses, huge values */
static void run_list_hostile(void)
{
    VSTR *value = vstr_alloc(1024);
    struct found f = {vstr_alloc(1024), 0};
    VSTR *why = vstr_alloc(64);
    int ret;
    int i;

    /* 10000 nested comments, balanced: no recursion, no trouble. */
    vstr_strcpy(value, "a@x ");
    for (i = 0; i < 10000; i++)
        vstr_addch(value, '(');
    for (i = 0; i < 10000; i++)
        vstr_addch(value, ')');
    ret = extract(vstr_str(value), vstr_len(value), &f, why);
    tap_ok(ret == 1 && strcmp(vstr_str(f.out), "a@x") == 0, "10000 nested comments");

    /* The same, one short. */
    vstr_truncate(value, vstr_len(value) - 1);
    ret = extract(vstr_str(value), vstr_len(value), &f, why);
    tap_ok(ret == -1 && f.count == 0, "10000 nested comments, one unclosed (%s)", vstr_str(why));

    /* 5000 addresses. */
    vstr_reset(value);
    for (i = 0; i < 5000; i++)
        vstr_sprintf_append(value, "%su%d@example.com", i ? ", " : "", i);
    ret = extract(vstr_str(value), vstr_len(value), &f, why);
    tap_ok(ret == 5000 && f.count == 5000, "5000 addresses (got %d)", ret);

    /* A 100000-byte address is passed through for addr_check to refuse. */
    vstr_reset(value);
    for (i = 0; i < 100000; i++)
        vstr_addch(value, 'a');
    vstr_strcat(value, "@x");
    ret = extract(vstr_str(value), vstr_len(value), &f, why);
    tap_ok(ret == 1 && vstr_len(f.out) == 100002 &&
               addr_check(vstr_str(f.out), vstr_len(f.out), 0, why) == -1,
           "100000-byte address extracted and then refused (%s)", vstr_str(why));

    /* Backslashes and quotes at the very end. */
    ret = extract("a@x, \"", 6, &f, why);
    tap_ok(ret == -1 && f.count == 0, "quote at the end (%s)", vstr_str(why));
    ret = extract("\"a\\", 3, &f, why);
    tap_ok(ret == -1, "backslash ending a quoted string (%s)", vstr_str(why));
    ret = extract("a@x (\\", 6, &f, why);
    tap_ok(ret == -1, "backslash ending a comment (%s)", vstr_str(why));
    ret = extract("[1.2.3.4\\", 9, &f, why);
    tap_ok(ret == -1, "backslash ending a domain literal (%s)", vstr_str(why));

    /* A line break that does not fold would smuggle in another header. */
    ret = extract("a@x\r\nBcc: evil@y", 16, &f, why);
    tap_ok(ret == -1 && f.count == 0 &&
               strcmp(vstr_str(why), "line break not followed by white space") == 0,
           "CRLF without white space rejected (%s)", vstr_str(why));
    ret = extract("\"a\nb\"@x", 7, &f, why);
    tap_ok(ret == -1, "LF without white space inside quotes rejected (%s)", vstr_str(why));
    ret = extract("a@x (c\nd)", 9, &f, why);
    tap_ok(ret == -1, "LF without white space inside a comment rejected (%s)", vstr_str(why));
    ret = extract("a@x\r\n", 5, &f, why);
    tap_ok(ret == 1 && strcmp(vstr_str(f.out), "a@x") == 0, "trailing CRLF accepted");
    ret = extract("joe@example.com: a@x;", 21, &f, why);
    tap_ok(ret == -1 && strcmp(vstr_str(why), "\"@\" in a group name") == 0,
           "address used as a group name rejected (%s)", vstr_str(why));

    vstr_free(value);
    vstr_free(f.out);
    vstr_free(why);
}

int main(void)
{
    run_check();
    run_lengths();
    run_domain();
    run_list();
    run_list_hostile();
    return tap_done();
}
