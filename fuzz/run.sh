#!/usr/bin/env bash
# Builds the fuzzers (standalone, no LibTorch needed) and runs them all at
# once, one process each, for the given number of seconds (default 60).
#
#   fuzz/run.sh [seconds] [target ...]
#
# With targets named (e.g. fuzz_preferences), only those run.
#
# Seeds come from fuzz/corpus/<target>/ (checked in); inputs the fuzzer finds
# interesting accumulate in fuzz/corpus-run/<target>/, and crashes, logs and
# reproducers go to fuzz/artifacts/ (both ignored by git). Exits non-zero if
# any fuzzer found a crash. Environment: BUILD_DIR (default build-fuzz),
# CXX (default clang++).
set -euo pipefail

seconds="${1:-60}"
shift || true
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  targets=(fuzz_safetensors_header fuzz_config fuzz_preferences)
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
build="${BUILD_DIR:-$root/build-fuzz}"
cxx="${CXX:-clang++}"

generator=()
if command -v ninja >/dev/null; then generator=(-G Ninja); fi
cmake -S "$here" -B "$build" "${generator[@]}" -DCMAKE_CXX_COMPILER="$cxx" >/dev/null
cmake --build "$build" -j2 --target "${targets[@]}"

mkdir -p "$here/artifacts"
pids=()
for target in "${targets[@]}"; do
  corpus="$here/corpus-run/$target"
  mkdir -p "$corpus"
  dict="$here/${target#fuzz_}.dict"
  log="$here/artifacts/$target.log"
  # fuzz_preferences reads each input a dozen times, and one ranked record may
  # expand to 523,776 pairs by design (1024 responses): about 10 s under ASan.
  timeout=10
  if [ "$target" = fuzz_preferences ]; then timeout=30; fi
  echo "running $target for ${seconds}s (log: $log)"
  "$build/$target" "$corpus" "$here/corpus/$target" \
    -dict="$dict" -max_total_time="$seconds" -max_len=8192 -timeout="$timeout" -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$here/artifacts/$target-" >"$log" 2>&1 &
  pids+=("$!")
done

status=0
for i in "${!pids[@]}"; do
  if ! wait "${pids[$i]}"; then status=1; fi
done
for target in "${targets[@]}"; do
  log="$here/artifacts/$target.log"
  echo "== $target"
  grep -E "^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)|^Done" "$log" || true
  echo "corpus: $(ls "$here/corpus-run/$target" | wc -l) files"
  if grep -qE "ERROR: (libFuzzer|AddressSanitizer|UndefinedBehaviorSanitizer)|runtime error" "$log"; then
    echo "FOUND A CRASH: see $log"
    status=1
  fi
done
exit "$status"
