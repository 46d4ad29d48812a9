#!/usr/bin/env bash
# The test suite, exactly as CI runs it, from a fresh clone:
#   1. builds bgtask and installs the real analyzers the tests run (bandit,
#      pylint, radon, pytest, pip-audit, unittest-xml-reporting from PyPI;
#      eslint from npm) into target/test-cache with `bgtask tools install`,
#      and the real servers the notification tests start: aiosmtpd (PyPI,
#      into target/test-cache/notify-venv) and, when missing, dbus, dunst,
#      xvfb, openssl, curl (the HTTP client of the dashboard's tests),
#      chromium and neovim (the editor of the LSP test) from Debian's
#      packages (as root), and Playwright for Python
#      (PyPI, into target/test-cache/browser-venv) to drive the browser; the
#      MCP clients the MCP tests use: the official Python SDK (PyPI `mcp`,
#      into target/test-cache/mcp-venv), the MCP Inspector and the MCP
#      conformance suite (npm, into target/test-cache/mcp-node); and the
#      object stores the remote cache tests start: moto's S3 server and the
#      wsgidav WebDAV server with cheroot (PyPI, into
#      target/test-cache/stores-venv);
#   2. checks formatting and clippy (pedantic, warnings are errors);
#   3. runs the unit and integration tests (the schema drift check is one).
# Needs: the Rust toolchain (with rustfmt and clippy), python3 with venv,
# node with npm, git; apt-get and root for the desktop test programs unless
# they are installed. Set BGTASK_TEST_CACHE to reuse another tool cache, and
# BGTASK_TEST_SKIP_UNAVAILABLE=1 to skip (not fail) tests whose servers
# cannot be had.
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
echo "==> notification test servers, curl and chromium for the dashboard's tests, neovim for the LSP test"
missing=()
for pair in dbus-daemon:dbus dbus-monitor:dbus Xvfb:xvfb dunst:dunst dunstctl:dunst openssl:openssl curl:curl chromium:chromium nvim:neovim; do
  command -v "${pair%%:*}" >/dev/null || missing+=("${pair##*:}")
done
if ((${#missing[@]})); then
  packages=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "    apt-get install $packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    # shellcheck disable=SC2086 # one word per package
    apt-get install -y -qq --no-install-recommends $packages >/dev/null
  else
    echo "scripts/test.sh: the notification tests need $packages (apt-get install them as root)" >&2
  fi
fi
venv="$BGTASK_TEST_CACHE/notify-venv"
if ! "$venv/bin/python" -c 'import aiosmtpd' 2>/dev/null; then
  echo "    aiosmtpd into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check aiosmtpd==1.4.6
fi
browser="$BGTASK_TEST_CACHE/browser-venv"
if ! "$browser/bin/python" -c 'import playwright' 2>/dev/null; then
  echo "    playwright (the dashboard's browser tests drive Debian's chromium with it) into $browser"
  python3 -m venv "$browser"
  "$browser/bin/pip" install --quiet --disable-pip-version-check playwright==1.65.3
fi
mcp="$BGTASK_TEST_CACHE/mcp-venv"
if ! "$mcp/bin/python" -c 'import mcp' 2>/dev/null; then
  echo "    the MCP Python SDK (its client drives \`bgtask mcp\` in the tests) into $mcp"
  python3 -m venv "$mcp"
  "$mcp/bin/pip" install --quiet --disable-pip-version-check mcp==2.3.0
fi
mcp_node="$BGTASK_TEST_CACHE/mcp-node"
if [ ! -x "$mcp_node/node_modules/.bin/mcp-inspector" ] || [ ! -x "$mcp_node/node_modules/.bin/conformance" ] \
  || [ ! -x "$mcp_node/node_modules/node/bin/node" ]; then
  # The conformance suite needs Node 22 (npm's `node` package brings it).
  echo "    the MCP Inspector, the MCP conformance suite and Node 22 (npm) into $mcp_node"
  mkdir -p "$mcp_node"
  npm install --silent --no-audit --no-fund --prefix "$mcp_node" \
    @modelcontextprotocol/inspector@2.12.0 @modelcontextprotocol/conformance@0.1.16 node@22.23.3 >/dev/null
fi
stores="$BGTASK_TEST_CACHE/stores-venv"
if [ ! -x "$stores/bin/moto_server" ] || [ ! -x "$stores/bin/wsgidav" ]; then
  echo "    moto's S3 server and wsgidav (the remote cache tests' object stores) into $stores"
  python3 -m venv "$stores"
  "$stores/bin/pip" install --quiet --disable-pip-version-check 'moto[server]==5.2.6' wsgidav==4.4.0 cheroot==11.1.2
fi
echo "==> cargo fmt --check"
cargo fmt --check
echo "==> cargo clippy"
cargo clippy --locked --all-targets --quiet -- -D warnings
echo "==> cargo test"
cargo test --locked
