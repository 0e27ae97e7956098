#!/bin/sh
# Build libpe's libFuzzer targets with clang, ASan and UBSan, configure-free:
# the library sources are compiled straight into each fuzzer.
#
#   tests/fuzz/build.sh SRCDIR BUILDDIR OUTDIR [TARGET...]
#
# SRCDIR: the source tree; BUILDDIR: a configured and built tree (for the
# generated pe_version.h and the plugins); OUTDIR: where fuzz-TARGET
# binaries and plugins/ (links to the build's scheme plugins and the
# reference backend) go.  TARGETs default to every tests/fuzz/fuzz_*.c.
# Environment: FUZZ_CC (default clang), LIBPE_SOURCES (library sources
# relative to SRCDIR; default libpe/*.c), FUZZ_CFLAGS (added flags).
# `make fuzz` runs this with the library's source list from the Makefile.
set -eu
[ $# -ge 3 ] || { echo "usage: $0 SRCDIR BUILDDIR OUTDIR [TARGET...]" >&2; exit 2; }
src=$(cd "$1" && pwd); build=$(cd "$2" && pwd); mkdir -p "$3"; out=$(cd "$3" && pwd); shift 3
cc=${FUZZ_CC:-clang}
command -v "$cc" >/dev/null 2>&1 || { echo "fuzz: $cc not found (Debian: clang libclang-rt-14-dev)" >&2; exit 77; }
[ -f "$build/libpe/include/libpe/pe_version.h" ] || { echo "fuzz: $build is not a configured libpe build" >&2; exit 2; }

targets=$*
if [ -z "$targets" ]; then
  for f in "$src"/tests/fuzz/fuzz_*.c; do t=${f##*/fuzz_}; targets="$targets ${t%.c}"; done
fi
sources=${LIBPE_SOURCES:-$(cd "$src" && ls libpe/*.c)}

# The plugins a fuzzer may load: every scheme plugin and the reference
# backend (no GPU stacks: their loaders are neither fast nor leak-free).
mkdir -p "$out/plugins"
rm -f "$out"/plugins/*.so
for so in "$build"/plugins/.libs/*.so "$build"/backends/.libs/reference.so; do
  [ -f "$so" ] && ln -sf "$so" "$out/plugins/"
done

san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
cflags="-g -O1 -std=gnu11 $san ${FUZZ_CFLAGS:-} -I$src/libpe/include -I$build/libpe/include -I$src/libpe \
  $(pkg-config --cflags inih 2>/dev/null || true)"
libs="$(pkg-config --libs inih 2>/dev/null || echo -linih) -ldl -lpthread -lm"

# The library, once, instrumented for coverage.
mkdir -p "$out/obj"
objs=""
for s in $sources; do
  o="$out/obj/$(echo "$s" | tr / _).o"
  if [ ! -f "$o" ] || [ "$src/$s" -nt "$o" ] || [ "$src/libpe/internal.h" -nt "$o" ] ||
     [ "$src/libpe/include/libpe.h" -nt "$o" ] || [ "$src/libpe/include/libpe/pe_plugin.h" -nt "$o" ]; then
    echo "  FUZZCC   $s"
    # shellcheck disable=SC2086
    "$cc" $cflags -fsanitize=fuzzer-no-link -DPE_BUILDING_LIBPE -DPE_PLUGIN_DIR="\"$out/plugins\"" \
      -c "$src/$s" -o "$o"
  fi
  objs="$objs $o"
done

for t in $targets; do
  echo "  FUZZLD   fuzz-$t"
  # shellcheck disable=SC2086
  "$cc" $cflags -fsanitize=fuzzer -DPE_FUZZ_SRCDIR="\"$src\"" "$src/tests/fuzz/fuzz_$t.c" $objs \
    $libs -o "$out/fuzz-$t"
done
