#!/usr/bin/env bash
# Fuzzes the file parsers: scripts/fuzz.sh SECONDS [TARGET...]
#
# Configures and builds the 'sanitize' preset's fuzz targets (ASan + UBSan + libFuzzer), writes their seed
# corpora with fuzz_seeds, runs each target (default: all of jpeg png idx tiny_imagenet cache checkpoint) for
# SECONDS on a work corpus in build-sanitize/fuzz/<target>, one after the other, and prints a Markdown
# summary (also written to build-sanitize/fuzz/summary.md). Crashing inputs are left as
# build-sanitize/fuzz/<target>/crash-* (or leak-*, oom-*, timeout-*); the exit status is non-zero when
# there is one. The work corpora are kept between runs, so later runs start where earlier ones stopped.
set -euo pipefail

usage() {
    echo "usage: $0 SECONDS [TARGET...]   (targets: jpeg png idx tiny_imagenet cache checkpoint)" >&2
    exit 2
}
[[ $# -ge 1 && $1 =~ ^[0-9]+$ && $1 -gt 0 ]] || usage
seconds=$1
shift
all=(jpeg png idx tiny_imagenet cache checkpoint)
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=("${all[@]}")
for t in "${targets[@]}"; do
    [[ " ${all[*]} " == *" $t "* ]] || { echo "fuzz.sh: unknown target '$t'" >&2; usage; }
done

root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build-sanitize
out=$build/fuzz
cd "$root"
# Build output goes to stderr: stdout carries only the summary.
cmake --preset sanitize >&2
cmake --build "$build" -j "${FUZZ_BUILD_JOBS:-2}" --target fuzz_seeds $(printf 'fuzz_%s ' "${targets[@]}") >&2
bin=$build/bin

mkdir -p "$out"
"$bin/fuzz_seeds" "$out/seeds" >/dev/null

# The same limits as the ctest entries (tests/fuzz/CMakeLists.txt).
limits=(-max_len=16384 -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=20)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

rows=()
failed=0
for t in "${targets[@]}"; do
    work=$out/$t
    mkdir -p "$work/corpus"
    log=$work/fuzz.log
    before=$(find "$work" -maxdepth 1 \( -name 'crash-*' -o -name 'leak-*' -o -name 'oom-*' -o -name 'timeout-*' \) | wc -l)
    echo "fuzz.sh: fuzz_$t for $seconds s (log: $log)" >&2
    status=0
    "$bin/fuzz_$t" -max_total_time="$seconds" -print_final_stats=1 "${limits[@]}" -artifact_prefix="$work/" \
        "$work/corpus" "$out/seeds/$t" >"$log" 2>&1 || status=$?
    after=$(find "$work" -maxdepth 1 \( -name 'crash-*' -o -name 'leak-*' -o -name 'oom-*' -o -name 'timeout-*' \) | wc -l)
    crashes=$((after - before))
    if [[ $status -ne 0 && $crashes -eq 0 ]]; then crashes=1; fi  # died without leaving an input
    runs=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)
    runs=${runs:-$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\)/\1/p' "$log" | tail -n 1)}
    runs=${runs:-0}
    secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)
    secs=${secs:-$seconds}
    rate=$(awk -v r="$runs" -v s="$secs" 'BEGIN { printf "%d", (s > 0 ? r / s : r) }')
    # The corpus libFuzzer ended with (seeds and work corpus, reduced), from its last status line.
    corpus=$(grep -o 'corp: [0-9]*/' "$log" | tail -n 1 | tr -dc '0-9')
    corpus=${corpus:-$(find "$work/corpus" -type f | wc -l)}
    rows+=("| fuzz_$t | $secs | $runs | $rate | $crashes | $corpus |")
    if [[ $crashes -gt 0 ]]; then
        failed=1
        echo "fuzz.sh: fuzz_$t failed (exit $status); the end of its log:" >&2
        tail -n 30 "$log" >&2
    fi
done

{
    echo "| target | seconds | executions | executions/s | crashes | corpus size |"
    echo "|---|---:|---:|---:|---:|---:|"
    printf '%s\n' "${rows[@]}"
} >"$out/summary.md"
cat "$out/summary.md"
exit $failed
