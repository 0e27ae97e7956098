/* pe-needle: the needle experiment as a program of its own (the same code
 * as `pe-probe needle`).  See `pe-needle --help` and docs/NEEDLE.md. */
#include "needle.h"

int main(int argc, char **argv) { return pe_needle_main(argc, argv); }
