/*
 * seal.h - encryption at rest: the key ring, sealed queue records and sealed maildrop files
 */
#ifndef RELAYQ_SEAL_H
#define RELAYQ_SEAL_H

#include <stddef.h>
#include <sys/types.h>

#include "vstr.h"

#define SEAL_KEY_ID_MAX 65535 /* key ids are 1..65535, two bytes in every record */
#define SEAL_KEY_LEN 32       /* bytes of a key in the key file */
#define SEAL_PUBLIC_LEN 32    /* bytes of a maildrop public key (X25519) */

/* The file, under queue_directory, where pickup publishes the maildrop public key. */
#define SEAL_DROP_KEY_FILE "public/maildrop_key"

/* Results of opening a sealed record or file. */
#define SEAL_OK 0
#define SEAL_BAD (-1)         /* fails authentication or is malformed: tampered */
#define SEAL_UNKNOWN_KEY (-2) /* sealed under a key id the ring does not hold */

typedef struct SEAL_RING SEAL_RING;

SEAL_RING *seal_ring_load(const char *path, uid_t owner, VSTR *why);
void seal_ring_free(SEAL_RING *ring);
unsigned seal_ring_max_id(const SEAL_RING *ring);
const char *seal_ring_path(const SEAL_RING *ring);
int seal_ring_changed(const SEAL_RING *ring);

int seal_is_sealed(const void *rec, size_t len);
unsigned seal_key_id(const void *rec, size_t len);
void seal_record(const SEAL_RING *ring, const void *ad, size_t ad_len, const void *plain,
                 size_t len, VSTR *out);
int seal_open(const SEAL_RING *ring, const void *ad, size_t ad_len, const void *rec, size_t len,
              VSTR *out, VSTR *why);

/* A maildrop file being sealed by the sendmail command. */
typedef struct SEAL_DROP SEAL_DROP;

int seal_drop_publish(const SEAL_RING *ring, const char *path, VSTR *why);
int seal_drop_key_read(const char *path, unsigned *id, unsigned char *public_key, VSTR *why);
SEAL_DROP *seal_drop_create(unsigned id, const unsigned char *public_key, VSTR *out);
void seal_drop_push(SEAL_DROP *drop, const void *data, size_t len, int final, VSTR *out);
void seal_drop_free(SEAL_DROP *drop);
int seal_drop_is_sealed(const void *data, size_t len);
int seal_drop_open(const SEAL_RING *ring, const void *data, size_t len, VSTR *out, VSTR *why);
int seal_drop_unseal(const SEAL_RING *ring, char **data, size_t *len, VSTR *why);

#endif
