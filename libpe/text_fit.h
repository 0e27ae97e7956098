/* A string fitted into a fixed width keeping its end: shared by libpe's
 * result labels (run.c) and pe-bench's tables (bench/bench_text.c).
 * Private: never installed; each user compiles its own static copy. */
#ifndef PE_TEXT_FIT_H
#define PE_TEXT_FIT_H

#include <stdio.h>
#include <string.h>

/* `s` in at most `width` bytes, into buf (size > width): whole when it
 * fits, else "..." and its last width - 3 bytes -- the end, where paths
 * differ (.../a.so, .../b.so) -- starting on a UTF-8 character.  A width
 * of 3 or less cuts the head instead. */
static inline const char *pe_text_fit(char *buf, size_t size, const char *s, size_t width) {
  size_t n = strlen(s);
  if (n <= width || width <= 3) {
    snprintf(buf, size, "%.*s", (int)width, s);
    return buf;
  }
  const char *tail = s + n - (width - 3);
  while ((*tail & 0xC0) == 0x80) tail++; /* not from inside a UTF-8 character */
  snprintf(buf, size, "...%s", tail);
  return buf;
}

#endif /* PE_TEXT_FIT_H */
