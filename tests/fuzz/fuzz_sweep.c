/* Fuzz target: the sweep expander (pe_sweep_expand, the accessors, cell
 * labels) and cell building (pe_sweep_cell: a copy of the base config with
 * the cell's values, checked with the scheme plugin's tables), on configs
 * that parse.
 *
 * Invariants checked besides memory safety: the cell count is at most
 * PE_SWEEP_MAX_CELLS and the product of the keys' value counts; every
 * (cell, key) has a value and out-of-range ones are NULL; a label's length
 * is what the function returns, and a truncated label is a prefix of the
 * whole one; a refused cell has a message naming the cell.  At most
 * MAX_CELLS cells are built per input (first, last and some between), so
 * an input stays cheap.  '/' becomes '_' as in fuzz_config.c.
 * Environment: PE_PLUGIN_PATH, PE_FUZZ_DATA_DIR (see fuzz_config.c). */
#include "fuzz_common.h"

#define MAX_CELLS 4

static pe_ctx *ctx;
static char data_dir[4096];

static void init(void) {
  if (ctx) return;
  if (pe_ctx_new(&ctx) != 0) fuzz_die("pe_ctx_new failed");
  pe_ctx_set_log(ctx, fuzz_quiet_log, NULL);
  const char *d = getenv("PE_FUZZ_DATA_DIR");
  if (d && d[0]) snprintf(data_dir, sizeof data_dir, "%s", d);
  else snprintf(data_dir, sizeof data_dir, "%s/tests/golden/attention/rope-decode", PE_FUZZ_SRCDIR);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  init();
  return 0;
}

static void check_label(const pe_sweep *sw, size_t cell) {
  char small[8], big[4096];
  size_t need = pe_sweep_cell_label(sw, cell, NULL, 0);
  if (pe_sweep_cell_label(sw, cell, small, sizeof small) != need ||
      pe_sweep_cell_label(sw, cell, big, sizeof big) != need)
    fuzz_die("cell %zu: the label length depends on the buffer", cell);
  if (need < sizeof big && strlen(big) != need) fuzz_die("cell %zu: label length %zu, returned %zu", cell, strlen(big), need);
  if (strncmp(small, big, sizeof small - 1) || strlen(small) > sizeof small - 1)
    fuzz_die("cell %zu: truncated label is not a prefix", cell);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  init();
  if (size > 65536) return 0;
  char *text = fuzz_cstring(data, size);
  for (char *p = text; (p = strchr(p, '/'));) *p = '_';
  pe_config *cfg = NULL;
  pe_sweep *sw = NULL;
  int rc = pe_config_parse(ctx, text, "sweep.ini", data_dir, &cfg);
  if (rc == 0) {
    rc = pe_sweep_expand(ctx, cfg, &sw);
    if (rc != 0 && !pe_ctx_error(ctx)[0]) fuzz_die("pe_sweep_expand failed without a message");
    if ((rc == 0) != (sw != NULL)) fuzz_die("pe_sweep_expand: rc %d, sweep %p", rc, (void *)sw);
  }
  if (sw) {
    size_t cells = pe_sweep_cell_count(sw), keys = pe_sweep_key_count(sw);
    if (cells < 1 || cells > PE_SWEEP_MAX_CELLS) fuzz_die("%zu cells", cells);
    for (size_t k = 0; k < keys; k++)
      if (!pe_sweep_key(sw, k) || !pe_sweep_key(sw, k)[0]) fuzz_die("key %zu has no name", k);
    if (pe_sweep_key(sw, keys) || pe_sweep_value(sw, cells, 0) || pe_sweep_value(sw, 0, keys) ||
        pe_sweep_backend(sw, pe_sweep_backend_count(sw)))
      fuzz_die("an out-of-range accessor returned a value");
    for (size_t i = 0; i < pe_sweep_backend_count(sw); i++)
      if (!pe_sweep_backend(sw, i)) fuzz_die("backend %zu is NULL", i);
    size_t pick[MAX_CELLS] = {0, cells - 1, cells / 2, cells / 3};
    for (size_t j = 0; j < MAX_CELLS && j < cells; j++) {
      size_t cell = pick[j];
      for (size_t k = 0; k < keys; k++)
        if (!pe_sweep_value(sw, cell, k)) fuzz_die("cell %zu key %zu has no value", cell, k);
      check_label(sw, cell);
      pe_config *c = NULL;
      rc = pe_sweep_cell(ctx, sw, cell, &c);
      /* a config with no [sweep] keys reports its own error, unprefixed */
      if (rc != 0 && keys && !strstr(pe_ctx_error(ctx), "[sweep] cell"))
        fuzz_die("cell %zu refused without naming it: %s", cell, pe_ctx_error(ctx));
      if ((rc == 0) != (c != NULL)) fuzz_die("pe_sweep_cell: rc %d, config %p", rc, (void *)c);
      /* A built cell is a valid config: setting a key keeps it so. */
      if (c && pe_config_set(ctx, c, "run", "iterations", "1") != 0)
        fuzz_die("a built cell refused a valid edit: %s", pe_ctx_error(ctx));
      pe_config_free(c);
    }
    pe_config *c = NULL;
    if (pe_sweep_cell(ctx, sw, cells, &c) != PE_EINVAL || c) fuzz_die("cell %zu (out of range) built", cells);
    pe_sweep_free(sw);
  }
  pe_config_free(cfg);
  free(text);
  return 0;
}
