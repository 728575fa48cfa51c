/* buffer.c: device DRAM buffers backed by a pooled host allocator, and zero-copy host access
 * (map: read a buffer in place; wrap: bind host memory), both read-only.
 *
 * Blocks are rounded up to a size class (4 classes per power of two, >= 64 bytes, so at most
 * 25% slack) and freed blocks are kept on per-class free lists, linked through their own first
 * bytes. A program that allocates and frees the same shapes every step then reuses warm pages
 * instead of faulting in fresh ones. The cache is capped (tt_device.cache_limit). */
#define _GNU_SOURCE
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* Class index and size for `bytes`: index = 4*log2 + quarter step. */
static uint32_t tt__size_class(uint64_t bytes, uint64_t *cls_bytes) {
  if (bytes <= 64) bytes = 64;
  uint32_t p = 63u - (uint32_t)__builtin_clzll(bytes); /* 2^p <= bytes < 2^(p+1) */
  uint64_t step = p >= 8 ? 1ull << (p - 2) : 64; /* classes stay multiples of 64 */
  uint64_t q = (bytes - (1ull << p) + step - 1) / step; /* 0..4 quarter steps above 2^p */
  *cls_bytes = (1ull << p) + q * step;
  return 4u * p + (uint32_t)q; /* q == 4 aliases the next power's class 0: same size, same index */
}

static void tt__flush_cache(tt_device *dev) {
  for (uint32_t c = 0; c < 256; c++)
    while (dev->free_lists[c]) {
      void *b = dev->free_lists[c];
      memcpy(&dev->free_lists[c], b, sizeof(void *));
      free(b);
    }
  dev->cached_bytes = 0;
}

static void tt__block_release(tt_device *dev, void *b, uint32_t c, uint64_t cls_bytes) {
  if (dev->cached_bytes + cls_bytes > dev->cache_limit) {
    free(b);
    return;
  }
  memcpy(b, &dev->free_lists[c], sizeof(void *));
  dev->free_lists[c] = b;
  dev->cached_bytes += cls_bytes;
}

tt_status tt__buffer_alloc_locked(tt_device *dev, uint64_t bytes, tt_buffer *out) {
  if (!out) return tt__fail(dev, TT_ERR_INVALID_ARGUMENT, "tt_buffer_alloc: out is NULL");
  *out = 0;
  uint64_t live = dev->counters.dram_bytes_allocated;
  if (bytes > dev->cfg.dram_bytes || live > dev->cfg.dram_bytes - bytes)
    return tt__fail(dev, TT_ERR_OUT_OF_MEMORY,
                    "tt_buffer_alloc: %llu bytes requested, %llu of %llu device bytes in use",
                    (unsigned long long)bytes, (unsigned long long)live, (unsigned long long)dev->cfg.dram_bytes);
  if (bytes > (1ull << 62)) return tt__fail(dev, TT_ERR_OUT_OF_MEMORY, "tt_buffer_alloc: size too large");
  uint64_t cls_bytes;
  uint32_t c = tt__size_class(bytes, &cls_bytes);
  void *b = dev->free_lists[c];
  if (b) {
    memcpy(&dev->free_lists[c], b, sizeof(void *));
    dev->cached_bytes -= cls_bytes;
  } else {
    b = aligned_alloc(64, (size_t)cls_bytes);
    if (!b && dev->cached_bytes) { /* host memory is tight: give the cache back and retry */
      tt__flush_cache(dev);
      b = aligned_alloc(64, (size_t)cls_bytes);
    }
    if (!b) return tt__fail(dev, TT_ERR_OUT_OF_MEMORY, "tt_buffer_alloc: host allocation of %llu bytes failed",
                            (unsigned long long)cls_bytes);
  }
  tt_status s = tt__table_add(dev, &dev->buffers, TT_KIND_BUFFER, b, out);
  if (s != TT_OK) {
    tt__block_release(dev, b, c, cls_bytes);
    return s;
  }
  tt_slot *slot = &dev->buffers.slots[TT_HANDLE_SLOT(*out) - 1];
  slot->a = bytes;
  slot->b = cls_bytes;
  slot->cls = c;
  slot->refs = 0;
  slot->flags = 0;
  dev->counters.dram_bytes_allocated = live + bytes;
  if (live + bytes > dev->counters.dram_bytes_peak) dev->counters.dram_bytes_peak = live + bytes;
  return TT_OK;
}

tt_slot *tt__buffer_slot(tt_device *dev, tt_buffer buf) {
  tt_slot *s = NULL;
  return tt__table_get(dev, &dev->buffers, TT_KIND_BUFFER, buf, "buffer", &s) == TT_OK ? s : NULL;
}

tt_status tt__buffer_lookup(tt_device *dev, const char *what, tt_buffer buf, void **ptr, uint64_t *size) {
  tt_slot *s;
  tt_status st = tt__table_get(dev, &dev->buffers, TT_KIND_BUFFER, buf, what, &s);
  if (st != TT_OK) return st;
  *ptr = s->obj;
  *size = s->a;
  return TT_OK;
}

tt_status tt__buffer_free_locked(tt_device *dev, tt_buffer buf) {
  tt_slot *s;
  tt_status st = tt__table_get(dev, &dev->buffers, TT_KIND_BUFFER, buf, "tt_buffer_free", &s);
  if (st != TT_OK) return st;
  if (s->refs) { /* mapped: the memory stays until its last reference goes */
    s->refs--;
    return TT_OK;
  }
  dev->counters.dram_bytes_allocated -= s->a;
  if (!(s->flags & TT__BUF_EXTERNAL)) tt__block_release(dev, s->obj, s->cls, s->b);
  tt__table_remove(&dev->buffers, buf);
  return TT_OK;
}

void tt__buffers_release_all(tt_device *dev) {
  for (uint32_t i = 0; i < dev->buffers.n; i++)
    if (dev->buffers.slots[i].live && !(dev->buffers.slots[i].flags & TT__BUF_EXTERNAL))
      free(dev->buffers.slots[i].obj);
  tt__flush_cache(dev);
}

static tt_status tt__buffer_map_locked(tt_device *dev, tt_buffer buf, const void **out) {
  if (!out) return tt__fail(dev, TT_ERR_INVALID_ARGUMENT, "tt_buffer_map: out is NULL");
  tt_slot *s;
  tt_status st = tt__table_get(dev, &dev->buffers, TT_KIND_BUFFER, buf, "tt_buffer_map", &s);
  if (st != TT_OK) return st;
  if (s->refs == UINT32_MAX) return tt__fail(dev, TT_ERR_OUT_OF_RANGE, "tt_buffer_map: too many mappings");
  s->refs++;
  s->flags |= TT__BUF_READONLY;
  dev->counters.host_bytes_read += s->a;
  *out = s->obj;
  return TT_OK;
}

tt_status tt__buffer_wrap_locked(tt_device *dev, const void *host, uint64_t bytes, tt_buffer *out) {
  if (!out) return tt__fail(dev, TT_ERR_INVALID_ARGUMENT, "tt_buffer_wrap: out is NULL");
  *out = 0;
  if (!host || ((uintptr_t)host & 15u))
    return tt__fail(dev, TT_ERR_INVALID_ARGUMENT, "tt_buffer_wrap: host memory %p is not 16-byte aligned", host);
  uint64_t live = dev->counters.dram_bytes_allocated;
  if (bytes > dev->cfg.dram_bytes || live > dev->cfg.dram_bytes - bytes)
    return tt__fail(dev, TT_ERR_OUT_OF_MEMORY, "tt_buffer_wrap: %llu bytes, %llu of %llu device bytes in use",
                    (unsigned long long)bytes, (unsigned long long)live, (unsigned long long)dev->cfg.dram_bytes);
  tt_status st = tt__table_add(dev, &dev->buffers, TT_KIND_BUFFER, (void *)(uintptr_t)host, out);
  if (st != TT_OK) return st;
  tt_slot *slot = &dev->buffers.slots[TT_HANDLE_SLOT(*out) - 1];
  slot->a = slot->b = bytes;
  slot->cls = 0;
  slot->refs = 0;
  slot->flags = TT__BUF_READONLY | TT__BUF_EXTERNAL;
  dev->counters.host_bytes_written += bytes;
  dev->counters.dram_bytes_allocated = live + bytes;
  if (live + bytes > dev->counters.dram_bytes_peak) dev->counters.dram_bytes_peak = live + bytes;
  return TT_OK;
}

static tt_status tt__buffer_size_locked(tt_device *dev, tt_buffer buf, uint64_t *out) {
  if (!out) return tt__fail(dev, TT_ERR_INVALID_ARGUMENT, "tt_buffer_size: out is NULL");
  void *p;
  return tt__buffer_lookup(dev, "tt_buffer_size", buf, &p, out);
}

/* Resolves buf and checks [offset, offset+bytes) lies inside it without overflowing. */
static tt_status tt__range(tt_device *dev, const char *what, tt_buffer buf, uint64_t offset, uint64_t bytes,
                           char **ptr, int write) {
  void *p;
  uint64_t size;
  tt_status s = tt__buffer_lookup(dev, what, buf, &p, &size);
  if (s != TT_OK) return s;
  if (write && (tt__buffer_slot(dev, buf)->flags & TT__BUF_READONLY))
    return tt__fail(dev, TT_ERR_INVALID_ARGUMENT, "%s: buffer 0x%llx is read-only (mapped by the host or wrapping "
                    "host memory)", what, (unsigned long long)buf);
  if (offset > size || bytes > size - offset)
    return tt__fail(dev, TT_ERR_OUT_OF_RANGE, "%s: range [%llu, +%llu) outside buffer of %llu bytes", what,
                    (unsigned long long)offset, (unsigned long long)bytes, (unsigned long long)size);
  *ptr = (char *)p + offset;
  return TT_OK;
}

static tt_status tt__buffer_write_locked(tt_device *dev, tt_buffer buf, uint64_t offset, const void *src,
                                         uint64_t bytes) {
  char *p = NULL;
  tt_status s = tt__range(dev, "tt_buffer_write", buf, offset, bytes, &p, 1);
  if (s != TT_OK) return s;
  if (!src && bytes) return tt__fail(dev, TT_ERR_INVALID_ARGUMENT, "tt_buffer_write: src is NULL");
  if (bytes) memcpy(p, src, (size_t)bytes);
  dev->counters.host_bytes_written += bytes;
  return TT_OK;
}

static tt_status tt__buffer_read_locked(tt_device *dev, tt_buffer buf, uint64_t offset, void *dst, uint64_t bytes) {
  char *p = NULL;
  tt_status s = tt__range(dev, "tt_buffer_read", buf, offset, bytes, &p, 0);
  if (s != TT_OK) return s;
  if (!dst && bytes) return tt__fail(dev, TT_ERR_INVALID_ARGUMENT, "tt_buffer_read: dst is NULL");
  if (bytes) memcpy(dst, p, (size_t)bytes);
  dev->counters.host_bytes_read += bytes;
  return TT_OK;
}

static tt_status tt__buffer_copy_locked(tt_device *dev, tt_buffer dst, uint64_t dst_offset, tt_buffer src,
                                        uint64_t src_offset, uint64_t bytes) {
  char *d = NULL, *s = NULL;
  tt_status st = tt__range(dev, "tt_buffer_copy (dst)", dst, dst_offset, bytes, &d, 1);
  if (st != TT_OK) return st;
  st = tt__range(dev, "tt_buffer_copy (src)", src, src_offset, bytes, &s, 0);
  if (st != TT_OK) return st;
  if (bytes) memmove(d, s, (size_t)bytes);
  return TT_OK;
}

/* ---------------------------------------------------------------- public calls: under the device lock */
tt_status tt_buffer_alloc(tt_device *dev, uint64_t bytes, tt_buffer *out) {
  TT__LOCKED(tt__buffer_alloc_locked(dev, bytes, out));
}
tt_status tt_buffer_free(tt_device *dev, tt_buffer buf) { TT__LOCKED(tt__buffer_free_locked(dev, buf)); }
tt_status tt_buffer_size(tt_device *dev, tt_buffer buf, uint64_t *out) {
  TT__LOCKED(tt__buffer_size_locked(dev, buf, out));
}
tt_status tt_buffer_write(tt_device *dev, tt_buffer buf, uint64_t offset, const void *src, uint64_t bytes) {
  TT__LOCKED(tt__buffer_write_locked(dev, buf, offset, src, bytes));
}
tt_status tt_buffer_read(tt_device *dev, tt_buffer buf, uint64_t offset, void *dst, uint64_t bytes) {
  TT__LOCKED(tt__buffer_read_locked(dev, buf, offset, dst, bytes));
}
tt_status tt_buffer_copy(tt_device *dev, tt_buffer dst, uint64_t dst_offset, tt_buffer src, uint64_t src_offset,
                         uint64_t bytes) {
  TT__LOCKED(tt__buffer_copy_locked(dev, dst, dst_offset, src, src_offset, bytes));
}
tt_status tt_buffer_map(tt_device *dev, tt_buffer buf, const void **out) {
  TT__LOCKED(tt__buffer_map_locked(dev, buf, out));
}
tt_status tt_buffer_wrap(tt_device *dev, const void *host, uint64_t bytes, tt_buffer *out) {
  TT__LOCKED(tt__buffer_wrap_locked(dev, host, bytes, out));
}
