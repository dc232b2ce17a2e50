#!/usr/bin/python3
"""Converts a PyTorch checkpoint (.pth / .bin / .pt: a state dict, or a dict
holding one under "state_dict", "model" or "module") to safetensors for
`clvit train --weights` and `clvit predict --weights`, with Debian's
python3-torch. Floating-point tensors are written as F32 under their own
names (a leading "module." from DataParallel is removed); integer buffers
such as BatchNorm's num_batches_tracked are left out (clvit does not use
them). Metadata "model" is set with --model.

  /usr/bin/python3 tools/convert_to_safetensors.py resnet18.pth resnet18.safetensors --model resnet18
"""
import argparse
import json
import struct
import sys

import torch


def state_dict_of(obj):
    if isinstance(obj, dict) and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "module", "model_ema"):
            if key in obj:
                return state_dict_of(obj[key])
    if hasattr(obj, "state_dict"):
        return obj.state_dict()
    raise SystemExit("no state dict found (keys: %s)" % (list(obj)[:10] if isinstance(obj, dict) else type(obj)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--model", default="", help="clvit model name, stored as metadata")
    a = ap.parse_args()
    sd = state_dict_of(torch.load(a.src, map_location="cpu"))
    header, blobs, off, skipped = {}, [], 0, []
    for name, t in sd.items():
        if not t.is_floating_point():
            skipped.append(name)
            continue
        if name.startswith("module."):
            name = name[len("module."):]
        b = t.detach().to(torch.float32).contiguous().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = {"format": "pt", "source": a.src}
    if a.model:
        header["__metadata__"]["model"] = a.model
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(a.dst + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    import os
    os.replace(a.dst + ".tmp", a.dst)
    print("%s: %d tensors, %.1f MB%s" % (a.dst, len(blobs), off / 1e6,
                                         "; left out %d integer buffers" % len(skipped) if skipped else ""),
          file=sys.stderr)


if __name__ == "__main__":
    main()
