"""Scores texts and conversations with transformers, from an exported folder.

Run by tests/test_export.cpp with the reference environment's python
(scripts/install-reference.sh):

    python export_reference.py FOLDER INPUT.json OUTPUT.json

INPUT.json: {"texts": [str, ...], "conversations": [[{"role", "content"}, ...], ...],
"pairs": [[first, second], ...]} (each key optional).
The folder is loaded with AutoTokenizer and AutoModelForSequenceClassification
alone (no other arguments than float32), and scored in float32, in batches
padded by the tokenizer: the texts with tokenizer(texts, padding=True) on the
tokenizer's own padding side, the conversations with
tokenizer.apply_chat_template(..., padding=True) padded on the right, the
pairs with tokenizer(firsts, seconds, padding=True), token_type_ids passed on.
OUTPUT.json: {"versions": {...}, "padding_side": str, "texts": [{"ids", "reward"}],
"conversations": [{"ids", "reward", "text"}], "pairs": [{"ids", "reward",
"type_ids"}]}; ids without the padding.
Exit status 77 when transformers is not importable.
"""

import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

try:
    import tokenizers
    import torch
    import transformers
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
except ImportError as e:  # the reference environment is absent
    print(f"export_reference.py: {e}", file=sys.stderr)
    sys.exit(77)


def rows(batch, logits):
    out = []
    for ids, mask, reward in zip(batch["input_ids"], batch["attention_mask"], logits[:, 0]):
        out.append({"ids": [int(i) for i, m in zip(ids, mask) if m], "reward": float(reward)})
    return out


def main():
    folder, input_path, output_path = sys.argv[1:4]
    with open(input_path, encoding="utf-8") as f:
        request = json.load(f)
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder, dtype=torch.float32)
    model.eval()
    result = {
        "versions": {
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "torch": torch.__version__,
        },
        "tokenizer_class": type(tokenizer).__name__,
        "padding_side": tokenizer.padding_side,
        "texts": [],
        "conversations": [],
        "pairs": [],
    }
    with torch.no_grad():
        if request.get("texts"):
            batch = tokenizer(request["texts"], padding=True, return_tensors="pt")
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            result["texts"] = rows(batch, logits)
        if request.get("conversations"):
            tokenizer.padding_side = "right"
            batch = tokenizer.apply_chat_template(
                request["conversations"], tokenize=True, padding=True, return_dict=True, return_tensors="pt"
            )
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            result["conversations"] = rows(batch, logits)
            texts = tokenizer.apply_chat_template(request["conversations"], tokenize=False)
            for row, text in zip(result["conversations"], texts):
                row["text"] = text
        if request.get("pairs"):
            firsts = [p[0] for p in request["pairs"]]
            seconds = [p[1] for p in request["pairs"]]
            batch = tokenizer(firsts, seconds, padding=True, return_tensors="pt")
            logits = model(**batch).logits
            result["pairs"] = rows(batch, logits)
            for row, types, mask in zip(result["pairs"], batch["token_type_ids"], batch["attention_mask"]):
                row["type_ids"] = [int(t) for t, m in zip(types, mask) if m]
    with open(output_path, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
