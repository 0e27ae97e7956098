#!/bin/sh
# pe-bench end to end (issue 8): sweeps, agreement between backends (a
# deliberately wrong test backend must fail the run), the JSON contract,
# CSV, compare, atomic writes and --resume under an interrupted run, the
# progress line, plots, the shipped sweeps.  TAP; tiny shapes, the
# reference backend and tests/.libs/wrong_backend.so.
set -u
build=${PE_TEST_BUILDDIR:-.}
src=${PE_TEST_SRCDIR:-.}
bench=$build/bench/pe-bench
wrong=$build/tests/.libs/wrong_backend.so
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pe-bench-sweep.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); echo "not ok $n - $*"; }
skip() { n=$((n + 1)); echo "ok $n # SKIP $*"; }
check() { # check WHAT COMMAND...: ok when the command succeeds
  what=$1; shift
  if "$@"; then ok "$what"; else not_ok "$what"; sed 's/^/# /' "$tmp/err" 2>/dev/null | head -8; fi
}
# Run pe-bench with stdout in $tmp/out, stderr in $tmp/err; sets $rc.
run() { "$bench" "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?; }
has() { grep -q -- "$1" "$2"; }
count() { grep -o -- "$1" "$2" | wc -l | tr -d ' '; }

echo "1..68"

base='[workload]
head_dim = 8
seq_len = 16
q_heads = 2
[scheme]
plugin = rope
[run]
warmup = 0
iterations = 1'
printf '%s\n' "$base" >"$tmp/small.ini"
printf '%s\n[scheme.pi]\nfactor = 2\n[backend.ref2]\nplugin = reference\n[sweep]\nseq_len = 8 16 32\nscheme.plugin = rope pi\nbackend = reference ref2\n' \
  "$base" >"$tmp/sweep.ini"

# ---- the single-config JSON contract -----------------------------------------
run "$tmp/small.ini" --backend reference --format json
check "single config: exit 0" [ "$rc" -eq 0 ]
ok_fields=yes
for f in '"results": \[' '"backend": "reference"' '"device": "' '"status": "ok"' \
  '"time_ms": {"min": [0-9]' '"median": ' '"max": ' '"gflops": [0-9]' '"max_abs_err": [0-9]' \
  '"rms_err": [0-9]' '"machine": {"cpu": ' '"config_text": "\[workload\]' '"fma_peak_gflops": [0-9]'; do
  has "$f" "$tmp/out" || { ok_fields=no; echo "# missing $f"; }
done
check "single config: results carry backend, device, status, time_ms, gflops, errors; machine, config text, roofline" \
  [ "$ok_fields" = yes ]

# ---- sweeps --------------------------------------------------------------------
run "$tmp/sweep.ini" --no-roofline --format json --output "$tmp/sweep.json"
check "sweep: 6 cells x 2 backends run, exit 0" [ "$rc" -eq 0 ]
check "sweep: 12 results, each with its cell" [ "$(count '"cell": {"seq_len": "' "$tmp/sweep.json")" -eq 18 ]
run compare "$tmp/sweep.json" "$tmp/sweep.json"
check "sweep: the JSON reads back through compare (12 matched, 0 regressions)" \
  sh -c "[ $rc -eq 0 ] && grep -q '^12 matched, 0 regressions' '$tmp/out'"
check "sweep: 6 agreement pairs, all ok" [ "$(count '"ok": true' "$tmp/sweep.json")" -eq 6 ]
run "$tmp/sweep.ini" --no-roofline
check "sweep: the table prints an agreement matrix per cell" \
  sh -c "[ $rc -eq 0 ] && [ \$(grep -c '^agreement, seq_len=' '$tmp/out') -eq 6 ]"
run "$tmp/sweep.ini" --no-roofline --dry-run
check "sweep: --dry-run lists the cells and runs nothing" \
  sh -c "[ $rc -eq 0 ] && grep -q '6 cells x 2 backends' '$tmp/out' && grep -q '6: seq_len=32 scheme.plugin=pi' '$tmp/out'"
printf '%s\n[sweep]\nrun.seed = 1\nseq_len = 16 0\n' "$base" >"$tmp/bad.ini"
run "$tmp/bad.ini" --backend reference
check "sweep: an invalid value fails before running, naming the [sweep] line, key and value (exit 2)" \
  sh -c "[ $rc -eq 2 ] && grep -q 'cell 2 of 2 (run.seed=1 seq_len=0): .*bad.ini:12: \[workload\] seq_len = 0: out of range' '$tmp/err'"
printf '%s\n[sweep]\nrun.max_memory = 1G 1K\n' "$base" >"$tmp/mem.ini"
run "$tmp/mem.ini" --backend reference --no-roofline --format json
check "sweep: a cell whose workload cannot be built is recorded failed, the others run (exit 2)" \
  sh -c "[ $rc -eq 2 ] && [ \$(grep -c '\"status\": \"ok\"' '$tmp/out') -eq 1 ] &&
         grep -q '\"status\": \"failed\", \"message\": \".*more than max_memory' '$tmp/out'"
printf '%s\n[sweep]\nseq_len = 16\n  32\n' "$base" >"$tmp/cont.ini"
run "$tmp/cont.ini" --backend reference --no-roofline --format csv
check "sweep: values continue on indented lines" [ "$(count '"seq_len=[0-9]* *"' "$tmp/out")" -eq 2 ]

# ---- agreement: the deliberately wrong backend --------------------------------
agree_cfg() { # ERROR ROW: reference and the wrong backend; the oracle checks rows 0 and 15 only
  printf '%s\nverify_rows = 2\n[backend.reference]\nplugin = reference\n[backend.wrong]\nplugin = %s\nerror = %s\nrow = %s\n' \
    "$base" "$wrong" "$1" "$2" >"$tmp/agree.ini"
}
agree_cfg 1e-3 1
run "$tmp/agree.ini" --no-roofline --format json --output "$tmp/agree.json"
check "wrong backend in an unverified row: the run fails (exit 1)" [ "$rc" -eq 1 ]
check "... though both runs verified against the oracle's sample" [ "$(count '"status": "ok"' "$tmp/agree.json")" -eq 2 ]
check "... because the outputs disagree: said on stderr with the matrix" \
  sh -c "grep -q 'disagree beyond the tolerance' '$tmp/err' && grep -q '^wrong .* !' '$tmp/err'"
check "... and recorded in the JSON" has '"a": "reference", "b": "wrong", "max_abs": 0.00[0-9]*, .*"ok": false' "$tmp/agree.json"
agree_cfg 1e-3 0
run "$tmp/agree.ini" --no-roofline
check "wrong backend in a verified row: failed verification (exit 1)" \
  sh -c "[ $rc -eq 1 ] && grep -q 'wrong: failed: verification failed' '$tmp/err'"
agree_cfg 0 1
run "$tmp/agree.ini" --no-roofline
check "the same backend made right agrees (exit 0)" [ "$rc" -eq 0 ]

# ---- CSV -------------------------------------------------------------------------
run "$tmp/sweep.ini" --no-roofline --format csv --output "$tmp/sweep.csv"
check "CSV: the old columns first, then cell, machine and config text" \
  sh -c "head -1 '$tmp/sweep.csv' | grep -q '^config,scheme,op,batch,.*,total_rows,message,cell,.*,machine_cpu,.*,config_text\$'"
check "CSV: one row per result" [ "$(grep -c "^\"$tmp/sweep.ini\"," "$tmp/sweep.csv")" -eq 12 ]

# ---- compare ----------------------------------------------------------------------
awk '{ if (match($0, /"median": [0-9.e+-]+/)) { v = substr($0, RSTART + 10, RLENGTH - 10);
       $0 = substr($0, 1, RSTART + 9) (v * 2) substr($0, RSTART + RLENGTH) } print }' \
  "$tmp/sweep.json" >"$tmp/slow.json"
run compare "$tmp/sweep.json" "$tmp/slow.json"
check "compare: twice as slow is flagged, exit 1" \
  sh -c "[ $rc -eq 1 ] && [ \$(grep -c 'REGRESSION +100.0%' '$tmp/out') -eq 12 ]"
run compare "$tmp/sweep.json" "$tmp/slow.json" --threshold 150
check "compare: not over a 150% threshold, exit 0" [ "$rc" -eq 0 ]
run compare "$tmp/sweep.json" "$tmp/sweep.csv"
check "compare: a file that is not our JSON is refused (exit 2, with where)" \
  sh -c "[ $rc -eq 2 ] && grep -q 'sweep.csv:1:1: invalid JSON' '$tmp/err'"

# ---- atomic writes and --resume under an interrupted run ------------------------
printf '%s\n[backend.slow]\nplugin = %s\nerror = 0\ndelay_ms = 120\n[sweep]\nseq_len = 8 9 10 11 12 13 14 15 16 17\n' \
  "$base" "$wrong" >"$tmp/slow.ini"
# Start a run, wait for its first checkpoint, send signal $1; sets $rc.
interrupt() {
  rm -f "$tmp/int.json"
  "$bench" "$tmp/slow.ini" --no-roofline --format json --output "$tmp/int.json" 2>"$tmp/err" &
  pid=$!
  i=0
  while [ ! -s "$tmp/int.json" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i + 1)); done
  sleep 0.1
  kill "-$1" "$pid"
  wait "$pid" 2>/dev/null
  rc=$?
}
interrupt KILL
"$bench" compare "$tmp/int.json" "$tmp/int.json" >"$tmp/out" 2>"$tmp/err"
done_cells=$(sed -n 's/^\([0-9]*\) matched.*/\1/p' "$tmp/out")
check "killed mid-run: the output is a whole document" [ -n "$done_cells" ]
check "... holding the cells done before the kill ($done_cells of 10)" \
  sh -c "[ '${done_cells:-0}' -ge 1 ] && [ '${done_cells:-10}' -lt 10 ]"
check "... and no truncated output file" sh -c "tail -c 3 '$tmp/int.json' | grep -q '}'"
run "$tmp/slow.ini" --no-roofline --format json --output "$tmp/int.json" --resume
check "--resume: finishes the run (exit 0), skipping the cells done" \
  sh -c "[ $rc -eq 0 ] && grep -q '$done_cells of 10 cells were already done' '$tmp/err'"
run compare "$tmp/int.json" "$tmp/int.json"
check "--resume: the merged file holds all 10 cells" has '^10 matched' "$tmp/out"
interrupt TERM
check "SIGTERM: stops after the current run with status 143" \
  sh -c "[ $rc -eq 143 ] && grep -q 'interrupted after' '$tmp/err'"
run compare "$tmp/int.json" "$tmp/int.json"
check "... its report written whole" [ "$rc" -eq 0 ]
run "$tmp/small.ini" --backend reference --no-roofline --format json --output "$tmp/int.json" --resume
check "--resume refuses a file written for another config (exit 2)" \
  sh -c "[ $rc -eq 2 ] && grep -q 'another config text' '$tmp/err'"

{ cat "$tmp/small.ini"; printf '; caf\351\n'; } >"$tmp/lat.ini"
rm -f "$tmp/lat.json"
run "$tmp/lat.ini" --backend reference --no-roofline --format json --output "$tmp/lat.json" --resume
cp "$tmp/lat.json" "$tmp/lat1.json"
run "$tmp/lat.ini" --backend reference --no-roofline --format json --output "$tmp/lat.json" --resume
check "--resume: a config with a byte that is not UTF-8 resumes (exit 0), its text and results unchanged" \
  sh -c "[ $rc -eq 0 ] && grep -q '1 of 1 cells were already done' '$tmp/err' &&
         grep -q '\"config_text\": .*; caf\\\\u00e9' '$tmp/lat.json' &&
         [ \"\$(grep '\"config_text\"' '$tmp/lat.json')\" = \"\$(grep '\"config_text\"' '$tmp/lat1.json')\" ] &&
         [ \"\$(sed -n '/\"results\"/,\$p' '$tmp/lat.json')\" = \"\$(sed -n '/\"results\"/,\$p' '$tmp/lat1.json')\" ]"

printf '%s\n[backend.ref]\nplugin = reference\n[backend.omp1]\nplugin = openmp\nthreads = 1\n' "$base" >"$tmp/two.ini"
rm -f "$tmp/two.json"
run "$tmp/two.ini" --backend ref --no-roofline --format json --output "$tmp/two.json" --resume
run "$tmp/two.ini" --backend ref --no-roofline --format json --output "$tmp/two.json" --resume
check "--resume with every cell done: machine.plugins keeps the old run's plugins, each once" \
  sh -c "[ $rc -eq 0 ] && [ \$(grep -c '{\"name\": \"rope\", \"kind\": \"scheme\"' '$tmp/two.json') -eq 1 ] &&
         [ \$(grep -c '{\"name\": \"reference\", \"kind\": \"backend\"' '$tmp/two.json') -eq 1 ]"

# A cell resumed with a backend added: the pair of a result carried over and
# a new one is compared through the old run's saved output, else listed as
# not compared, never dropped silently.
run "$tmp/two.ini" --no-roofline --format json --output "$tmp/two.json" --resume
check "--resume adding a backend, the old output not saved: the pair is listed not compared, with why (exit 0)" \
  sh -c "[ $rc -eq 0 ] && grep -q 'ref and omp1 not compared: ref was carried over by --resume and its output was not saved' '$tmp/err' &&
         grep -q '{\"cell\": {}, \"a\": \"ref\", \"b\": \"omp1\", \"why\": \"ref was carried over' '$tmp/two.json' &&
         ! grep -q '\"max_abs\": [0-9]' '$tmp/two.json'"
run "$tmp/two.ini" --no-roofline --format json --output "$tmp/two.json" --resume
run compare "$tmp/two.json" "$tmp/two.json"
check "... kept by a later --resume, and compare says so" \
  sh -c "grep -q '\"a\": \"ref\", \"b\": \"omp1\", \"why\"' '$tmp/two.json' && grep -q '1 pair of backends not compared' '$tmp/out'"
rm -rf "$tmp/two.json" "$tmp/saved"
run "$tmp/two.ini" --backend ref --no-roofline --format json --output "$tmp/two.json" --resume --save-output "$tmp/saved"
run "$tmp/two.ini" --no-roofline --format json --output "$tmp/two.json" --resume
check "--resume adding a backend, the old output saved: read back and compared (exit 0)" \
  sh -c "[ $rc -eq 0 ] && grep -q '\"saved_output\": {\"path\": \"$tmp/saved/ref.npy\", \"fnv1a64\": \"[0-9a-f]\{16\}\"}' '$tmp/two.json' &&
         grep -q '\"a\": \"omp1\", \"b\": \"ref\", \"max_abs\": .*\"ok\": true' '$tmp/two.json' &&
         ! grep -q '\"why\"' '$tmp/two.json'"
rm -rf "$tmp/two.json" "$tmp/saved"
run "$tmp/two.ini" --backend ref --no-roofline --format json --output "$tmp/two.json" --resume --save-output "$tmp/saved"
printf 'x' | dd of="$tmp/saved/ref.npy" bs=1 seek=200 conv=notrunc 2>/dev/null
run "$tmp/two.ini" --no-roofline --format json --output "$tmp/two.json" --resume
check "... a saved output changed since: not compared, said so" \
  sh -c "[ $rc -eq 0 ] && grep -q 'ref.npy has changed since (its hash differs)' '$tmp/err' && grep -q '\"why\": \"ref was carried' '$tmp/two.json'"
agree_cfg 1e-3 1
rm -rf "$tmp/agree.json" "$tmp/saved"
run "$tmp/agree.ini" --backend reference --no-roofline --format json --output "$tmp/agree.json" --resume --save-output "$tmp/saved"
run "$tmp/agree.ini" --no-roofline --format json --output "$tmp/agree.json" --resume
check "--resume: a new backend disagreeing with a carried-over result's saved output fails the run (exit 1)" \
  sh -c "[ $rc -eq 1 ] && grep -q 'disagree beyond the tolerance' '$tmp/err' &&
         grep -q '\"a\": \"wrong\", \"b\": \"reference\", .*\"ok\": false' '$tmp/agree.json'"

# ---- progress line ------------------------------------------------------------------
run "$tmp/sweep.ini" --no-roofline --format json
check "no progress line when stderr is not a terminal" sh -c "! grep -q '\[1/6\]' '$tmp/err'"
if command -v script >/dev/null 2>&1 && script -qec true /dev/null >/dev/null 2>&1; then
  script -qec "'$bench' '$tmp/sweep.ini' --no-roofline --format json --output '$tmp/tty.json'" /dev/null \
    >"$tmp/tty" 2>&1
  check "a progress line on a terminal" grep -q '\[6/6\] seq_len=32 scheme.plugin=pi: ref2' "$tmp/tty"
else
  skip "no script(1) to run pe-bench on a terminal"
fi

# ---- plots -------------------------------------------------------------------------
run "$tmp/sweep.ini" --no-roofline --format json --plot "$tmp/plots"
check "--plot writes time.svg, gflops.svg and error.svg" \
  sh -c "[ $rc -eq 0 ] && [ -s '$tmp/plots/time.svg' ] && [ -s '$tmp/plots/gflops.svg' ] && [ -s '$tmp/plots/error.svg' ]"
rm -rf "$tmp/replot"
run plot "$tmp/sweep.json" "$tmp/replot"
check "pe-bench plot draws the charts of a results file" \
  sh -c "[ $rc -eq 0 ] && [ -s '$tmp/replot/time.svg' ] && grep -q 'lines: backend, scheme.plugin' '$tmp/replot/time.svg'"
if command -v rsvg-convert >/dev/null 2>&1; then
  rendered=yes
  for f in time gflops error; do
    rsvg-convert "$tmp/plots/$f.svg" -o "$tmp/plots/$f.png" 2>"$tmp/err" && [ -s "$tmp/plots/$f.png" ] || rendered=no
  done
  check "the SVG charts render (rsvg-convert)" [ "$rendered" = yes ]
else
  skip "rsvg-convert not installed (Debian: librsvg2-bin)"
fi

# ---- --interleave ------------------------------------------------------------------
failing=$build/tests/.libs/failing.so
printf '%s\n[backend.reference]\nplugin = reference\n[backend.ref2]\nplugin = reference\n[backend.flaky]\nplugin = %s\nfail_in = execute\nfail_call = 2\nfail_code = device\n' \
  "$(printf '%s\n' "$base" | sed 's/^iterations = 1/iterations = 3/')" "$failing" >"$tmp/inter.ini"
run "$tmp/inter.ini" --interleave --backend reference --backend ref2 --no-roofline --format json
check "--interleave: two backends timed in rounds, exit 0, each record says interleaved" \
  sh -c "[ $rc -eq 0 ] && [ \$(grep -c '\"interleaved\": true' '$tmp/out') -eq 2 ] && [ \$(grep -c '\"iterations\": 3' '$tmp/out') -eq 2 ]"
run "$tmp/inter.ini" --interleave --backend reference --backend flaky --backend ref2 --no-roofline --format json
check "--interleave: a backend failing in round 2 is failed with its reason, the others verify (exit 1)" \
  sh -c "[ $rc -eq 1 ] && [ \$(grep -c '\"status\": \"ok\"' '$tmp/out') -eq 2 ] && grep -q 'injected failure in execute' '$tmp/out'"
run "$tmp/small.ini" --backend reference --no-roofline --format json
check "without --interleave the records say interleaved: false" grep -q '"interleaved": false' "$tmp/out"
printf '%s\n[backend.reference]\nplugin = reference\n[backend.flaky]\nplugin = %s\nfail_in = fetch\nfail_call = 1\n' \
  "$base" "$failing" >"$tmp/fetch.ini"
run "$tmp/fetch.ini" --no-roofline
check "a run that failed in fetch, after timing: the table's errors are '-', not 0 (nothing was verified)" \
  sh -c "[ $rc -eq 1 ] && grep -q '^flaky  *failed  *[0-9.]*  *[0-9.]*  *[0-9.]*  *-  *-  *-  *-  ' '$tmp/out' &&
         grep -q '^reference  *ok  .* [0-9.]*e-[0-9]*  *[0-9.]*e-[0-9]*  ' '$tmp/out'"

long=$(printf 'k%.0s' $(seq 1 140))
run "$tmp/small.ini" --backend reference --no-roofline --set "workload.$long=1"
check "--set with a key name over 127 characters: refused (exit 2), not truncated" \
  sh -c "[ $rc -eq 2 ] && grep -q 'key name is longer than 127 characters' '$tmp/err'"

# ---- a scheme's warnings: once per cell ------------------------------------------------
# (compute runs when the cells are checked and twice more when one runs)
printf '%s\n' "$base" | sed "s|^plugin = rope|plugin = $build/tests/.libs/warner.so\nwarning = odd but legal|" \
  >"$tmp/warn.ini"
run "$tmp/warn.ini" --backend reference --no-roofline
check "a scheme's warning is printed once in a run" \
  sh -c "[ $rc -eq 0 ] && [ \$(grep -c 'warning: warner: odd but legal' '$tmp/err') -eq 1 ]"
run "$tmp/warn.ini" --backend reference --no-roofline --set 'sweep.seq_len=8 16'
check "... once per cell in a sweep, with the cell" \
  sh -c "[ $rc -eq 0 ] && [ \$(grep -c 'warning: warner: ' '$tmp/err') -eq 2 ] &&
         grep -q '^libpe: warning: warner: seq_len=8: odd but legal\$' '$tmp/err' &&
         grep -q '^libpe: warning: warner: seq_len=16: odd but legal\$' '$tmp/err'"
run "$tmp/warn.ini" --backend reference --no-roofline --set 'sweep.seq_len=8 16' --dry-run
check "... and by --dry-run, which checks every cell" \
  sh -c "[ $rc -eq 0 ] && [ \$(grep -c 'warning: warner: seq_len=[0-9]*: odd but legal' '$tmp/err') -eq 2 ]"

# ---- --save-output -------------------------------------------------------------------
run "$tmp/small.ini" --backend reference --no-roofline --set 'sweep.seq_len=8 16' \
  --set 'sweep.scheme.base=10000 500000' --save-output "$tmp/so"
check "--save-output in a sweep: DIR/CELL/LABEL.npy, one directory per cell, nothing else" \
  sh -c "[ $rc -eq 0 ] && [ -s '$tmp/so/seq_len=8,scheme.base=10000/reference.npy' ] &&
         [ -s '$tmp/so/seq_len=16,scheme.base=500000/reference.npy' ] &&
         [ \$(find '$tmp/so' -mindepth 1 | wc -l) -eq 8 ]"
run "$tmp/small.ini" --backend reference --no-roofline --save-output "$tmp/so1"
check "--save-output with a single config: DIR/LABEL.npy" \
  sh -c "[ $rc -eq 0 ] && [ -s '$tmp/so1/reference.npy' ] && [ \$(find '$tmp/so1' -mindepth 1 | wc -l) -eq 1 ]"

# ---- devices -------------------------------------------------------------------------
run devices reference openmp
check "devices: a backend without enumerate (reference) says so, the others list theirs (exit 0)" \
  sh -c "[ $rc -eq 0 ] && grep -q '^reference:' '$tmp/out' && grep -q '^    does not list devices' '$tmp/out' &&
         grep -q '^openmp:' '$tmp/out' && grep -q '^    \[cpu\] ' '$tmp/out'"
run devices
check "devices: every backend found, exit 0" sh -c "[ $rc -eq 0 ] && grep -q '^reference:' '$tmp/out'"
run devices no-such-backend
check "devices: a backend that cannot be loaded fails (exit 1)" \
  sh -c "[ $rc -eq 1 ] && grep -q 'no backend plugin' '$tmp/out'"

hostile_devices=$build/tests/.libs/broken_devices.so # built with the Criterion tests
if [ -f "$hostile_devices" ]; then
  run devices "$hostile_devices"
  check "devices: unterminated strings are cut, a struct too small is refused by number (exit 1)" \
    sh -c "[ $rc -eq 1 ] && grep -q '^    \[cpu\] N\{127\} | D\{127\} | X\{511\}\$' '$tmp/out' &&
           grep -q '^    \[gpu\] dev0 | drv | fine\$' '$tmp/out' &&
           grep -q 'device 2: pe_device_info struct_size 8 is smaller than ABI 1' '$tmp/out'"
else
  skip "no $hostile_devices (built only with Criterion)"
fi

# ---- plugin paths in a config are relative to the config ----------------------
mkdir -p "$tmp/cfgdir/mods"
abs_build=$(cd "$build" && pwd)
ln -s "$abs_build/plugins/.libs/rope.so" "$tmp/cfgdir/mods/rope.so"
ln -s "$abs_build/backends/.libs/reference.so" "$tmp/cfgdir/mods/reference.so"
printf '%s\n[backend.ref]\nplugin = mods/reference.so\n' "$base" | sed 's|^plugin = rope|plugin = ./mods/rope.so|' \
  >"$tmp/cfgdir/rel.ini"
run "$tmp/cfgdir/rel.ini" --no-roofline
check "[scheme] and [backend] plugin paths resolve against the config's directory (exit 0)" [ "$rc" -eq 0 ]

# ---- a scheme's bad tables are the scheme's fault -------------------------------
hostile_scheme=$build/tests/.libs/hostile_scheme.so # built with the Criterion tests
if [ -f "$hostile_scheme" ]; then
  printf '%s\n' "$base" | sed "s|^plugin = rope|plugin = $hostile_scheme\nmisbehave = slope_nan|" >"$tmp/hostile.ini"
  run "$tmp/hostile.ini" --backend reference --no-roofline
  check "a scheme returning NaN slopes: refused naming the scheme and slope (exit 2)" \
    sh -c "[ $rc -eq 2 ] && grep -q 'scheme hostile_scheme: slopes\[0\] = nan: not finite' '$tmp/err'"
  run "$tmp/hostile.ini" --backend reference --no-roofline --set scheme.misbehave=inv_freq_overflow
  check "a scheme whose cos/sin table overflows: refused naming the row (exit 2)" \
    sh -c "[ $rc -eq 2 ] && grep -q 'scheme hostile_scheme: rotary cos/sin table, key row 2 (position 2), pair 0 = nan' '$tmp/err'"
else
  skip "no $hostile_scheme (built only with Criterion)"
  skip "no $hostile_scheme (built only with Criterion)"
fi

# ---- roofline --summary (make bench's report) ---------------------------------------
printf 'isa avx2\nthreads 2\nfma_peak_gflops 100\nstream_copy_gbps 10\nstream_read_gbps 0.02\n' >"$tmp/r1.txt"
printf 'isa avx2\nthreads 2\nfma_peak_gflops 200\nstream_copy_gbps 5\nstream_read_gbps 0.1\n' >"$tmp/r2.txt"
run "$tmp/small.ini" --interleave --backend openmp --backend reference --no-roofline --format json --output "$tmp/pair.json"
"$build/bench/roofline" --summary "$tmp/r1.txt" "$tmp/r2.txt" "$tmp/pair.json" >"$tmp/sum" 2>"$tmp/err"
sum_rc=$?
check "roofline --summary: the best of two measurements, a line per backend, openmp 1.00x" \
  sh -c "[ $rc -eq 0 ] && [ $sum_rc -eq 0 ] && grep -q 'FMA peak 200.0 GFLOP/s, STREAM copy 10.0 GB/s' '$tmp/sum' &&
         grep -q 'STREAM read 0.1 GB/s' '$tmp/sum' &&
         grep -q '^pair  *openmp  *ok .* 1.00x .*% of FMA peak' '$tmp/sum' && grep -q '^  *reference  *ok .*[0-9]x ' '$tmp/sum'"
printf '%s\n' "$base" | sed 's/^seq_len = 16/seq_len = 16\nq_len = 1/' >"$tmp/dec.ini"
run "$tmp/dec.ini" --backend reference --no-roofline --format json --output "$tmp/dec.json"
"$build/bench/roofline" --summary "$tmp/r1.txt" "$tmp/r2.txt" "$tmp/dec.json" >"$tmp/sum" 2>"$tmp/err"
sum_rc=$?
gbps=$(sed -n 's/.*"gbps": \([0-9.e+-]*\).*/\1/p' "$tmp/dec.json" | head -1)
want=$(awk -v g="$gbps" 'BEGIN {printf "%.1f%% of STREAM copy (%.0f%% of read), K/V streamed", 100 * g / 10, 100 * g / 0.1}')
check "roofline --summary: decode (q_len = 1) against copy and the best read figure" \
  sh -c "[ $rc -eq 0 ] && [ $sum_rc -eq 0 ] && [ -n '$gbps' ] && grep -q '^dec  *reference  *ok  *decode .*$want' '$tmp/sum'"
printf '{"results": [\n    {"cell": {}, "backend": "openmp", "status": "failed", "message": "x",\n     "time_ms": {"median": 1}}\n  ],\n  "agreement": [\n  ]\n}\n' >"$tmp/bad.json"
"$build/bench/roofline" --summary "$tmp/r1.txt" "$tmp/bad.json" >"$tmp/sum" 2>&1
check "roofline --summary: a failed run makes it exit non-zero" [ $? -ne 0 ]

# ---- shipped sweeps ----------------------------------------------------------------
shipped=yes
for f in "$src"/configs/sweeps/*.ini; do
  "$bench" "$f" --dry-run >"$tmp/out" 2>"$tmp/err" || { shipped=no; echo "# $f:"; sed 's/^/# /' "$tmp/err"; }
done
check "every shipped sweep (configs/sweeps) checks out cell by cell" [ "$shipped" = yes ]

# ---- unverified runs and the backend limit ---------------------------------------
run "$tmp/small.ini" --backend reference --no-roofline --set run.verify=false --format json
check "verify = false: errors null, 0 of 16 rows verified, exit 0" \
  sh -c "[ $rc -eq 0 ] && grep -q '\"max_abs_err\": null, \"rms_err\": null' '$tmp/out' &&
         grep -q '\"verified_rows\": 0, \"total_rows\": 16' '$tmp/out'"
run "$tmp/small.ini" --backend reference --no-roofline --set run.verify=false
check "verify = false: the table prints - for the errors" \
  sh -c "[ $rc -eq 0 ] && grep -q '^reference  *ok .* -  *-  ' '$tmp/out' && ! grep -q nan '$tmp/out'"
cp "$tmp/small.ini" "$tmp/many.ini"
i=0; while [ $i -lt 65 ]; do printf '[backend.b%d]\nplugin = reference\n' $i >>"$tmp/many.ini"; i=$((i + 1)); done
run "$tmp/many.ini" --dry-run
check "65 backend sections: refused (more than 64), exit 2" \
  sh -c "[ $rc -eq 2 ] && grep -q '65 backend sections, more than the 64' '$tmp/err'"
printf '%s\n[backend.omp]\nplugin = openmp\nblock_q = -3\n' "$base" >"$tmp/badopt.ini"
run "$tmp/badopt.ini" --dry-run
check "a bad backend option is the config's error, caught by --dry-run (exit 2, names it)" \
  sh -c "[ $rc -eq 2 ] && grep -q 'block_q = -3' '$tmp/err'"
run "$tmp/small.ini" --backend openmp --no-roofline --set backend.openmp.threads=x
check "a bad backend option from --set: exit 2 before any run, said to come from --set" \
  sh -c "[ $rc -eq 2 ] && grep -q 'threads = x' '$tmp/err' && grep -q '(value set by --set' '$tmp/err' && ! grep -q '^openmp ' '$tmp/out'"
