#!/bin/sh
# Run libpe's libFuzzer targets (built by tests/fuzz/build.sh or `make fuzz`).
#
#   tests/fuzz/run.sh SRCDIR OUTDIR SECONDS [TARGET...]
#
# Each target starts from its seeds (the same sets tests/fuzz/replay.c
# replays in `make check`) plus what earlier runs in OUTDIR found and runs
# SECONDS of wall time on one core; the output is TAP, one line per target
# with its executions.  A crash or a broken invariant fails the target
# (exit status 1) and leaves the input in OUTDIR/artifacts/TARGET/:
# minimize it, fix the bug, then keep it as
# tests/fuzz/regressions/TARGET/<bug-name> (docs/RELIABILITY.md).
# Environment: FUZZ_ARGS (extra libFuzzer flags, e.g. -fork=4 for a long
# run on four cores).
set -u
[ $# -ge 3 ] || { echo "usage: $0 SRCDIR OUTDIR SECONDS [TARGET...]" >&2; exit 2; }
src=$(cd "$1" && pwd); out=$(cd "$2" && pwd); secs=$3; shift 3
targets=$*
if [ -z "$targets" ]; then
  for f in "$out"/fuzz-*; do [ -x "$f" ] && targets="$targets ${f##*/fuzz-}"; done
fi
[ -n "$targets" ] || { echo "fuzz: no fuzzers in $out (run make fuzz)" >&2; exit 2; }

# Only the plugins build.sh linked; no PE_PLUGIN_PATH from the caller.
PE_PLUGIN_PATH=; export PE_PLUGIN_PATH
PE_GOLDEN_DIR=$src/tests/golden; export PE_GOLDEN_DIR
# Leaks are findings; so is any single allocation over -malloc_limit_mb
# (libFuzzer's default: -rss_limit_mb), since libpe must refuse huge
# workloads before allocating.
ASAN_OPTIONS=detect_leaks=1; export ASAN_OPTIONS
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1; export UBSAN_OPTIONS
unset LSAN_OPTIONS

status=0 n=0
echo "1..$(echo $targets | wc -w)"
for t in $targets; do
  n=$((n + 1))
  bin=$out/fuzz-$t
  [ -x "$bin" ] || { echo "not ok $n - fuzz-$t: $bin missing"; status=1; continue; }
  corpus=$out/corpus/$t; art=$out/artifacts/$t
  mkdir -p "$corpus" "$art"
  # Seeds: the target's own, its regressions, and the shipped data.
  seed() { case ${1##*/} in README*) return ;; esac; [ -f "$1" ] && cp -f "$1" "$corpus/seed-$(echo "$1" | sed "s|^$src/||; s|/|_|g")"; }
  for f in "$src/tests/fuzz/seeds/$t"/* "$src/tests/fuzz/regressions/$t"/*; do seed "$f"; done
  case $t in
    config|sweep) for f in $(find "$src/configs" "$src/tests/golden" -name '*.ini'); do seed "$f"; done ;;
    npy) for f in $(find "$src/tests/golden" -name '*.npy'); do seed "$f"; done ;;
  esac
  dict=
  [ -f "$src/tests/fuzz/$t.dict" ] && dict=-dict=$src/tests/fuzz/$t.dict
  log=$out/fuzz-$t.log
  start=$(ls "$corpus" | wc -l)
  touch "$out/.start-$t"
  # shellcheck disable=SC2086
  "$bin" $dict -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 -max_len=16384 \
    -print_final_stats=1 -artifact_prefix="$art/" ${FUZZ_ARGS:-} "$corpus" >"$log" 2>&1
  rc=$?
  execs=$(grep -h 'stat::number_of_executed_units' "$log" | awk '{s += $2} END {print s + 0}')
  what="fuzz-$t: $execs executions in ${secs}s, corpus $start -> $(ls "$corpus" | wc -l) inputs"
  if [ "$rc" -ne 0 ] || [ -n "$(find "$art" -type f -newer "$out/.start-$t")" ]; then
    echo "not ok $n - $what: exit $rc, inputs kept in $art"
    grep -E -A25 'ERROR: |runtime error|invariant broken|deadly signal' "$log" | head -60 | sed 's/^/# /'
    ls -l "$art" | sed 's/^/# /'
    status=1
  else
    echo "ok $n - $what, no crash"
  fi
done
exit $status
