#include "probe.h"
static int run(pe_ctx *ctx, const probe_opts *o, probe_doc *d) { (void)ctx; (void)d; return probe_fail(o, 1, "not yet"); }
const probe_cmd probe_extrapolate_cmd = {"extrapolate", "", "todo\n", run};
