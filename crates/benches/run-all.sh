#!/usr/bin/env bash
# The whole performance suite of cclaunch in one command (about 5 minutes on
# the 2-core machine once built), ending with every ratio and its verdict:
#
#   crates/benches/run-all.sh            # everything
#   SKIP_BUILD=1 crates/benches/run-all.sh
#
# Every bench measures its own baseline in the same run and prints
# "summary: ... ratio X (target Y): met|not met"; the lines are collected in
# target/bench-summary.txt and printed again at the end. Nothing here fails
# on a missed target: a bench that cannot run, or a scale run whose launches
# fail, makes the script exit 1 after the summary.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

summary="$root/target/bench-summary.txt"
mkdir -p "$root/target"
: >"$summary"
export CCLAUNCH_BENCH_SUMMARY="$summary"
export CRITERION_HOME="$root/target/criterion"
export CARGO_TERM_COLOR=never

note() { echo "summary: $*" | tee -a "$summary"; }

note "machine: $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB, $(uname -sr); date $(date -u +%Y-%m-%dT%H:%MZ)"
note "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"

if [ -z "${SKIP_BUILD:-}" ]; then
  echo "== build (not part of the measured time)"
  cargo bench --locked -p launch-fsm --bench step --no-run
  cargo bench --locked -p cclaunch-benches --no-run
  cargo build --locked --release -p cclaunch-benches --bin scale
  # The static kv sample the process and docker benches launch, built the
  # way chaincode_samples::static_sample builds it (it reuses this build).
  RUSTFLAGS='-C target-feature=+crt-static' cargo build --locked --release \
    --target x86_64-unknown-linux-gnu -p chaincode-samples --bin kv --bin faulty \
    --config profile.release.strip=true \
    --target-dir "$root/target/static-samples"
fi
started=$(date +%s)

echo "== bench 1: the launch state machine's step (crates/launch-fsm/benches/step.rs)"
cargo bench --locked -p launch-fsm --bench step
median_ns() {
  sed -n 's/.*"median":{"confidence_interval":{[^}]*},"point_estimate":\([0-9.eE+-]*\).*/\1/p' \
    "$CRITERION_HOME/happy_path_cycle/$1/new/estimates.json"
}
fsm=$(median_ns launch_fsm)
base=$(median_ns match_baseline)
awk -v fsm="$fsm" -v base="$base" 'BEGIN {
  per = fsm / 7; ratio = fsm / base
  printf "summary: bench 1 launch-fsm happy-path cycle: %.1f ns per input (target < 100 ns): %s\n", per, (per < 100 ? "met" : "not met")
  printf "summary: bench 1 launch-fsm cycle %.1f ns vs match baseline %.1f ns: ratio %.2f (target ≤ 1.5): %s\n", fsm, base, ratio, (ratio <= 1.5 ? "met" : "not met")
}' | tee -a "$summary"

status=0
echo "== benches 2-5: launch in-process / process / docker, execute throughput"
cargo bench --locked -p cclaunch-benches || { status=1; note "benches 2-5: a bench failed (see above)"; }

echo "== bench 6: scale (10,000 concurrent launches over 1,000 chaincodes), then the growth series"
scale="$root/target/release/scale"
[ -x "$scale" ] || cargo build --locked --release -p cclaunch-benches --bin scale
for chaincodes in 1000 100 5000; do
  "$scale" --chaincodes "$chaincodes" --calls 10000 ||
    { status=1; note "bench 6 inproc $chaincodes chaincodes: launches failed (see above)"; }
done
# Informative: the same over real gRPC, one TCP connection per chaincode.
"$scale" --chaincodes 1000 --calls 10000 --executor grpc ||
  note "bench 6 grpc 1000 chaincodes: some launches failed (see above)"

note "load at end: $(cut -d' ' -f1-3 /proc/loadavg); suite took $(($(date +%s) - started)) s (build excluded)"
echo
echo "================ summary ================"
sed 's/^summary: //' "$summary"
exit "$status"
