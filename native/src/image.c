/* image.c: where a loaded kernel library lives in memory. A program descriptor is data the
 * library hands us; before the runtime reads an entry (a count, a table, a function pointer) it
 * checks that the bytes lie inside the library's own mapped segments, readable (or executable,
 * for code), so a broken or hostile descriptor is refused instead of read out of bounds. */
#define _GNU_SOURCE
#include "internal.h"

#include <dlfcn.h>
#include <link.h>
#include <string.h>

typedef struct tt__find {
  uintptr_t base;
  const char *name;
  tt__image *img;
  int found;
} tt__find;

static int tt__phdr_cb(struct dl_phdr_info *info, size_t size, void *arg) {
  tt__find *f = arg;
  (void)size;
  if (info->dlpi_addr != f->base || !info->dlpi_name || strcmp(info->dlpi_name, f->name) != 0) return 0;
  for (size_t i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD || ph->p_memsz == 0) continue;
    if (f->img->n == TT_IMAGE_MAX_SEGS) return 1; /* more than we track: not found, refused */
    f->img->segs[f->img->n].lo = info->dlpi_addr + ph->p_vaddr;
    f->img->segs[f->img->n].hi = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
    f->img->segs[f->img->n].flags = ((ph->p_flags & PF_R) ? TT_SEG_R : 0u) | ((ph->p_flags & PF_X) ? TT_SEG_X : 0u);
    f->img->n++;
  }
  f->found = 1;
  return 1;
}

int tt__image_of(void *dl, tt__image *img) {
  struct link_map *lm = NULL;
  img->n = 0;
  if (dlinfo(dl, RTLD_DI_LINKMAP, &lm) != 0 || !lm || !lm->l_name) return -1;
  tt__find f = {(uintptr_t)lm->l_addr, lm->l_name, img, 0};
  dl_iterate_phdr(tt__phdr_cb, &f);
  return f.found && img->n > 0 ? 0 : -1;
}

int tt__image_holds(const tt__image *img, const void *p, uint64_t bytes, uint32_t need) {
  uintptr_t a = (uintptr_t)p;
  for (uint32_t i = 0; i < img->n; i++)
    if (a >= img->segs[i].lo && a < img->segs[i].hi && bytes <= img->segs[i].hi - a &&
        (img->segs[i].flags & need) == need)
      return 1;
  return 0;
}

int tt__image_string(const tt__image *img, const char *s, size_t max) {
  uintptr_t a = (uintptr_t)s;
  for (uint32_t i = 0; i < img->n; i++)
    if (a >= img->segs[i].lo && a < img->segs[i].hi && (img->segs[i].flags & TT_SEG_R)) {
      size_t room = img->segs[i].hi - a;
      return memchr(s, 0, room < max + 1 ? room : max + 1) != NULL;
    }
  return 0;
}
