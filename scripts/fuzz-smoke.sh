#!/usr/bin/env bash
# Fuzz smoke test: builds every cargo-fuzz target in fuzz/ and runs each one
# for a few seconds from its seeds (fuzz/seeds/<target>, and the kept
# campaign corpus fuzz/corpus/<target> when it exists). Fails if any target
# crashes (a panic, an abort, an out-of-memory or a timeout); the failing
# input is then in fuzz/artifacts/<target>/ and printed in base64.
#
# Installs what it needs when missing: a nightly toolchain (cargo-fuzz's
# instrumentation flags are nightly-only) and cargo-fuzz 0.13.2. Both checks
# take well under a second when they are present.
#
#   FUZZ_SECONDS=10          seconds of fuzzing per target
#   FUZZ_TARGETS="a b"       only these targets (default: all of them)
#   FUZZ_TOOLCHAIN=nightly   the toolchain that builds the targets
#   FUZZ_TARGET_DIR=dir      build directory (default: fuzz/target)
#
# The new inputs a run finds go to a scratch directory under the build
# directory, so the smoke test leaves the source tree as it was.
#
# Build configuration: cargo-fuzz's default release build (optimised, with
# debug assertions and overflow checks, so an arithmetic overflow in a
# decoder is a crash; `-O` would turn them off) and `--sanitizer none`. The
# workspace forbids unsafe code and std is not rebuilt with the sanitizer, so
# AddressSanitizer would only watch the dependencies' unsafe code, at the
# cost of a slower build and slower runs. libFuzzer's coverage
# instrumentation and compare tracing stay on.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

seconds="${FUZZ_SECONDS:-10}"
toolchain="${FUZZ_TOOLCHAIN:-nightly}"
target_dir="${FUZZ_TARGET_DIR:-$root/fuzz/target}"
cargo_fuzz_version="0.13.2"

# --- what fuzzing needs --------------------------------------------------
if ! command -v rustup >/dev/null 2>&1; then
    echo "rustup is needed to install the $toolchain toolchain cargo-fuzz builds with" >&2
    exit 1
fi
if ! rustup run "$toolchain" rustc --version >/dev/null 2>&1; then
    rustup toolchain install "$toolchain" --profile minimal
fi
if [[ "$(cargo fuzz --version 2>/dev/null || true)" != "cargo-fuzz $cargo_fuzz_version" ]]; then
    cargo install cargo-fuzz --locked --version "$cargo_fuzz_version"
fi
# libfuzzer-sys compiles libFuzzer, which is C++.
if ! command -v c++ >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [[ "$(id -u)" = 0 ]]; then
        apt-get update -q && apt-get install -y -q g++
    else
        echo "a C++ compiler (c++) is needed to build libFuzzer (Debian: g++)" >&2
        exit 1
    fi
fi
cargo "+$toolchain" --version
cargo fuzz --version

# cargo-fuzz has no --locked: check here that fuzz/Cargo.lock is up to date
# (fuzz/ is its own workspace, so a dependency added to a library crate
# changes its lock too).
if ! cargo "+$toolchain" fetch --locked --manifest-path fuzz/Cargo.toml; then
    echo "fuzz/Cargo.lock does not match the crates' manifests: run" \
        "\`cd fuzz && cargo +$toolchain update -w\` and commit fuzz/Cargo.lock" >&2
    exit 1
fi

# Both the build and every run take the same flags: different ones would
# make `cargo fuzz run` rebuild the target.
flags=(--fuzz-dir fuzz --sanitizer none --target-dir "$target_dir")

if [[ -n "${FUZZ_TARGETS:-}" ]]; then
    read -r -a targets <<<"$FUZZ_TARGETS"
else
    mapfile -t targets < <(cargo "+$toolchain" fuzz list --fuzz-dir fuzz)
fi
if [[ ${#targets[@]} -eq 0 ]]; then
    echo "no fuzz targets found in fuzz/" >&2
    exit 1
fi

# --- build ---------------------------------------------------------------
start=$SECONDS
if [[ -n "${FUZZ_TARGETS:-}" ]]; then
    for target in "${targets[@]}"; do
        cargo "+$toolchain" fuzz build "${flags[@]}" "$target"
    done
else
    cargo "+$toolchain" fuzz build "${flags[@]}"
fi
echo "fuzz build: $((SECONDS - start)) s"

# --- smoke runs ----------------------------------------------------------
scratch="$target_dir/smoke"
rm -rf "$scratch"
mkdir -p "$scratch"
failed=()
summary=()
for target in "${targets[@]}"; do
    mkdir -p "$scratch/corpus/$target"
    corpora=("$scratch/corpus/$target")
    for dir in "fuzz/seeds/$target" "fuzz/corpus/$target"; do
        if [[ -d "$dir" ]]; then
            corpora+=("$dir")
        fi
    done
    log="$scratch/$target.log"
    start=$SECONDS
    # -timeout: one input running 25 s is a hang (libFuzzer's default,
    # 20 minutes, would stall CI). -rss_limit_mb is libFuzzer's default,
    # written out because an allocation bomb is one of the things tested.
    marker="$scratch/$target.start"
    touch "$marker"
    status=0
    cargo "+$toolchain" fuzz run "${flags[@]}" "$target" "${corpora[@]}" -- \
        -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 \
        -print_final_stats=1 >"$log" 2>&1 || status=$?
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    summary+=("$(printf '%-28s %10s execs  %3d s  exit %d' "$target" "${execs:-?}" "$((SECONDS - start))" "$status")")
    if [[ $status -ne 0 ]]; then
        failed+=("$target")
        echo "---- $target failed (exit $status); the end of its log:" >&2
        tail -n 80 "$log" >&2
        find "fuzz/artifacts/$target" -type f -newer "$marker" 2>/dev/null | while read -r artifact; do
            echo "---- $artifact (base64, at most 64 KiB):" >&2
            head -c 65536 "$artifact" | base64 >&2
        done
    fi
done

printf '%s\n' "${summary[@]}"
if [[ ${#failed[@]} -ne 0 ]]; then
    echo "fuzz smoke: ${#failed[@]} target(s) failed: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz smoke: ${#targets[@]} targets, ${seconds} s each, no crash"
