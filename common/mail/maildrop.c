/*
 * maildrop - the file the sendmail command leaves for pickup
 *
 * A maildrop file is an envelope record (the IPC record encoding: lines
 * "name=value", an empty line at the end, type "maildrop") followed by the
 * message content exactly as submitted. A recipient's own DSN requests
 * (RCPT TO NOTIFY and ORCPT of "sendmail -bs") follow its "rcpt" as
 * "rcpt_notify" and "rcpt_orcpt", each at most once. An envelope without
 * "sender" is one the user gave no sender for (no -f): pickup names the
 * submitting user (its login name at myorigin), as only pickup may ask
 * the system's user database. Addresses may be bare local parts; pickup
 * qualifies them with "@myorigin". The sendmail command writes it to
 * a temporary name, fsyncs it and renames it into maildrop/; pickup reads
 * it as untrusted input.
 *
 * maildrop_env_init(), maildrop_env_add_rcpt(), maildrop_env_free()
 *	build and release an envelope; the envelope owns its strings.
 * maildrop_env_add_rcpt_dsn()
 *	append a recipient with its own DSN NOTIFY and ORCPT ("" for none).
 * maildrop_encode_envelope()
 *	append the envelope record.
 * maildrop_parse()
 *	decode and validate the envelope of a file held in memory: strict
 *	attributes, version, bare addresses qualified with "@origin", sender
 *	and recipients then checked as RFC 5321 addresses, a recipient given
 *	twice kept once (the first, with its DSN requests), at least one and
 *	at most MAILDROP_RCPT_MAX recipients,
 *	the whole record at most MAILDROP_ENVELOPE_MAX bytes (a file cut
 *	short inside its envelope has no end of record: "truncated").
 *	Sets *content_offset to the first byte of the message. Returns 0, or
 *	-1 with a reason naming the problem.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "addr.h"
#include "htable.h"
#include "ipc.h"
#include "maildrop.h"
#include "mymalloc.h"
#include "smtpd_proto.h"

#define MAILDROP_VERSION "1"

/* maildrop_env_init - an empty envelope */
void maildrop_env_init(MAILDROP_ENV *env)
{
    memset(env, 0, sizeof(*env));
    env->sender = mystrdup("");
    env->fullname = mystrdup("");
    env->notify = mystrdup("");
    env->ret = mystrdup("");
    env->envid = mystrdup("");
}

/* maildrop_env_add_rcpt_dsn - append a recipient with its DSN requests */
void maildrop_env_add_rcpt_dsn(MAILDROP_ENV *env, const char *rcpt, const char *notify,
                               const char *orcpt)
{
    env->rcpts = myrealloc(env->rcpts, sizeof(*env->rcpts) * (env->nrcpt + 1));
    env->notifies = myrealloc(env->notifies, sizeof(*env->notifies) * (env->nrcpt + 1));
    env->orcpts = myrealloc(env->orcpts, sizeof(*env->orcpts) * (env->nrcpt + 1));
    env->rcpts[env->nrcpt] = mystrdup(rcpt);
    env->notifies[env->nrcpt] = mystrdup(notify);
    env->orcpts[env->nrcpt++] = mystrdup(orcpt);
}

/* maildrop_env_add_rcpt - append a recipient */
void maildrop_env_add_rcpt(MAILDROP_ENV *env, const char *rcpt)
{
    maildrop_env_add_rcpt_dsn(env, rcpt, "", "");
}

/* maildrop_env_free - release the envelope's strings */
void maildrop_env_free(MAILDROP_ENV *env)
{
    myfree(env->sender);
    myfree(env->fullname);
    myfree(env->notify);
    myfree(env->ret);
    myfree(env->envid);
    for (size_t i = 0; i < env->nrcpt; i++) {
        myfree(env->rcpts[i]);
        myfree(env->notifies[i]);
        myfree(env->orcpts[i]);
    }
    myfree(env->rcpts);
    myfree(env->notifies);
    myfree(env->orcpts);
    memset(env, 0, sizeof(*env));
}

/* maildrop_encode_envelope - append the envelope record */
void maildrop_encode_envelope(const MAILDROP_ENV *env, VSTR *out)
{
    IPC_REC *rec = ipc_rec_create("maildrop");

    ipc_rec_add(rec, "version", MAILDROP_VERSION);
    ipc_rec_add_long(rec, "uid", env->uid);
    ipc_rec_add_long(rec, "posted", env->posted);
    if (!env->own_sender)
        ipc_rec_add(rec, "sender", env->sender);
    if (*env->fullname)
        ipc_rec_add(rec, "fullname", env->fullname);
    if (*env->notify)
        ipc_rec_add(rec, "notify", env->notify);
    if (*env->ret)
        ipc_rec_add(rec, "ret", env->ret);
    if (*env->envid)
        ipc_rec_add(rec, "envid", env->envid);
    for (size_t i = 0; i < env->nrcpt; i++) {
        ipc_rec_add(rec, "rcpt", env->rcpts[i]);
        if (*env->notifies[i])
            ipc_rec_add(rec, "rcpt_notify", env->notifies[i]);
        if (*env->orcpts[i])
            ipc_rec_add(rec, "rcpt_orcpt", env->orcpts[i]);
    }
    ipc_rec_encode(rec, out);
    ipc_rec_free(rec);
}

/* maildrop_set - replace one of the envelope's strings */
static void maildrop_set(char **field, const char *value)
{
    myfree(*field);
    *field = mystrdup(value ? value : "");
}

/* maildrop_env_drop_last - remove the last recipient */
static void maildrop_env_drop_last(MAILDROP_ENV *env)
{
    env->nrcpt--;
    myfree(env->rcpts[env->nrcpt]);
    myfree(env->notifies[env->nrcpt]);
    myfree(env->orcpts[env->nrcpt]);
}

/* maildrop_qualify - replace one of the envelope's addresses, "@origin" added when bare */
static void maildrop_qualify(char **field, const char *value, const char *origin)
{
    size_t len;

    if (value == NULL || !addr_is_bare(value)) {
        maildrop_set(field, value);
        return;
    }
    myfree(*field);
    len = strlen(value) + 1 + strlen(origin) + 1;
    *field = mymalloc(len);
    snprintf(*field, len, "%s@%s", value, origin);
}

/* maildrop_rcpt_dsn - a rcpt_notify or rcpt_orcpt: of the recipient before it, once, valid */
static int maildrop_rcpt_dsn(MAILDROP_ENV *env, const char *name, const char *value, VSTR *why)
{
    char **field;
    VSTR *notify;
    int bad;

    if (env->nrcpt == 0) {
        vstr_sprintf(why, "%s before any rcpt", name);
        return -1;
    }
    field = strcmp(name, "rcpt_notify") == 0 ? env->notifies + env->nrcpt - 1
                                             : env->orcpts + env->nrcpt - 1;
    if (**field) {
        vstr_sprintf(why, "%s repeated for one recipient", name);
        return -1;
    }
    if (field == env->orcpts + env->nrcpt - 1) {
        bad = !smtpd_proto_orcpt_valid(value);
    } else {
        notify = vstr_alloc(32);
        bad = smtpd_proto_notify(value, strlen(value), notify) < 0;
        vstr_free(notify);
    }
    if (bad || *value == '\0') {
        vstr_sprintf(why, "bad %s \"%.80s\"", name, value);
        return -1;
    }
    maildrop_set(field, value);
    return 0;
}

/* maildrop_parse - decode and validate a maildrop file's envelope */
int maildrop_parse(const char *data, size_t len, const char *origin, MAILDROP_ENV *env,
                   size_t *content_offset, VSTR *why)
{
    const char *end = NULL;
    IPC_REC *rec = NULL;
    HTABLE *seen = NULL;
    long long number;
    int dropped = 0;
    int ret = -1;

    /* The envelope ends at the first empty line, within MAILDROP_ENVELOPE_MAX bytes. */
    end = memmem(data, len < MAILDROP_ENVELOPE_MAX ? len : MAILDROP_ENVELOPE_MAX, "\n\n", 2);
    if (end == NULL) {
        vstr_strcpy(why, "no envelope: not a relayq maildrop file or truncated");
        return -1;
    }
    end += 2;
    if (ipc_rec_decode(data, (size_t)(end - data) - 1, &rec, why) < 0)
        return -1;
    if (strcmp(ipc_rec_type(rec), "maildrop") != 0) {
        vstr_sprintf(why, "envelope of type \"%.40s\", not \"maildrop\"", ipc_rec_type(rec));
        goto out;
    }
    if (ipc_rec_check(rec, "version,uid,posted",
                      "sender,fullname,notify,ret,envid,rcpt*,rcpt_notify*,rcpt_orcpt*", why) < 0)
        goto out;
    if (strcmp(ipc_rec_get(rec, "version"), MAILDROP_VERSION) != 0) {
        vstr_sprintf(why, "unsupported maildrop version \"%.20s\"", ipc_rec_get(rec, "version"));
        goto out;
    }
    maildrop_env_init(env);
    if (ipc_rec_get_long(rec, "uid", 0, 0xffffffffLL, &number, why) < 0)
        goto out_env;
    env->uid = number;
    if (ipc_rec_get_long(rec, "posted", 0, 1LL << 40, &number, why) < 0)
        goto out_env;
    env->posted = number;
    env->own_sender = ipc_rec_get(rec, "sender") == NULL;
    maildrop_qualify(&env->sender, ipc_rec_get(rec, "sender"), origin);
    maildrop_set(&env->fullname, ipc_rec_get(rec, "fullname"));
    maildrop_set(&env->notify, ipc_rec_get(rec, "notify"));
    maildrop_set(&env->ret, ipc_rec_get(rec, "ret"));
    maildrop_set(&env->envid, ipc_rec_get(rec, "envid"));
    if (addr_check(env->sender, strlen(env->sender), ADDR_ALLOW_EMPTY | ADDR_ALLOW_UTF8, why) < 0) {
        VSTR *reason = vstr_alloc(100);

        vstr_sprintf(reason, "bad sender address: %s", vstr_str(why));
        vstr_strcpy(why, vstr_str(reason));
        vstr_free(reason);
        goto out_env;
    }
    seen = htable_create(64);
    for (size_t i = 1; i < rec->count; i++) {
        const char *name = rec->attrs[i].name;
        const char *value = rec->attrs[i].value;

        if (strcmp(name, "rcpt_notify") == 0 || strcmp(name, "rcpt_orcpt") == 0) {
            /* The DSN requests of a recipient dropped as a duplicate go with it. */
            if (!dropped && maildrop_rcpt_dsn(env, name, value, why) < 0)
                goto out_env;
            continue;
        }
        if (strcmp(name, "rcpt") != 0)
            continue;
        dropped = 0;
        if (env->nrcpt >= MAILDROP_RCPT_MAX) {
            vstr_sprintf(why, "more than %d recipients", MAILDROP_RCPT_MAX);
            goto out_env;
        }
        maildrop_env_add_rcpt(env, "");
        maildrop_qualify(env->rcpts + env->nrcpt - 1, value, origin);
        value = env->rcpts[env->nrcpt - 1];
        if (addr_check(value, strlen(value), ADDR_ALLOW_UTF8, why) < 0) {
            VSTR *reason = vstr_alloc(100);

            vstr_sprintf(reason, "bad recipient address \"%.80s\": %s", value, vstr_str(why));
            vstr_strcpy(why, vstr_str(reason));
            vstr_free(reason);
            goto out_env;
        }
        /* "bob" and "bob@myorigin" given both are one recipient once qualified: the first stays. */
        if (htable_get(seen, value) != NULL) {
            maildrop_env_drop_last(env);
            dropped = 1;
        } else {
            htable_put(seen, value, env);
        }
    }
    if (env->nrcpt == 0) {
        vstr_strcpy(why, "no recipients");
        goto out_env;
    }
    *content_offset = (size_t)(end - data);
    ret = 0;
    goto out;
out_env:
    maildrop_env_free(env);
out:
    if (seen != NULL)
        htable_free(seen, NULL);
    ipc_rec_free(rec);
    return ret;
}
