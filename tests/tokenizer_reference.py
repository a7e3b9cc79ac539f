#!/usr/bin/env python3
"""Reference ids from transformers, for test_tokenizer_parity's live check.

    tokenizer_reference.py FOLDER TEXTS.json OUT.json
    tokenizer_reference.py FOLDER HH.jsonl.gz OUT.json [EVERY]

TEXTS.json is a JSON list of strings; an hh-rlhf .jsonl.gz file gives the
"chosen" and "rejected" text of every EVERY-th record (default 12), in file
order, chosen first.

Loads FOLDER (a tokenizer.model + tokenizer_config.json folder) with each
tokenizer class transformers offers for it, with legacy=True and legacy=False:
LlamaTokenizer (in transformers 5 the tokenizers-backed class; LlamaTokenizerFast
is the same class) and SentencePieceBackend (the sentencepiece-backed one).
Writes {"versions": {...}, "texts": [...], "variants": [{"variant", "legacy", "class",
"ids": [tokenizer(text, add_special_tokens=False) ids per text]}]}.
Exits with 77 when transformers is missing (the test then skips), 2 on bad
arguments.
"""
import gzip
import json
import sys

try:
    import sentencepiece
    import tokenizers
    import transformers
    from transformers import LlamaTokenizer
    from transformers.tokenization_utils_sentencepiece import SentencePieceBackend
except ImportError as e:
    print(f"tokenizer_reference.py: {e}", file=sys.stderr)
    sys.exit(77)


def main(argv):
    if len(argv) not in (4, 5):
        print(__doc__, file=sys.stderr)
        return 2
    folder, texts_path, out_path = argv[1:4]
    if texts_path.endswith(".jsonl.gz"):
        every = int(argv[4]) if len(argv) == 5 else 12
        texts = []
        with gzip.open(texts_path, "rt", encoding="utf-8") as f:
            for i, line in enumerate(line for line in f if line.strip()):
                if i % every == 0:
                    record = json.loads(line)
                    texts += [record["chosen"], record["rejected"]]
    else:
        with open(texts_path, encoding="utf-8") as f:
            texts = json.load(f)
    variants = []
    for variant, cls in (("tokenizers", LlamaTokenizer), ("sentencepiece", SentencePieceBackend)):
        for legacy in (True, False):
            tok = cls.from_pretrained(folder, legacy=legacy)
            ids = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
            variants.append({"variant": variant, "legacy": legacy, "class": type(tok).__name__,
                             "ids": ids})
    out = {"versions": {"transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
                        "sentencepiece": sentencepiece.__version__},
           "texts": texts, "variants": variants}
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(out, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
