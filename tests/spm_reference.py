#!/usr/bin/env python3
"""Reference token ids from the sentencepiece Python module, for test_tokenizer.

    spm_reference.py hh MODEL DATA.jsonl.gz OUT.jsonl
        every "chosen" and "rejected" text of an hh-rlhf JSONL file, in file
        order (chosen before rejected)
    spm_reference.py strings MODEL IN.json OUT.jsonl
        every string of a JSON list

Each output line is {"text": ..., "ids": EncodeAsIds(text),
"decoded": DecodeIds(ids)}, and in "strings" mode also "ids_no_dummy_prefix":
the ids from the model with add_dummy_prefix off (as transformers loads it
with legacy=False; set here by appending a NormalizerSpec to the serialized
proto, which protobuf merges into the model's). Exits with 77 when the sentencepiece module is
missing (the test then skips), 2 on bad arguments.
"""
import gzip
import json
import sys

try:
    import sentencepiece
except ImportError:
    print("spm_reference.py: the sentencepiece module is not installed", file=sys.stderr)
    sys.exit(77)


def hh_texts(path):
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            record = json.loads(line)
            yield record["chosen"]
            yield record["rejected"]


def main(argv):
    if len(argv) != 5 or argv[1] not in ("hh", "strings"):
        print(__doc__, file=sys.stderr)
        return 2
    mode, model, source, out_path = argv[1:]
    processor = sentencepiece.SentencePieceProcessor()
    processor.Load(model)
    with open(model, "rb") as f:
        no_dummy = sentencepiece.SentencePieceProcessor()
        # field 3 (normalizer_spec) { field 3 (add_dummy_prefix): false }
        no_dummy.LoadFromSerializedProto(f.read() + b"\x1a\x02\x18\x00")
    if mode == "hh":
        texts = hh_texts(source)
    else:
        with open(source, encoding="utf-8") as f:
            texts = json.load(f)
    with open(out_path, "w", encoding="utf-8") as out:
        for text in texts:
            ids = processor.EncodeAsIds(text)
            row = {"text": text, "ids": ids, "decoded": processor.DecodeIds(ids)}
            if mode == "strings":
                row["ids_no_dummy_prefix"] = no_dummy.EncodeAsIds(text)
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
