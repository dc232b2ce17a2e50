#!/usr/bin/env python3
"""Writes the safetensors fixtures of tests/test_safetensors.c, by hand (struct
+ json) exactly as the format specifies, plus malformed variants that a
reader must reject. Values are chosen to be exact in every dtype.

  good.safetensors         F32 a[2,3] = 0.5*i - 1, F16 h[4] = (1, -2, 0.5, 65504),
                           BF16 b[2] = (1.5, -3), F64 d[3] = (0.25, 1, 1e10),
                           I64 n[2] = (7, -9), U8 u[3] = (0, 128, 255),
                           F16 s[3] = (2^-24, 2^-14 - 2^-24, inf), metadata
  written.safetensors      the reference layout of a file our writer must reproduce
  bad_*.safetensors        one defect each (see BAD below)

Run from the repository root:  /usr/bin/python3 tools/make_safetensors_fixtures.py
"""
import json
import os
import struct
import zlib

OUT = "tests/fixtures/safetensors"


def build(tensors, meta=None, pad=True):
    """tensors: list of (name, dtype, shape, bytes). Returns (header dict, data bytes)."""
    header, data = {}, b""
    if meta is not None:
        header["__metadata__"] = meta
    for name, dtype, shape, blob in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    return header, data


def write(path, header_bytes, data):
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header_bytes)) + header_bytes + data)


def with_checksum(path):
    """Fills in the "clvit.crc32" metadata that clvit's writer adds: zlib's crc32
    of the whole file with the 8 digits read as '0's (include/clvit/safetensors.h)."""
    key = b'"clvit.crc32":"00000000"'
    b = open(path, "rb").read()
    assert b.count(key) == 1
    digits = b"%08x" % zlib.crc32(b)
    open(path, "wb").write(b.replace(key, key[:-9] + digits + b'"'))


def encode(header):
    h = json.dumps(header, separators=(",", ":")).encode()
    return h + b" " * (-len(h) % 8)


def main():
    os.makedirs(OUT, exist_ok=True)
    good = [
        ("a", "F32", [2, 3], struct.pack("<6f", *[0.5 * i - 1 for i in range(6)])),
        ("h", "F16", [4], struct.pack("<4e", 1.0, -2.0, 0.5, 65504.0)),
        ("b", "BF16", [2], bytes.fromhex("c03f") + bytes.fromhex("40c0")),  # 1.5, -3.0 little-endian
        ("d", "F64", [3], struct.pack("<3d", 0.25, 1.0, 1e10)),
        ("n", "I64", [2], struct.pack("<2q", 7, -9)),
        ("u", "U8", [3], bytes([0, 128, 255])),
        # F16 edge cases: smallest and largest subnormal, infinity
        ("s", "F16", [3], struct.pack("<3e", 2.0**-24, 2.0**-14 - 2.0**-24, float("inf"))),
    ]
    meta = {"mean": "[0.5, 0.25, 0.125]", "format": "fixture"}
    header, data = build(good, meta)
    write(f"{OUT}/good.safetensors", encode(header), data)

    # what our writer must produce byte for byte: metadata first, names sorted, padded with spaces
    ref = [("b", "F32", [3], struct.pack("<3f", 1, -2, 3)),
           ("blocks.0.w", "F32", [2, 2], struct.pack("<4f", 0.5, 0.25, -1, 8)),
           ("z", "F32", [], struct.pack("<f", 42))]
    header, data = build(ref, {"task": "3", "method": "rkr", "clvit.crc32": "00000000"})
    write(f"{OUT}/written.safetensors", encode(header), data)
    with_checksum(f"{OUT}/written.safetensors")

    small = [("x", "F32", [2], struct.pack("<2f", 1, 2)), ("y", "F32", [1], struct.pack("<f", 3))]
    h, d = build(small)
    bad = {}
    bad["truncated_data"] = (encode(h), d[:-2])
    bad["short"] = None
    # header length larger than the file
    bad["header_too_long"] = "raw-len"
    hh = json.loads(json.dumps(h)); hh["y"]["data_offsets"] = [4, 8]
    bad["overlap"] = (encode(hh), d)
    hh = json.loads(json.dumps(h)); hh["y"]["data_offsets"] = [8, 16]
    bad["out_of_range"] = (encode(hh), d)
    hh = json.loads(json.dumps(h)); hh["y"]["data_offsets"] = [12, 16]
    bad["hole"] = (encode(hh), d + b"\0\0\0\0")
    hh = json.loads(json.dumps(h)); hh["y"]["shape"] = [2]
    bad["size_mismatch"] = (encode(hh), d)
    bad["bad_json"] = (b'{"x": {"dtype": "F32", ', d)
    hdr = encode(h).decode().rstrip()
    dup = hdr[:-1] + ',"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'
    bad["duplicate"] = (dup.encode(), d)
    hh = json.loads(json.dumps(h)); hh["y"]["dtype"] = "F8"
    bad["unknown_dtype"] = (encode(hh), d)
    hh = json.loads(json.dumps(h)); hh["y"]["shape"] = [-1]
    bad["negative_shape"] = (encode(hh), d)
    hh = json.loads(json.dumps(h)); hh["__metadata__"] = {"k": 5}
    bad["meta_not_string"] = (encode(hh), d)
    hh = json.loads(json.dumps(h)); hh["x"]["shape"] = [4294967296, 4294967296, 4294967296]
    bad["huge_shape"] = (encode(hh), d)
    bad["trailing_garbage"] = (encode(h).rstrip() + b"xx" + b" " * 6, d)
    hh = json.loads(json.dumps(h)); del hh["y"]["data_offsets"]
    bad["missing_field"] = (encode(hh), d)
    hh = json.loads(json.dumps(h)); hh["y"]["shape"] = [1.5]
    bad["fractional_shape"] = (encode(hh), d)
    hh = json.loads(json.dumps(h)); hh[""] = hh.pop("y")
    bad["empty_name"] = (encode(hh), d)
    bad["not_object"] = (b"[1, 2]  ", d)
    bad["trailing_data"] = (encode(h), d + b"\0\0\0\0")
    hh = json.loads(json.dumps(h)); hh["y"]["data_offsets"] = [8, 12, 12]
    bad["offsets_not_pair"] = (encode(hh), d)
    hh = json.loads(json.dumps(h)); hh["__metadata__"] = "k"
    bad["meta_not_object"] = (encode(hh), d)
    for name, v in bad.items():
        path = f"{OUT}/bad_{name}.safetensors"
        if v is None:
            open(path, "wb").write(b"\x10\0\0")
        elif v == "raw-len":
            open(path, "wb").write(struct.pack("<Q", 1 << 40) + b"{}")
        else:
            write(path, v[0], v[1])


if __name__ == "__main__":
    main()
