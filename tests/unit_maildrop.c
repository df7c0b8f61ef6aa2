/*
 * unit_maildrop - tests of the maildrop file envelope
 *
 * An envelope encoded by maildrop_encode_envelope parses back; a table of
 * damaged or hostile files is refused with a reason that names the problem.
 */
#include "config.h"

#include <string.h>

#include "maildrop.h"
#include "tap.h"

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
    {"type=maildrop\nversion=1\nuid=0\nposted=1\nsender=a@b.c\nrcpt=bad\n\nbody", "recipient"},
    {"type=maildrop\nversion=1\nuid=0\nposted=1\nsender=a@b.c\nrcpt=x%0D%0A@y.z\n\nbody",
     "recipient"},
    {"type=maildrop\nversion=1\nuid=0\nposted=1\nsender=a b@c\nrcpt=x@y.z\n\nbody", "sender"},
    {"type=maildrop\nversion=1\nuid=-5\nposted=1\nsender=\nrcpt=x@y.z\n\nbody", "uid"},
    {"type=maildrop\nversion=1\nposted=1\nsender=\nrcpt=x@y.z\n\nbody", "missing attribute uid"},
    {"type=maildrop\nversion=1\nuid=0\nposted=1\nsender=\nrcpt=x@y.z\nbogus=1\n\nbody",
     "unexpected attribute"},
};

int main(void)
{
    MAILDROP_ENV env, back;
    VSTR *file = vstr_alloc(256), *why = vstr_alloc(100);
    size_t offset = 0;

    maildrop_env_init(&env);
    env.uid = 1000;
    env.posted = 1700000000;
    maildrop_env_add_rcpt(&env, "one@example.com");
    maildrop_env_add_rcpt(&env, "two@example.org");
    maildrop_encode_envelope(&env, file);
    vstr_strcat(file, "Subject: hi\n\nbody\n");
    tap_ok(maildrop_parse(vstr_str(file), vstr_len(file), &back, &offset, why) == 0,
           "an encoded envelope parses: %s", vstr_str(why));
    tap_ok(back.nrcpt == 2 && strcmp(back.rcpts[1], "two@example.org") == 0 &&
               strcmp(back.sender, "") == 0 && back.uid == 1000,
           "recipients, null sender and uid survive");
    tap_ok(strcmp(vstr_str(file) + offset, "Subject: hi\n\nbody\n") == 0,
           "the content starts right after the envelope");
    maildrop_env_free(&back);
    maildrop_env_free(&env);

    for (size_t i = 0; i < sizeof(bad_files) / sizeof(bad_files[0]); i++) {
        int ret = maildrop_parse(bad_files[i].file, strlen(bad_files[i].file), &back, &offset, why);

        tap_ok(ret < 0 && strstr(vstr_str(why), bad_files[i].reason) != NULL,
               "refused with \"%s\": %s", bad_files[i].reason, vstr_str(why));
        if (ret == 0)
            maildrop_env_free(&back);
    }
    vstr_free(file);
    vstr_free(why);
    return tap_done();
}
