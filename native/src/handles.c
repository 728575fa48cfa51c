/* handles.c: handle tables (slots with generations) and the device tags handles carry. */
#include "internal.h"

#include <stdlib.h>

/* ---------------------------------------------------------------- device tags */
/* Tags of open devices, process-wide. Handed out round-robin so a closed device's tag is reused
 * as late as possible; never two open devices with the same tag. */
static pthread_mutex_t tt__tags_mu = PTHREAD_MUTEX_INITIALIZER;
static uint8_t tt__tags_used[(TT_MAX_DEVICES + 1) / 8];
static uint32_t tt__tags_next = 1;

tt_status tt__tag_acquire(uint32_t *tag) {
  tt_status st = TT_ERR_OUT_OF_MEMORY; /* every tag in use */
  pthread_mutex_lock(&tt__tags_mu);
  for (uint32_t k = 0; k < TT_MAX_DEVICES; k++) {
    uint32_t t = tt__tags_next;
    tt__tags_next = t == TT_MAX_DEVICES ? 1 : t + 1;
    if (!(tt__tags_used[t / 8] & (1u << (t % 8)))) {
      tt__tags_used[t / 8] |= (uint8_t)(1u << (t % 8));
      *tag = t;
      st = TT_OK;
      break;
    }
  }
  pthread_mutex_unlock(&tt__tags_mu);
  return st;
}

void tt__tag_release(uint32_t tag) {
  pthread_mutex_lock(&tt__tags_mu);
  tt__tags_used[tag / 8] &= (uint8_t)~(1u << (tag % 8));
  pthread_mutex_unlock(&tt__tags_mu);
}

/* ---------------------------------------------------------------- handle tables */
tt_status tt__table_add(tt_device *dev, tt_table *t, uint32_t kind, void *obj, uint64_t *out) {
  uint32_t idx;
  if (t->free_head) {
    idx = t->free_head - 1;
    t->free_head = t->slots[idx].next_free;
  } else {
    if (t->n == TT_MAX_SLOTS)
      return tt__fail(dev, TT_ERR_OUT_OF_MEMORY, "too many handles (%u live, %u retired)", t->n - t->retired,
                      t->retired);
    if (t->n == t->cap) {
      uint32_t cap = t->cap ? t->cap * 2 : 64;
      if (cap > TT_MAX_SLOTS) cap = TT_MAX_SLOTS;
      tt_slot *s = realloc(t->slots, (size_t)cap * sizeof *s);
      if (!s) return tt__fail(dev, TT_ERR_OUT_OF_MEMORY, "out of host memory for handle table");
      t->slots = s;
      t->cap = cap;
    }
    idx = t->n++;
    t->slots[idx].gen = 1;
  }
  tt_slot *s = &t->slots[idx];
  s->live = 1;
  s->next_free = 0;
  s->obj = obj;
  *out = ((uint64_t)kind << 60) | ((uint64_t)dev->tag << 44) | ((uint64_t)s->gen << 20) | (uint64_t)(idx + 1);
  return TT_OK;
}

tt_status tt__table_get(tt_device *dev, tt_table *t, uint32_t kind, uint64_t h, const char *what, tt_slot **out) {
  const char *noun = kind == TT_KIND_BUFFER ? "buffer" : "program";
  uint32_t idx = TT_HANDLE_SLOT(h);
  *out = NULL;
  if (TT_HANDLE_KIND(h) != kind || idx == 0)
    return tt__fail(dev, TT_ERR_INVALID_HANDLE, "%s: 0x%llx is not a %s handle", what, (unsigned long long)h, noun);
  if (TT_HANDLE_TAG(h) != dev->tag)
    return tt__fail(dev, TT_ERR_INVALID_HANDLE, "%s: %s handle 0x%llx belongs to device %u, not to this device %u",
                    what, noun, (unsigned long long)h, TT_HANDLE_TAG(h), dev->tag);
  tt_slot *s = idx <= t->n ? &t->slots[idx - 1] : NULL;
  if (!s || !s->live || s->gen != TT_HANDLE_GEN(h))
    return tt__fail(dev, TT_ERR_INVALID_HANDLE, "%s: %s handle 0x%llx is freed, stale or forged", what, noun,
                    (unsigned long long)h);
  *out = s;
  return TT_OK;
}

void tt__table_remove(tt_table *t, uint64_t h) {
  uint32_t idx = TT_HANDLE_SLOT(h) - 1;
  tt_slot *s = &t->slots[idx];
  s->live = 0;
  s->obj = NULL;
  if (s->gen == TT_GEN_MAX) { /* wrapping would make old handles valid again: retire the slot */
    t->retired++;
    return;
  }
  s->gen++;
  s->next_free = t->free_head;
  t->free_head = idx + 1;
}
