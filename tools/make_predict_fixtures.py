#!/usr/bin/env python3
"""Writes the fixtures of tests/test_predict.c: two PNG images and the logits
PyTorch computes for them with vit_nano_patch4_32 + a 10-class head whose
weights come from formula() in make_vit_fixtures.py (the C test writes the
same weights into a safetensors file and runs the predictor on the PNGs).

  tests/fixtures/predict/gray28.png   28x28 grayscale: padded to 32, replicated to 3 channels
  tests/fixtures/predict/rgb32.png    32x32 RGB: used as it is
  tests/fixtures/predict/expected.safetensors  logits [2, 10]

Presentation (as in clvit): pixels / 255, zero pixels padded around the
28x28 image before normalizing, then (x - mean) / std per channel.

Run from the repository root:  /usr/bin/python3 tools/make_predict_fixtures.py
"""
import os
import struct
import sys
import zlib

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_vit_fixtures import VisionTransformer, formula, write_safetensors  # noqa: E402

MEAN = [0.5071, 0.4865, 0.4409]
STD = [0.2673, 0.2564, 0.2762]
OUT = "tests/fixtures/predict"


def png(path, pixels, w, h, channels):
    """A minimal valid PNG: 8-bit gray (type 0) or RGB (type 2), filter 0 rows."""
    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + bytes(pixels[y * w * channels:(y + 1) * w * channels]) for y in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0 if channels == 1 else 2, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9)) +
                chunk(b"IEND", b""))


def main():
    os.makedirs(OUT, exist_ok=True)
    gray = [(y * 7 + x * 13 + (x * y) % 31) % 256 for y in range(28) for x in range(28)]
    rgb = [(y * 11 + x * 5 + c * 80 + (x * y * (c + 1)) % 37) % 256 for y in range(32) for x in range(32)
           for c in range(3)]
    png(f"{OUT}/gray28.png", gray, 28, 28, 1)
    png(f"{OUT}/rgb32.png", rgb, 32, 32, 3)

    mean = torch.tensor(MEAN, dtype=torch.float64).view(3, 1, 1)
    std = torch.tensor(STD, dtype=torch.float64).view(3, 1, 1)
    g = torch.zeros(32, 32, dtype=torch.float64)
    g[2:30, 2:30] = torch.tensor(gray, dtype=torch.float64).view(28, 28) / 255
    x0 = (g.expand(3, 32, 32) - mean) / std
    x1 = (torch.tensor(rgb, dtype=torch.float64).view(32, 32, 3).permute(2, 0, 1) / 255 - mean) / std
    x = torch.stack([x0, x1])

    m = VisionTransformer(img=32, patch=4, in_chans=3, dim=64, depth=4, heads=2, hidden=256,
                          num_classes=10).double()
    with torch.no_grad():
        params = dict(m.named_parameters())
        for k, name in enumerate(sorted(params)):
            p = params[name]
            p.copy_(formula(name, k, p.numel()).reshape(p.shape))
        logits = m(x)
    write_safetensors(f"{OUT}/expected.safetensors", {"logits": logits},
                      {"model": "vit_nano_patch4_32 + head 10, formula() weights",
                       "images": "gray28.png, rgb32.png",
                       "mean": str(MEAN), "std": str(STD),
                       "made_by": "tools/make_predict_fixtures.py"})


if __name__ == "__main__":
    main()
