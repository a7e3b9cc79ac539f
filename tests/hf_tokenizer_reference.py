#!/usr/bin/env python3
"""Reference ids from the `tokenizers` library for a tokenizer.json, for the
C++ tokenizer.json backend's live checks.

    hf_tokenizer_reference.py TOKENIZER_JSON TEXTS OUT.json
        TEXTS is a JSON list of strings, or an hh-rlhf .jsonl.gz file: the
        "chosen" then the "rejected" text of every record, in file order.
        Writes {"versions", "tokenizer", "texts", "ids" (add_special_tokens=False),
        "ids_special" (add_special_tokens=True), "decoded" (decode of "ids",
        skip_special_tokens=False)}, all from tokenizers.Tokenizer.from_file.

    hf_tokenizer_reference.py --convert-spm MODEL.model OUT_FOLDER [--style STYLE]
        Converts a sentencepiece BPE model (for instance the real Llama-2
        tokenizer.model) into OUT_FOLDER/tokenizer.json and
        tokenizer_config.json, the way transformers does for Llama:
          legacy        (default) transformers' LlamaConverter with legacy=True:
                        normalizer Prepend("▁") + Replace(" ", "▁"), no
                        pre-tokenizer, BPE(byte_fallback, fuse_unk, unk "<unk>"),
                        TemplateProcessing "<s> $A", decoder Replace/ByteFallback/
                        Fuse/Strip. This is the form of the published Llama-2
                        tokenizer.json files. (transformers 5's
                        LlamaConverter.converted() fails on BPE models, so the
                        converter's own normalizer/decoder methods are used with
                        the vocabulary and merges built as it meant to build them.)
          transformers5 what transformers 5 itself writes: LlamaTokenizer
                        loaded from the .model (legacy=False) and saved with
                        save_pretrained: no normalizer, Metaspace(prepend_scheme
                        "first", split=False), BPE without an unk_token.
          gemma         GemmaTokenizer loaded from the .model and saved
                        (normalizer Replace(" ", "▁"), Split(" ") pre-tokenizer,
                        "<bos>" template); <start_of_turn>/<end_of_turn> marked
                        special as GemmaConverter does.

Exits with 77 when tokenizers (or, for --convert-spm, transformers or
sentencepiece) is missing, so that the test skips; 2 on bad arguments.
"""
import gzip
import json
import os
import shutil
import sys
import tempfile

try:
    import tokenizers
    from tokenizers import AddedToken, Tokenizer
except ImportError as e:
    print(f"hf_tokenizer_reference.py: {e}", file=sys.stderr)
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
USAGE = ("usage: hf_tokenizer_reference.py TOKENIZER_JSON TEXTS(.json|.jsonl.gz) OUT.json\n"
         "       hf_tokenizer_reference.py --convert-spm MODEL.model OUT_FOLDER [--style legacy|transformers5|gemma]")
PUBLISHED_TEMPLATES = os.path.join(HERE, "fixtures", "chat_templates_published.json")


def versions():
    from importlib import metadata

    out = {"python": sys.version.split()[0], "tokenizers": tokenizers.__version__}
    for name in ("transformers", "sentencepiece"):
        try:
            out[name] = metadata.version(name)  # without importing transformers (slow)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def read_texts(path):
    if path.endswith(".jsonl.gz"):
        texts = []
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    record = json.loads(line)
                    texts += [record["chosen"], record["rejected"]]
        return texts
    with open(path, encoding="utf-8") as f:
        texts = json.load(f)
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise ValueError(f"{path}: expected a JSON list of strings")
    return texts


def reference(tokenizer_json, texts):
    tok = Tokenizer.from_file(tokenizer_json)
    plain = tok.encode_batch(texts, add_special_tokens=False)
    special = tok.encode_batch(texts, add_special_tokens=True)
    ids = [e.ids for e in plain]
    return {
        "versions": versions(),
        "tokenizer": os.path.abspath(tokenizer_json),
        "texts": texts,
        "ids": ids,
        "ids_special": [e.ids for e in special],
        "decoded": tok.decode_batch(ids, skip_special_tokens=False),
    }


# --- sentencepiece -> tokenizer.json, as transformers converts it -----------

def added_tokens_decoder(tokenizer_json_text):
    """tokenizer_config.json's added_tokens_decoder, in the form transformers writes."""
    out = {}
    for t in json.loads(tokenizer_json_text)["added_tokens"]:
        out[str(t["id"])] = {k: t[k] for k in ("content", "lstrip", "normalized", "rstrip", "single_word", "special")}
    return out


def convert_llama_legacy(model_path):
    """Tokenizer JSON text: transformers' LlamaConverter, legacy=True."""
    from types import SimpleNamespace

    from tokenizers import processors
    from tokenizers.models import BPE
    from transformers.convert_slow_tokenizer import LlamaConverter
    from transformers.tokenization_utils_base import generate_merges

    model_path = os.path.abspath(model_path)
    # The converter reads the model through `original_tokenizer`; a slow
    # LlamaTokenizer (gone in transformers 5) offered these attributes.
    proto_pieces = []
    original = SimpleNamespace(vocab_file=model_path, legacy=True, add_prefix_space=True,
                               convert_ids_to_tokens=lambda i: proto_pieces[i])
    converter = LlamaConverter(original)
    proto = converter.proto
    if proto.trainer_spec.model_type != 2:
        raise ValueError(f"{model_path}: not a BPE sentencepiece model")
    proto_pieces.extend(p.piece for p in proto.pieces)
    vocab_scores = converter.vocab(proto)
    vocab = {piece: i for i, (piece, _) in enumerate(vocab_scores)}
    # SpmConverter.tokenizer's BPE branch: merges ordered by the merged piece's score.
    merges = generate_merges(vocab, dict(vocab_scores))
    tok = Tokenizer(BPE(vocab, merges, unk_token=proto.trainer_spec.unk_piece, fuse_unk=True,
                        byte_fallback=True, dropout=None))
    # Control (3) and user-defined (4) pieces become added tokens, control ones special.
    tok.add_tokens([AddedToken(p.piece, normalized=False, special=p.type == 3)
                    for p in proto.pieces if p.type in (3, 4)])
    normalizer = converter.normalizer(proto)
    if normalizer is not None:
        tok.normalizer = normalizer
    pre_tokenizer = converter.pre_tokenizer("▁", True)
    if pre_tokenizer is not None:
        tok.pre_tokenizer = pre_tokenizer
    tok.decoder = converter.decoder("▁", True)
    # What LlamaTokenizerFast added on top: its special tokens and BOS template.
    unk, bos, eos = (proto.pieces[i].piece for i in range(3))
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in (unk, bos, eos)])
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos}:0 $A:0", pair=f"{bos}:0 $A:0 {bos}:1 $B:1", special_tokens=[(bos, vocab[bos])])
    return tok.to_str(pretty=True)


def _saved_by_transformers(model_path, config, cls_name):
    import transformers

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "in"), os.path.join(tmp, "out")
        os.makedirs(src)
        shutil.copyfile(model_path, os.path.join(src, "tokenizer.model"))
        with open(os.path.join(src, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            json.dump(dict(config, tokenizer_class=cls_name), f)
        tok = getattr(transformers, cls_name).from_pretrained(src)
        tok.save_pretrained(dst)
        with open(os.path.join(dst, "tokenizer.json"), encoding="utf-8") as f:
            return f.read()


def convert_llama_transformers5(model_path, legacy=False):
    """Tokenizer JSON text as transformers 5's LlamaTokenizer writes it from a .model."""
    return _saved_by_transformers(model_path, {"legacy": legacy, "add_bos_token": True, "add_eos_token": False,
                                               "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"},
                                  "LlamaTokenizer")


GEMMA_TURN_TOKENS = ("<start_of_turn>", "<end_of_turn>")


def convert_gemma(model_path):
    """Tokenizer JSON text as transformers 5's GemmaTokenizer writes it from a .model,
    with the turn tokens special (GemmaConverter.special_tokens)."""
    text = _saved_by_transformers(model_path, {"add_bos_token": True, "add_eos_token": False, "bos_token": "<bos>",
                                               "eos_token": "<eos>", "unk_token": "<unk>", "pad_token": "<pad>"},
                                  "GemmaTokenizer")
    data = json.loads(text)
    for t in data["added_tokens"]:
        if t["content"] in GEMMA_TURN_TOKENS:
            t["special"] = True
    return Tokenizer.from_str(json.dumps(data)).to_str(pretty=True)


CONVERTERS = {"legacy": convert_llama_legacy, "transformers5": convert_llama_transformers5, "gemma": convert_gemma}


def published_template(name):
    try:
        with open(PUBLISHED_TEMPLATES, encoding="utf-8") as f:
            return json.load(f).get(name)
    except OSError:
        return None


def llama2_config(tokenizer_json_text):
    """A tokenizer_config.json like the published Llama-2 chat ones."""
    config = {
        "add_bos_token": True,
        "add_eos_token": False,
        "added_tokens_decoder": added_tokens_decoder(tokenizer_json_text),
        "bos_token": "<s>",
        "clean_up_tokenization_spaces": False,
        "eos_token": "</s>",
        "legacy": False,
        "model_max_length": 1000000000000000019884624838656,
        "pad_token": None,
        "padding_side": "right",
        "sp_model_kwargs": {},
        "tokenizer_class": "LlamaTokenizer",
        "unk_token": "<unk>",
        "use_default_system_prompt": False,
    }
    template = published_template("llama2")
    if template is not None:
        config["chat_template"] = template
    return config


def write_json(path, value):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, ensure_ascii=False, indent=2)
        f.write("\n")


def convert_spm(model_path, out_folder, style):
    try:
        import sentencepiece  # noqa: F401  (the converters need it and protobuf)
        import transformers  # noqa: F401
    except ImportError as e:
        print(f"hf_tokenizer_reference.py: {e}", file=sys.stderr)
        return 77
    text = CONVERTERS[style](model_path)
    os.makedirs(out_folder, exist_ok=True)
    with open(os.path.join(out_folder, "tokenizer.json"), "w", encoding="utf-8") as f:
        f.write(text)
    if style == "gemma":
        config = {"add_bos_token": True, "add_eos_token": False,
                  "added_tokens_decoder": added_tokens_decoder(text), "bos_token": "<bos>",
                  "eos_token": "<eos>", "pad_token": "<pad>", "unk_token": "<unk>",
                  "tokenizer_class": "GemmaTokenizer", "clean_up_tokenization_spaces": False}
        template = published_template("gemma")
        if template is not None:
            config["chat_template"] = template
    else:
        config = llama2_config(text)
    write_json(os.path.join(out_folder, "tokenizer_config.json"), config)
    return 0


def main(argv):
    args = argv[1:]
    if args[:1] == ["--convert-spm"]:
        style = "legacy"
        if len(args) == 5 and args[3] == "--style" and args[4] in CONVERTERS:
            style = args[4]
        elif len(args) != 3:
            print(USAGE, file=sys.stderr)
            return 2
        if not os.path.isfile(args[1]):
            print(f"hf_tokenizer_reference.py: no such file: {args[1]}", file=sys.stderr)
            return 2
        return convert_spm(args[1], args[2], style)
    if len(args) != 3 or any(a.startswith("-") for a in args):
        print(USAGE, file=sys.stderr)
        return 2
    tokenizer_json, texts_path, out_path = args
    for path in (tokenizer_json, texts_path):
        if not os.path.isfile(path):
            print(f"hf_tokenizer_reference.py: no such file: {path}", file=sys.stderr)
            return 2
    try:
        texts = read_texts(texts_path)
    except ValueError as e:
        print(f"hf_tokenizer_reference.py: {e}", file=sys.stderr)
        return 2
    out = reference(tokenizer_json, texts)
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
