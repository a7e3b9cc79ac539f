#!/usr/bin/env python3
"""The `tokenizers` side of bench_hf_tokenize: times batch encoding of the
hh-rlhf texts with the Rust library, the way its users call it.

    hf_tokenize_peer.py --tokenizer TOKENIZER_JSON_OR_FOLDER --data FILE.jsonl.gz \
        [--repeat 3] [--ids-out IDS.bin]

bench_hf_tokenize starts it (with the reference environment's python) once
with RAYON_NUM_THREADS=1 and TOKENIZERS_PARALLELISM=false, and once with
RAYON_NUM_THREADS=<all threads> and TOKENIZERS_PARALLELISM=true: rayon sizes
its pool once per process, so each thread count is its own process.

The texts are the "chosen" then the "rejected" text of every record, in file
order. Each method is timed twice over:
  cold: a Tokenizer freshly loaded (empty word cache), its first
        encode_batch over all the texts; best of --repeat fresh loads;
  warm: the same Tokenizer after that first pass (every word cached), best
        of --repeat further passes.
for encode_batch (Encoding objects with offsets, masks, ...: what most code
calls) and, where this tokenizers has it, encode_batch_fast (no offsets).
add_special_tokens=False throughout (no BOS/EOS). Loading (Tokenizer.from_file)
is timed on its own (best of the loads), apart from encoding. Each pass also
reports the process's CPU seconds (time.process_time, all threads), which
show whether the threads had the cores to themselves.
Before the first timed run one untimed call on a throwaway Tokenizer starts
rayon's pool, so that the cold figure is not the pool's start-up.

Prints one JSON object on stdout. With --ids-out, writes the ids of the first
encode_batch pass as little-endian int32: the number of texts, each text's
length, then all the ids one text after the other.

Exits with 77 when tokenizers is missing, 2 on bad arguments.
"""
import argparse
import array
import gzip
import json
import os
import sys
import time

try:
    import tokenizers
    from tokenizers import Tokenizer
except ImportError as e:
    print(f"hf_tokenize_peer.py: {e}", file=sys.stderr)
    sys.exit(77)


def read_texts(path):
    opener = gzip.open if path.endswith(".gz") else open
    texts = []
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                record = json.loads(line)
                texts += [record["chosen"], record["rejected"]]
    return texts


def tokenizer_file(path):
    return os.path.join(path, "tokenizer.json") if os.path.isdir(path) else path


def time_method(path, texts, method, repeat):
    """Best seconds of loading, (wall, CPU) seconds of the fastest cold and
    fastest warm pass of `method` over `texts`, and the encodings of the
    first pass."""
    load = float("inf")
    cold = warm = (float("inf"), 0.0)  # (wall, CPU) seconds of the fastest run
    first = None

    def timed(encode):
        wall, cpu = time.perf_counter(), time.process_time()
        encodings = encode(texts, add_special_tokens=False)
        return (time.perf_counter() - wall, time.process_time() - cpu), encodings

    for r in range(repeat):
        start = time.perf_counter()
        tok = Tokenizer.from_file(path)
        load = min(load, time.perf_counter() - start)
        encode = getattr(tok, method)
        seconds, encodings = timed(encode)
        cold = min(cold, seconds)
        if first is None:
            first = encodings
        if r == 0:
            for _ in range(repeat):
                warm = min(warm, timed(encode)[0])
    return load, cold, warm, first


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokenizer", required=True, help="tokenizer.json, or a folder holding one")
    parser.add_argument("--data", required=True, help="hh-rlhf .jsonl(.gz): chosen and rejected texts")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; the best is reported")
    parser.add_argument("--ids-out", default="", help="write the ids of encode_batch here (int32)")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")

    path = tokenizer_file(args.tokenizer)
    texts = read_texts(args.data)
    Tokenizer.from_file(path).encode_batch(texts[:64], add_special_tokens=False)  # starts rayon's pool

    result = {
        "tokenizers": tokenizers.__version__,
        "python": sys.version.split()[0],
        "rayon_num_threads": os.environ.get("RAYON_NUM_THREADS", ""),
        "tokenizers_parallelism": os.environ.get("TOKENIZERS_PARALLELISM", ""),
        "texts": len(texts),
        "methods": {},
    }
    methods = ["encode_batch"] + (["encode_batch_fast"] if hasattr(Tokenizer, "encode_batch_fast") else [])
    for method in methods:
        load, cold, warm, encodings = time_method(path, texts, method, args.repeat)
        tokens = sum(len(e.ids) for e in encodings)
        result["methods"][method] = {"load_s": load, "cold_s": cold[0], "cold_cpu_s": cold[1],
                                     "warm_s": warm[0], "warm_cpu_s": warm[1], "tokens": tokens}
        if method == "encode_batch" and args.ids_out:
            out = array.array("i", [len(texts)])
            out.extend(len(e.ids) for e in encodings)
            for e in encodings:
                out.extend(e.ids)
            if sys.byteorder != "little":
                out.byteswap()
            with open(args.ids_out, "wb") as f:
                out.tofile(f)
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
