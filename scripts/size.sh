#!/usr/bin/env bash
# Code size of the no_std examples against their committed budgets.
#
#   bash scripts/size.sh            # build, print the tables, fail above budget + 5 %
#   bash scripts/size.sh --update   # build and write the measured sizes as the new budgets
#
# Firmware (examples/firmware, thumbv7em-none-eabihf, release profile): the
# flash image, i.e. `.text` as `arm-none-eabi-size` reports it (vector table,
# code and read-only data), plain and with `--features spool`. Budgets in
# examples/firmware/size-budget.txt. The per-module table groups the ELF's
# symbols (`arm-none-eabi-nm -S`) by the module they come from; read-only
# data that has no symbol of its own (string literals, tables) is
# one row. Each build must link no panic path (no `core::panicking`
# symbol).
#
# WASM (examples/wasm-agent, wasm32-unknown-unknown, release profile): the
# bytes of the .wasm module. Budget in examples/wasm-agent/size-budget.txt.
#
# Needs arm-none-eabi-size/-nm (binutils-arm-none-eabi) and the two rustup
# targets; scripts/test.sh installs them.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
UPDATE=0
[ "${1:-}" = "--update" ] && UPDATE=1
# Allowed growth over a budget, in percent.
SLACK=5
failed=0

# Builds run with none of an outer build's settings (they would replace the
# firmware's `-Tlink.x` or move its target dir).
clean_env() {
  env -u CARGO_TARGET_DIR -u CARGO_BUILD_TARGET_DIR -u CARGO_BUILD_TARGET \
    -u RUSTFLAGS -u CARGO_ENCODED_RUSTFLAGS -u CARGO_BUILD_RUSTFLAGS "$@"
}

# budget FILE NAME: the number on the line `NAME <bytes>` of FILE.
budget() {
  awk -v n="$2" '$1 == n { print $2 }' "$1"
}

# check WHAT FILE NAME BYTES: compares, or records with --update.
check() {
  local what=$1 file=$2 name=$3 bytes=$4 limit
  if [ "$UPDATE" -eq 1 ]; then
    if grep -q "^$name " "$file"; then
      sed -i "s/^$name .*/$name $bytes/" "$file"
    else
      echo "$name $bytes" >>"$file"
    fi
    printf '%s: %d bytes (budget updated)\n' "$what" "$bytes"
    return
  fi
  local b
  b=$(budget "$file" "$name")
  if [ -z "$b" ]; then
    printf '%s: %d bytes, but %s has no `%s` line\n' "$what" "$bytes" "$file" "$name"
    failed=1
    return
  fi
  limit=$((b + b * SLACK / 100))
  awk -v w="$what" -v n="$bytes" -v b="$b" -v l="$limit" \
    'BEGIN { printf "%s: %d bytes, budget %d (%+d, %+.1f %%), limit %d\n", w, n, b, n - b, (n - b) * 100 / b, l }'
  if [ "$bytes" -gt "$limit" ]; then
    printf '  FAIL: more than %d %% over the budget in %s; cut it, or raise the budget with `bash scripts/size.sh --update` and say why in the commit\n' "$SLACK" "$file"
    failed=1
  fi
}

# modules ELF: bytes per module of the flash image, largest first.
modules() {
  local elf=$1 flash
  flash=$(arm-none-eabi-size "$elf" | awk 'NR == 2 { print $1 }')
  arm-none-eabi-nm --size-sort -S -C -t d "$elf" | awk -v flash="$flash" '
    $3 ~ /^[tTrR]$/ {
      size = $2 + 0
      name = $0; sub(/^[^ ]+ [^ ]+ [^ ]+ /, "", name)
      m = "core: str, slices, iterators (and panics, fmt: none linked today)"
      if (name ~ /ossa_events_core::emitter|ossa_events_core::batch|ossa_events_core::io|ossa_events_core::spool/) m = "ossa-events-core: emitter, batch, spool (emitter, batch, spool, io)"
      else if (name ~ /ossa_events_core::(format|json::escape|json::ser|ossa|num)/) m = "ossa-events-core: JSON writer, OSSA payloads (format, json::escape, json::ser, ossa, num)"
      else if (name ~ /ossa_events_core::(json::lex|swar|json::)/) m = "ossa-events-core: JSON lexer (RawJson and data checks, compacting) (json::lex, swar)"
      else if (name ~ /ossa_events_core::(event|attr|uri|error)/) m = "ossa-events-core: validation (event, attr, uri, error)"
      else if (name ~ /ossa_events_core::(trace)/) m = "ossa-events-core: trace context (trace)"
      else if (name ~ /ossa_events_core::(time)/) m = "ossa-events-core: time formatting (time)"
      else if (name ~ /ossa_events_core::(base64)/) m = "ossa-events-core: Base64 (base64)"
      else if (name ~ /ossa_events_core::(id)|uuid::/) m = "ossa-events-core: event ids (id, uuid)"
      else if (name ~ /ossa_events_core::/) m = "ossa-events-core: other"
      else if (name ~ /sequential_storage|embedded_storage/) m = "sequential-storage (flash queue)"
      else if (name ~ /ossa_firmware_example|^main$/) m = "the example (superloop, clock, ids, console)"
      else if (name ~ /cortex_m|__INTERRUPTS|__EXCEPTIONS|__RESET_VECTOR|^Reset$|Handler|HardFault|DefaultPreInit/) m = "cortex-m-rt, semihosting (vector table, reset)"
      else if (name ~ /compiler_builtins|__aeabi|^mem|^__/) m = "compiler builtins (memcpy, memset, ...)"
      else if (name ~ /^OUTLINED_FUNCTION/) m = "outlined code (shared by the rows above)"
      else if (name ~ /^\.L/) m = "read-only data, unattributed (strings, tables)"
      else if (name ~ /heapless|embedded_io/) m = "heapless, embedded-io"
      sum[m] += size; total += size
    }
    END {
      sum["read-only data, unattributed (strings, tables)"] += flash - total
      for (m in sum) if (sum[m] > 0) printf "| %s | %d |\n", m, sum[m]
    }' | sort -t '|' -k3 -nr
}

firmware() {
  local label=$1 name=$2 target_dir=$3
  shift 3
  (cd examples/firmware && clean_env cargo build --release --quiet --target-dir "$target_dir" "$@")
  local elf=$ROOT/examples/firmware/$target_dir/thumbv7em-none-eabihf/release/ossa-firmware-example
  local text
  text=$(arm-none-eabi-size "$elf" | awk 'NR == 2 { print $1 }')
  printf '\n%s (examples/firmware, .text of %s)\n\n| module | bytes |\n|---|---:|\n' "$label" "${elf#"$ROOT"/}"
  modules "$elf"
  printf '| **total .text** | **%d** |\n\n' "$text"
  check "$label" examples/firmware/size-budget.txt "$name" "$text"
  # No panic path: every bound the library checks is an error it returns, so
  # the image links no panic machinery (the example's #[panic_handler] and
  # what it formats are dropped). A symbol of core::panicking is a new
  # panic site (an index, a `%`, a `copy_from_slice`, an `unwrap`): find it
  # with `arm-none-eabi-objdump -d` and `addr2line`, and make it an error.
  local panics
  # Raw (mangled) names: legacy and v0 manglings both contain `panicking`,
  # whatever binutils can demangle.
  local syms
  syms=$(arm-none-eabi-nm "$elf")
  panics=$(grep -E 'panicking|rust_begin_unwind' <<<"$syms" || true)
  if [ -n "$panics" ]; then
    echo "FAIL $label links a panic path:"
    echo "$panics"
    failed=1
  else
    echo "$label: no panic path linked"
  fi
}

firmware "firmware" plain target
firmware "firmware --features spool" spool target/spool --features spool

(cd examples/wasm-agent && clean_env cargo build --release --quiet --target wasm32-unknown-unknown)
wasm=examples/wasm-agent/target/wasm32-unknown-unknown/release/ossa_wasm_agent_example.wasm
echo
check "wasm module ($wasm)" examples/wasm-agent/size-budget.txt module "$(wc -c <"$wasm")"

exit "$failed"
