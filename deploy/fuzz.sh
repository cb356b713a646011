#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ (cargo fuzz, libFuzzer) for SECONDS each
# (default 600), from its committed seed corpus; a crash stops the run and
# leaves its input in fuzz/artifacts/<target>/. Prints each target's
# executions and the CPU time it had (the time is wall-clock: on a busy
# machine a target gets less CPU than SECONDS). Needs a nightly toolchain:
# says so and fails when there is none. Usage: fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
# shellcheck source=deploy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$(dirname "${BASH_SOURCE[0]}")/../fuzz"

seconds=${1:-600}
shift || true

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    die "fuzzing needs a nightly Rust toolchain (libFuzzer's sanitizer flags): rustup toolchain install nightly"
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    say "installing cargo-fuzz (once)"
    cargo install cargo-fuzz --locked
fi
target_dir="${HOME}/.cache/dispatch311-fuzz-target"
targets=("$@")
if [[ ${#targets[@]} == 0 ]]; then
    mapfile -t targets < <(cargo +nightly fuzz list)
fi
# every target built first, so the times below are fuzzing only
for target in "${targets[@]}"; do
    cargo +nightly fuzz build --target-dir "$target_dir" "$target"
done
TIMEFORMAT="cpu: %U s user + %S s system in %R s"
for target in "${targets[@]}"; do
    say "$target: ${seconds}s"
    # a copy of the seeds: libFuzzer adds what it finds to the corpus folder
    work="${target_dir}/corpus/${target}"
    mkdir -p "$work"
    cp -n "corpus/${target}/"* "$work/" 2>/dev/null || true
    log="${target_dir}/${target}.log"
    status=0
    time cargo +nightly fuzz run --target-dir "$target_dir" "$target" "$work" -- \
        -max_total_time="$seconds" -rss_limit_mb=4096 -print_final_stats=1 >"$log" 2>&1 || status=$?
    grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|SUMMARY)' "$log" || true
    if [[ $status != 0 ]]; then
        tail -40 "$log" >&2
        die "$target failed (exit $status; crash inputs, if any, in fuzz/artifacts/${target}/; log $log)"
    fi
done
say "ok: ${#targets[@]} targets, ${seconds}s each, no crash"
