#!/usr/bin/env bash
# Builds the example gateway of a git revision and prints the path of its binary, for load.sh and
# gateway_instructions.sh to run beside the current one. The revision is checked out in a
# temporary worktree (outside this one, whose workspace cargo would otherwise take it for a
# member) and built with a target folder kept in target/reference, so the dependencies are built
# once; as a package, or as an example in revisions before the gateway was a package. The path of
# an executable is printed as it is.
#
#   scripts/reference_gateway.sh 2292d59
set -euo pipefail
cd "$(dirname "$0")/.."

revision="$1"
if [[ -f "$revision" && -x "$revision" ]]; then
    realpath "$revision"
    exit
fi
top="$PWD"
checkout="$(mktemp -d)/checkout"
export CARGO_TARGET_DIR="$top/target/reference"
git worktree add --quiet --detach "$checkout" "$revision"
trap 'git -C "$top" worktree remove --force "$checkout"; rm -rf "$(dirname "$checkout")"' EXIT
cd "$checkout"
if [[ -f examples/gateway/Cargo.toml ]]; then
    cargo build --release -p impersonation-gateway >&2
    echo "$CARGO_TARGET_DIR/release/impersonation-gateway"
else
    cargo build --release --example gateway >&2
    echo "$CARGO_TARGET_DIR/release/examples/gateway"
fi
