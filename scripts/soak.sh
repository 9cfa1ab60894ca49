#!/usr/bin/env bash
# Runs the delivery contract's property tests over and over, each run on
# fresh random cases, until a deadline or the first failure. CI runs each
# suite once with its default number of cases; this is for the hours a
# change to the emitter, the spools or the sinks deserves.
#
#   bash scripts/soak.sh            # 30 minutes
#   bash scripts/soak.sh 7200       # 2 hours
#
# A failure stops the loop and prints the suite's output; proptest saves
# the shrunk case in the suite's `.proptest-regressions` file (commit it
# with the fix).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TOTAL=${1:-1800}
# package:test
SUITES=(
  ossa-events:every_event_ends_in_exactly_one_place
  ossa-events:delivery_contract_over_http_under_random_faults
  ossa-events:delivery_contract_with_a_spool_under_random_faults
  ossa-events:otlp_open_spans_stay_bounded_and_no_event_is_lost
  ossa-events:spool_property
  ossa-events:spool_damage_property
  ossa-events:spool_reads_what_a_killed_mapped_writer_left
  ossa-events:tracing_layer_accounts_for_every_event_it_puts_off
  ossa-events:tracing_layer_starts_and_ends_each_span_once
  ossa-events-core:what_the_reader_parses_is_what_the_emitter_counts_delivered
  ossa-events-core:flash_spool_keeps_every_event_through_outages
  ossa-events-core:flash_spool_ring
  ossa-events-core:flash_spool_counts_what_the_reader_parses_through_flash_faults
  ossa-events-core:flash_spool_counts_what_the_reader_parses_through_a_scripted_writer
  ossa-events-core:flash_spool_sets_aside_damage_found_at_run_time_in_random_runs
  ossa-events-core:flash_spool_survives_power_cuts_at_any_byte
  ossa-events-core:extension_setters_agree_with_a_model
)
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
args=()
for s in "${SUITES[@]}"; do args+=(-p "${s%%:*}" --test "${s#*:}"); done
# Build once (cargo dedups the packages), then run each suite's binary.
if ! out=$(cargo test -q --all-features --no-run "${args[@]}" 2>&1); then
  echo "$out"
  exit 1
fi
end=$(( $(date +%s) + SECONDS_TOTAL ))
round=0
log=$(mktemp)
while [ "$(date +%s)" -lt "$end" ]; do
  round=$((round + 1))
  for s in "${SUITES[@]}"; do
    if ! cargo test -q --all-features -p "${s%%:*}" --test "${s#*:}" >"$log" 2>&1; then
      cat "$log"
      echo "soak: ${s#*:} failed in round $round"
      exit 1
    fi
  done
  echo "soak: round $round passed ($(date +%T))"
done
rm -f "$log"
echo "soak: $round rounds, no failure"
