#!/usr/bin/env bash
# Trains a small reward model from random weights on real preference data and
# evaluates it on held-out pairs (docs/training.md, "Real data: Anthropic HH"):
#   1. splits ../shared/data/hh-rlhf-harmless-base-test-1800.jsonl.gz into a
#      training file (the first 1,500 records) and a held-out file (the last 300)
#   2. writes the config of a small random-init Llama reward model (vocab 32000)
#   3. trains it with openrm-train (Llama-2 tokenizer, hh chat format,
#      max_length 512; the real file is read as it comes, no record skipped)
#   4. evaluates it on the held-out file with openrm-eval
#
# Usage: scripts/train-hh.sh [BUILD_DIR [WORK_DIR]]
#   BUILD_DIR  the CMake build folder with tools/openrm-train and tools/openrm-eval (default: build)
#   WORK_DIR   where the splits, config, model and logs go (default: BUILD_DIR/hh; replaced)
# Environment (defaults in brackets):
#   HH_DATA_DIR [../shared/data, beside the repository]  HH_HIDDEN [128]  HH_LAYERS [2]
#   HH_HEADS [HIDDEN/64]  HH_EPOCHS [2]  HH_LR [1e-3]  HH_WARMUP [20]  HH_MAX_TOKENS [4096]
#   HH_MAX_LENGTH [512]  HH_SEED [0]  HH_THREADS [0 = all]  HH_MAX_STEPS [0 = from the epochs; for a quick try]
# Nothing from the data folder is copied into the repository: the splits are
# written under WORK_DIR only.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
build="${1:-build}"
work="${2:-$build/hh}"
data_dir="${HH_DATA_DIR:-$root/../shared/data}"
source_file="$data_dir/hh-rlhf-harmless-base-test-1800.jsonl.gz"
tokenizer="$data_dir/llama2-tokenizer.model"

hidden="${HH_HIDDEN:-128}"
layers="${HH_LAYERS:-2}"
heads="${HH_HEADS:-$(( hidden / 64 > 0 ? hidden / 64 : 1 ))}"
intermediate=$(( hidden * 11 / 4 ))
epochs="${HH_EPOCHS:-2}"
lr="${HH_LR:-1e-3}"
warmup="${HH_WARMUP:-20}"
max_tokens="${HH_MAX_TOKENS:-4096}"
max_length="${HH_MAX_LENGTH:-512}"
seed="${HH_SEED:-0}"
threads="${HH_THREADS:-0}"
max_steps="${HH_MAX_STEPS:-0}"

die() { echo "train-hh.sh: error: $*" >&2; exit 1; }

if [[ ! -d "$data_dir" ]]; then
  die "$data_dir does not exist: this script needs the shared data folder beside the repository
(hh-rlhf-harmless-base-test-1800.jsonl.gz and llama2-tokenizer.model); set HH_DATA_DIR to point elsewhere"
fi
for f in "$source_file" "$tokenizer"; do
  [[ -r "$f" ]] || die "$f is missing or unreadable (needed from $data_dir)"
done
for tool in openrm-train openrm-eval; do
  [[ -x "$build/tools/$tool" ]] ||
    die "$build/tools/$tool not found: build first (make build, or cmake --build $build --target $tool)"
done

start=$SECONDS
step() { printf '\n==> [%3ds] %s\n' "$((SECONDS - start))" "$*"; }

rm -rf "$work"
mkdir -p "$work"

step "splitting $(basename "$source_file") into 1500 training and 300 held-out records"
# Decompressed once into the work folder (head would cut a pipe from gzip
# short, which pipefail reports as a failure).
gzip -dc "$source_file" > "$work/all.jsonl"
records="$(wc -l < "$work/all.jsonl")"
[[ "$records" -eq 1800 ]] || die "$source_file has $records lines, expected 1800 (one record per line)"
head -n 1500 "$work/all.jsonl" | gzip -n > "$work/train.jsonl.gz"
tail -n 300 "$work/all.jsonl" | gzip -n > "$work/heldout.jsonl.gz"
rm -f "$work/all.jsonl"
echo "$work/train.jsonl.gz: $(gzip -dc "$work/train.jsonl.gz" | wc -l) records"
echo "$work/heldout.jsonl.gz: $(gzip -dc "$work/heldout.jsonl.gz" | wc -l) records"

# No pad_token_id: the Llama-2 tokenizer has no pad token, and the trainer then
# pools the last token of each sequence (it logs this), which openrm.json records.
step "writing the model config (hidden $hidden, $layers layers, $heads heads, vocab 32000)"
cat > "$work/config.json" <<EOF
{
  "architectures": ["LlamaForSequenceClassification"],
  "model_type": "llama",
  "vocab_size": 32000,
  "hidden_size": $hidden,
  "intermediate_size": $intermediate,
  "num_hidden_layers": $layers,
  "num_attention_heads": $heads,
  "num_key_value_heads": $heads,
  "max_position_embeddings": 4096,
  "rms_norm_eps": 1e-05,
  "rope_theta": 10000.0,
  "tie_word_embeddings": false,
  "bos_token_id": 1,
  "eos_token_id": 2,
  "num_labels": 1
}
EOF
cat "$work/config.json"

step "training (openrm-train; $epochs epochs, lr $lr, warm-up $warmup steps, max_length $max_length)"
"$build/tools/openrm-train" --data "$work/train.jsonl.gz" --output "$work/reward-model" \
  --init-config "$work/config.json" --tokenizer "$tokenizer" --chat-format hh \
  --max-length "$max_length" --max-tokens "$max_tokens" --epochs "$epochs" --max-steps "$max_steps" --lr "$lr" \
  --warmup-steps "$warmup" --schedule cosine --max-grad-norm 1.0 --seed "$seed" \
  --threads "$threads" --log-every 20 --log-level info 2>&1 | tee "$work/train.log" | { grep -v '^ \|^{\|^}' || true; }

step "evaluating on the 300 held-out records (openrm-eval)"
"$build/tools/openrm-eval" --model "$work/reward-model" --data "$work/heldout.jsonl.gz" \
  --max-length "$max_length" --threads "$threads" --json "$work/eval.json" 2>&1 |
  tee "$work/eval.log"

accuracy="$(grep -o '"accuracy": *[0-9.e+-]*' "$work/eval.json" | head -1 | grep -o '[0-9.e+-]*$')"
step "done: held-out accuracy $accuracy on the last 300 records (random init, 1,500 training records:"
echo "modest accuracy is expected); model in $work/reward-model, logs in $work/train.log and $work/eval.log"
