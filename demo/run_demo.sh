#!/usr/bin/env bash
# openrm's main job on bundled data, end to end on CPU (make demo runs this):
#   1. generate the demo preference pairs (the same bytes as data/demo-prefs-*)
#   2. train a sentencepiece tokenizer on the training pairs
#   3. train a small reward model from scratch (Bradley-Terry)
#   4. evaluate it on the held-out pairs (accuracy, calibration, length bias)
#   5. score the held-out pairs with openrm-score, and a few examples in-process
# Usage: demo/run_demo.sh BUILD_DIR   (after the build; writes BUILD_DIR/demo-run)
set -euo pipefail

build="${1:?usage: demo/run_demo.sh BUILD_DIR}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
work="$build/demo-run"
rm -rf "$work"
mkdir -p "$work"
start=$SECONDS

step() { printf '\n==> [%3ds] %s\n' "$((SECONDS - start))" "$*"; }

step "generating the demo preference pairs"
"$build/demo/make_demo_data" --output-dir "$work"
for split in train test; do
  cmp -s "$work/demo-prefs-$split.jsonl.gz" "$root/data/demo-prefs-$split.jsonl.gz" ||
    { echo "run_demo.sh: error: generated demo-prefs-$split differs from data/" >&2; exit 1; }
done
echo "identical to the bundled data/demo-prefs-train.jsonl.gz and data/demo-prefs-test.jsonl.gz"

step "training a tokenizer"
"$build/tools/openrm-tokenizer" train --input "$work/demo-prefs-train.jsonl.gz" \
  --output "$work/tokenizer" --vocab-size 1500

step "training a reward model from scratch"
"$build/tools/openrm-train" --data "$work/demo-prefs-train.jsonl.gz" \
  --eval-data "$work/demo-prefs-test.jsonl.gz" --output "$work/reward-model" \
  --init-config "$here/tiny-rm-config.json" --tokenizer "$work/tokenizer" --chat-format hh \
  --max-length 256 --max-tokens 4096 --lr 1e-3 --warmup-steps 10 --epochs 2 \
  --eval-every 30 --log-every 10 --log-level info | grep -v '^ \|^{\|^}'

step "evaluating on the held-out pairs"
"$build/tools/openrm-eval" --model "$work/reward-model" --data "$work/demo-prefs-test.jsonl.gz" \
  --json "$work/eval.json" --report "$work/eval-report.html"

step "scoring the held-out pairs with openrm-score (the first 3 of $work/scores.jsonl)"
"$build/tools/openrm-score" --model "$work/reward-model" --input "$work/demo-prefs-test.jsonl.gz" \
  --output "$work/scores.jsonl"
head -n 3 "$work/scores.jsonl"

step "scoring examples in-process (demo/score_examples.cpp)"
"$build/demo/score_examples" "$work/reward-model"

accuracy="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["accuracy"])' "$work/eval.json" 2>/dev/null ||
            grep -o '"accuracy": *[0-9.]*' "$work/eval.json" | head -1 | grep -o '[0-9.]*$')"
step "done: held-out accuracy $accuracy (target >= 0.9); the model is in $work/reward-model, its report in $work/eval-report.html"
awk -v a="$accuracy" 'BEGIN { exit !(a >= 0.9) }' ||
  { echo "run_demo.sh: error: held-out accuracy $accuracy is below 0.9" >&2; exit 1; }
