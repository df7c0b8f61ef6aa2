/*
 * unit_dsn - golden-file tests of the delivery status notifications
 *
 * Builds a failure notice and a delay notice from fixed inputs (time zone
 * UTC) and compares them byte for byte with tests/golden/dsn_*.eml; with
 * RELAYQ_UPDATE_GOLDEN=1 in the environment it rewrites those files
 * instead. Also checks that RET=HDRS and bounce_size_limit return only the
 * header section, that a hostile reply cannot inject header lines, and
 * how stored reasons split into Remote-MTA and Diagnostic-Code.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dsn.h"
#include "iostuff.h"
#include "mymalloc.h"
#include "tap.h"

static const char original[] = "Received: by relayq.test (relayq) id 1PJ57702B93X\r\n"
                               "From: Sender <sender@example.com>\r\n"
                               "To: a@example.net\r\n"
                               "Subject: hello\r\n"
                               "\r\n"
                               "Body line one.\r\n"
                               "Body line two.\r\n";

/* golden_compare - compare with (or rewrite) a golden file */
static int golden_compare(const char *name, const VSTR *got)
{
    const char *srcdir = getenv("top_srcdir");
    VSTR *path = vstr_alloc(256);
    void *want;
    size_t want_len;
    int same = 0;

    vstr_sprintf(path, "%s/tests/golden/%s", srcdir ? srcdir : ".", name);
    if (getenv("RELAYQ_UPDATE_GOLDEN")) {
        FILE *fp = fopen(vstr_str(path), "wb");

        if (fp) {
            fwrite(vstr_str(got), 1, vstr_len(got), fp);
            fclose(fp);
        }
    }
    if (read_file(vstr_str(path), 1 << 20, &want, &want_len) == 0) {
        same = want_len == vstr_len(got) && memcmp(want, vstr_str(got), want_len) == 0;
        myfree(want);
    } else {
        tap_diag("cannot read %s", vstr_str(path));
    }
    vstr_free(path);
    return same;
}

int main(void)
{
    DSN_RCPT rcpts[] = {
        {"bad@example.net", "rfc822;Bad@Example.NET", "5.1.1",
         "host mx.example.net[192.0.2.25] said: 550 5.1.1 <bad@example.net>: no such user "
         "(in reply to RCPT TO command)",
         1795334800},
        {"gone@example.org", "", "4.4.1",
         "connect to mx.example.org[192.0.2.26]:25: Connection refused", 1795334700},
    };
    DSN_INFO info = {
        .kind = DSN_FAILED,
        .hostname = "relayq.test",
        .queue_id = "1PJ57702B93X",
        .notice_id = "1PJ57702C44Z",
        .sender = "sender@example.com",
        .envid = "ENV-42",
        .arrival = 1795334000,
        .now = 1795334900,
        .content = original,
        .content_len = sizeof(original) - 1,
        .size_limit = 50000,
        .boundary = "1PJ57702C44Z/relayq.test",
    };
    VSTR *out = vstr_alloc(4096), *mta = vstr_alloc(64), *diag = vstr_alloc(64);

    setenv("TZ", "UTC", 1);
    tzset();

    dsn_build(&info, rcpts, 2, out);
    tap_ok(golden_compare("dsn_failed.eml", out),
           "failure notice matches tests/golden/dsn_failed.eml");
    tap_ok(strstr(vstr_str(out), "report-type=delivery-status") != NULL &&
               strstr(vstr_str(out), "Content-Type: message/rfc822\r\n") != NULL &&
               strstr(vstr_str(out), "Body line two.") != NULL,
           "a small message is returned whole as message/rfc822");

    vstr_reset(out);
    info.kind = DSN_DELAYED;
    info.retry_until = 1795766000;
    dsn_build(&info, rcpts + 1, 1, out);
    tap_ok(golden_compare("dsn_delayed.eml", out),
           "delay notice matches tests/golden/dsn_delayed.eml");

    vstr_reset(out);
    info.kind = DSN_FAILED;
    info.return_headers = 1;
    dsn_build(&info, rcpts, 1, out);
    tap_ok(strstr(vstr_str(out), "text/rfc822-headers") != NULL &&
               strstr(vstr_str(out), "Body line one.") == NULL,
           "RET=HDRS returns the header section only");

    vstr_reset(out);
    info.return_headers = 0;
    info.size_limit = 20;
    dsn_build(&info, rcpts, 1, out);
    tap_ok(strstr(vstr_str(out), "text/rfc822-headers") != NULL &&
               strstr(vstr_str(out), "Body line one.") == NULL,
           "a message over bounce_size_limit returns the header section only");

    {
        DSN_RCPT hostile = {"x@example.net", "", "5.0.0",
                            "host h[1.2.3.4] said: 550 no\r\nBcc: victim@example.com (in reply "
                            "to RCPT TO command)",
                            0};

        vstr_reset(out);
        dsn_build(&info, &hostile, 1, out);
        tap_ok(strstr(vstr_str(out), "\r\nBcc:") == NULL,
               "a reply with CR LF cannot add a header line to the notice");
    }

    dsn_split_reason(rcpts[0].reason, mta, diag);
    tap_ok(strcmp(vstr_str(mta), "mx.example.net") == 0 &&
               strcmp(vstr_str(diag), "smtp; 550 5.1.1 <bad@example.net>: no such user") == 0,
           "a relay's reply splits into Remote-MTA and an smtp Diagnostic-Code");
    dsn_split_reason(rcpts[1].reason, mta, diag);
    tap_ok(vstr_len(mta) == 0 && strncmp(vstr_str(diag), "X-Relayq; connect to", 20) == 0,
           "a connection failure has no Remote-MTA and an X-Relayq diagnostic");

    vstr_free(out);
    vstr_free(mta);
    vstr_free(diag);
    return tap_done();
}
