#!/usr/bin/env bash
# The test suite, exactly as CI runs it, from a fresh clone:
#   1. builds bgtask and installs the real analyzers the tests run (bandit,
#      pylint, radon, pytest, pip-audit, unittest-xml-reporting from PyPI;
#      eslint from npm) into target/test-cache with `bgtask tools install`;
#   2. checks formatting and clippy (pedantic, warnings are errors);
#   3. runs the unit and integration tests (the schema drift check is one).
# Needs: the Rust toolchain (with rustfmt and clippy), python3 with venv,
# node with npm, git. Set BGTASK_TEST_CACHE to reuse another tool cache.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in cargo python3 npm git; do
  command -v "$tool" >/dev/null || { echo "scripts/test.sh: $tool is required" >&2; exit 1; }
done

export BGTASK_TEST_CACHE="${BGTASK_TEST_CACHE:-$PWD/target/test-cache}"
echo "==> building"
cargo build --locked --quiet
echo "==> installing the analyzers the tests use into $BGTASK_TEST_CACHE"
BGTASK_CACHE_DIR="$BGTASK_TEST_CACHE" target/debug/bgtask --quiet tools install --all
echo "==> cargo fmt --check"
cargo fmt --check
echo "==> cargo clippy"
cargo clippy --locked --all-targets --quiet -- -D warnings
echo "==> cargo test"
cargo test --locked
