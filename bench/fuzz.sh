#!/usr/bin/env bash
# bench/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
# Coverage-guided fuzzing (libFuzzer, via cargo-fuzz) of what bgtask reads
# from untrusted sources: the config loader (config), the daemon's socket
# frames and protocol (ipc_frame), the spool (spool) and the analyzer
# output parsers (parser). Each target runs SECONDS_PER_TARGET (default
# 600) from its committed seeds in fuzz/corpus/<target>/; what it learns is
# kept in fuzz/artifacts/corpus/<target>/ for the next run, crashes in
# fuzz/artifacts/<target>/. A single allocation over 100 MB is a crash
# (fuzz/src/lib.rs), so is a panic, an input taking 10 s, or an RSS over
# 256 MB (the target's own ~80 MB and the in-memory corpus, plus 100 MB).
# Prints per target: seconds, executions, coverage (edges), peak RSS, crashes.
#
# Installs cargo-fuzz when missing. cargo-fuzz passes nightly-only flags
# to rustc; RUSTC_BOOTSTRAP=1 lets a stable toolchain accept them.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(config ipc_frame spool parser)

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
cd "$repo"
# No sanitizer: the code under test is safe Rust; the allocation cap is
# the harness's own. 16 codegen units: a much shorter build, a little slower run.
build=(-s none --codegen-units 16)
cargo fuzz build "${build[@]}" >&2

results=()
for t in "${targets[@]}"; do
    work=fuzz/artifacts/corpus/$t
    mkdir -p "$work" "fuzz/artifacts/$t"
    log=fuzz/artifacts/$t.log
    before=$(find "fuzz/artifacts/$t" -type f | wc -l)
    echo "== $t: ${secs}s" >&2
    status=0
    cargo fuzz run "${build[@]}" "$t" "$work" "fuzz/corpus/$t" -- \
        -max_total_time="$secs" -malloc_limit_mb=100 -rss_limit_mb=256 \
        -timeout=10 -print_final_stats=1 >"$log" 2>&1 || status=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
    crashes=$(( $(find "fuzz/artifacts/$t" -type f | wc -l) - before ))
    [ "$status" -eq 0 ] || echo "   $t stopped (exit $status), see $log" >&2
    results+=("$(printf '%-10s %8s %12s %8s %8s %8s' "$t" "$secs" "${execs:-?}" "${cov:-?}" "${rss:-?}" "$crashes")")
done
printf '%-10s %8s %12s %8s %8s %8s\n' target seconds executions coverage rss_mb crashes
printf '%s\n' "${results[@]}"
