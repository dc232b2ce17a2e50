#!/usr/bin/python3
"""Checks `clvit predict` against PyTorch on full-size timm/torchvision-shaped
networks with random weights (too large to commit as test fixtures):
resnet18, swin_tiny_patch4_window7_224 and vit_tiny_patch16_224 by default.
Swin-T is checked twice: in timm 0.6's layout with a 10-class head, and as
timm >= 0.9 saves it (patch merging renamed to the start of stages 1-3, no
buffers, head.fc) with a 1000-class ImageNet head and no metadata
(tools/make_swin_layout_fixtures.py's renaming).

For each model: random weights under timm's names (batch norms with random
running statistics) and a random 10-class head are written as safetensors,
two random 224x224 RGB PNGs are classified by `build/clvit predict --json`,
and the logits are compared with the hand-written PyTorch reference of
tools/make_{resnet,swin,vit}_fixtures.py on the same pixels. Prints the
largest absolute difference per model; exits 1 above --tol (1e-4).

Run from the repository root after `make`:
    /usr/bin/python3 tools/check_predict_vs_torch.py [--models resnet18,...]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_predict_fixtures import png  # noqa: E402
from fixture_safetensors import write_safetensors  # noqa: E402
from make_resnet_fixtures import ResNet  # noqa: E402
from make_swin_fixtures import SwinTransformer  # noqa: E402
from make_swin_layout_fixtures import timm_09_names  # noqa: E402
from make_vit_fixtures import VisionTransformer  # noqa: E402

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


def build(name):
    if name == "resnet18":
        return ResNet(7, [64, 128, 256, 512], [2, 2, 2, 2]), 512
    if name == "swin_tiny_patch4_window7_224":
        return SwinTransformer(224, 4, 3, 96, [2, 2, 6, 2], [3, 6, 12, 24], 7), 768
    if name == "vit_tiny_patch16_224":
        return VisionTransformer(img=224, patch=16, in_chans=3, dim=192, depth=12, heads=3, hidden=768), 192
    raise SystemExit("unknown model " + name)


def check(name, tmp, tol, timm09=False):
    torch.manual_seed(7)
    net, feat = build(name)
    net = net.double().eval()
    with torch.no_grad():
        for k, p in net.named_parameters():  # random but well-scaled: outputs O(1)
            if p.dim() >= 2:
                fan_in = p[0].numel()
                p.copy_(torch.randn_like(p) / fan_in ** 0.5)
            elif k.endswith("weight"):
                p.copy_(1 + 0.1 * torch.randn_like(p))
            else:
                p.copy_(0.1 * torch.randn_like(p))
        for k, b in net.named_buffers():
            if k.endswith("running_mean"):
                b.copy_(0.1 * torch.randn_like(b))
            elif k.endswith("running_var"):
                b.copy_(0.5 + torch.rand_like(b))
    head = nn.Linear(feat, 1000 if timm09 else 10).double()
    tensors = {k: v for k, v in net.state_dict().items() if v.dtype.is_floating_point}
    hname = "fc" if name.startswith("resnet") else "head"  # torchvision's and timm's ResNet call it fc
    tensors[hname + ".weight"] = head.weight.detach()
    tensors[hname + ".bias"] = head.bias.detach()
    if timm09:
        tensors = timm_09_names(tensors)
    weights = os.path.join(tmp, name + (".timm09" if timm09 else "") + ".safetensors")
    write_safetensors(weights, tensors, {} if timm09 else {"model": name})
    images, pixels = [], []
    for i in range(2):
        g = torch.Generator().manual_seed(100 + i)
        px = torch.randint(0, 256, (224, 224, 3), generator=g, dtype=torch.uint8)
        path = os.path.join(tmp, "img%d.png" % i)
        png(path, bytes(px.flatten().tolist()), 224, 224, 3)
        images.append(path)
        pixels.append(px)
    x = torch.stack([p.permute(2, 0, 1).double() / 255.0 for p in pixels])
    x = (x - torch.tensor(MEAN, dtype=torch.float64).view(1, 3, 1, 1)) / torch.tensor(STD, dtype=torch.float64).view(
        1, 3, 1, 1)
    with torch.no_grad():
        ref = head(net(x) if name != "vit_tiny_patch16_224" else net.forward_features(x))
    out = subprocess.run(["build/clvit", "predict", "--model", name, "--weights", weights,
                          "--mean", ",".join(map(str, MEAN)), "--std", ",".join(map(str, STD)), "--json"] + images,
                         check=True, capture_output=True, text=True).stdout
    got = torch.tensor([r["logits"] for r in json.loads(out)], dtype=torch.float64)
    diff = (got - ref).abs().max().item()
    scale = ref.abs().max().item()
    print("%-40s max |clvit - pytorch| = %.2e (logits up to %.2f)%s" % (name + (" (timm >= 0.9)" if timm09 else ""),
                                                                        diff, scale,
                                                                        "" if diff <= tol else "  FAIL"))
    return diff <= tol


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="resnet18,swin_tiny_patch4_window7_224,vit_tiny_patch16_224")
    ap.add_argument("--tol", type=float, default=1e-4)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs = [(m, False) for m in a.models.split(",")]
        runs += [(m, True) for m in a.models.split(",") if m.startswith("swin")]
        ok = all([check(m, tmp, a.tol, t09) for m, t09 in runs])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
