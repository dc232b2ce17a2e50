#!/usr/bin/python3
"""`clvit export` round trip through PyTorch: a tiny two-task run per method
and backbone (Split Fashion-MNIST, 64 images a task, one epoch), its task 2
exported, the file loaded into the hand-written PyTorch references of
tools/make_{vit,swin,resnet}_fixtures.py (timm's and torchvision's names)
with every tensor accounted for, and PyTorch's logits on two random PNGs
compared with `clvit predict --run R --task 2 --json` (max |diff| <= --tol).

The references stand in for timm (not installed here): the ViT's
state_dict names are timm's; the Swin reference keeps timm 0.6's names, so
the exported file (timm >= 0.9's layout) is renamed back by the inverse of
tools/make_swin_layout_fixtures.py's renaming, and its buffers
(relative_position_index, attn_mask: not persistent in timm >= 0.9.5) are
the only keys the file may lack; the ResNet's are torchvision's
(num_batches_tracked included).

Run from the repository root after `make` (about a minute):
    /usr/bin/python3 tools/check_export_vs_torch.py [--runs vit_nano_patch4_32:rkr,...]
"""
import argparse
import json
import os
import re
import struct
import subprocess
import sys
import tempfile

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_predict_fixtures import png  # noqa: E402
from make_resnet_fixtures import ResNet  # noqa: E402
from make_swin_fixtures import SwinTransformer  # noqa: E402
from make_vit_fixtures import VisionTransformer  # noqa: E402

DEFAULT_RUNS = ",".join("%s:%s" % (m, k) for m in ("vit_nano_patch4_32", "swin_nano_patch2_window4_32", "resnet_nano_cifar")
                        for k in ("rkr", "piggyback", "maskrkr"))
DTYPES = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64}


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    out = {}
    for name, h in header.items():
        b, e = h["data_offsets"]
        t = torch.frombuffer(bytearray(data[b:e]), dtype=DTYPES[h["dtype"]]) if e > b else torch.zeros(0)
        out[name] = t.reshape(h["shape"]).clone()
    return out, meta


def reference(model, classes):
    """The PyTorch module, its head, and the exported name -> reference name map."""
    if model == "vit_nano_patch4_32":
        net = VisionTransformer(img=32, patch=4, in_chans=3, dim=64, depth=4, heads=2, hidden=256, num_classes=classes)
        return net, lambda k: k, ()
    if model == "swin_nano_patch2_window4_32":
        net = SwinTransformer(32, 2, 3, 32, [2, 2, 2], [2, 4, 8], 4)
        net.head = nn.Linear(128, classes)
        net.forward_logits = lambda x: net.head(net(x))

        def to06(k):  # timm >= 0.9 -> 0.6: merging closes stage i-1 instead of opening stage i
            k = re.sub(r"^layers\.(\d+)\.downsample", lambda m: "layers.%d.downsample" % (int(m.group(1)) - 1), k)
            return re.sub(r"^head\.fc\.", "head.", k)
        return net, to06, ("relative_position_index", "attn_mask")
    if model == "resnet_nano_cifar":
        net = ResNet(3, [16, 32, 64, 128], [1, 1, 1, 1])
        net.fc = nn.Linear(128, classes)
        net.forward_logits = lambda x: net.fc(ResNet.forward(net, x))
        return net, lambda k: k, ()
    raise SystemExit("no reference for " + model)


def check(model, method, tmp, tol, images, pixels):
    run = os.path.join(tmp, "%s-%s" % (model, method))
    subprocess.run(["build/clvit", "train", "--tasks", "2", "--train-limit", "64", "--test-limit", "32", "--epochs",
                    "1", "--threads", "1", "--quiet", "--model", model, "--method", method, "--out", run],
                   check=True, capture_output=True)
    out = os.path.join(tmp, "%s-%s.safetensors" % (model, method))
    subprocess.run(["build/clvit", "export", "--run", run, "--task", "2", "--out", out], check=True,
                   capture_output=True)
    tensors, meta = read_safetensors(out)
    classes = tensors["fc.weight" if model.startswith("resnet") else
                      "head.fc.weight" if model.startswith("swin") else "head.weight"].shape[0]
    net, rename, buffers = reference(model, classes)
    net = net.double().eval()
    sd = {rename(k): v for k, v in tensors.items()}
    want = net.state_dict()
    missing = [k for k in want if k not in sd and not any(b in k for b in buffers)]
    unexpected = [k for k in sd if k not in want]
    shapes = [k for k in sd if k in want and tuple(sd[k].shape) != tuple(want[k].shape)]
    if missing or unexpected or shapes:
        print("%s %s: missing %s, unexpected %s, shapes differ %s  FAIL" % (model, method, missing[:4], unexpected[:4],
                                                                         shapes[:4]))
        return False
    net.load_state_dict({k: v.double() if v.is_floating_point() else v for k, v in sd.items()}, strict=not buffers)
    mean = torch.tensor(json.loads(meta["mean"]), dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor(json.loads(meta["std"]), dtype=torch.float64).view(1, 3, 1, 1)
    x = (torch.stack([p.permute(2, 0, 1).double() / 255.0 for p in pixels]) - mean) / std
    with torch.no_grad():
        ref = net.forward_logits(x) if hasattr(net, "forward_logits") else net(x)
    got = subprocess.run(["build/clvit", "predict", "--run", run, "--task", "2", "--json"] + images, check=True,
                         capture_output=True, text=True).stdout
    got = torch.tensor([r["logits"] for r in json.loads(got)], dtype=torch.float64)
    diff = (got - ref).abs().max().item()
    print("%-28s %-10s strict load, max |clvit predict - pytorch(export)| = %.2e%s" % (
        model, method, diff, "" if diff <= tol else "  FAIL"))
    return diff <= tol


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", default=DEFAULT_RUNS, help="model:method,...")
    ap.add_argument("--tol", type=float, default=1e-4)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        images, pixels = [], []
        for i in range(2):
            g = torch.Generator().manual_seed(200 + i)
            px = torch.randint(0, 256, (32, 32, 3), generator=g, dtype=torch.uint8)
            path = os.path.join(tmp, "img%d.png" % i)
            png(path, bytes(px.flatten().tolist()), 32, 32, 3)
            images.append(path)
            pixels.append(px)
        ok = all([check(*r.split(":"), tmp, a.tol, images, pixels) for r in a.runs.split(",")])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
