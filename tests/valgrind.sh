#!/bin/sh
# valgrind memcheck of pe-bench (issue 9): small workloads of every encoding
# kind and op, generated and file inputs, and the error paths (a refused
# config, a backend failing mid-run), on the reference and openmp backends.
# Zero errors allowed: invalid accesses, uninitialised values, and definite
# or indirect leaks (tests/valgrind.supp holds third-party suppressions only).
# Then helgrind on the threads test (contexts in threads, no data race).
# TAP; skips without valgrind or in a sanitizer build unless --require.
#
#   tests/valgrind.sh [--require]     (make check; make valgrind-check)
# --require (or "valgrind" in PE_TEST_REQUIRE): a missing valgrind fails.
set -u
here=$(cd "$(dirname "$0")" && pwd)
src=${PE_TEST_SRCDIR:-$(cd "$here/.." && pwd)}
build=${PE_TEST_BUILDDIR:-.}
libtool=${PE_TEST_LIBTOOL:-$build/libtool}
require=no
[ "${1:-}" = --require ] && require=yes
case " ${PE_TEST_REQUIRE:-} " in *" valgrind "*) require=yes ;; esac
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pe-valgrind.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

skip_all() {
  if [ "$require" = yes ]; then echo "1..1"; echo "not ok 1 - valgrind check cannot run: $*"; exit 1; fi
  echo "1..0 # SKIP $*"; exit 0
}
command -v valgrind >/dev/null 2>&1 || skip_all "valgrind not found (Debian: valgrind)"
[ -x "$libtool" ] || skip_all "no libtool script at $libtool"
# Not applicable (so never required) in a sanitizer build.
if LC_ALL=C readelf -d "$build/libpe/.libs/libpe.so" 2>/dev/null | grep -q libasan; then
  echo "1..0 # SKIP sanitizer build (valgrind and ASan do not mix; LeakSanitizer covers it)"; exit 0
fi

backends=reference
if [ -f "$build/backends/.libs/openmp.so" ]; then backends="$backends openmp"; openmp=yes; else openmp=no; fi
# Two OpenMP threads that sleep rather than spin while idle: valgrind
# serialises threads, and spinning only burns its time.
OMP_NUM_THREADS=2; OMP_WAIT_POLICY=passive; export OMP_NUM_THREADS OMP_WAIT_POLICY

w() { # name, then the config body
  name=$1; shift
  printf '%s\n' "$@" >"$tmp/$name.ini"
}
w rope '[workload]' 'head_dim = 32' 'seq_len = 40' 'q_heads = 4' 'kv_heads = 2' '[scheme]' 'plugin = rope'
w alibi '[workload]' 'head_dim = 16' 'seq_len = 33' 'q_heads = 3' 'causal = false' 'window = 7' \
  '[scheme]' 'plugin = alibi'
w yarn '[workload]' 'head_dim = 64' 'seq_len = 24' 'q_len = 5' 'position_offset = 1000000' '[scheme]' \
  'plugin = yarn' 'factor = 4' 'original_max_position_embeddings = 4096'
w encode '[workload]' 'op = encode' 'head_dim = 16' 'seq_len = 20' 'q_len = 3' '[scheme]' 'plugin = sinusoidal'
w bad '[workload]' 'head_dim = 0' 'seq_len = 4' '[scheme]' 'plugin = rope'
for f in rope alibi yarn encode; do printf '[run]\nwarmup = 0\niterations = 2\n' >>"$tmp/$f.ini"; done

cases=""
for b in $backends; do cases="$cases rope:$b:0 alibi:$b:0 yarn:$b:0 encode:$b:0"; done
# File inputs (a golden case), a refused config, a failing backend.
cases="$cases golden:reference:0 bad:reference:2"
failing=$build/tests/.libs/failing.so
if [ -f "$failing" ]; then
  w failing '[workload]' 'head_dim = 16' 'seq_len = 16' '[scheme]' 'plugin = rope' '[run]' 'iterations = 2' \
    '[backend.flaky]' "plugin = $failing" 'fail_in = execute' 'fail_call = 2' '[backend.reference]' \
    'plugin = reference'
  cases="$cases failing:all:1"
fi
count=0
for c in $cases; do count=$((count + 1)); done
[ "$openmp" = yes ] || count=$((count + 1))
count=$((count + 1)) # helgrind on the threads test
echo "1..$count"

n=0 failed=0
for c in $cases; do
  name=${c%%:*} rest=${c#*:}; backend=${rest%%:*} want=${rest#*:}
  n=$((n + 1))
  cfg=$tmp/$name.ini
  [ "$name" = golden ] && cfg=$src/tests/golden/attention/yarn-gqa-causal/case.ini
  set -- "$cfg" --format json --output "$tmp/report.json"
  [ "$backend" = all ] || set -- "$@" --backend "$backend"
  "$libtool" --mode=execute valgrind -q --trace-children=yes --error-exitcode=99 \
    --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
    --track-origins=yes --suppressions="$src/tests/valgrind.supp" --log-file="$tmp/vg.%p.log" \
    "$build/bench/pe-bench" "$@" --no-roofline >"$tmp/out" 2>"$tmp/err"
  rc=$?
  errors=$(cat "$tmp"/vg.*.log 2>/dev/null)
  if [ "$rc" -eq "$want" ] && [ -z "$errors" ]; then
    echo "ok $n - memcheck clean: $name on $backend (exit $rc)"
  else
    echo "not ok $n - memcheck: $name on $backend: exit $rc (want $want)"
    failed=1
    { cat "$tmp"/vg.*.log; tail -5 "$tmp/err"; } 2>/dev/null | sed 's/^/# /' | head -80
  fi
  rm -f "$tmp"/vg.*.log "$tmp/report.json"
done
# helgrind: four contexts in four threads (tests/test_limits, Criterion),
# no data race and no lock-order problem in libpe, its plugins or the
# reference backend.
n=$((n + 1))
if [ -x "$build/tests/test_limits" ]; then
  "$libtool" --mode=execute valgrind -q --tool=helgrind --trace-children=yes --error-exitcode=99 \
    --suppressions="$src/tests/valgrind.supp" --log-file="$tmp/vg.%p.log" \
    "$build/tests/test_limits" --filter 'threads/*' -j1 >"$tmp/out" 2>"$tmp/err"
  rc=$?
  errors=$(cat "$tmp"/vg.*.log 2>/dev/null)
  if [ "$rc" -eq 0 ] && [ -z "$errors" ] && grep -q 'Passing: 1' "$tmp/err"; then
    echo "ok $n - helgrind clean: contexts in threads (threads::*)"
  else
    echo "not ok $n - helgrind: contexts in threads: exit $rc"
    failed=1
    { cat "$tmp"/vg.*.log; tail -5 "$tmp/err"; } 2>/dev/null | sed 's/^/# /' | head -80
  fi
  rm -f "$tmp"/vg.*.log
else
  echo "ok $n # SKIP tests/test_limits not built (Criterion)"
fi
if [ "$openmp" = no ]; then
  n=$((n + 1)); echo "ok $n # SKIP openmp backend not built (backends/.libs/openmp.so)"
fi
exit $failed
