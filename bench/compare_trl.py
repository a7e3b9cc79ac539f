#!/usr/bin/env python3
"""Reward-model training speed: openrm-train against TRL's RewardTrainer, in one run.

On the CPU, with the reference environment's python (torch, transformers, trl,
datasets, sentencepiece). What it does:

1. builds a random-weight LlamaForSequenceClassification of the named shape
   with transformers (fp32 weights, pad_token_id = vocab_size - 1) and saves
   it with save_pretrained to OUT/model; both trainers start from that folder;
2. reads the first --pairs hh-rlhf pairs (../shared/data) whose longer side
   is at most --max-length tokens, so neither side truncates or drops
   anything, and tokenizes them with the Llama-2 sentencepiece model the way
   openrm tokenizes an hh transcript given as text: BOS + the ids of the whole
   transcript, no EOS (docs/data.md, docs/chat-formats.md); when
   openrm-tokenizer is built, the ids of the first --check-ids pairs are
   checked against it;
3. trains with TRL's RewardTrainer on those ids (pre-tokenized
   "chosen_ids"/"rejected_ids" columns, so TRL neither re-tokenizes nor
   appends an EOS): batches of --batch pairs, 1 warm-up step and --steps timed
   steps, lr --lr, bf16 autocast for --dtype bf16, and TRL's defaults
   otherwise (its random batch order, AdamW, linear schedule, clipping at 1.0,
   gradient checkpointing on);
4. trains with openrm-train on the same folder and pairs (written as hh text
   to OUT/pairs.jsonl): file order (--shuffle false), the same number of steps,
   lr and schedule, and a --max-tokens budget chosen so that its first steps
   hold, on average, --batch pairs (computed with openrm's file-order batching
   rule and checked against the pairs per step it logs);
5. prints and writes (OUT/compare_trl.json) both rates in real tokens per
   second (the two sides of every pair, no padding) and pairs per second over
   the timed steps, and the ratio openrm / TRL.

Timing. TRL: a TrainerCallback takes the time at each on_step_end; a timed
step is the interval from the previous step's end to its own (so it holds the
whole loop: batch fetch and collation, forward, backward, clipping, the
optimizer and scheduler step, TRL's metric bookkeeping), and its tokens are
the growth of TRL's own count of attention-mask tokens. The forward-to-
optimizer part alone (on_step_begin to on_step_end) is reported too. openrm:
metrics.jsonl gives, per step, the pairs and the real tokens per second of
that step's wall time; with --shuffle false its micro-batches are consecutive
runs of pairs in file order, so each step's tokens follow from the pairs
counts, and its seconds are tokens / tokens_per_s. Both sides skip their
first step (optimizer state allocation, first-touch of the weights).

openrm-train trains bf16 only under CUDA autocast: with --dtype bf16 on the
CPU, openrm runs in fp32 and the output says so.

    # CPU, 2 threads, the ~100M-parameter shape
    python bench/compare_trl.py --shape llama-768x12 --dtype fp32 --threads 2 --out /tmp/cmp-trl
    # a smoke test of the TRL half only
    python bench/compare_trl.py --shape llama-64x2 --pairs 8 --batch 4 --steps 1 \\
        --skip-openrm --out /tmp/cmp-trl-smoke
    # openrm without prefix sharing
    python bench/compare_trl.py --shape llama-768x12 --openrm-args=--no-prefix-sharing --out /tmp/cmp-trl-ns
"""
import argparse
import dataclasses
import gc
import gzip
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no bench/__pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare_transformers import DTYPES, REPO, SHAPES, build_checkpoint, machine  # noqa: E402

# The 100M-parameter CPU shape, llama-768x12, is compare_transformers'.
# For smoke tests of this script: seconds per run.
SHAPES["llama-64x2"] = dict(kind="llama", vocab_size=32001, hidden_size=64, intermediate_size=128,
                            num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                            head_dim=16, rope_theta=10000.0, max_position_embeddings=4096)

# openrm shares a pair's common prompt when it is at least this long
# (shared_prefix_lengths in include/openrm/data/batching.h).
MIN_SHARED_PREFIX = 16


# ---- data --------------------------------------------------------------------------------------

class OpenrmLikeEncoder:
    """Text -> ids as openrm's sentencepiece tokenizer encodes a bare .model file with the
    default options: the text split on the model's control and unknown pieces (<s>, </s>,
    <unk>), leftmost and longest first, each chunk encoded on its own (legacy mode), then a
    BOS in front and no EOS (docs/tokenizers.md, "Encoding rules")."""

    def __init__(self, model_path):
        import sentencepiece

        self.sp = sentencepiece.SentencePieceProcessor(model_file=model_path)
        self.bos = self.sp.bos_id()
        self.specials = {self.sp.id_to_piece(i): i for i in range(self.sp.get_piece_size())
                         if self.sp.is_control(i) or self.sp.is_unknown(i)}
        names = sorted(self.specials, key=len, reverse=True)
        self.split = re.compile("(" + "|".join(re.escape(n) for n in names) + ")") if names else None

    def __call__(self, text):
        ids = [self.bos] if self.bos >= 0 else []
        chunks = self.split.split(text) if self.split else [text]
        for k, chunk in enumerate(chunks):
            if k % 2:  # a special piece's text
                ids.append(self.specials[chunk])
            elif chunk:
                ids.extend(self.sp.encode(chunk))
        return ids


def read_pairs(path, encoder, count, max_length):
    """The first `count` pairs whose longer side fits max_length, and how many were passed over."""
    pairs, passed_over = [], 0
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            record = json.loads(line)
            chosen, rejected = encoder(record["chosen"]), encoder(record["rejected"])
            if max(len(chosen), len(rejected)) > max_length:
                passed_over += 1
                continue
            pairs.append(dict(chosen=record["chosen"], rejected=record["rejected"],
                              chosen_ids=chosen, rejected_ids=rejected))
            if len(pairs) == count:
                break
    return pairs, passed_over


def check_ids(tool, tokenizer, pairs):
    """Compares every side's ids with `openrm-tokenizer encode`; returns (texts checked, mismatches)."""
    mismatches = []
    for i, pair in enumerate(pairs):
        for side in ("chosen", "rejected"):
            out = subprocess.run([tool, "encode", "--tokenizer", tokenizer, "--text=" + pair[side]],
                                 check=True, capture_output=True, text=True).stdout
            if [int(t) for t in out.split()] != pair[side + "_ids"]:
                mismatches.append(f"pair {i} {side}")
    return 2 * len(pairs), mismatches


# ---- openrm's micro-batches ---------------------------------------------------------------------

def shared_prefix(a, b):
    """openrm's shared_prefix_lengths for one pair."""
    limit = min(len(a), len(b))
    p = 0
    while p < limit and a[p] == b[p]:
        p += 1
    p = min(p, limit - 1) if limit else 0
    return p if p >= MIN_SHARED_PREFIX else 0


def file_order_batches(pairs, max_tokens, share):
    """openrm's micro-batches under --shuffle false (make_batches with shuffle and sorting off):
    consecutive runs of pairs, each filled while its cost stays within max_tokens. The cost is
    the rows computed (both sides, the shared prefix once) when prefix sharing applies, else
    sequences x longest. Returns the number of pairs in each batch."""
    sizes, n, cost_rows, longest = [], 0, 0, 0
    for pair in pairs:
        c, r = len(pair["chosen_ids"]), len(pair["rejected_ids"])
        rows = c + r - (shared_prefix(pair["chosen_ids"], pair["rejected_ids"]) if share else 0)
        new_cost = cost_rows + rows if share else 2 * (n + 1) * max(longest, c, r)
        if n and new_cost > max_tokens:
            sizes.append(n)
            n, cost_rows, longest = 0, 0, 0
        n += 1
        cost_rows += rows
        longest = max(longest, c, r)
    if n:
        sizes.append(n)
    return sizes


def choose_max_tokens(pairs, share, steps, batch):
    """The smallest budget whose file-order batches put the first steps x batch pairs into at
    most `steps` micro-batches: openrm's steps then hold `batch` pairs on average. (Cutting a
    sequence into fewest runs under a budget is what greedy filling does, so the count falls as
    the budget grows and bisection finds the edge.)"""
    head = pairs[:steps * batch]
    lo, hi = 1, 2 * sum(max(len(p["chosen_ids"]), len(p["rejected_ids"])) for p in head) * len(head)
    while lo < hi:
        mid = (lo + hi) // 2
        if len(file_order_batches(head, mid, share)) <= steps:
            hi = mid
        else:
            lo = mid + 1
    return lo


# ---- TRL ---------------------------------------------------------------------------------------

def run_trl(args, checkpoint, pairs, threads, gradient_checkpointing):
    import datasets
    import torch
    from transformers import LlamaTokenizer, TrainerCallback
    from trl import RewardConfig, RewardTrainer

    # TRL needs a tokenizer with a pad token in its vocabulary; it only reads the pad
    # token from it here (the data is already token ids). The Llama-2 model with "<pad>"
    # added gets id 32000 = vocab_size - 1, the model's pad_token_id.
    tokenizer_dir = os.path.join(args.out, "trl-tokenizer")
    os.makedirs(tokenizer_dir, exist_ok=True)
    shutil.copyfile(args.tokenizer, os.path.join(tokenizer_dir, "tokenizer.model"))
    tokenizer = LlamaTokenizer.from_pretrained(tokenizer_dir)
    tokenizer.add_special_tokens({"pad_token": "<pad>"})

    dataset = datasets.Dataset.from_dict({"chosen_ids": [p["chosen_ids"] for p in pairs],
                                          "rejected_ids": [p["rejected_ids"] for p in pairs]})
    # What this comparison sets; everything else is RewardConfig's default.
    settings = dict(
        output_dir=os.path.join(args.out, "trl-run"),
        max_steps=args.steps + 1,
        per_device_train_batch_size=args.batch,
        gradient_accumulation_steps=1,
        learning_rate=args.lr,
        bf16=args.dtype == "bf16",  # RewardConfig defaults to bf16=True
        # RewardConfig's gradient_checkpointing defaults to True; transformers 5 names it
        # activation_checkpointing (the old name is a deprecated alias)
        activation_checkpointing=gradient_checkpointing,
        max_length=args.max_length,
        use_cpu=True,
        eval_strategy="no",
        save_strategy="no",
        report_to="none",
        dataloader_num_workers=0,
        dataloader_pin_memory=False,
    )
    if "activation_checkpointing" not in {f.name for f in dataclasses.fields(RewardConfig)}:
        settings["gradient_checkpointing"] = settings.pop("activation_checkpointing")  # transformers 4
    config = RewardConfig(**settings)

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.trainer = None
            self.steps = []
            self.begin = self.last_end = None
            self.tokens_at_begin = 0
            self.torch_threads = None

        def on_step_begin(self, a, state, control, **kwargs):
            self.torch_threads = torch.get_num_threads()
            self.tokens_at_begin = self.trainer._total_train_tokens
            self.begin = time.perf_counter()

        def on_step_end(self, a, state, control, **kwargs):
            now = time.perf_counter()
            # Batches of `batch` pairs in each pass over the data; the last one of a pass
            # holds what is left (the dataloader keeps it).
            per_pass = -(-len(pairs) // args.batch)
            last = (state.global_step - 1) % per_pass == per_pass - 1
            self.steps.append(dict(
                step=state.global_step,
                pairs=len(pairs) - args.batch * (per_pass - 1) if last else args.batch,
                tokens=int(self.trainer._total_train_tokens - self.tokens_at_begin),
                compute_seconds=now - self.begin,
                seconds=None if self.last_end is None else now - self.last_end))
            self.last_end = now

    timer = StepTimer()
    trainer = RewardTrainer(model=checkpoint, args=config, train_dataset=dataset,
                            processing_class=tokenizer, callbacks=[timer])
    timer.trainer = trainer
    if len(trainer.train_dataset) != len(pairs):
        sys.exit(f"error: TRL kept {len(trainer.train_dataset)} of the {len(pairs)} pairs")
    torch.set_num_threads(threads)
    trainer.train()

    timed = timer.steps[1:]
    tokens = sum(s["tokens"] for s in timed)
    seconds = sum(s["seconds"] for s in timed)
    compute_seconds = sum(s["compute_seconds"] for s in timed)
    result = {
        "tokens_per_s": tokens / seconds,
        "pairs_per_s": sum(s["pairs"] for s in timed) / seconds,
        "seconds": seconds,
        "tokens": tokens,
        "pairs": sum(s["pairs"] for s in timed),
        "steps": len(timed),
        "forward_to_optimizer_tokens_per_s": tokens / compute_seconds,
        "per_step": timer.steps,
        "settings": settings,
        "optim": getattr(trainer.args.optim, "value", trainer.args.optim),
        "lr_scheduler_type": getattr(trainer.args.lr_scheduler_type, "value", trainer.args.lr_scheduler_type),
        "mixed_precision": str(trainer.accelerator.mixed_precision),
        "max_grad_norm": trainer.args.max_grad_norm,
        "weight_decay": trainer.args.weight_decay,
        "attn_implementation": trainer.model.config._attn_implementation,
        "model_dtype": str(next(trainer.model.parameters()).dtype),
        "activation_checkpointing_in_model": any(getattr(m, "gradient_checkpointing", False) is True
                                                 for m in trainer.model.modules()),
        "torch_threads_in_training": timer.torch_threads,
    }
    del trainer
    gc.collect()
    return result


# ---- openrm ------------------------------------------------------------------------------------

def run_openrm(args, checkpoint, pairs, threads, gradient_checkpointing, dtype):
    pairs_path = os.path.join(args.out, "pairs.jsonl")
    with open(pairs_path, "w", encoding="utf-8") as f:
        for p in pairs:
            f.write(json.dumps({"chosen": p["chosen"], "rejected": p["rejected"]}) + "\n")
    extra = shlex.split(args.openrm_args)
    # A build from before prefix sharing has no --no-prefix-sharing flag and batches by
    # sequences x longest.
    help_text = subprocess.run([args.openrm_train, "--help"], capture_output=True, text=True).stdout
    share = ("--no-prefix-sharing" in help_text and "--no-prefix-sharing" not in extra
             and any(shared_prefix(p["chosen_ids"], p["rejected_ids"]) for p in pairs))
    total_steps = args.steps + 1
    max_tokens = args.max_tokens or choose_max_tokens(pairs, share, total_steps, args.batch)
    run_dir = os.path.join(args.out, "openrm-run")
    shutil.rmtree(run_dir, ignore_errors=True)  # a leftover run would be resumed
    command = [args.openrm_train, "--data", pairs_path, "--data-format", "hh", "--init-model", checkpoint,
               "--tokenizer", args.tokenizer, "--output", run_dir, "--device", "cpu", "--dtype", dtype,
               "--threads", str(threads), "--max-steps", str(total_steps), "--lr", str(args.lr),
               "--schedule", "linear",  # TRL's default schedule (openrm's is cosine)
               "--max-length", str(args.max_length), "--shuffle", "false", "--max-tokens", str(max_tokens),
               "--log-every", "1"]
    if gradient_checkpointing:
        command.append("--gradient-checkpointing")
    command += extra
    print("running:", shlex.join(command), flush=True)
    log = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        for line in proc.stdout:
            sys.stdout.write(line)
            log.append(line)
    if proc.returncode != 0:
        sys.exit(f"error: openrm-train exited with status {proc.returncode}")

    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        steps = [j for j in map(json.loads, filter(str.strip, f)) if "tokens_per_s" in j]
    # File order: step k holds the next steps[k]["pairs"] pairs (wrapping at the end of an epoch).
    cursor, per_step = 0, []
    for s in steps:
        tokens = 0
        for _ in range(s["pairs"]):
            p = pairs[cursor % len(pairs)]
            tokens += len(p["chosen_ids"]) + len(p["rejected_ids"])
            cursor += 1
        per_step.append(dict(step=s["step"], pairs=s["pairs"], tokens=tokens,
                             seconds=tokens / s["tokens_per_s"], peak_memory_bytes=s.get("peak_memory_bytes")))
    timed = per_step[1:]
    tokens = sum(s["tokens"] for s in timed)
    seconds = sum(s["seconds"] for s in timed)
    n_pairs = sum(s["pairs"] for s in timed)
    expected = file_order_batches(pairs, max_tokens, share)
    expected = [expected[k % len(expected)] for k in range(len(steps))]
    result = {
        "tokens_per_s": tokens / seconds,
        "pairs_per_s": n_pairs / seconds,
        "seconds": seconds,
        "tokens": tokens,
        "pairs": n_pairs,
        "steps": len(timed),
        "max_tokens": max_tokens,
        "prefix_sharing": share,
        "pairs_per_step": [s["pairs"] for s in per_step],
        "pairs_per_step_predicted": expected,
        "per_step": per_step,
        "command": command,
    }
    # openrm logs the pairs that share a prompt and the tokens computed once: a check of
    # the token counts (and so of the ids' lengths) this script computed.
    found = re.search(r"prefix sharing: (\d+) of (\d+) pairs share .*?; (\d+) of (\d+) tokens", "".join(log))
    if found:
        ours = (sum(1 for p in pairs if shared_prefix(p["chosen_ids"], p["rejected_ids"])), len(pairs),
                sum(shared_prefix(p["chosen_ids"], p["rejected_ids"]) for p in pairs),
                sum(len(p["chosen_ids"]) + len(p["rejected_ids"]) for p in pairs))
        result["logged_sharing"] = [int(g) for g in found.groups()]
        result["logged_sharing_matches"] = list(ours) == result["logged_sharing"]
    return result


# ---- main --------------------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # The data is tokenized with Llama-2's tokenizer, whose "<pad>" (32000) is these shapes' pad token.
    llama2_vocab = sorted(name for name, shape in SHAPES.items() if shape["vocab_size"] == 32001)
    parser.add_argument("--shape", choices=llama2_vocab, default="llama-768x12")
    parser.add_argument("--out", required=True, help="folder for the checkpoint, the runs and the results")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="fp32",
                        help="TRL: fp32, or bf16 autocast; openrm: fp32 on the CPU whatever this says")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for both sides (0: all cores)")
    parser.add_argument("--shared", default=os.path.join(REPO, "..", "shared", "data"),
                        help="folder with the hh-rlhf pairs and the Llama-2 tokenizer")
    parser.add_argument("--pairs", type=int, default=64, help="hh-rlhf pairs trained on (the first that fit)")
    parser.add_argument("--max-length", type=int, default=1024, help="longest side of a pair kept, in tokens")
    parser.add_argument("--batch", type=int, default=8, help="pairs per TRL step (openrm: on average)")
    parser.add_argument("--steps", type=int, default=6, help="timed optimizer steps, after 1 warm-up step")
    parser.add_argument("--lr", type=float, default=1e-5, help="learning rate of both sides")
    parser.add_argument("--gradient-checkpointing", choices=["on", "off"], default="on",
                        help="both sides (on: TRL's default; openrm's default is off)")
    parser.add_argument("--max-tokens", type=int, default=0,
                        help="openrm's micro-batch budget (0: what gives --batch pairs per step on average)")
    parser.add_argument("--openrm-train", default=os.path.join(REPO, "build", "tools", "openrm-train"))
    parser.add_argument("--openrm-tokenizer", default=os.path.join(REPO, "build", "tools", "openrm-tokenizer"),
                        help="checks the ids against it when it exists")
    parser.add_argument("--check-ids", type=int, default=16,
                        help="pairs whose ids are checked with openrm-tokenizer (one process per side; -1: all)")
    parser.add_argument("--openrm-args", default="", help="extra openrm-train flags, e.g. --no-prefix-sharing")
    parser.add_argument("--skip-openrm", action="store_true", help="run the TRL half only")
    args = parser.parse_args()

    threads = args.threads or os.cpu_count()
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # before torch is imported
        os.environ[name] = str(threads)
    import datasets
    import sentencepiece
    import torch
    import transformers
    import trl

    torch.set_num_threads(threads)
    data = os.path.join(args.shared, "hh-rlhf-harmless-base-test-1800.jsonl.gz")
    args.tokenizer = os.path.abspath(os.path.join(args.shared, "llama2-tokenizer.model"))
    needed = [data, args.tokenizer] + ([] if args.skip_openrm else [args.openrm_train])
    for path in needed:
        if not os.path.exists(path):
            sys.exit(f"error: {path} is missing (build openrm first; ../shared/data holds the data)")
    if args.pairs < args.batch * (args.steps + 1):
        print(f"note: {args.pairs} pairs are fewer than the {args.batch * (args.steps + 1)} the steps take; "
              "both sides go round the data more than once", flush=True)

    args.out = os.path.abspath(args.out)
    os.makedirs(args.out, exist_ok=True)
    checkpoint = os.path.join(args.out, "model")
    model = build_checkpoint(args.shape, checkpoint, "fp32")
    params = sum(p.numel() for p in model.parameters())
    del model
    gc.collect()
    print(f"{args.shape}: {params:,} parameters, saved to {checkpoint}", flush=True)

    encoder = OpenrmLikeEncoder(args.tokenizer)
    pairs, passed_over = read_pairs(data, encoder, args.pairs, args.max_length)
    if len(pairs) < args.pairs:
        sys.exit(f"error: only {len(pairs)} pairs have both sides within {args.max_length} tokens")
    sides = [len(p[k]) for p in pairs for k in ("chosen_ids", "rejected_ids")]
    print(f"data: {len(pairs)} pairs ({passed_over} passed over as longer than {args.max_length} tokens), "
          f"{sum(sides)} tokens, sides of {min(sides)} to {max(sides)} tokens (mean {sum(sides) / len(sides):.0f})",
          flush=True)
    ids_check = {"tool": None}
    if args.check_ids and os.path.exists(args.openrm_tokenizer):
        checked, mismatches = check_ids(args.openrm_tokenizer, args.tokenizer,
                                        pairs if args.check_ids < 0 else pairs[:args.check_ids])
        ids_check = {"tool": args.openrm_tokenizer, "texts": checked, "mismatches": mismatches}
        print(f"ids: {checked - len(mismatches)} of {checked} sides equal openrm-tokenizer's", flush=True)
        if mismatches:
            sys.exit(f"error: the ids differ from openrm's for {', '.join(mismatches[:5])}")
    else:
        print(f"ids: not checked ({args.openrm_tokenizer} is missing)" if args.check_ids else
              "ids: not checked (--check-ids 0)", flush=True)

    checkpointing = args.gradient_checkpointing == "on"
    trl_run = run_trl(args, checkpoint, pairs, threads, checkpointing)
    print(f"TRL {trl.__version__} ({args.dtype}, batches of {args.batch}, {threads} threads): "
          f"{trl_run['tokens_per_s']:,.0f} tokens/s, {trl_run['pairs_per_s']:.2f} pairs/s", flush=True)

    openrm_dtype = "fp32"  # openrm-train's bf16 is CUDA autocast only (train_options.cpp)
    openrm = None
    if not args.skip_openrm:
        if args.dtype != "fp32":
            print(f"note: openrm-train has no {args.dtype} training on the CPU; openrm runs in fp32", flush=True)
        openrm = run_openrm(args, checkpoint, pairs, threads, checkpointing, openrm_dtype)

    result = {
        "shape": args.shape,
        "parameters": params,
        "dtype": args.dtype,
        "trl_dtype": args.dtype,
        "openrm_dtype": None if openrm is None else openrm_dtype,
        "threads": threads,
        "gradient_checkpointing": checkpointing,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "trl": trl.__version__,
        "datasets": datasets.__version__,
        "sentencepiece": sentencepiece.__version__,
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "pairs": len(pairs),
        "pairs_passed_over": passed_over,
        "max_length": args.max_length,
        "batch": args.batch,
        "warmup_steps_untimed": 1,
        "steps": args.steps,
        "lr": args.lr,
        "tokens_in_data": sum(sides),
        "ids_check": ids_check,
        "trl_run": trl_run,
        "openrm": openrm,
        "ratio": None if openrm is None else openrm["tokens_per_s"] / trl_run["tokens_per_s"],
        "ratio_pairs": None if openrm is None else openrm["pairs_per_s"] / trl_run["pairs_per_s"],
    }
    with open(os.path.join(args.out, "compare_trl.json"), "w") as f:
        json.dump(result, f, indent=2)

    print(f"{args.shape}: {params:,} parameters, {args.dtype}, {threads} threads, "
          f"gradient checkpointing {args.gradient_checkpointing}")
    print(f"TRL {trl.__version__}: {trl_run['tokens_per_s']:,.0f} tokens/s, {trl_run['pairs_per_s']:.2f} pairs/s "
          f"({trl_run['steps']} steps, {trl_run['pairs']} pairs in batches of {args.batch}, "
          f"{trl_run['seconds']:.2f} s)")
    if openrm is not None:
        sizes = openrm["pairs_per_step"][1:]
        print(f"openrm ({openrm_dtype}, --max-tokens {openrm['max_tokens']}, prefix sharing "
              f"{'on' if openrm['prefix_sharing'] else 'off'}): {openrm['tokens_per_s']:,.0f} tokens/s, "
              f"{openrm['pairs_per_s']:.2f} pairs/s ({openrm['steps']} steps of {min(sizes)} to {max(sizes)} "
              f"pairs, {openrm['seconds']:.2f} s)")
        if openrm["pairs_per_step"] != openrm["pairs_per_step_predicted"]:
            print(f"note: openrm's pairs per step {openrm['pairs_per_step']} differ from the predicted "
                  f"{openrm['pairs_per_step_predicted']}")
        if openrm.get("logged_sharing_matches") is False:
            print(f"note: openrm logged prefix sharing {openrm['logged_sharing']}, which differs from this "
                  "script's token counts")
        print(f"ratio openrm / TRL: {result['ratio']:.2f}x tokens/s, {result['ratio_pairs']:.2f}x pairs/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
