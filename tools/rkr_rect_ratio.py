#!/usr/bin/env python3
"""How large are the rectifications RKR learns? For every task file of rkr
runs (and the shared tensors of maskrkr runs with --maskrkr-source first),
per adapted layer: ||LM RM||_F / ||W||_F with W the layer's base weight, and
||F - 1||_inf. Prints one line per layer kind (patch_embed, qkv, proj, fc1,
fc2, conv, ...) with the median, min and max over layers and tasks, and
the median over all. This is the measurement behind maskrkr's
--maskrkr-source random scale (docs/methods.md).

    tools/rkr_rect_ratio.py runs/rkr-s0 runs/rkr-s1 ...

Pure Python (no numpy): ||LM RM||_F^2 = trace((LM^T LM)(RM RM^T)), K x K.
In RKR's conv view the placement only permutes entries, so the norm is the
same."""
import glob
import json
import math
import os
import re
import struct
import sys


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    tensors = {}
    for name, t in header.items():
        if name == "__metadata__" or t["dtype"] != "F32":
            continue
        b, e = t["data_offsets"]
        tensors[name] = (t["shape"], struct.unpack("<%df" % ((e - b) // 4), data[b:e]))
    return tensors


def gram_rows(shape, v):
    """A^T A for A rows x K (row-major)."""
    rows, k = shape
    g = [[0.0] * k for _ in range(k)]
    for r in range(rows):
        row = v[r * k:(r + 1) * k]
        for i in range(k):
            for j in range(k):
                g[i][j] += row[i] * row[j]
    return g


def gram_cols(shape, v):
    """B B^T for B K x cols (row-major)."""
    k, cols = shape
    g = [[0.0] * k for _ in range(k)]
    for i in range(k):
        for j in range(k):
            g[i][j] = sum(v[i * cols + c] * v[j * cols + c] for c in range(cols))
    return g


def kind_of(layer):
    if layer.startswith("patch_embed"):
        return "patch_embed"
    last = layer.rsplit(".", 1)[-1]
    if re.match(r"conv\d|downsample", last) or ".downsample." in layer + ".":
        return "conv"
    return last


def main(dirs):
    ratios = {}
    fdev = {}
    for d in dirs:
        base = read_safetensors(os.path.join(d, "base.safetensors"))
        for path in sorted(glob.glob(os.path.join(d, "task-*.safetensors"))):
            ts = read_safetensors(path)
            for name, (shape, lm) in ts.items():
                m = re.match(r"(rkr|maskrkr)\.(.*)\.lm$", name)
                if not m:
                    continue
                prefix, layer = m.group(1), m.group(2)
                rshape, rm = ts["%s.%s.rm" % (prefix, layer)]
                _, f = ts["%s.%s.f" % (prefix, layer)]
                _, w = base[layer + ".weight"]
                a, b = gram_rows(shape, lm), gram_cols(rshape, rm)
                k = shape[1]
                p2 = sum(a[i][j] * b[j][i] for i in range(k) for j in range(k))
                w2 = sum(x * x for x in w)
                kind = kind_of(layer)
                ratios.setdefault(kind, []).append(math.sqrt(max(p2, 0.0) / w2))
                fdev.setdefault(kind, []).append(max(abs(x - 1.0) for x in f))
    if not ratios:
        sys.exit("no rkr.*.lm or maskrkr.*.lm tensors in the task files of " + " ".join(dirs))

    def med(v):
        v = sorted(v)
        return v[len(v) // 2] if len(v) % 2 else 0.5 * (v[len(v) // 2 - 1] + v[len(v) // 2])

    print("%-12s %6s %10s %10s %10s %12s" % ("layer kind", "n", "median", "min", "max", "max|F-1| med"))
    every = []
    for kind in sorted(ratios):
        v = ratios[kind]
        every += v
        print("%-12s %6d %10.4f %10.4f %10.4f %12.4f" % (kind, len(v), med(v), min(v), max(v), med(fdev[kind])))
    print("%-12s %6d %10.4f %10.4f %10.4f" % ("all", len(every), med(every), min(every), max(every)))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
