#!/usr/bin/env python3
"""Writes a safetensors file assembled by hand from the format's specification
(https://github.com/huggingface/safetensors#format), independently of openrm,
for test_safetensors' SafetensorsSpec tests to compare against.

    safetensors_reference.py write OUT      write the reference file to OUT
    safetensors_reference.py check FILE     parse FILE per the spec with numpy
                                            and check it holds the same tensors

The spec: 8 bytes little-endian u64 N; N bytes of UTF-8 JSON (an object of
name -> {"dtype", "shape", "data_offsets": [begin, end]} plus an optional
"__metadata__" object of strings), padded with spaces so that the data starts
at a multiple of 8 (what the reference writer does); then the tensors' raw
little-endian bytes, each at its data_offsets relative to the data section.

The tensors must match reference_tensors() in test_safetensors.cpp. Exits 77
(the test then skips) when numpy is missing.
"""
import json
import struct
import sys

try:
    import numpy as np
except ImportError:
    sys.exit(77)


def bf16_bytes(values):
    # bfloat16 is the top half of a float32; these values are exact in it.
    bits = np.array(values, dtype="<f4").view("<u4") >> 16
    return bits.astype("<u2").tobytes()


def reference_tensors():
    """(name, dtype, shape, raw bytes) in file order."""
    return [
        ("a.weight", "F32", [2, 3], (np.arange(6, dtype="<f4") * 0.5 - 1).tobytes()),
        ("b", "F16", [4], np.array([0, 1.5, -2, 65504], dtype="<f2").tobytes()),
        ("c", "BF16", [2, 2], bf16_bytes([1, -2, 0.5, 3])),
        ("d", "I64", [3], np.array([-1, 0, 2**40], dtype="<i8").tobytes()),
        ("e", "BOOL", [3], np.array([True, False, True], dtype="?").tobytes()),
        ("f", "U8", [], np.array(7, dtype="u1").tobytes()),
        ("g", "I32", [0, 2], b""),
        ("\u00fcber", "I8", [2], np.array([-128, 127], dtype="i1").tobytes()),
        ("h", "F64", [1], np.array([0.1], dtype="<f8").tobytes()),
        ("i", "I16", [2], np.array([-300, 300], dtype="<i2").tobytes()),
    ]


def build():
    header = {"__metadata__": {"format": "pt"}}
    data = b""
    for name, dtype, shape, raw in reference_tensors():
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    # Compact JSON with raw UTF-8, as the reference (serde_json) writes it.
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + data


def check(path):
    blob = open(path, "rb").read()
    (n,) = struct.unpack("<Q", blob[:8])
    assert (8 + n) % 8 == 0, "data section not 8-byte aligned"
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = blob[8 + n:]
    assert header.pop("__metadata__") == {"format": "pt"}
    expected = reference_tensors()
    assert list(header) == [name for name, *_ in expected], list(header)
    end = 0
    for name, dtype, shape, raw in expected:
        entry = header[name]
        assert entry["dtype"] == dtype and entry["shape"] == shape, (name, entry)
        begin, stop = entry["data_offsets"]
        assert begin == end, (name, begin, end)
        assert data[begin:stop] == raw, name
        end = stop
    assert end == len(data), "trailing bytes"


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("write", "check"):
        sys.exit(__doc__)
    if sys.argv[1] == "write":
        with open(sys.argv[2], "wb") as out:
            out.write(build())
    else:
        check(sys.argv[2])
