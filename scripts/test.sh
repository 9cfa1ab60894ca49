#!/usr/bin/env bash
# Runs every check and test of the workspace, installing what they need first.
#
#   bash scripts/test.sh
#
# Installs, when missing (tools into $OSSA_TOOLS, reused): tansu (Kafka
# broker for the Kafka tests), and: the rustup targets thumbv7em-none-eabihf,
# wasm32-unknown-unknown and i686-unknown-linux-gnu, clippy and rustfmt, qemu-system-arm and
# binutils-arm-none-eabi (Debian packages, for the firmware example), the
# CloudEvents Python SDK (a virtualenv in $OSSA_TOOLS; python3 and
# python3-venv from Debian when missing) and JavaScript SDK (an npm prefix
# in $OSSA_TOOLS; nodejs and npm from Debian when missing), kcat
# (Debian package, a second Kafka client for the Kafka tests), cmake and
# libcurl4-openssl-dev (Debian packages, librdkafka's CMake build for the
# cloudevents-sdk Kafka interop test), gcc-multilib (links the core's tests
# for i686), g++ and make (librdkafka's build, both
# ways, and libFuzzer's C++ sources), procps (the `kill` program the signal
# tests run), a nightly
# toolchain (for cargo-fuzz), and cargo-fuzz itself into $OSSA_TOOLS (outside
# the clone, reused when present). Then: fmt, clippy, rustdoc (also as
# docs.rs runs it), ossa-events without default features, the published
# crates on their declared rust-version, `cargo package` of
# the published crates, the no_std builds, the code size of the firmware and
# WASM examples against their budgets (scripts/size.sh), every test (unit, integration, doc; the firmware example runs under
# QEMU, the WASM example under wasmi), the core's tests again on a 32-bit
# target (i686), and each fuzz target for $FUZZ_SECONDS.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
TOOLS=${OSSA_TOOLS:-$HOME/.cache/ossa-events-tools}
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
# One run builds ~110 test targets once; incremental caches for each would add
# gigabytes to the target directory and save nothing on the next clean run.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
mkdir -p "$TOOLS"

step() { printf '\n==> %s\n' "$*"; }

# --- install what the tests need -------------------------------------------
step "toolchains and targets"
installed_targets=$(rustup target list --installed)
# i686: the core's tests also run with a 32-bit `usize`, as on the devices
# (thumbv7em) and in WASM, where offsets and lengths overflow sooner.
for t in thumbv7em-none-eabihf wasm32-unknown-unknown i686-unknown-linux-gnu; do
  grep -qx "$t" <<<"$installed_targets" || rustup target add "$t"
done
components=$(rustup component list --installed)
for c in clippy rustfmt; do
  grep -q "^$c" <<<"$components" || rustup component add "$c"
done
# The toolchain of the declared `rust-version` (with the firmware target): the
# published crates are checked on it, so the claim in Cargo.toml holds.
MSRV=$(sed -n 's/^rust-version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
if ! rustup run "$MSRV" rustc --version >/dev/null 2>&1; then
  rustup toolchain install "$MSRV" --profile minimal
fi
rustup target list --toolchain "$MSRV" --installed | grep -qx thumbv7em-none-eabihf \
  || rustup target add --toolchain "$MSRV" thumbv7em-none-eabihf
# QEMU (Cortex-M4, mps2-an386) and binutils for the firmware example test;
# kcat, a second Kafka client that reads back what the Kafka tests wrote.
# cmake and libcurl's headers: with the tests crate's `kafka` feature,
# cloudevents-sdk's rdkafka binding turns on rdkafka-sys' `cmake-build`, and
# librdkafka 2.12's CMake build includes <curl/curl.h> even without curl
# (`#ifdef` on a `#cmakedefine01` macro; nothing of curl is linked).
# g++ and make: librdkafka's `configure` requires a C++ compiler (`mkl_require
# cxx`) and its CMake project enables C++ too, both build with make, and
# cargo-fuzz's libfuzzer-sys compiles libFuzzer's C++ sources; Rust itself
# needs only a C linker. procps: the `kill` program (not the shell builtin)
# the signal tests run. gcc-multilib: the 32-bit C runtime the i686 test
# binaries link against.
if ! echo 'int main(void){return 0;}' | cc -m32 -x c - -o /dev/null >/dev/null 2>&1 \
  || ! command -v qemu-system-arm >/dev/null 2>&1 || ! command -v arm-none-eabi-size >/dev/null 2>&1 \
  || ! command -v kcat >/dev/null 2>&1 || ! command -v cmake >/dev/null 2>&1 \
  || ! command -v curl-config >/dev/null 2>&1 || ! command -v c++ >/dev/null 2>&1 \
  || ! command -v make >/dev/null 2>&1 || ! type -P kill >/dev/null 2>&1; then
  step "installing qemu-system-arm, binutils-arm-none-eabi, kcat, cmake, libcurl4-openssl-dev, gcc-multilib, g++, make and procps"
  SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y qemu-system-arm binutils-arm-none-eabi kcat \
    cmake libcurl4-openssl-dev gcc-multilib g++ make procps
fi
# cargo-fuzz wants nightly (for AddressSanitizer). Where no nightly can be
# installed, fuzz on stable without a sanitizer (RUSTC_BOOTSTRAP), which still
# catches panics, overflows and hangs.
FUZZ_TOOLCHAIN=nightly
FUZZ_FLAGS=()
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  if ! rustup toolchain install nightly --profile minimal; then
    echo "nightly unavailable: fuzzing on stable without a sanitizer"
    FUZZ_TOOLCHAIN=stable
    FUZZ_FLAGS=(--sanitizer none)
  fi
fi
if [ ! -x "$TOOLS/bin/cargo-fuzz" ]; then
  step "building cargo-fuzz into $TOOLS (once)"
  cargo install --locked --root "$TOOLS" cargo-fuzz
fi
# tansu: the Kafka-compatible broker the Kafka tests start (in-memory storage).
if [ ! -x "$TOOLS/bin/tansu" ]; then
  step "building tansu into $TOOLS (once, ~10 min)"
  cargo install --locked --root "$TOOLS" tansu --no-default-features --features dynostore
fi
# The CloudEvents JavaScript SDK (npm `cloudevents`, pinned) for
# tests/tests/javascript_sdk_interop.rs, into its own npm prefix under
# $TOOLS (reused); node and npm from Debian when missing.
JS_CLOUDEVENTS_VERSION=10.0.0
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  step "installing nodejs and npm (the JavaScript SDK interop test)"
  SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y nodejs npm
fi
if ! grep -qs "\"version\": \"$JS_CLOUDEVENTS_VERSION\"" "$TOOLS/js-cloudevents/node_modules/cloudevents/package.json"; then
  step "installing the CloudEvents JavaScript SDK $JS_CLOUDEVENTS_VERSION into $TOOLS/js-cloudevents"
  npm install --prefix "$TOOLS/js-cloudevents" --no-audit --no-fund --save-exact "cloudevents@$JS_CLOUDEVENTS_VERSION"
fi
export OSSA_JS_CLOUDEVENTS="$TOOLS/js-cloudevents"
# The CloudEvents Python SDK (PyPI `cloudevents`, pinned) in a virtualenv,
# for `tests/tests/python_sdk_interop.rs`; python3 and its venv module from
# Debian when missing.
PY_CLOUDEVENTS_VERSION=2.2.0
if [ "$("$TOOLS/py-cloudevents/bin/python3" -c 'import cloudevents; print(cloudevents.__version__)' 2>/dev/null)" != "$PY_CLOUDEVENTS_VERSION" ]; then
  step "installing the CloudEvents Python SDK $PY_CLOUDEVENTS_VERSION into $TOOLS/py-cloudevents"
  if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y python3 python3-venv
  fi
  rm -rf "$TOOLS/py-cloudevents"
  python3 -m venv "$TOOLS/py-cloudevents"
  "$TOOLS/py-cloudevents/bin/python3" -m pip install --quiet --disable-pip-version-check \
    "cloudevents==$PY_CLOUDEVENTS_VERSION"
fi
export OSSA_PY_CLOUDEVENTS="$TOOLS/py-cloudevents"
export OSSA_TANSU="$TOOLS/bin/tansu"
export PATH="$TOOLS/bin:$PATH"

# --- static checks ----------------------------------------------------------
step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "cargo doc -D warnings"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features

# docs.rs builds the published crates on nightly with `--cfg docsrs` and every
# feature (package.metadata.docs.rs); so does this (stable with
# RUSTC_BOOTSTRAP where no nightly could be installed), in its own target dir.
step "rustdoc as docs.rs runs it (--cfg docsrs, ${FUZZ_TOOLCHAIN})"
RUSTC_BOOTSTRAP=1 RUSTDOCFLAGS="--cfg docsrs -D warnings" cargo "+$FUZZ_TOOLCHAIN" doc \
  --no-deps --all-features -p ossa-events-core -p ossa-events --target-dir "$ROOT/target/docsrs"

step "ossa-events-core without traceparent; ossa-events without default features (no HTTP client, no server), with only http-types, only the receiver"
cargo clippy -p ossa-events-core --no-default-features --features std,async,flash-spool --all-targets -- -D warnings
cargo clippy -p ossa-events --no-default-features -- -D warnings
cargo clippy -p ossa-events --no-default-features --features http-types -- -D warnings
cargo clippy -p ossa-events --no-default-features --features receiver -- -D warnings
cargo clippy -p ossa-events --no-default-features --features receiver-tls -- -D warnings
cargo clippy -p ossa-events --no-default-features --features otlp -- -D warnings

step "the published crates on their rust-version ($MSRV), every feature; the core for the firmware target"
cargo "+$MSRV" check -p ossa-events-core -p ossa-events --all-features --target-dir "$ROOT/target/msrv"
cargo "+$MSRV" check -p ossa-events-core --target thumbv7em-none-eabihf --target-dir "$ROOT/target/msrv"
cargo "+$MSRV" check -p ossa-events-core --features flash-spool --target thumbv7em-none-eabihf --target-dir "$ROOT/target/msrv"

step "cargo package: the published crates build from what they ship"
# cargo verifies ossa-events against the ossa-events-core just packaged, via a
# temporary registry; it extracts that crate into its registry cache by name
# and version only, so a copy extracted by an earlier run (older sources,
# same 0.1.0) would be used instead. Drop such copies (never crates.io's).
for d in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/ossa-events-core-* \
         "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/ossa-events-[0-9]*; do
  case "$d" in */index.crates.io-*) ;; *) [ -e "$d" ] && rm -rf "$d" ;; esac
done
# cargo also takes a registry crate to be immutable: a build of an older
# ossa-events-core 0.1.0 left in the target directory by an earlier run (a
# reused CI cache) would be linked instead of the one just packaged, and a
# core API the std crate now uses would be "not found". Verify in a target
# directory of its own and drop our two crates' artifacts there first
# (their dependencies stay cached).
PKG_TARGET="${CARGO_TARGET_DIR:-$ROOT/target}/package-verify"
if [ -d "$PKG_TARGET" ]; then
  find "$PKG_TARGET" \( -name 'ossa-events*' -o -name 'ossa_events*' -o -name 'libossa_events*' \) -prune -exec rm -rf {} +
fi
# The packaged crates carry no [profile] of the workspace: their verify build
# would link full debug info (see [profile.dev] in Cargo.toml).
CARGO_PROFILE_DEV_DEBUG=false \
  cargo package --workspace --exclude ossa-events-tests --allow-dirty --target-dir "$PKG_TARGET" 2>&1 \
  | grep -v "^warning: ignoring test .* is not included in the published package$"
[ "${PIPESTATUS[0]}" -eq 0 ] || exit 1

# --- no_std builds ----------------------------------------------------------
step "core for thumbv7em-none-eabihf and wasm32-unknown-unknown (default features, and with the flash spool)"
cargo build -p ossa-events-core --target thumbv7em-none-eabihf
cargo build -p ossa-events-core --target wasm32-unknown-unknown
cargo build -p ossa-events-core --features flash-spool --target thumbv7em-none-eabihf
cargo build -p ossa-events-core --features flash-spool --target wasm32-unknown-unknown

step "examples outside the workspace (firmware, wasm): fmt and clippy"
for ex in examples/firmware examples/wasm-agent; do
  (cd "$ex" && cargo fmt --check && cargo clippy --release -- -D warnings)
done
(cd examples/firmware && cargo clippy --release --features spool --target-dir target/spool -- -D warnings)
(cd fuzz && cargo fmt --check)

step "code size: firmware .text and the WASM module against their budgets (fails above +5 %)"
bash scripts/size.sh

# --- tests --------------------------------------------------------------------
step "cargo test (unit, integration, doc tests)"
log=$(mktemp)
cargo test --workspace --all-features 2>&1 | tee "$log"
test_status=${PIPESTATUS[0]}
[ "$test_status" -eq 0 ] || exit "$test_status"
# The core as a firmware builds it, without `traceparent` (a default feature).
cargo test -p ossa-events-core --no-default-features --features std,async,flash-spool 2>&1 | tee -a "$log"
test_status=${PIPESTATUS[0]}
[ "$test_status" -eq 0 ] || exit "$test_status"
step "the core's tests on a 32-bit target (i686-unknown-linux-gnu)"
cargo test -p ossa-events-core --all-features --target i686-unknown-linux-gnu 2>&1 | tee -a "$log"
test_status=${PIPESTATUS[0]}
[ "$test_status" -eq 0 ] || exit "$test_status"

# --- fuzzing ------------------------------------------------------------------
step "fuzz each target for ${FUZZ_SECONDS}s"
cd "$ROOT/fuzz"
# cargo-fuzz passes -Z flags; stable accepts them only with RUSTC_BOOTSTRAP.
if [ "$FUZZ_TOOLCHAIN" = stable ]; then export RUSTC_BOOTSTRAP=1; fi
for target in $(cargo "+$FUZZ_TOOLCHAIN" fuzz list); do
  mkdir -p "corpus/$target"
  cargo "+$FUZZ_TOOLCHAIN" fuzz run "${FUZZ_FLAGS[@]}" "$target" "corpus/$target" -- \
    -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -print_final_stats=1 2>&1 | tail -n 3
  test "${PIPESTATUS[0]}" -eq 0
done
cd "$ROOT"

passed=$(grep -Eo 'test result: ok\. [0-9]+ passed' "$log" | awk '{s+=$4} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' "$log" | awk '{s+=$1} END {print s+0}')
rm -f "$log"
echo
echo "all checks passed"
echo "$passed passed, $failed failed"
