#!/usr/bin/env python3
"""The PyTorch peer of `clvit bench`: the same backbone in plain torch, timed
the same way (median of the timed steps after warmup) for a training step
(forward, cross-entropy, backward, gradient clipping at norm 1, AdamW: the
trainer's defaults) and inference (no_grad). Prints one JSON object with the
keys `clvit bench --json` prints, and "precision".

The networks are the ones clvit's fixture tests are made from, so they are
the ones clvit is checked against: tools/make_vit_fixtures.py (timm's ViT),
tools/make_swin_fixtures.py (timm's Swin: relative position bias, shifted
windows, patch merging), tools/make_resnet_fixtures.py (torchvision's ResNet
with BasicBlocks; resnet*_cifar: 3x3 stride-1 stem, no max-pool); their
sizes come from bench/model_specs.py, which mirrors clvit's registry, and
so do the FLOP counts. A 10-class Linear head follows the features.

  /usr/bin/python3 bench/torch_peer.py --model vit_tiny_patch4_32 --batch 128 --threads 2
  --precision bf16       torch.autocast("cpu", bfloat16) around the forward; the loss in fp32
  --method rkr --rank 4  a frozen base with RKR adapters on every Linear and Conv2d of the backbone
  --method piggyback     a frozen base with Piggyback masks (straight-through) on the same layers
  --method linear        a frozen base, the head trains
  --turns R,W            step for step with clvit bench (bench/lockstep.py's protocol)
A frozen base's batch norms use their running statistics, as clvit's do.
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
sys.path.insert(0, HERE)
from make_resnet_fixtures import ResNet  # noqa: E402
from make_swin_fixtures import SwinTransformer  # noqa: E402
from make_vit_fixtures import VisionTransformer  # noqa: E402
from model_specs import IN_CHANS, SPECS, feat_dim, forward_flops  # noqa: E402

CLASSES = 10


def backbone(s):
    if s["family"] == "vit":
        return VisionTransformer(img=s["img"], patch=s["patch"], in_chans=IN_CHANS, dim=s["dim"], depth=s["depth"],
                                 heads=s["heads"], hidden=s["hidden"])
    if s["family"] == "swin":
        return SwinTransformer(s["img"], s["patch"], IN_CHANS, s["dim"], s["depths"], s["heads"], s["window"])
    return ResNet(s["stem"], s["widths"], s["blocks"], in_chans=IN_CHANS)


class Adapted(nn.Module):
    """A frozen Linear or Conv2d with a per-task adapter on its weight (a conv's
    weight seen as the [out, in*k*k] matrix clvit's im2col GEMM uses)."""

    def __init__(self, base, method, rank):
        super().__init__()
        self.base, self.method = base, method
        w = base.weight
        out, inn = w.shape[0], w[0].numel()
        if method == "rkr":
            self.lm = nn.Parameter(0.02 * torch.randn(out, rank))
            self.rm = nn.Parameter(torch.zeros(rank, inn))
            self.f = nn.Parameter(torch.ones(out))
        else:
            self.scores = nn.Parameter(torch.full(w.shape, 1e-2))

    def weight(self):
        w = self.base.weight
        if self.method == "rkr":
            return w + (self.lm @ self.rm).view_as(w)
        m = (self.scores > 5e-3).float()
        return w * (m + self.scores - self.scores.detach())  # straight-through: dS = dW_t * W

    def forward(self, x):
        w, b = self.weight(), self.base.bias
        if isinstance(self.base, nn.Conv2d):
            y = F.conv2d(x, w, b, self.base.stride, self.base.padding)
            return y * self.f.view(1, -1, 1, 1) if self.method == "rkr" else y
        y = F.linear(x, w, b)
        return y * self.f if self.method == "rkr" else y


def adapt(module, method, rank):
    """Wraps every Linear and Conv2d below module (in place)."""
    for name, child in list(module.named_children()):
        if isinstance(child, (nn.Linear, nn.Conv2d)):
            setattr(module, name, Adapted(child, method, rank))
        else:
            adapt(child, method, rank)


class Net(nn.Module):
    def __init__(self, s, method, rank):
        super().__init__()
        self.backbone = backbone(s)
        self.head = nn.Linear(feat_dim(s), CLASSES)
        self.frozen = method != "full"
        if self.frozen:
            for p in self.backbone.parameters():
                p.requires_grad_(False)
            if method in ("rkr", "piggyback"):
                adapt(self.backbone, method, rank)

    def train(self, mode=True):
        super().train(mode)
        if self.frozen:  # a frozen base normalizes with its running statistics
            for m in self.backbone.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.eval()
        return self

    def forward(self, x):
        return self.head(self.backbone(x))


def layer_norms_in_fp32(model):
    """PyTorch 1.13's CPU autocast hands a bf16 input to layer_norm with its fp32
    weight and fails ("expected scalar type BFloat16 but found Float": Swin's
    patch-embedding norm); later versions run layer_norm in fp32 under autocast,
    and so does this hook."""
    def to_fp32(module, inputs):
        return tuple(t.float() if t.dtype == torch.bfloat16 else t for t in inputs)
    for m in model.modules():
        if isinstance(m, nn.LayerNorm):
            m.register_forward_pre_hook(to_fp32)


def turn(fds):
    """bench/lockstep.py's protocol: ready ("r"), then wait for the go ("g")."""
    if fds:
        os.write(fds[1], b"r")
        if os.read(fds[0], 1) != b"g":
            sys.exit("torch_peer: --turns: the lockstep runner went away")


def timed(fn, steps, warmup, fds):
    times = []
    for s in range(warmup + steps):
        turn(fds)
        t0 = time.perf_counter()
        fn()
        if s >= warmup:
            times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def main():
    ap = argparse.ArgumentParser(description="PyTorch peer of clvit bench")
    ap.add_argument("--model", default="vit_tiny_patch4_32", choices=sorted(SPECS))
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--infer-batch", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--method", default="full", choices=["full", "finetune", "linear", "rkr", "piggyback"])
    ap.add_argument("--rank", type=int, default=4)
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--turns", metavar="R,W", help="step for step with another bench (bench/lockstep.py)")
    a = ap.parse_args()
    fds = None
    if a.turns:
        try:
            fds = tuple(int(v) for v in a.turns.split(","))
            if len(fds) != 2:
                raise ValueError
            for fd in fds:
                os.fstat(fd)
        except (ValueError, OSError):
            ap.error(f"--turns {a.turns}: not two open file descriptors R,W")
    for what in ("batch", "infer_batch", "threads", "steps", "rank"):
        if getattr(a, what) < 1:
            ap.error("--%s must be at least 1" % what.replace("_", "-"))
    if a.warmup < 0:
        ap.error("--warmup must be at least 0")
    method = "full" if a.method == "finetune" else a.method
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    s = SPECS[a.model]
    m = Net(s, method, a.rank).train()
    params = [p for p in m.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.05)
    x = torch.randn(max(a.batch, a.infer_batch), IN_CHANS, s["img"], s["img"])
    y = torch.randint(0, CLASSES, (a.batch,))
    bf16 = a.precision == "bf16"
    if bf16:
        layer_norms_in_fp32(m)

    def forward(inp):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return m(inp)

    def train():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(forward(x[:a.batch]).float(), y).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()

    def infer():
        with torch.no_grad():
            forward(x[:a.infer_batch])

    tt, tt_min = timed(train, a.steps, a.warmup, fds)
    m.eval()
    ti, ti_min = timed(infer, a.steps, a.warmup, fds)
    fpi = forward_flops(a.model)
    mult = {"full": 3.0, "piggyback": 3.0, "rkr": 2.0, "linear": 1.0}[method]  # as clvit bench counts
    print(json.dumps({
        "model": a.model, "method": method, "precision": a.precision, "batch": a.batch,
        "infer_batch": a.infer_batch, "threads": a.threads, "steps": a.steps,
        "peer": "pytorch " + torch.__version__,
        "train_images_per_s": a.batch / tt, "infer_images_per_s": a.infer_batch / ti,
        "train_gflops": mult * fpi * a.batch / tt / 1e9, "infer_gflops": fpi * a.infer_batch / ti / 1e9,
        "train_step_s_median": tt, "infer_step_s_median": ti, "train_step_s_min": tt_min,
        "infer_step_s_min": ti_min, "flops_per_image": fpi,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }))


if __name__ == "__main__":
    main()
