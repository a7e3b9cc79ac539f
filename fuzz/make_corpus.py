#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/ (small valid and invalid inputs).

Run from anywhere; the files it writes are checked in, so rerun it only to
change the seeds.
"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def safetensors(header, data=b"", pad=True):
    text = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + data


def header_seeds():
    f32 = struct.pack("<4f", 1.0, -2.0, 0.5, 3.0)
    return {
        "valid_one_f32": safetensors(
            {"__metadata__": {"format": "pt"},
             "w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}, f32),
        "valid_many_dtypes": safetensors(
            {"a": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]},
             "b": {"dtype": "I64", "shape": [], "data_offsets": [4, 12]},
             "c": {"dtype": "BOOL", "shape": [3], "data_offsets": [12, 15]},
             "d": {"dtype": "U8", "shape": [0, 7], "data_offsets": [15, 15]},
             "e": {"dtype": "F16", "shape": [1], "data_offsets": [15, 17]}},
            bytes(range(17))),
        "valid_empty": safetensors({}),
        # Huge dimensions beside a zero: one mutation away from a shape whose
        # element count overflows 64 bits.
        "valid_zero_huge_dims": safetensors(
            {"z": {"dtype": "F32", "shape": [0, 4294967296, 4294967296],
                   "data_offsets": [0, 0]}}),
        "valid_unpadded": safetensors(
            {"w": {"dtype": "I16", "shape": [3], "data_offsets": [0, 6]}}, b"abcdef", pad=False),
        "bad_overlap": safetensors(
            {"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},
             "b": {"dtype": "U8", "shape": [4], "data_offsets": [2, 6]}}, b"abcdef"),
        "bad_shape": safetensors(
            {"w": {"dtype": "F32", "shape": [4, 2], "data_offsets": [0, 16]}}, f32),
        "bad_dtype": safetensors(
            {"w": {"dtype": "F8_E5M2", "shape": [4], "data_offsets": [0, 4]}}, b"abcd"),
        "bad_length": struct.pack("<Q", 1 << 40) + b"{}",
        "bad_truncated": safetensors(
            {"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, f32[:9]),
    }


def config_seeds():
    llama = {
        "architectures": ["LlamaForSequenceClassification"], "model_type": "llama",
        "vocab_size": 64, "hidden_size": 32, "intermediate_size": 48,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "max_position_embeddings": 128, "rms_norm_eps": 1e-6, "rope_theta": 500000.0,
        "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                         "high_freq_factor": 4.0, "original_max_position_embeddings": 64},
        "bos_token_id": 1, "eos_token_id": [2, 3], "pad_token_id": None,
        "id2label": {"0": "LABEL_0"}, "torch_dtype": "bfloat16", "tie_word_embeddings": False,
    }
    qwen = {
        "architectures": ["Qwen2ForSequenceClassification"], "model_type": "qwen2",
        "vocab_size": 64, "hidden_size": 32, "intermediate_size": 48,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 4,
        "head_dim": None, "sliding_window": 16, "use_sliding_window": True,
        "max_window_layers": 1, "layer_types": ["sliding_attention", "full_attention"],
        "rope_parameters": {"rope_type": "linear", "rope_theta": 1e6, "factor": 2.0},
        "num_labels": 1, "eos_token_id": 5, "dtype": "float32", "attention_bias": True,
    }
    mistral = {
        "architectures": ["MistralForSequenceClassification"], "vocab_size": 64,
        "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2,
        "num_attention_heads": 4, "head_dim": 16, "sliding_window": None,
        "rope_scaling": {"type": "linear", "factor": 4}, "pad_token_id": 0,
    }
    return {
        "llama3.json": json.dumps(llama, indent=2).encode(),
        "qwen2.json": json.dumps(qwen, indent=2).encode(),
        "mistral.json": json.dumps(mistral).encode(),
        "empty_object.json": b"{}",
        "bad_type.json": b'{"hidden_size": "32", "num_attention_heads": -4}',
        "bad_rope.json": b'{"rope_scaling": {"rope_type": "yarn", "factor": 4.0}}',
        "bad_syntax.json": b'{"hidden_size": 32,\n "vocab_size": ,}',
        # Found by fuzz_config (to_json built a 1.35-billion-entry id2label).
        "regression_num_labels.json": b'{"num_labels": 1354566326}',
    }


def write(target, seeds):
    folder = os.path.join(HERE, "corpus", target)
    os.makedirs(folder, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(folder, name), "wb") as out:
            out.write(data)


if __name__ == "__main__":
    write("fuzz_safetensors_header", header_seeds())
    write("fuzz_config", config_seeds())
