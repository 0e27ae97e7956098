/* An out-of-tree program built only with `pkg-config --cflags --libs libpe`:
 * runs a small rope workload and one with the scheme plugin template
 * (plugins/template/myscheme.c, built out of the tree) on the reference
 * backend; base 2 is small enough for the template's warning. */
#include <libpe.h>
#include <stdio.h>

static int run(pe_ctx *ctx, const char *text) {
  pe_config *cfg;
  pe_workload *w;
  pe_result *r;
  if (pe_config_parse(ctx, text, "consumer.ini", NULL, &cfg) || pe_workload_build(ctx, cfg, &w)) {
    fprintf(stderr, "consumer: %s\n", pe_ctx_error(ctx));
    return 1;
  }
  int rc = pe_run(ctx, w, cfg, "reference", &r);
  printf("%s: %s, max abs err %.2e, note '%s'\n", pe_workload_get_info(w)->scheme,
         pe_run_status_name(r->status), r->max_abs_err, pe_workload_get_info(w)->scheme_note);
  pe_result_free(r);
  pe_workload_free(w);
  pe_config_free(cfg);
  return rc != 0;
}

int main(void) {
  pe_ctx *ctx;
  if (pe_ctx_new(&ctx)) return 1;
  printf("libpe %s, ABI %u\n", pe_version_string(), pe_abi_version());
  int rc = run(ctx, "[workload]\nhead_dim=16\nseq_len=12\n[scheme]\nplugin=rope\n");
  rc |= run(ctx, "[workload]\nhead_dim=16\nseq_len=12\n[scheme]\nplugin=myscheme\nbase=2\nrotary_dim=8\n");
  pe_ctx_free(ctx);
  return rc;
}
