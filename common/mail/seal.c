/*
 * seal - encryption at rest: the key ring, sealed queue records and sealed maildrop files
 *
 * seal_ring_load()
 *	read queue_encryption_key_file: one key per line, "ID:KEY" with ID a
 *	number from 1 to 65535 and KEY 32 bytes in base64 (44 characters)
 *	or hex (64 digits); blank lines and lines starting with "#" are
 *	skipped. Every key opens records; the LAST one seals new ones. The
 *	file must be a regular file owned by root or by `owner`, with no
 *	permission for group or others. NULL with "FILE:LINE: reason" (or
 *	"FILE: reason") for a malformed line, a duplicate id, a key of the
 *	wrong length, an unsafe file or a file without a key.
 * seal_ring_free()
 *	wipe and release a ring. Rings still alive at exit are wiped then.
 * seal_ring_max_id(), seal_ring_path()
 *	the highest key id (a new key takes the next), the file read.
 * seal_ring_changed()
 *	whether the file is not the one read (another inode, size or
 *	modification time), so that a reader meeting an unknown key id can
 *	tell whether reading the file again may help.
 * seal_is_sealed(), seal_key_id()
 *	whether a stored record is sealed (its first byte is SEAL_MARK, which
 *	no clear record starts with), and the id of its key (0: clear).
 * seal_record()
 *	seal a record with the current key, binding it to `ad` (the queue
 *	binds the database name and the record's key, so that a record moved
 *	to another message or database fails): SEAL_MARK, SEAL_VERSION, the
 *	key id (16 bits, big-endian), a random 24-byte nonce, then
 *	XChaCha20-Poly1305 ciphertext and its 16-byte tag.
 * seal_open()
 *	append a sealed record's content to `out`: SEAL_OK, SEAL_BAD (it
 *	fails authentication or is malformed: never any of its bytes) or
 *	SEAL_UNKNOWN_KEY, with the reason in `why`.
 *
 * Maildrop files are written by the sendmail command, which runs as any
 * user and must not hold the secret key; they are sealed to a public key:
 * seal_drop_publish()
 *	(pickup) write "ID PUBLIC-KEY" (base64) for the current key to a
 *	file readable by all, through a temporary file and a rename.
 * seal_drop_key_read()
 *	(sendmail) read that file back.
 * seal_drop_create(), seal_drop_push(), seal_drop_free()
 *	(sendmail) seal a file as it is streamed out: a header of
 *	SEAL_DROP_MAGIC, the key id, an ephemeral X25519 public key and the
 *	secretstream header; then chunks (32-bit length, then the
 *	ciphertext) of crypto_secretstream_xchacha20poly1305, the last one
 *	tagged final, each bound to the magic, key id and ephemeral key. The
 *	stream key is BLAKE2b-256 of the X25519 shared secret, the ephemeral
 *	public key and pickup's public key. NULL from create for a public key
 *	that is not usable.
 * seal_drop_is_sealed(), seal_drop_open()
 *	(pickup) whether a file starts with the magic; its content appended
 *	to `out`, or SEAL_BAD / SEAL_UNKNOWN_KEY with a reason (a file cut
 *	short, extended or altered fails).
 * seal_drop_unseal()
 *	(pickup) replace a sealed file's bytes held in memory by its content;
 *	a clear file is left as it is. -1 with the reason when it does not
 *	open.
 *
 * Every key of the file yields two subkeys (crypto_kdf): the
 * XChaCha20-Poly1305 key of queue records, and the X25519 secret whose
 * public half pickup publishes. The file's own keys are never used
 * directly. Keys live in libsodium guarded memory (sodium_malloc: locked,
 * guard pages), read-only once derived, wiped when freed or at exit; the
 * file's text is read into guarded memory and wiped after parsing.
 *
 * Ownership: a ring belongs to whoever loaded it. Failures are returned;
 * libsodium that cannot be initialised and guarded memory that cannot be
 * had are fatal.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "guarded.h"
#include "msg.h"
#include "mymalloc.h"
#include "seal.h"

#define SEAL_MARK 0x00 /* first byte of a sealed record; clear records start otherwise */
#define SEAL_VERSION 1
#define SEAL_NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define SEAL_TAG_LEN crypto_aead_xchacha20poly1305_ietf_ABYTES
#define SEAL_HEADER_LEN (4 + SEAL_NONCE_LEN) /* mark, version, key id, nonce */
#define SEAL_FILE_MAX 65536                  /* bytes of a key file */

#define SEAL_CONTEXT_QUEUE "relayq-q" /* crypto_kdf context of queue record keys */
#define SEAL_CONTEXT_DROP "relayq-m"  /* crypto_kdf context of maildrop secrets */

#define SEAL_DROP_MAGIC "RQDROP1\n"
#define SEAL_DROP_MAGIC_LEN 8
#define SEAL_DROP_AD_LEN (SEAL_DROP_MAGIC_LEN + 2 + SEAL_PUBLIC_LEN)
#define SEAL_DROP_HEADER_LEN (SEAL_DROP_AD_LEN + crypto_secretstream_xchacha20poly1305_HEADERBYTES)
#define SEAL_DROP_KEY_TEXT_MAX 256 /* bytes of the published key file */

/* One key of the ring: its id and the subkeys derived from it. */
typedef struct SEAL_KEY {
    unsigned id;
    unsigned char queue_key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
    unsigned char drop_secret[crypto_scalarmult_SCALARBYTES];
    unsigned char drop_public[SEAL_PUBLIC_LEN];
} SEAL_KEY;

struct SEAL_RING {
    SEAL_KEY *keys; /* guarded memory; the last one seals */
    size_t count;
    char *path;
    struct stat st;  /* the file as read, for seal_ring_changed() */
    SEAL_RING *next; /* every live ring, to wipe at exit */
};

struct SEAL_DROP {
    crypto_secretstream_xchacha20poly1305_state *state; /* guarded memory */
    unsigned char ad[SEAL_DROP_AD_LEN];
};

static SEAL_RING *seal_live_rings;

/* seal_sodium_init - libsodium must be ready before guarded memory and randomness */
static void seal_sodium_init(void)
{
    if (sodium_init() < 0)
        msg_fatal("cannot initialise libsodium");
}

/* seal_wipe_at_exit - no key outlives the process in memory it gives back */
static void seal_wipe_at_exit(void)
{
    while (seal_live_rings != NULL)
        seal_ring_free(seal_live_rings);
}

/* seal_find - the key with an id, or NULL */
static const SEAL_KEY *seal_find(const SEAL_RING *ring, unsigned id)
{
    for (size_t i = 0; ring != NULL && i < ring->count; i++)
        if (ring->keys[i].id == id)
            return ring->keys + i;
    return NULL;
}

/* seal_parse_id - a key id: decimal digits, 1..65535; 0 when malformed */
static unsigned seal_parse_id(const char *text)
{
    unsigned long id;

    if (*text == '\0' || strlen(text) > 5 || strspn(text, "0123456789") != strlen(text))
        return 0;
    id = strtoul(text, NULL, 10);
    return id >= 1 && id <= SEAL_KEY_ID_MAX ? (unsigned)id : 0;
}

/* seal_decode_key - 32 bytes from base64 or hex text; -1 when it is neither */
static int seal_decode_key(const char *text, unsigned char *key)
{
    size_t len = strlen(text), bin_len = 0;
    const char *end = NULL;

    if (len == 2 * SEAL_KEY_LEN && strspn(text, "0123456789abcdefABCDEF") == len)
        return sodium_hex2bin(key, SEAL_KEY_LEN, text, len, NULL, &bin_len, &end) == 0 &&
                       bin_len == SEAL_KEY_LEN && end == text + len
                   ? 0
                   : -1;
    return sodium_base642bin(key, SEAL_KEY_LEN, text, len, NULL, &bin_len, &end,
                             sodium_base64_VARIANT_ORIGINAL) == 0 &&
                   bin_len == SEAL_KEY_LEN && end == text + len
               ? 0
               : -1;
}

/* seal_trim - strip blanks from both ends of a NUL-terminated string, in place */
static char *seal_trim(char *text)
{
    char *end;

    while (*text == ' ' || *text == '\t')
        text++;
    end = text + strlen(text);
    while (end > text && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return text;
}

/* seal_derive - a ring entry from a key of the file */
static void seal_derive(SEAL_KEY *entry, unsigned id, const unsigned char *master)
{
    entry->id = id;
    crypto_kdf_derive_from_key(entry->queue_key, sizeof(entry->queue_key), 1, SEAL_CONTEXT_QUEUE,
                               master);
    crypto_kdf_derive_from_key(entry->drop_secret, sizeof(entry->drop_secret), 2, SEAL_CONTEXT_DROP,
                               master);
    crypto_scalarmult_base(entry->drop_public, entry->drop_secret);
}

/* seal_parse - every line of the file's text into the ring; -1 with "FILE:LINE: reason" */
static int seal_parse(SEAL_RING *ring, char *text, VSTR *why)
{
    unsigned char *master = guarded_alloc(SEAL_KEY_LEN);
    size_t cap = 0;
    char *line, *next, *colon, *id_text, *key_text;
    unsigned id;
    int lineno = 0, ret = 0;

    for (line = text; *line != '\0' && ret == 0; line = next) {
        lineno++;
        if ((next = strchr(line, '\n')) != NULL)
            *next++ = '\0';
        else
            next = line + strlen(line);
        line = seal_trim(line);
        if (*line == '\0' || *line == '#')
            continue;
        if ((colon = strchr(line, ':')) == NULL) {
            vstr_sprintf(why, "%s:%d: expected \"ID:KEY\"", ring->path, lineno);
            ret = -1;
            break;
        }
        *colon = '\0';
        id_text = seal_trim(line);
        key_text = seal_trim(colon + 1);
        if ((id = seal_parse_id(id_text)) == 0) {
            vstr_sprintf(why, "%s:%d: key id \"%.20s\" is not a number from 1 to %d", ring->path,
                         lineno, id_text, SEAL_KEY_ID_MAX);
            ret = -1;
        } else if (seal_find(ring, id) != NULL) {
            vstr_sprintf(why, "%s:%d: duplicate key id %u", ring->path, lineno, id);
            ret = -1;
        } else if (seal_decode_key(key_text, master) < 0) {
            vstr_sprintf(why,
                         "%s:%d: key %u is not %d bytes in base64 (44 characters) or hex (64 "
                         "digits)",
                         ring->path, lineno, id, SEAL_KEY_LEN);
            ret = -1;
        } else {
            if (ring->count == cap) {
                SEAL_KEY *grown = guarded_alloc(sizeof(*grown) * (cap = cap ? cap * 2 : 4));

                if (ring->count > 0) {
                    memcpy(grown, ring->keys, sizeof(*grown) * ring->count);
                    sodium_free(ring->keys);
                }
                ring->keys = grown;
            }
            seal_derive(ring->keys + ring->count++, id, master);
        }
    }
    sodium_free(master);
    if (ret == 0 && ring->count == 0) {
        vstr_sprintf(why, "%s: no key in the file (a line \"ID:KEY\"; see relayq keygen)",
                     ring->path);
        ret = -1;
    }
    return ret;
}

/* seal_check_file - may this file hold the queue's keys */
static int seal_check_file(const char *path, const struct stat *st, uid_t owner, VSTR *why)
{
    if (!S_ISREG(st->st_mode)) {
        vstr_sprintf(why, "%s: refusing key file: not a regular file", path);
        return -1;
    }
    if (st->st_uid != 0 && st->st_uid != owner) {
        vstr_sprintf(why, "%s: refusing key file: owned by uid %ld, not root or mail_owner", path,
                     (long)st->st_uid);
        return -1;
    }
    if (st->st_mode & 077) {
        vstr_sprintf(why,
                     "%s: refusing key file: group or other users have access (mode %04o; "
                     "chmod 600 it)",
                     path, (unsigned)(st->st_mode & 07777));
        return -1;
    }
    if (st->st_size > SEAL_FILE_MAX) {
        vstr_sprintf(why, "%s: refusing key file: larger than %d bytes", path, SEAL_FILE_MAX);
        return -1;
    }
    return 0;
}

/* seal_ring_load - read and check a key file */
SEAL_RING *seal_ring_load(const char *path, uid_t owner, VSTR *why)
{
    SEAL_RING *ring;
    struct stat st;
    char *text;
    int fd;

    seal_sodium_init();
    if ((fd = guarded_open(path, "key file", &st, why)) < 0)
        return NULL;
    if (seal_check_file(path, &st, owner, why) < 0) {
        (void)close(fd);
        return NULL;
    }
    text = guarded_read_file(fd, path, (size_t)st.st_size, why);
    (void)close(fd);
    if (text == NULL)
        return NULL;
    ring = mycalloc(1, sizeof(*ring));
    ring->path = mystrdup(path);
    ring->st = st;
    if (!seal_live_rings)
        atexit(seal_wipe_at_exit);
    ring->next = seal_live_rings;
    seal_live_rings = ring;
    if (seal_parse(ring, text, why) < 0) {
        sodium_free(text);
        seal_ring_free(ring);
        return NULL;
    }
    sodium_free(text); /* wipes the file's text */
    (void)sodium_mprotect_readonly(ring->keys);
    return ring;
}

/* seal_ring_free - wipe and release a ring */
void seal_ring_free(SEAL_RING *ring)
{
    SEAL_RING **pp;

    if (ring == NULL)
        return;
    for (pp = &seal_live_rings; *pp != NULL; pp = &(*pp)->next)
        if (*pp == ring) {
            *pp = ring->next;
            break;
        }
    if (ring->keys != NULL)
        sodium_free(ring->keys); /* wipes, even when read-only */
    myfree(ring->path);
    myfree(ring);
}

/* seal_ring_max_id - the highest key id of the ring */
unsigned seal_ring_max_id(const SEAL_RING *ring)
{
    unsigned max = 0;

    for (size_t i = 0; i < ring->count; i++)
        if (ring->keys[i].id > max)
            max = ring->keys[i].id;
    return max;
}

/* seal_ring_path - the key file the ring was read from */
const char *seal_ring_path(const SEAL_RING *ring)
{
    return ring->path;
}

/* seal_ring_changed - is the key file another than the one read */
int seal_ring_changed(const SEAL_RING *ring)
{
    struct stat st;

    if (stat(ring->path, &st) < 0)
        return 1;
    return st.st_dev != ring->st.st_dev || st.st_ino != ring->st.st_ino ||
           st.st_size != ring->st.st_size || st.st_mtim.tv_sec != ring->st.st_mtim.tv_sec ||
           st.st_mtim.tv_nsec != ring->st.st_mtim.tv_nsec;
}

/*
 * Queue records.
 */

/* seal_is_sealed - does a stored record start with the sealed mark */
int seal_is_sealed(const void *rec, size_t len)
{
    return len > 0 && *(const unsigned char *)rec == SEAL_MARK;
}

/* seal_key_id - the key id of a sealed record, 0 for a clear or malformed one */
unsigned seal_key_id(const void *rec, size_t len)
{
    const unsigned char *bytes = rec;

    if (!seal_is_sealed(rec, len) || len < SEAL_HEADER_LEN + SEAL_TAG_LEN)
        return 0;
    return (unsigned)bytes[2] << 8 | bytes[3];
}

/* seal_record - seal a record with the current key */
void seal_record(const SEAL_RING *ring, const void *ad, size_t ad_len, const void *plain,
                 size_t len, VSTR *out)
{
    const SEAL_KEY *key = ring->keys + ring->count - 1;
    unsigned char *bytes;
    unsigned long long clen;

    vstr_reset(out);
    vstr_reserve(out, SEAL_HEADER_LEN + len + SEAL_TAG_LEN);
    bytes = (unsigned char *)vstr_str(out);
    bytes[0] = SEAL_MARK;
    bytes[1] = SEAL_VERSION;
    bytes[2] = (unsigned char)(key->id >> 8);
    bytes[3] = (unsigned char)key->id;
    randombytes_buf(bytes + 4, SEAL_NONCE_LEN);
    crypto_aead_xchacha20poly1305_ietf_encrypt(bytes + SEAL_HEADER_LEN, &clen, plain, len, ad,
                                               ad_len, NULL, bytes + 4, key->queue_key);
    out->len = SEAL_HEADER_LEN + (size_t)clen;
    out->data[out->len] = '\0';
}

/* seal_open - append the content of a sealed record, if it is authentic */
int seal_open(const SEAL_RING *ring, const void *ad, size_t ad_len, const void *rec, size_t len,
              VSTR *out, VSTR *why)
{
    const unsigned char *bytes = rec;
    const SEAL_KEY *key;
    unsigned long long mlen;
    unsigned id;

    if (!seal_is_sealed(rec, len) || len < SEAL_HEADER_LEN + SEAL_TAG_LEN) {
        vstr_strcpy(why, "truncated sealed record");
        return SEAL_BAD;
    }
    if (bytes[1] != SEAL_VERSION) {
        vstr_sprintf(why, "unknown sealed record version %u", bytes[1]);
        return SEAL_BAD;
    }
    id = (unsigned)bytes[2] << 8 | bytes[3];
    if (ring == NULL) {
        vstr_sprintf(why, "sealed under key id %u, but queue_encryption_key_file is not set", id);
        return SEAL_UNKNOWN_KEY;
    }
    if ((key = seal_find(ring, id)) == NULL) {
        vstr_sprintf(why, "sealed under key id %u, which %s does not hold", id, ring->path);
        return SEAL_UNKNOWN_KEY;
    }
    vstr_reserve(out, len - SEAL_HEADER_LEN - SEAL_TAG_LEN);
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(
            (unsigned char *)vstr_str(out) + vstr_len(out), &mlen, NULL, bytes + SEAL_HEADER_LEN,
            len - SEAL_HEADER_LEN, ad, ad_len, bytes + 4, key->queue_key) != 0) {
        vstr_strcpy(why, "fails authentication");
        out->data[out->len] = '\0';
        return SEAL_BAD;
    }
    out->len += (size_t)mlen;
    out->data[out->len] = '\0';
    return SEAL_OK;
}

/*
 * Maildrop files.
 */

/* seal_drop_publish - write the current key's maildrop public key for the sendmail command */
int seal_drop_publish(const SEAL_RING *ring, const char *path, VSTR *why)
{
    const SEAL_KEY *key = ring->keys + ring->count - 1;
    char b64[sodium_base64_ENCODED_LEN(SEAL_PUBLIC_LEN, sodium_base64_VARIANT_ORIGINAL)];
    VSTR *tmp = vstr_alloc(256), *text = vstr_alloc(100);
    int fd, ret = -1;

    sodium_bin2base64(b64, sizeof(b64), key->drop_public, SEAL_PUBLIC_LEN,
                      sodium_base64_VARIANT_ORIGINAL);
    vstr_sprintf(text, "%u %s\n", key->id, b64);
    vstr_sprintf(tmp, "%s.%ld.tmp", path, (long)getpid());
    (void)unlink(vstr_str(tmp));
    fd = open(vstr_str(tmp), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        vstr_sprintf(why, "create %s: %s", vstr_str(tmp), strerror(errno));
    } else if (fchmod(fd, 0644) < 0 ||
               write(fd, vstr_str(text), vstr_len(text)) != (ssize_t)vstr_len(text) ||
               fsync(fd) < 0) {
        vstr_sprintf(why, "write %s: %s", vstr_str(tmp), strerror(errno));
        (void)close(fd);
        (void)unlink(vstr_str(tmp));
    } else if (close(fd) < 0 || rename(vstr_str(tmp), path) < 0) {
        vstr_sprintf(why, "install %s: %s", path, strerror(errno));
        (void)unlink(vstr_str(tmp));
    } else {
        ret = 0;
    }
    vstr_free(tmp);
    vstr_free(text);
    return ret;
}

/* seal_drop_key_read - the published maildrop public key and its id */
int seal_drop_key_read(const char *path, unsigned *id, unsigned char *public_key, VSTR *why)
{
    char buf[SEAL_DROP_KEY_TEXT_MAX + 1], *space, *end;
    size_t bin_len = 0;
    const char *b64_end = NULL;
    struct stat st;
    ssize_t n;
    int fd;

    if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY)) < 0) {
        vstr_sprintf(why, "%s: open: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & 022) != 0) {
        vstr_sprintf(why, "%s: not a regular file writable only by its owner", path);
        (void)close(fd);
        return -1;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    (void)close(fd);
    if (n < 0) {
        vstr_sprintf(why, "%s: read: %s", path, strerror(errno));
        return -1;
    }
    buf[n] = '\0';
    end = buf + strcspn(buf, "\n");
    *end = '\0';
    if ((space = strchr(buf, ' ')) == NULL || (*space = '\0', *id = seal_parse_id(buf)) == 0 ||
        sodium_base642bin(public_key, SEAL_PUBLIC_LEN, space + 1, strlen(space + 1), NULL, &bin_len,
                          &b64_end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
        bin_len != SEAL_PUBLIC_LEN || b64_end != end) {
        vstr_sprintf(why, "%s: not \"ID PUBLIC-KEY\"", path);
        return -1;
    }
    return 0;
}

/* seal_drop_stream_key - the stream key of a file: BLAKE2b(shared || ephemeral || recipient) */
static int seal_drop_stream_key(unsigned char *key, const unsigned char *secret,
                                const unsigned char *peer, const unsigned char *ephemeral,
                                const unsigned char *recipient)
{
    unsigned char shared[crypto_scalarmult_BYTES];
    crypto_generichash_state state;

    /* A low-order peer key gives an all-zero secret: libsodium refuses it. */
    if (crypto_scalarmult(shared, secret, peer) != 0)
        return -1;
    crypto_generichash_init(&state, NULL, 0, crypto_secretstream_xchacha20poly1305_KEYBYTES);
    crypto_generichash_update(&state, shared, sizeof(shared));
    crypto_generichash_update(&state, ephemeral, SEAL_PUBLIC_LEN);
    crypto_generichash_update(&state, recipient, SEAL_PUBLIC_LEN);
    crypto_generichash_final(&state, key, crypto_secretstream_xchacha20poly1305_KEYBYTES);
    sodium_memzero(shared, sizeof(shared));
    sodium_memzero(&state, sizeof(state));
    return 0;
}

/* seal_drop_create - start sealing a file to a public key; the header goes to out */
SEAL_DROP *seal_drop_create(unsigned id, const unsigned char *public_key, VSTR *out)
{
    unsigned char secret[crypto_scalarmult_SCALARBYTES];
    unsigned char key[crypto_secretstream_xchacha20poly1305_KEYBYTES];
    unsigned char header[crypto_secretstream_xchacha20poly1305_HEADERBYTES];
    SEAL_DROP *drop = mycalloc(1, sizeof(*drop));
    unsigned char *ephemeral = drop->ad + SEAL_DROP_MAGIC_LEN + 2;

    seal_sodium_init();
    memcpy(drop->ad, SEAL_DROP_MAGIC, SEAL_DROP_MAGIC_LEN);
    drop->ad[SEAL_DROP_MAGIC_LEN] = (unsigned char)(id >> 8);
    drop->ad[SEAL_DROP_MAGIC_LEN + 1] = (unsigned char)id;
    randombytes_buf(secret, sizeof(secret));
    crypto_scalarmult_base(ephemeral, secret);
    if (seal_drop_stream_key(key, secret, public_key, ephemeral, public_key) < 0) {
        sodium_memzero(secret, sizeof(secret));
        myfree(drop);
        return NULL;
    }
    sodium_memzero(secret, sizeof(secret));
    drop->state = guarded_alloc(sizeof(*drop->state));
    crypto_secretstream_xchacha20poly1305_init_push(drop->state, header, key);
    sodium_memzero(key, sizeof(key));
    vstr_append(out, drop->ad, sizeof(drop->ad));
    vstr_append(out, header, sizeof(header));
    return drop;
}

/* seal_drop_push - seal one chunk of the file (the last one with final set) onto out */
void seal_drop_push(SEAL_DROP *drop, const void *data, size_t len, int final, VSTR *out)
{
    size_t clen = len + crypto_secretstream_xchacha20poly1305_ABYTES;
    unsigned char frame[4] = {(unsigned char)(clen >> 24), (unsigned char)(clen >> 16),
                              (unsigned char)(clen >> 8), (unsigned char)clen};

    if (clen > 0xffffffffUL)
        msg_panic("seal_drop_push: chunk of %zu bytes", len);
    vstr_append(out, frame, sizeof(frame));
    vstr_reserve(out, clen);
    crypto_secretstream_xchacha20poly1305_push(
        drop->state, (unsigned char *)vstr_str(out) + vstr_len(out), NULL, data, len, drop->ad,
        sizeof(drop->ad),
        final ? crypto_secretstream_xchacha20poly1305_TAG_FINAL
              : crypto_secretstream_xchacha20poly1305_TAG_MESSAGE);
    out->len += clen;
    out->data[out->len] = '\0';
}

/* seal_drop_free - forget the stream state (wiped) */
void seal_drop_free(SEAL_DROP *drop)
{
    if (drop == NULL)
        return;
    sodium_free(drop->state);
    myfree(drop);
}

/* seal_drop_is_sealed - does a maildrop file start with the sealed magic */
int seal_drop_is_sealed(const void *data, size_t len)
{
    return len >= SEAL_DROP_MAGIC_LEN && memcmp(data, SEAL_DROP_MAGIC, SEAL_DROP_MAGIC_LEN) == 0;
}

/* seal_drop_chunks - open every chunk after the header; SEAL_OK or SEAL_BAD */
static int seal_drop_chunks(crypto_secretstream_xchacha20poly1305_state *state,
                            const unsigned char *ad, const unsigned char *bytes, size_t len,
                            VSTR *out, VSTR *why)
{
    size_t pos = SEAL_DROP_HEADER_LEN, clen;
    unsigned long long mlen;
    unsigned char tag = 0;

    while (pos < len) {
        if (tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL) {
            vstr_strcpy(why, "data after the final chunk");
            return SEAL_BAD;
        }
        if (len - pos < 4) {
            vstr_strcpy(why, "truncated chunk length");
            return SEAL_BAD;
        }
        clen = (size_t)bytes[pos] << 24 | (size_t)bytes[pos + 1] << 16 |
               (size_t)bytes[pos + 2] << 8 | bytes[pos + 3];
        pos += 4;
        if (clen < crypto_secretstream_xchacha20poly1305_ABYTES || clen > len - pos) {
            vstr_strcpy(why, "truncated chunk");
            return SEAL_BAD;
        }
        vstr_reserve(out, clen);
        if (crypto_secretstream_xchacha20poly1305_pull(
                state, (unsigned char *)vstr_str(out) + vstr_len(out), &mlen, &tag, bytes + pos,
                clen, ad, SEAL_DROP_AD_LEN) != 0) {
            vstr_strcpy(why, "fails authentication");
            return SEAL_BAD;
        }
        out->len += (size_t)mlen;
        pos += clen;
    }
    if (tag != crypto_secretstream_xchacha20poly1305_TAG_FINAL) {
        vstr_strcpy(why, "truncated: no final chunk");
        return SEAL_BAD;
    }
    return SEAL_OK;
}

/* seal_drop_open - append the content of a sealed maildrop file, if it is authentic */
int seal_drop_open(const SEAL_RING *ring, const void *data, size_t len, VSTR *out, VSTR *why)
{
    const unsigned char *bytes = data;
    unsigned char key[crypto_secretstream_xchacha20poly1305_KEYBYTES];
    crypto_secretstream_xchacha20poly1305_state state;
    const SEAL_KEY *entry;
    size_t start = vstr_len(out);
    unsigned id;
    int ret;

    if (!seal_drop_is_sealed(data, len) || len < SEAL_DROP_HEADER_LEN) {
        vstr_strcpy(why, "sealed file: truncated header");
        return SEAL_BAD;
    }
    id = (unsigned)bytes[SEAL_DROP_MAGIC_LEN] << 8 | bytes[SEAL_DROP_MAGIC_LEN + 1];
    if (ring == NULL) {
        vstr_sprintf(why, "sealed file (key id %u), but queue_encryption_key_file is not set", id);
        return SEAL_UNKNOWN_KEY;
    }
    if ((entry = seal_find(ring, id)) == NULL) {
        vstr_sprintf(why, "sealed file under key id %u, which %s does not hold", id, ring->path);
        return SEAL_UNKNOWN_KEY;
    }
    if (seal_drop_stream_key(key, entry->drop_secret, bytes + SEAL_DROP_MAGIC_LEN + 2,
                             bytes + SEAL_DROP_MAGIC_LEN + 2, entry->drop_public) < 0 ||
        crypto_secretstream_xchacha20poly1305_init_pull(&state, bytes + SEAL_DROP_AD_LEN, key) !=
            0) {
        sodium_memzero(key, sizeof(key));
        vstr_strcpy(why, "sealed file: bad ephemeral key or stream header");
        return SEAL_BAD;
    }
    sodium_memzero(key, sizeof(key));
    ret = seal_drop_chunks(&state, bytes, bytes, len, out, why);
    sodium_memzero(&state, sizeof(state));
    if (ret != SEAL_OK) {
        VSTR *reason = vstr_alloc(64);

        vstr_sprintf(reason, "sealed file: %s", vstr_str(why));
        vstr_strcpy(why, vstr_str(reason));
        vstr_free(reason);
        vstr_truncate(out, start);
    }
    out->data[out->len] = '\0';
    return ret;
}

/* seal_drop_unseal - replace a sealed file's bytes in memory by its content */
int seal_drop_unseal(const SEAL_RING *ring, char **data, size_t *len, VSTR *why)
{
    VSTR *clear;
    char *copy;

    if (!seal_drop_is_sealed(*data, *len))
        return 0;
    clear = vstr_alloc(*len);
    if (seal_drop_open(ring, *data, *len, clear, why) != SEAL_OK) {
        vstr_free(clear);
        return -1;
    }
    copy = mymalloc(vstr_len(clear) + 1);
    memcpy(copy, vstr_str(clear), vstr_len(clear) + 1);
    myfree(*data);
    *data = copy;
    *len = vstr_len(clear);
    sodium_memzero(vstr_str(clear), vstr_len(clear));
    vstr_free(clear);
    return 0;
}
