/*
 * qid - queue ids: short, unique, roughly time-ordered
 *
 * qid_create()
 *	write a new id of QID_LEN characters plus a terminator into buf: 7
 *	characters of the current time in seconds, then 5 of random bits from
 *	libsodium, in a 32-letter alphabet without vowels (no words, no
 *	confusion of 0/O or 1/I). Ids sort by creation time to the second.
 *	Uniqueness is enforced where an id is stored (the queue refuses to
 *	overwrite), which retries with a new id.
 * qid_valid()
 *	whether text is syntactically a queue id, for operator input.
 * qid_time()
 *	when a queue id was made, in seconds since the epoch, from its first
 *	7 characters; -1 when they are not of the alphabet.
 *
 * The caller must have called sodium_init() (qstore_open does).
 */
#include "config.h"

#include <string.h>
#include <time.h>

#include <sodium.h>

#include "qid.h"

static const char qid_alphabet[] = "0123456789BCDFGHJKLMNPQRSTVWXYZb";

/* qid_create - make a new queue id */
void qid_create(char *buf)
{
    unsigned long long now = (unsigned long long)time(NULL);
    uint32_t rnd = randombytes_random();

    for (int i = 6; i >= 0; i--) {
        buf[i] = qid_alphabet[now & 31];
        now >>= 5;
    }
    for (int i = 7; i < QID_LEN; i++) {
        buf[i] = qid_alphabet[rnd & 31];
        rnd >>= 5;
    }
    buf[QID_LEN] = '\0';
}

/* qid_valid - is this a syntactically valid queue id */
int qid_valid(const char *text)
{
    if (strlen(text) != QID_LEN)
        return 0;
    for (const char *cp = text; *cp; cp++)
        if (strchr(qid_alphabet, *cp) == NULL)
            return 0;
    return 1;
}

/* qid_time - the creation time written in a queue id, or -1 */
long long qid_time(const char *qid)
{
    long long when = 0;

    for (int i = 0; i < 7; i++) {
        const char *cp = qid[i] ? strchr(qid_alphabet, qid[i]) : NULL;

        if (cp == NULL)
            return -1;
        when = (when << 5) | (long long)(cp - qid_alphabet);
    }
    return when;
}
