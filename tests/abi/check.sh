#!/bin/sh
# The ABI gate (docs/ABI.md, docs/RELIABILITY.md): compare the built
# libpe.so and the public plugin structs with the committed abidw
# baselines; additions pass, anything else fails.  Prints TAP.
#
#   tests/abi/check.sh              check (a `make check` test)
#   tests/abi/check.sh --require    check; a missing tool or debug info fails
#                                   (also when PE_TEST_REQUIRE lists "abi")
#   tests/abi/check.sh --update     write new baselines (`make abi-baseline`)
#   tests/abi/check.sh --self-test  prove the gate refuses removal,
#                                   reordering, resizing, insertion and
#                                   renumbering and accepts appends
#
# Sources and build: $PE_TEST_SRCDIR and $PE_TEST_BUILDDIR (set by make),
# else this script's tree and the current directory.  Compiler: $PE_TEST_CC.
#
# abidiff's exit status alone is not the rule we need: it sets
# ABIDIFF_ABI_INCOMPATIBLE_CHANGE (8) only for removed symbols and plain
# ABIDIFF_ABI_CHANGE (4) for everything else, appended fields included, and
# libabigail 2.2's has_data_member_inserted_at suppression also hides
# reordered and resized members.  So: bits 1, 2 and 8 fail outright, and
# with bit 4 every line of the report must be one of the known-compatible
# forms below (added functions and variables, enumerators inserted, the
# PE_ERRNO_LAST_ sentinel moving, a struct growing with members inserted at
# or after its old end); any other line fails the gate and is printed.
set -u
here=$(cd "$(dirname "$0")" && pwd)
src=${PE_TEST_SRCDIR:-$(cd "$here/../.." && pwd)}
build=${PE_TEST_BUILDDIR:-$(pwd)}
cc=${PE_TEST_CC:-cc}
mode=${1:-check}
# CI sets PE_TEST_REQUIRE="abi valgrind" so that make check cannot skip.
case " ${PE_TEST_REQUIRE:-} " in *" abi "*) [ "$mode" = check ] && mode=--require ;; esac
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pe-abi.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); echo "not ok $n - $*"; failed=1; }
failed=0

skip_all() {
  if [ "$mode" = --require ]; then echo "1..1"; echo "not ok 1 - ABI gate cannot run: $*"; exit 1; fi
  echo "1..0 # SKIP $*"
  exit 0
}

command -v abidw >/dev/null 2>&1 && command -v abidiff >/dev/null 2>&1 ||
  skip_all "abidw/abidiff not found (Debian: abigail-tools)"

ABIDW="abidw --no-corpus-path --no-show-locs --no-comp-dir-path"
# Types not defined in the public headers (the opaque pe_ctx, pe__*) are
# libpe's own business: dropped, so only the public ABI is compared.
PUBLIC="--headers-dir $src/libpe/include --drop-private-types"

# The judge: read an abidiff report on stdin, print every line that is not
# a known-compatible change, exit 1 if there was one.
classify() {
  awk '
    function bad(why) { printf "  incompatible: %s\n    (%s)\n", $0, why; nbad++ }
    { line = $0; sub(/^[ \t]+/, "", line) }
    line == "" { next }
    # Forbidden whatever the context.
    line ~ /offset changed/ { bad("a member moved"); next }
    line ~ /data member deletions?:$/ { bad("a member was removed"); next }
    line ~ /(type|typedef) name changed/ { bad("a type was changed"); next }
    line ~ /enumerator deletions?:$/ { bad("an enumerator was removed"); next }
    line ~ /was (added|removed)/ || line ~ /^\[D\] / { bad("a declaration was removed or changed"); next }
    # Summaries and additions.
    line ~ /^(Functions|Variables|Function symbols|Variable symbols) changes summary: / {
      if (line !~ /summary: 0 Removed/) bad("something was removed"); next }
    line ~ /^[0-9]+ Added (function|variable)s?( symbols? not referenced by debug info)?:$/ { next }
    line ~ /^\[A\] / { next }
    # Containers: the change they lead to is judged on its own line.
    line ~ /^[0-9]+ (function|variable)s? with some (indirect )?sub-type changes?:$/ { next }
    line ~ /^\[C\] .* has some (indirect )?sub-type changes:$/ { next }
    line ~ /^parameter [0-9]+ of type .* has sub-type changes:$/ { next }
    line ~ /^return type changed:$/ { next }
    line ~ /^in (unqualified underlying |pointed to )?type .*:$/ { next }
    line ~ /^(underlying|pointed to|referenced|element) type .* changed:$/ { next }
    line ~ /^[0-9]+ data member changes?( \([0-9]+ filtered\))?:$/ { insertion = 0; enum_ins = 0; next }
    line ~ /^type of .* changed:$/ { next }
    line ~ /changed, as reported earlier$/ || line ~ /details were reported earlier$/ { next }
    # A struct may only grow, by members at or after its old end.
    line ~ /^type size hasn.t changed$/ { old = -1; insertion = 0; next }
    line ~ /^type size changed from [0-9]+ to [0-9]+ \(in bits\)$/ {
      split(line, w, " "); old = w[5] + 0; insertion = 0
      if (w[7] + 0 < old) bad("a type shrank"); next }
    line ~ /^[0-9]+ data member insertions?:$/ { insertion = 1; next }
    insertion && line ~ /^\x27.*\x27, at offset [0-9]+ \(in bits\)/ {
      o = line; sub(/.*\x27, at offset /, "", o); o = o + 0
      if (old < 0 || o < old) bad("a member inserted before the old end of the struct"); next }
    # Enums: new values, and the sentinel that follows them.
    line ~ /^[0-9]+ enumerator insertions?:$/ { insertion = 0; enum_ins = 1; next }
    enum_ins && line ~ /^\x27[^\x27]*::[A-Za-z0-9_]+\x27 value \x27-?[0-9]+\x27$/ { next }
    line ~ /^[0-9]+ enumerator changes?:$/ { insertion = 0; enum_ins = 0; next }
    line ~ /^\x27[^\x27]*::PE_ERRNO_LAST_\x27 from value / { next }
    { insertion = 0; enum_ins = 0; bad("not a known-compatible change") }
    END { exit nbad > 0 }'
}

# Compare `baseline` with `binary`; TAP line named `what`.  A 4th
# argument "public" compares only the types the public headers define: the
# binary is first written out by abidw with the same filter as the
# baseline (abidiff's own --headers-dir2 would need the baseline's source
# locations, which the baselines leave out to stay machine-independent).
gate() {
  what=$1 baseline=$2 binary=$3
  if [ "${4:-}" = public ]; then
    # shellcheck disable=SC2086
    $ABIDW $PUBLIC --out-file "$tmp/current.abi" "$binary" || { not_ok "$what: abidw failed"; return; }
    binary=$tmp/current.abi
  fi
  if [ ! -f "$baseline" ]; then not_ok "$what: no baseline $baseline (make abi-baseline)"; return; fi
  # shellcheck disable=SC2086
  abidiff --no-show-locs "$baseline" "$binary" >"$tmp/report" 2>&1
  rc=$?
  if [ $((rc & 3)) -ne 0 ]; then
    not_ok "$what: abidiff failed (status $rc)"; sed 's/^/# /' "$tmp/report"; return
  fi
  if [ $((rc & 8)) -ne 0 ]; then
    not_ok "$what: incompatible ABI change (removed symbols)"; sed 's/^/# /' "$tmp/report"; return
  fi
  if [ $((rc & 4)) -ne 0 ] && ! classify <"$tmp/report" >"$tmp/why"; then
    not_ok "$what: incompatible ABI change"
    sed 's/^/# /' "$tmp/why"; echo "# full report:"; sed 's/^/#   /' "$tmp/report"
    return
  fi
  if [ $((rc & 4)) -ne 0 ]; then ok "$what: compatible additions only"; else ok "$what: unchanged"; fi
}

# The plugin boundary structs, built into a tiny shared object with debug
# info so abidw records every one of them.
plugin_structs() {
  # shellcheck disable=SC2086
  $cc -g -O0 -shared -fPIC -I"$src/libpe/include" -I"$build/libpe/include" \
    "$src/tests/abi/plugin_structs.c" -o "$1"
}

has_debug_info() { LC_ALL=C readelf -S "$1" 2>/dev/null | grep -q '\.debug_info'; }

case $mode in
--self-test)
  # One boundary struct and enum, changed in each way the rules forbid.
  v() { # name struct-body enum-tail extra-code
    printf '#include <stdint.h>\ntypedef struct pe_s { %s } pe_s;\ntypedef enum pe_errno { PE_A = -1%s } pe_errno;\n' \
      "$2" "$3" >"$tmp/$1.c"
    printf 'void pe_use(pe_s *s, pe_errno e);\nvoid pe_use(pe_s *s, pe_errno e) { (void)s; (void)e; }\n%s\n' \
      "$4" >>"$tmp/$1.c"
    $cc -g -O0 -shared -fPIC "$tmp/$1.c" -o "$tmp/$1.so" || { echo "Bail out! cannot compile"; exit 1; }
  }
  # offsets (bits): struct_size 0, a 32, p 64, tail 128; size 192 (tail padding)
  base='uint32_t struct_size; uint16_t a; void *p; uint16_t tail;'
  v base "$base" ', PE_ERRNO_LAST_ = -2' ''
  $ABIDW --out-file "$tmp/base.abi" "$tmp/base.so" || { echo "Bail out! abidw failed"; exit 1; }
  v append "$base double added;" ', PE_B = -2, PE_ERRNO_LAST_ = -3' 'int pe_new(void); int pe_new(void) { return 0; }'
  v reorder 'uint16_t a; uint32_t struct_size; void *p; uint16_t tail;' ', PE_ERRNO_LAST_ = -2' ''
  v resize 'uint32_t struct_size; uint32_t a; void *p; uint16_t tail;' ', PE_ERRNO_LAST_ = -2' ''
  v remove 'uint32_t struct_size; uint16_t a; void *p;' ', PE_ERRNO_LAST_ = -2' ''
  v insert 'uint32_t struct_size; uint16_t a; double mid; void *p; uint16_t tail;' ', PE_ERRNO_LAST_ = -2' ''
  v hole 'uint32_t struct_size; uint16_t a; uint16_t x; void *p; uint16_t tail;' ', PE_ERRNO_LAST_ = -2' ''
  v tailpad "$base uint16_t x;" ', PE_ERRNO_LAST_ = -2' ''
  v renumber "$base" ', PE_ERRNO_LAST_ = -2' ''
  sed -i 's/PE_A = -1/PE_A = -9/' "$tmp/renumber.c"
  $cc -g -O0 -shared -fPIC "$tmp/renumber.c" -o "$tmp/renumber.so"
  v gone "$base" ', PE_ERRNO_LAST_ = -2' ''
  sed -i 's/^void pe_use.*{.*$//' "$tmp/gone.c"
  printf 'void pe_other(pe_s *s); void pe_other(pe_s *s) { (void)s; }\n' >>"$tmp/gone.c"
  $cc -g -O0 -shared -fPIC "$tmp/gone.c" -o "$tmp/gone.so"
  echo "1..10"
  expect() { # variant pass|fail
    out=$(gate "$1" "$tmp/base.abi" "$tmp/$1.so"); n=$((n + 1))
    case "$out" in
      "ok "*) got=pass ;;
      *) got=fail ;;
    esac
    if [ "$got" = "$2" ]; then echo "ok $n - self-test: $1 is ${2}ed"; else
      echo "not ok $n - self-test: $1 should be ${2}ed"; echo "$out" | sed 's/^/# /'; failed=1; fi
  }
  expect base pass
  expect append pass
  expect reorder fail
  expect resize fail
  expect remove fail
  expect insert fail
  expect hole fail
  expect tailpad fail
  expect renumber fail
  expect gone fail
  exit $failed
  ;;
--update)
  lib=$build/libpe/.libs/libpe.so
  [ -f "$lib" ] || { echo "no $lib: build first" >&2; exit 1; }
  has_debug_info "$lib" || { echo "$lib has no debug info: build with -g (the default CFLAGS)" >&2; exit 1; }
  plugin_structs "$tmp/plugin-structs.so" || exit 1
  # shellcheck disable=SC2086
  $ABIDW $PUBLIC --out-file "$src/tests/abi/libpe.abi" "$lib" &&
    $ABIDW --out-file "$src/tests/abi/plugin-structs.abi" "$tmp/plugin-structs.so" || exit 1
  # Translation units by path relative to the tree (machine-independent).
  for f in "$src/tests/abi/libpe.abi" "$src/tests/abi/plugin-structs.abi"; do
    sed -i -e "s|path='$src/|path='|" -e "s|path='$build/|path='|" -e "s|path='$tmp/|path='|" "$f"
  done
  echo "wrote $src/tests/abi/libpe.abi and $src/tests/abi/plugin-structs.abi"
  exit 0
  ;;
check | --require) ;;
*) echo "usage: $0 [--require|--update|--self-test]" >&2; exit 2 ;;
esac

lib=$build/libpe/.libs/libpe.so
[ -f "$lib" ] || skip_all "no $lib (build first)"
has_debug_info "$lib" || skip_all "libpe.so has no debug info (configure with -g, the default CFLAGS)"
plugin_structs "$tmp/plugin-structs.so" || skip_all "cannot compile tests/abi/plugin_structs.c with $cc"
echo "1..2"
gate "libpe.so vs tests/abi/libpe.abi" "$src/tests/abi/libpe.abi" "$lib" public
gate "plugin structs vs tests/abi/plugin-structs.abi" "$src/tests/abi/plugin-structs.abi" "$tmp/plugin-structs.so"
exit $failed
