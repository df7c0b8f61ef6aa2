/*
 * unit_maildrop - tests of the maildrop file envelope
 *
 * An envelope encoded by maildrop_encode_envelope parses back, up to
 * MAILDROP_RCPT_MAX recipients of the longest address; bare local parts
 * get "@origin" and an envelope without a sender says so (own_sender); a
 * table of damaged or hostile files is refused with a reason that names
 * the problem.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "addr.h"
#include "maildrop.h"
#include "tap.h"

#define ORIGIN "origin.example"

/* Files pickup must refuse, with a word the reason must contain. */
static const struct {
    const char *file;
    const char *reason;
} bad_files[] = {
    {"", "no envelope"},
    {"type=maildrop\nversion=1\n", "no envelope"},
    {"type=other\nversion=1\n\nbody", "not \"maildrop\""},
    {"type=maildrop\nversion=9\nuid=0\nposted=1\nsender=a@b.c\nrcpt=x@y.z\n\nbody", "version"},
    {"type=maildrop\nversion=1\nuid=0\nposted=1\nsender=a@b.c\n\nbody", "no recipients"},
    {"type=maildrop\nversion=1\nuid=0\nposted=1\nsender=a@b.c\nrcpt=bad..dots\n\nbody",
     "recipient"},
    {"type=maildrop\nversion=1\nuid=0\nposted=1\nsender=a@b.c\nrcpt=x@\n\nbody", "recipient"},
    {"type=maildrop\nversion=1\nuid=0\nposted=1\nsender=a@b.c\nrcpt=x%0D%0A@y.z\n\nbody",
     "recipient"},
    {"type=maildrop\nversion=1\nuid=0\nposted=1\nsender=a b@c\nrcpt=x@y.z\n\nbody", "sender"},
    {"type=maildrop\nversion=1\nuid=-5\nposted=1\nsender=\nrcpt=x@y.z\n\nbody", "uid"},
    {"type=maildrop\nversion=1\nposted=1\nsender=\nrcpt=x@y.z\n\nbody", "missing attribute uid"},
    {"type=maildrop\nversion=1\nuid=0\nposted=1\nsender=\nrcpt=x@y.z\nbogus=1\n\nbody",
     "unexpected attribute"},
    {"type=maildrop\nversion=1\nuid=0\nposted=1\nsender=\nrcpt_notify=never\nrcpt=x@y.z\n\nb",
     "before any rcpt"},
    {"type=maildrop\nversion=1\nuid=0\nposted=1\nsender=\nrcpt=x@y.z\nrcpt_notify=sometimes\n\nb",
     "bad rcpt_notify"},
    {"type=maildrop\nversion=1\nuid=0\nposted=1\nsender=\nrcpt=x@y.z\nrcpt_orcpt=rfc822;a<b\n\nb",
     "bad rcpt_orcpt"},
    {"type=maildrop\nversion=1\nuid=0\nposted=1\nsender=\nrcpt=x@y.z\nrcpt_orcpt=rfc822;a\n"
     "rcpt_orcpt=rfc822;b\n\nb",
     "repeated"},
};

int main(void)
{
    MAILDROP_ENV env, back;
    VSTR *file = vstr_alloc(256), *why = vstr_alloc(100);
    size_t offset = 0;
    int ret;

    maildrop_env_init(&env);
    env.uid = 1000;
    env.posted = 1700000000;
    maildrop_env_add_rcpt(&env, "one@example.com");
    maildrop_env_add_rcpt(&env, "two@example.org");
    maildrop_encode_envelope(&env, file);
    vstr_strcat(file, "Subject: hi\n\nbody\n");
    tap_ok(maildrop_parse(vstr_str(file), vstr_len(file), ORIGIN, &back, &offset, why) == 0,
           "an encoded envelope parses: %s", vstr_str(why));
    tap_ok(back.nrcpt == 2 && strcmp(back.rcpts[1], "two@example.org") == 0 &&
               strcmp(back.sender, "") == 0 && back.uid == 1000,
           "recipients, null sender and uid survive");
    tap_ok(strcmp(vstr_str(file) + offset, "Subject: hi\n\nbody\n") == 0,
           "the content starts right after the envelope");
    maildrop_env_free(&back);
    maildrop_env_free(&env);

    /* A recipient's own NOTIFY and ORCPT stay with it. */
    maildrop_env_init(&env);
    maildrop_env_add_rcpt(&env, "one@example.com");
    maildrop_env_add_rcpt_dsn(&env, "two@example.org", "success,delay", "rfc822;old@example.org");
    vstr_reset(file);
    maildrop_encode_envelope(&env, file);
    vstr_strcat(file, "x\n");
    tap_ok(maildrop_parse(vstr_str(file), vstr_len(file), ORIGIN, &back, &offset, why) == 0 &&
               strcmp(back.notifies[0], "") == 0 && strcmp(back.orcpts[0], "") == 0 &&
               strcmp(back.notifies[1], "success,delay") == 0 &&
               strcmp(back.orcpts[1], "rfc822;old@example.org") == 0,
           "per-recipient NOTIFY and ORCPT survive, with their recipient: %s", vstr_str(why));
    maildrop_env_free(&back);
    maildrop_env_free(&env);

    /* No -f: no sender in the file, and pickup is told to name the user. */
    maildrop_env_init(&env);
    env.own_sender = 1;
    maildrop_env_add_rcpt(&env, "bob");
    maildrop_env_add_rcpt(&env, "\"a@b\"");
    maildrop_env_add_rcpt(&env, "carol@example.com");
    maildrop_env_add_rcpt_dsn(&env, "bob@" ORIGIN, "never", "");
    vstr_reset(file);
    maildrop_encode_envelope(&env, file);
    tap_ok(strstr(vstr_str(file), "sender=") == NULL, "own sender: no sender attribute written");
    vstr_strcat(file, "x\n");
    ret = maildrop_parse(vstr_str(file), vstr_len(file), ORIGIN, &back, &offset, why);
    tap_ok(ret == 0 && back.own_sender == 1 && strcmp(back.sender, "") == 0,
           "own sender: parsed as such: %s", vstr_str(why));
    tap_ok(ret == 0 && back.nrcpt == 3 && strcmp(back.rcpts[0], "bob@" ORIGIN) == 0 &&
               strcmp(back.rcpts[1], "\"a@b\"@" ORIGIN) == 0 &&
               strcmp(back.rcpts[2], "carol@example.com") == 0,
           "bare local parts, a quoted one with \"@\" too, get @origin; whole addresses stay");
    tap_ok(ret == 0 && back.nrcpt == 3 && strcmp(back.notifies[0], "") == 0,
           "bob@origin after bare bob is one recipient: the first, its DSN requests too");
    if (ret == 0)
        maildrop_env_free(&back);
    maildrop_env_free(&env);
    vstr_strcpy(file, "type=maildrop\nversion=1\nuid=0\nposted=1\nsender=alice\nrcpt=x@y.z\n\nb");
    ret = maildrop_parse(vstr_str(file), vstr_len(file), ORIGIN, &back, &offset, why);
    tap_ok(ret == 0 && back.own_sender == 0 && strcmp(back.sender, "alice@" ORIGIN) == 0,
           "a bare -f sender gets @origin: %s", vstr_str(why));
    if (ret == 0)
        maildrop_env_free(&back);

    for (size_t i = 0; i < sizeof(bad_files) / sizeof(bad_files[0]); i++) {
        ret = maildrop_parse(bad_files[i].file, strlen(bad_files[i].file), ORIGIN, &back, &offset,
                             why);

        tap_ok(ret < 0 && strstr(vstr_str(why), bad_files[i].reason) != NULL,
               "refused with \"%s\": %s", bad_files[i].reason, vstr_str(why));
        if (ret == 0)
            maildrop_env_free(&back);
    }
    /* The most recipients, each nearly as long as RFC 5321 allows: over 1 MB of envelope. */
    maildrop_env_init(&env);
    for (int i = 0; i < MAILDROP_RCPT_MAX; i++) {
        char rcpt[ADDR_MAX_PATH + 1], label[56];

        memset(label, 'x', sizeof(label) - 1);
        label[sizeof(label) - 1] = '\0';
        snprintf(rcpt, sizeof(rcpt), "r%05d@%s.%s.%s.%s.example.com", i, label, label, label,
                 label);
        maildrop_env_add_rcpt(&env, rcpt);
    }
    vstr_reset(file);
    maildrop_encode_envelope(&env, file);
    vstr_strcat(file, "Subject: many\n\nbody\n");
    ret = maildrop_parse(vstr_str(file), vstr_len(file), ORIGIN, &back, &offset, why);
    tap_ok(ret == 0 && back.nrcpt == MAILDROP_RCPT_MAX && offset > 1024 * 1024,
           "%d recipients of %zu octets (%zu bytes of envelope) parse", MAILDROP_RCPT_MAX,
           strlen(env.rcpts[0]), offset);
    if (ret == 0)
        maildrop_env_free(&back);
    maildrop_env_add_rcpt(&env, "one@too.many");
    vstr_reset(file);
    maildrop_encode_envelope(&env, file);
    vstr_strcat(file, "\nbody\n");
    tap_ok(maildrop_parse(vstr_str(file), vstr_len(file), ORIGIN, &back, &offset, why) < 0 &&
               strstr(vstr_str(why), "more than 10000 recipients") != NULL,
           "one more is refused: %s", vstr_str(why));
    maildrop_env_free(&env);

    vstr_free(file);
    vstr_free(why);
    return tap_done();
}
