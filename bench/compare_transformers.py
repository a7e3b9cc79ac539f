#!/usr/bin/env python3
"""Scoring speed and scores: openrm against transformers, in one run.

On the CPU (here, with the reference environment's python) or on the GPU
machine. What it does:

1. builds a random-weight AutoModelForSequenceClassification of the named
   shape with transformers (--dtype, default attention implementation,
   pad_token_id = vocab_size - 1) and saves it with save_pretrained;
2. runs openrm's bench_score on that folder (--model, same device, dtype and
   threads), which tokenizes the hh-rlhf pairs (../shared/data, Llama-2
   tokenizer), scores their token ids with openrm's Scorer and writes the ids
   (--sequences-out) and openrm's rewards (--rewards-out);
3. scores the same ids with transformers the way its users do: fixed
   batches of --batch sequences in input order, right-padded, with an
   attention mask, model.eval(), under torch.no_grad, one warm-up batch first;
4. prints and writes (OUT/compare.json) both tokens/s, the ratio, and the
   largest difference between the two sets of rewards.

    # CPU, 2 threads (docs/benchmarks.md)
    python bench/compare_transformers.py --shape llama-512x8 --device cpu --dtype fp32 \
        --threads 2 --pairs 100 --out /tmp/cmp-cpu-fp32
    # GPU machine
    python3 bench/compare_transformers.py --shape llama-3.2-1b --out /tmp/cmp-llama
    python3 bench/compare_transformers.py --shape qwen3-0.6b --out /tmp/cmp-qwen3

The Llama shape uses the default RoPE (rope_theta 500000, no llama3 scaling):
the scaling changes no work, and leaving it out keeps the config readable by
every transformers version.
"""
import argparse
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SHAPES = {
    # A CPU-sized Llama: hidden 512, 8 layers, 8 heads of 64, 4 kv heads, the
    # Llama-2 vocabulary (the tokenizer of the data).
    "llama-512x8": dict(kind="llama", vocab_size=32001, hidden_size=512, intermediate_size=1408,
                        num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=4,
                        head_dim=64, rope_theta=10000.0, max_position_embeddings=4096),
    # A CPU-sized Llama of 100M parameters (100,094,208): hidden 768, 12
    # layers, 12 heads of 64, 4 kv heads, MLP 2048, the Llama-2 vocabulary.
    "llama-768x12": dict(kind="llama", vocab_size=32001, hidden_size=768, intermediate_size=2048,
                         num_hidden_layers=12, num_attention_heads=12, num_key_value_heads=4,
                         head_dim=64, rope_theta=10000.0, max_position_embeddings=4096),
    # Llama-3.2-1B: hidden 2048, 16 layers, 32 heads, 8 kv heads, MLP 8192.
    "llama-3.2-1b": dict(kind="llama", vocab_size=128256, hidden_size=2048, intermediate_size=8192,
                         num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8,
                         head_dim=64, rope_theta=500000.0, max_position_embeddings=8192),
    # Qwen3-0.6B: hidden 1024, 28 layers, 16 heads of 128, 8 kv heads, MLP 3072.
    "qwen3-0.6b": dict(kind="qwen3", vocab_size=151936, hidden_size=1024, intermediate_size=3072,
                       num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8,
                       head_dim=128, rope_theta=1000000.0, max_position_embeddings=40960),
}


DTYPES = {"fp32": "float32", "bf16": "bfloat16"}


def build_checkpoint(shape, path, dtype):
    import torch
    from transformers import AutoModelForSequenceClassification, LlamaConfig, Qwen3Config

    fields = dict(SHAPES[shape])
    kind = fields.pop("kind")
    config_class = LlamaConfig if kind == "llama" else Qwen3Config
    config = config_class(**fields, num_labels=1, pad_token_id=fields["vocab_size"] - 1,
                          tie_word_embeddings=False)
    torch.manual_seed(0)
    try:
        model = AutoModelForSequenceClassification.from_config(config, attn_implementation="sdpa")
    except TypeError:  # very old versions take no attn_implementation here
        model = AutoModelForSequenceClassification.from_config(config)
    model = model.to(getattr(torch, DTYPES[dtype]))
    model.save_pretrained(path)
    return model


def transformers_scores(model, sequences, pad, batch_size, device):
    import torch

    model = model.to(device).eval()

    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    def run(seqs):
        rewards = []
        for start in range(0, len(seqs), batch_size):
            chunk = seqs[start:start + batch_size]
            longest = max(len(s) for s in chunk)
            ids = torch.full((len(chunk), longest), pad, dtype=torch.long)
            mask = torch.zeros((len(chunk), longest), dtype=torch.long)
            for row, s in enumerate(chunk):
                ids[row, :len(s)] = torch.tensor(s, dtype=torch.long)
                mask[row, :len(s)] = 1
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
            rewards.extend(logits[:, 0].float().cpu().tolist())
        return rewards

    with torch.no_grad():
        run(sequences[:batch_size])  # warm-up
        sync()
        start = time.perf_counter()
        rewards = run(sequences)
        sync()
        seconds = time.perf_counter() - start
    return rewards, seconds


def machine():
    """The CPU's model name and core count, as /proc/cpuinfo gives them."""
    name = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cores"


def read_jsonl(path, key):
    with open(path) as f:
        return [json.loads(line)[key] for line in f if line.strip()]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), required=True)
    parser.add_argument("--out", required=True, help="folder for the checkpoint and the results")
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (both sides)")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="bf16", help="both sides")
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU threads for both sides (0: all cores)")
    parser.add_argument("--bench", default="",
                        help="openrm's bench_score (default: build/ on cpu, build-gpu/ on cuda)")
    parser.add_argument("--shared", default=os.path.join(REPO, "..", "shared", "data"),
                        help="folder with the hh-rlhf pairs and the Llama-2 tokenizer")
    parser.add_argument("--pairs", type=int, default=1796, help="hh-rlhf pairs (both sides are scored)")
    parser.add_argument("--batch", type=int, default=32, help="transformers' fixed batch size")
    parser.add_argument("--max-tokens", type=int, default=0,
                        help="openrm's token budget per forward (0: 65536 on cuda, 8192 on cpu)")
    args = parser.parse_args()

    import torch
    import transformers

    threads = args.threads or os.cpu_count()
    torch.set_num_threads(threads)
    cpu = args.device == "cpu"
    bench = args.bench or os.path.join(REPO, "build" if cpu else "build-gpu", "bench", "bench_score")
    data = os.path.join(args.shared, "hh-rlhf-harmless-base-test-1800.jsonl.gz")
    tokenizer = os.path.join(args.shared, "llama2-tokenizer.model")
    for path in (bench, data, tokenizer):
        if not os.path.exists(path):
            sys.exit(f"error: {path} is missing (build openrm first; ../shared/data holds the data)")

    os.makedirs(args.out, exist_ok=True)
    checkpoint = os.path.join(args.out, "model")
    model = build_checkpoint(args.shape, checkpoint, args.dtype)
    pad = model.config.pad_token_id

    sequences_path = os.path.join(args.out, "sequences.jsonl")
    rewards_path = os.path.join(args.out, "openrm-rewards.jsonl")
    bench_json = os.path.join(args.out, "bench_score.json")
    args.max_tokens = args.max_tokens or (8192 if cpu else 65536)
    command = [bench, "--model", checkpoint, "--device", args.device, "--dtype", args.dtype,
               "--threads", str(threads), "--data", data, "--tokenizer", tokenizer,
               "--pairs", str(args.pairs), "--max-tokens", str(args.max_tokens),
               "--sequences-out", sequences_path, "--rewards-out", rewards_path, "--json", bench_json]
    print("running:", " ".join(command), flush=True)
    subprocess.run(command, check=True)
    with open(bench_json) as f:
        bench_result = json.load(f)
    openrm = bench_result["openrm"]
    unshared = bench_result["unshared"]

    sequences = read_jsonl(sequences_path, "ids")
    ours = read_jsonl(rewards_path, "reward")
    theirs, seconds = transformers_scores(model, sequences, pad, args.batch, args.device)
    tokens = sum(len(s) for s in sequences)
    diff = max(abs(a - b) for a, b in zip(ours, theirs))
    scale = max(abs(b) for b in theirs)
    result = {
        "shape": args.shape,
        "device": args.device,
        "dtype": args.dtype,
        "threads": threads,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "attn_implementation": model.config._attn_implementation,
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "sequences": len(sequences),
        "tokens": tokens,
        "transformers_run": {"seconds": seconds, "tokens_per_s": tokens / seconds, "batch": args.batch},
        "openrm": {"seconds": openrm["seconds"], "tokens_per_s": openrm["tokens_per_s"],
                   "max_tokens": args.max_tokens},
        "ratio": openrm["tokens_per_s"] / (tokens / seconds),
        # openrm with prefix sharing off (each side of a pair computed whole)
        "openrm_unshared": {"seconds": unshared["seconds"], "tokens_per_s": unshared["tokens_per_s"]},
        "ratio_unshared": unshared["tokens_per_s"] / (tokens / seconds),
        "openrm_computed_rows": openrm["computed_tokens"],
        "openrm_fraction_of_gemm": openrm["fraction_of_gemm"],
        "gemm_flops_per_s": bench_result["gemm_flops_per_s"],
        "max_reward_difference": diff,
        "max_abs_reward": scale,
    }
    with open(os.path.join(args.out, "compare.json"), "w") as f:
        json.dump(result, f, indent=2)
    print(f"{args.shape}: {len(sequences)} sequences, {tokens} tokens")
    print(f"transformers {transformers.__version__} ({args.dtype}, "
          f"{result['attn_implementation']}, batches of {args.batch}, {threads} threads): "
          f"{tokens / seconds:,.0f} tokens/s")
    print(f"openrm ({args.dtype}, {args.max_tokens}-token batches): "
          f"{openrm['tokens_per_s']:,.0f} tokens/s")
    print(f"openrm without prefix sharing: {unshared['tokens_per_s']:,.0f} tokens/s "
          f"({result['ratio_unshared']:.2f}x transformers)")
    print(f"ratio: {result['ratio']:.2f}x; largest |reward difference| {diff:.3g} (largest |reward| {scale:.3g}); "
          f"openrm computed {openrm['computed_tokens']:.0f} of the {tokens} token rows, at "
          f"{100 * openrm['fraction_of_gemm']:.1f}% of the run's GEMM rate")
    return 0


if __name__ == "__main__":
    sys.exit(main())
