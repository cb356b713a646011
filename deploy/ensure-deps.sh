#!/usr/bin/env bash
# Everything `make run` and `make test` need on a fresh Debian machine: Redis,
# PostgreSQL, a C linker for cargo, and a check of the Rust toolchain.
set -euo pipefail
# shellcheck source=deploy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

"$deploy_dir/ensure-redis.sh"
"$deploy_dir/ensure-postgres.sh"

# the toolchain comes with the machine (rustup); installing it is not this script's job
if ! command -v cargo >/dev/null; then
    if [[ -x $HOME/.cargo/bin/cargo ]]; then
        die "cargo is installed in $HOME/.cargo/bin but not on PATH: run '. \"$HOME/.cargo/env\"' and try again"
    fi
    die "cargo not found: install the Rust toolchain (https://rustup.rs) and try again"
fi

# the workspace's minimum Rust version, from the root Cargo.toml
wanted=$(sed -n 's/^rust-version *= *"\([0-9.]*\)".*/\1/p' "$repo_root/Cargo.toml" | sed -n 1p)
have=$(rustc --version | awk '{print $2}')
if [[ -n $wanted ]] && [[ $(printf '%s\n%s\n' "$wanted" "${have%%-*}" | sort -V | sed -n 1p) != "$wanted" ]]; then
    die "rustc $have is older than the workspace's rust-version $wanted: run 'rustup update' and try again"
fi
say "ok: $(cargo --version)"

# rustc links through the system C compiler
if ! command -v cc >/dev/null; then
    apt_install gcc libc6-dev
fi

# protoc is not a system dependency: libs/proto builds with a vendored copy
if grep -q '^protoc-bin-vendored' "$repo_root/libs/proto/Cargo.toml"; then
    say "ok: protoc not needed (libs/proto uses a vendored protoc)"
else
    say "warning: libs/proto no longer vendors protoc; the build needs one on PATH"
fi
