/*
 * maps.h - lookup tables from text files (transport_maps and the like)
 */
#ifndef RELAYQ_MAPS_H
#define RELAYQ_MAPS_H

#include "vstr.h"

typedef struct MAPS MAPS;

MAPS *maps_open(const char *spec, VSTR *why);
const char *maps_find(const MAPS *map, const char *key);
const char *maps_path(const MAPS *map);
void maps_walk(const MAPS *map, void (*fn)(const char *key, void *value, void *ctx), void *ctx);
void maps_free(MAPS *map);

#endif
