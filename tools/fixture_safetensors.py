"""Writing safetensors fixtures from the tools/make_*_fixtures.py scripts.

write_safetensors(path, {name: tensor}, metadata): tensors are stored as F32
(the fixtures' float64 references rounded once), unless keep_dtype, when each
keeps its own dtype (F32, F64 or I64: timm's index buffers)."""
import json
import struct

import torch

DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64"}


def write_safetensors(path, tensors, meta, keep_dtype=False):
    header = {"__metadata__": meta}
    blobs, off = [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous() if keep_dtype else t.detach().to(torch.float32).contiguous()
        b = t.numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
