/*
 * addr - RFC 5321 envelope address syntax, RFC 5322 address lists
 *
 * addr_check()
 *	validate a bare RFC 5321 Mailbox (no angle brackets): a Dot-string or
 *	Quoted-string local part, "@", and a domain of LDH labels or an
 *	address literal ([192.0.2.1], [IPv6:2001:db8::1]), within the RFC
 *	5321 length limits. UTF-8 (RFC 6531) only with ADDR_ALLOW_UTF8; the
 *	empty address only with ADDR_ALLOW_EMPTY; a local part alone (that
 *	pickup qualifies with "@myorigin") only with ADDR_ALLOW_BARE.
 * addr_is_bare()
 *	whether an address is a local part alone: not empty, and no "@"
 *	after its local part (a quoted local part may hold "@").
 * addr_domain()
 *	the domain part: the text after the last "@", or "".
 * addr_needs_utf8()
 *	whether an address needs SMTPUTF8 (has a byte >= 0x80).
 * addr_extract_list()
 *	parse an RFC 5322 address-list header value (To, Cc, Bcc for
 *	"sendmail -t") and report each addr-spec, without display names,
 *	comments or angle brackets. The addresses are not validated: the
 *	caller runs addr_check() on each.
 *
 * Ownership: nothing is kept; addr_domain() points into its argument, and
 * the strings passed to the found() callback live only during the call.
 *
 * Failures: bad syntax is reported with -1 and a short reason in `why`
 * that never quotes the address (it may hold anything). Allocation failure
 * is fatal (mymalloc).
 */
#include "config.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "mymalloc.h"
#include "vstr.h"

/* addr_fail - store a reason and fail */
static int addr_fail(VSTR *why, const char *reason)
{
    vstr_strcpy(why, reason);
    return -1;
}

/* addr_is_atext - RFC 5321/5322 atext, ASCII part */
static int addr_is_atext(int ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch != 0 && strchr("!#$%&'*+-/=?^_`{|}~", ch) != NULL);
}

/* addr_utf8_ok - whether len bytes are well-formed UTF-8 (no overlongs, surrogates) */
static int addr_utf8_ok(const unsigned char *s, size_t len)
{
    size_t i = 0;
    size_t n;
    size_t k;
    unsigned long cp;

    while (i < len) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        if (s[i] >= 0xc2 && s[i] <= 0xdf) {
            n = 1, cp = s[i] & 0x1f;
        } else if (s[i] >= 0xe0 && s[i] <= 0xef) {
            n = 2, cp = s[i] & 0x0f;
        } else if (s[i] >= 0xf0 && s[i] <= 0xf4) {
            n = 3, cp = s[i] & 0x07;
        } else {
            return 0;
        }
        if (len - i <= n)
            return 0;
        for (k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += n + 1;
    }
    return 1;
}

/* addr_check_local - a Dot-string or Quoted-string of len bytes */
static int addr_check_local(const char *s, size_t len, VSTR *why)
{
    size_t i;
    unsigned char ch;

    if (len == 0)
        return addr_fail(why, "empty local part");
    if (len > ADDR_MAX_LOCAL)
        return addr_fail(why, "local part longer than 64 octets");
    if (s[0] == '"') {
        /* The caller found the closing quote; check what lies between. */
        for (i = 1; i < len - 1; i++) {
            ch = (unsigned char)s[i];
            if (ch == '\\') {
                i++;
                if (i >= len - 1 || (unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
                    return addr_fail(why, "bad backslash escape in quoted local part");
            } else if (ch == '"') {
                return addr_fail(why, "unescaped quote in quoted local part");
            }
        }
        return 0;
    }
    if (s[0] == '.')
        return addr_fail(why, "local part starts with a dot");
    if (s[len - 1] == '.')
        return addr_fail(why, "local part ends with a dot");
    for (i = 0; i < len; i++) {
        ch = (unsigned char)s[i];
        if (ch == '.' && s[i + 1] == '.')
            return addr_fail(why, "local part contains \"..\"");
        if (ch != '.' && ch < 0x80 && !addr_is_atext(ch)) {
            vstr_sprintf(why, "local part contains '%c' (only allowed in a quoted local part)", ch);
            return -1;
        }
    }
    return 0;
}

/* addr_check_literal - "[192.0.2.1]" or "[IPv6:2001:db8::1]" */
static int addr_check_literal(const char *s, size_t len, VSTR *why)
{
    unsigned char bin[sizeof(struct in6_addr)];
    char text[ADDR_MAX_DOMAIN + 1];

    if (s[len - 1] != ']')
        return addr_fail(why, "address literal without closing \"]\"");
    if (len < 3)
        return addr_fail(why, "empty address literal");
    /* Bounded: the caller checked len <= ADDR_MAX_DOMAIN. */
    memcpy(text, s + 1, len - 2);
    text[len - 2] = '\0';
    if (strncasecmp(text, "IPv6:", 5) == 0) {
        if (inet_pton(AF_INET6, text + 5, bin) != 1)
            return addr_fail(why, "bad IPv6 address literal");
        return 0;
    }
    if (strchr(text, ':') != NULL)
        return addr_fail(why, "unsupported address literal (use [IPv6:...] for IPv6)");
    if (inet_pton(AF_INET, text, bin) != 1)
        return addr_fail(why, "bad IPv4 address literal");
    return 0;
}

/* addr_check_domain - sub-domain *("." sub-domain), LDH labels of at most 63 octets */
static int addr_check_domain(const char *s, size_t len, int flags, VSTR *why)
{
    size_t i;
    size_t label = 0;
    unsigned char ch;

    if (len == 0)
        return addr_fail(why, "empty domain after @");
    if (len > ADDR_MAX_DOMAIN)
        return addr_fail(why, "domain longer than 255 octets");
    if (s[0] == '[')
        return addr_check_literal(s, len, why);
    for (i = 0; i <= len; i++) {
        ch = i < len ? (unsigned char)s[i] : '.';
        if (ch == '.') {
            if (label == 0)
                return addr_fail(why, "domain label is empty");
            if (s[i - label] == '-' || s[i - 1] == '-')
                return addr_fail(why, "domain label starts or ends with a hyphen");
            label = 0;
        } else if (++label > 63) {
            return addr_fail(why, "domain label longer than 63 octets");
        } else if (ch == '@') {
            return addr_fail(why, "more than one @ (quote the local part)");
        } else if (ch >= 0x80 ? !(flags & ADDR_ALLOW_UTF8)
                              : !((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                                  (ch >= '0' && ch <= '9') || ch == '-')) {
            vstr_sprintf(why, "domain label contains '%c' (only letters, digits, hyphens)", ch);
            return -1;
        }
    }
    return 0;
}

/* addr_check - validate a bare RFC 5321 Mailbox */
int addr_check(const char *addr, size_t len, int flags, VSTR *why)
{
    size_t i;
    size_t local_len;
    int eight_bit = 0;
    unsigned char ch;

    if (len == 0)
        return (flags & ADDR_ALLOW_EMPTY) ? 0 : addr_fail(why, "empty address");
    /* Scan everything first: a NUL or a line break must never pass for a later error. */
    for (i = 0; i < len; i++) {
        ch = (unsigned char)addr[i];
        if (ch == '\0')
            return addr_fail(why, "contains a NUL byte");
        if (ch == '\r' || ch == '\n')
            return addr_fail(why, "contains a line break");
        if (ch < 0x20 || ch == 0x7f)
            return addr_fail(why, "contains a control character");
        if (ch >= 0x80)
            eight_bit = 1;
    }
    if (len > ADDR_MAX_PATH)
        return addr_fail(why, "longer than 256 octets");
    if (eight_bit) {
        if (!(flags & ADDR_ALLOW_UTF8))
            return addr_fail(why, "contains non-ASCII characters (needs SMTPUTF8)");
        if (!addr_utf8_ok((const unsigned char *)addr, len))
            return addr_fail(why, "is not valid UTF-8");
    }
    if (addr[0] == '"') {
        for (i = 1; i < len && addr[i] != '"'; i++)
            if (addr[i] == '\\')
                i++;
        if (i >= len)
            return addr_fail(why, "unterminated quoted local part");
        local_len = i + 1;
        if (local_len == len && (flags & ADDR_ALLOW_BARE))
            return addr_check_local(addr, local_len, why);
        if (local_len == len)
            return addr_fail(why, "missing @domain");
        if (addr[local_len] != '@')
            return addr_fail(why, "text after the quoted local part");
    } else {
        /* memchr, not strcspn: the address is len bytes, not a C string. */
        const char *at = memchr(addr, '@', len);

        local_len = at ? (size_t)(at - addr) : len;
        if (local_len >= len && at == NULL && (flags & ADDR_ALLOW_BARE))
            return addr_check_local(addr, local_len, why);
        if (local_len >= len)
            return addr_fail(why, "missing @domain");
    }
    if (addr_check_local(addr, local_len, why) < 0)
        return -1;
    return addr_check_domain(addr + local_len + 1, len - local_len - 1, flags, why);
}

/* addr_is_bare - a local part with no "@domain" */
int addr_is_bare(const char *addr)
{
    const char *scan = addr;
    const char *quote;

    if (*addr == '\0')
        return 0;
    if (scan[0] == '"' && (quote = strchr(scan + 1, '"')) != NULL)
        scan = quote;
    return strchr(scan, '@') == NULL;
}

/* addr_domain - the text after the last "@", or "" */
const char *addr_domain(const char *addr)
{
    const char *at = strrchr(addr, '@');

    return at ? at + 1 : "";
}

/* addr_needs_utf8 - whether an address has bytes outside ASCII */
int addr_needs_utf8(const char *addr)
{
    for (; *addr; addr++)
        if ((unsigned char)*addr >= 0x80)
            return 1;
    return 0;
}

/*
 * The address-list parser. A lexer hands out words (atoms, quoted strings,
 * domain literals) and specials; comments and folding white space vanish,
 * except that two words in a row are kept apart by one space, so that a
 * display name written without angle brackets ("Joe joe@example.com")
 * yields an address that addr_check() rejects instead of "Joejoe@...".
 */
#define ADDR_TOK_END 0
#define ADDR_TOK_WORD 1    /* text in tok */
#define ADDR_TOK_SPECIAL 2 /* one of < > , : ; @ . in tok */

/* State of one address-list parse. */
typedef struct ADDR_LEX {
    const char *cp;
    const char *end;
    VSTR *tok;
    VSTR *why;
} ADDR_LEX;

/* addr_lex_bad_fold - a line break (cp is after it) that does not fold */
static int addr_lex_bad_fold(const ADDR_LEX *lex)
{
    /* A header line that ends without white space after it ends the header. */
    return lex->cp < lex->end && *lex->cp != ' ' && *lex->cp != '\t';
}

/* addr_lex_skip_comment - skip a nested (comment); cp is after "(" */
static int addr_lex_skip_comment(ADDR_LEX *lex)
{
    int depth = 1;

    while (lex->cp < lex->end) {
        char ch = *lex->cp++;

        if (ch == '\n' && addr_lex_bad_fold(lex))
            return addr_fail(lex->why, "line break not followed by white space");
        if (ch == '\\') {
            if (lex->cp < lex->end)
                lex->cp++;
        } else if (ch == '(') {
            depth++;
        } else if (ch == ')' && --depth == 0) {
            return 0;
        }
    }
    return addr_fail(lex->why, "unbalanced \"(\" (unterminated comment)");
}

/* addr_lex_delimited - copy a "quoted string" or [domain literal], unfolded */
static int addr_lex_delimited(ADDR_LEX *lex, char close, const char *unterminated)
{
    vstr_addch(lex->tok, lex->cp[-1]);
    while (lex->cp < lex->end) {
        char ch = *lex->cp++;

        if (ch == '\r' || ch == '\n') {
            /* Folding: the line break goes, the white space after it stays. */
            if (ch == '\n' && addr_lex_bad_fold(lex))
                return addr_fail(lex->why, "line break not followed by white space");
            continue;
        }
        vstr_addch(lex->tok, ch);
        if (ch == '\\') {
            if (lex->cp < lex->end)
                vstr_addch(lex->tok, *lex->cp++);
        } else if (ch == close) {
            return 0;
        }
    }
    return addr_fail(lex->why, unterminated);
}

/* addr_lex_next - the next token, or -1 on a syntax error */
static int addr_lex_next(ADDR_LEX *lex)
{
    char ch;

    vstr_reset(lex->tok);
    while (lex->cp < lex->end) {
        ch = *lex->cp++;
        switch (ch) {
        case '\n':
            if (addr_lex_bad_fold(lex))
                return addr_fail(lex->why, "line break not followed by white space");
            continue;
        case ' ':
        case '\t':
        case '\r':
            continue;
        case '\0':
            return addr_fail(lex->why, "contains a NUL byte");
        case '(':
            if (addr_lex_skip_comment(lex) < 0)
                return -1;
            continue;
        case ')':
            return addr_fail(lex->why, "unbalanced \")\"");
        case ']':
            return addr_fail(lex->why, "unbalanced \"]\"");
        case '"':
            if (addr_lex_delimited(lex, '"', "unbalanced quote (unterminated quoted string)") < 0)
                return -1;
            return ADDR_TOK_WORD;
        case '[':
            if (addr_lex_delimited(lex, ']', "unbalanced \"[\" (unterminated domain literal)") < 0)
                return -1;
            return ADDR_TOK_WORD;
        case '<':
        case '>':
        case ',':
        case ':':
        case ';':
        case '@':
        case '.':
            vstr_addch(lex->tok, ch);
            return ADDR_TOK_SPECIAL;
        default:
            /* An atom; odd bytes stay in it for addr_check() to reject. */
            vstr_addch(lex->tok, ch);
            while (lex->cp < lex->end && strchr(" \t\r\n()<>[]\",:;@.", *lex->cp) == NULL &&
                   *lex->cp != '\0')
                vstr_addch(lex->tok, *lex->cp++);
            return ADDR_TOK_WORD;
        }
    }
    return ADDR_TOK_END;
}

/* One address being assembled between commas. */
typedef struct ADDR_PART {
    VSTR *plain;    /* words outside <>: an addr-spec, or a display name */
    VSTR *angle;    /* words inside <> */
    int plain_word; /* last thing added to plain was a word */
    int plain_at;   /* plain holds an "@": an addr-spec, not a phrase */
    int angle_word; /* same for angle */
    int in_angle;   /* between < and > */
    int seen_angle; /* a <...> was closed in this address */
} ADDR_PART;

/* addr_part_add - add a token to the current address text */
static void addr_part_add(VSTR *buf, int *last_word, int type, const char *text)
{
    if (type == ADDR_TOK_WORD && *last_word)
        vstr_addch(buf, ' ');
    vstr_strcat(buf, text);
    *last_word = type == ADDR_TOK_WORD;
}

/* addr_part_end - finish one address: keep it, if any */
static void addr_part_end(ADDR_PART *part, char ***list, size_t *count)
{
    const char *text = NULL;
    const char *colon;

    if (part->seen_angle) {
        text = vstr_str(part->angle);
        /* Drop an obsolete source route: <@relay1,@relay2:user@example.com>. */
        if (text[0] == '@' && (colon = strchr(text, ':')) != NULL)
            text = colon + 1;
    } else if (vstr_len(part->plain) > 0) {
        text = vstr_str(part->plain);
    }
    if (text != NULL) {
        *list = myrealloc(*list, (*count + 1) * sizeof(**list));
        (*list)[(*count)++] = mystrdup(text);
    }
    vstr_reset(part->plain);
    vstr_reset(part->angle);
    part->plain_word = part->plain_at = part->angle_word = part->in_angle = 0;
    part->seen_angle = 0;
}

/* addr_parse_list - collect the addresses of a list; -1 on a syntax error */
static int addr_parse_list(ADDR_LEX *lex, ADDR_PART *part, char ***list, size_t *count)
{
    int in_group = 0;
    int type;
    char ch;

    while ((type = addr_lex_next(lex)) > 0) {
        ch = type == ADDR_TOK_SPECIAL ? vstr_str(lex->tok)[0] : 0;
        if (part->in_angle) {
            if (ch == '<')
                return addr_fail(lex->why, "nested \"<\"");
            if (ch == '>') {
                part->in_angle = 0;
                part->seen_angle = 1;
            } else if (ch == ';') {
                return addr_fail(lex->why, "unbalanced \"<\" (missing \">\")");
            } else {
                /* ',' and ':' here belong to an obsolete route; kept, dropped at the end */
                addr_part_add(part->angle, &part->angle_word, type, vstr_str(lex->tok));
            }
            continue;
        }
        if (ch == '>')
            return addr_fail(lex->why, "unbalanced \">\"");
        if (ch == ',' || ch == ';') {
            if (ch == ';' && !in_group)
                return addr_fail(lex->why, "\";\" outside a group");
            addr_part_end(part, list, count);
            if (ch == ';')
                in_group = 0;
            continue;
        }
        if (part->seen_angle)
            return addr_fail(lex->why, "text after \">\" (missing \",\"?)");
        if (ch == '<') {
            /* Whatever came before was the display name. */
            vstr_reset(part->plain);
            part->plain_word = part->plain_at = 0;
            part->in_angle = 1;
        } else if (ch == ':') {
            if (in_group)
                return addr_fail(lex->why, "nested group");
            /* Dropping "joe@example.com:" as a group name would lose a recipient. */
            if (part->plain_at)
                return addr_fail(lex->why, "\"@\" in a group name");
            /* "name:" opens a group; the name is not an address. */
            vstr_reset(part->plain);
            part->plain_word = part->plain_at = 0;
            in_group = 1;
        } else {
            addr_part_add(part->plain, &part->plain_word, type, vstr_str(lex->tok));
            part->plain_at |= ch == '@';
        }
    }
    if (type < 0)
        return -1;
    if (part->in_angle)
        return addr_fail(lex->why, "unbalanced \"<\" (missing \">\")");
    /* A group without its ";" is common ("undisclosed-recipients:"): accept it. */
    addr_part_end(part, list, count);
    return 0;
}

/* addr_extract_list - report each addr-spec of an RFC 5322 address-list */
int addr_extract_list(const char *header_value, size_t len,
                      void (*found)(const char *addr, void *ctx), void *ctx, VSTR *why)
{
    ADDR_LEX lex;
    ADDR_PART part;
    char **list = NULL;
    size_t count = 0;
    size_t i;
    int ret;

    lex.cp = header_value;
    lex.end = header_value + len;
    lex.tok = vstr_alloc(64);
    lex.why = why;
    memset(&part, 0, sizeof(part));
    part.plain = vstr_alloc(64);
    part.angle = vstr_alloc(64);
    /* Report nothing unless the whole list parses: no half-read recipient lists. */
    ret = addr_parse_list(&lex, &part, &list, &count);
    for (i = 0; i < count; i++) {
        if (ret == 0)
            found(list[i], ctx);
        myfree(list[i]);
    }
    myfree(list);
    vstr_free(lex.tok);
    vstr_free(part.plain);
    vstr_free(part.angle);
    return ret < 0 ? -1 : (int)count;
}
