#!/usr/bin/env python3
"""The PyTorch peer of `clvit bench`: the same ViT (timm's structure: patch
conv, cls token, position embedding, pre-norm blocks with qkv/proj/fc1/fc2,
LayerNorm eps 1e-6, exact GELU, head on the cls token) with plain torch,
timed the same way (median of the timed steps after warmup) for a training
step (forward, cross-entropy, backward, AdamW) and inference (no_grad).
Prints one JSON object with the keys clvit bench --json prints.

  /usr/bin/python3 bench/torch_vit.py --model vit_tiny_patch4_32 --batch 128 --threads 2
  --method rkr --rank 4    a frozen base with RKR adapters on every Linear (and the patch conv)
  --method piggyback       a frozen base with Piggyback masks (straight-through) on the same layers
"""
import argparse
import json
import resource
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

CONFIGS = {
    "vit_nano_patch4_32": dict(img=32, patch=4, dim=64, depth=4, heads=2),
    "vit_tiny_patch4_32": dict(img=32, patch=4, dim=192, depth=12, heads=3),
    "vit_tiny_patch16_224": dict(img=224, patch=16, dim=192, depth=12, heads=3),
    "vit_small_patch16_224": dict(img=224, patch=16, dim=384, depth=12, heads=6),
    "vit_base_patch16_224": dict(img=224, patch=16, dim=768, depth=12, heads=12),
}


class Adapted(nn.Module):
    """A frozen Linear (or conv as a matrix) with a per-task adapter."""

    def __init__(self, base, method, rank):
        super().__init__()
        self.base, self.method = base, method
        w = base.weight
        out, inn = w.shape[0], w[0].numel()
        base.weight.requires_grad_(False)
        if base.bias is not None:
            base.bias.requires_grad_(False)
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
        w = self.weight()
        if isinstance(self.base, nn.Conv2d):
            y = F.conv2d(x, w, self.base.bias, stride=self.base.stride)
            return y * self.f.view(1, -1, 1, 1) if self.method == "rkr" else y
        y = F.linear(x, w, self.base.bias)
        return y * self.f if self.method == "rkr" else y


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads, self.hd = heads, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        q, k, v = self.qkv(x).reshape(B, N, 3, self.heads, self.hd).permute(2, 0, 3, 1, 4).unbind(0)
        a = ((q * self.hd ** -0.5) @ k.transpose(-2, -1)).softmax(-1)
        return self.proj((a @ v).transpose(1, 2).reshape(B, N, C))


class Block(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.fc2 = nn.Linear(4 * dim, dim)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class ViT(nn.Module):
    def __init__(self, img, patch, dim, depth, heads, classes=10):
        super().__init__()
        self.patch_embed = nn.Conv2d(3, dim, patch, patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(0.02 * torch.randn(1, (img // patch) ** 2 + 1, dim))
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1) + self.pos_embed
        for b in self.blocks:
            x = b(x)
        return self.head(self.norm(x)[:, 0])

    def adapt(self, method, rank):
        for p in self.parameters():
            p.requires_grad_(False)
        self.head.weight.requires_grad_(True)
        self.head.bias.requires_grad_(True)
        self.patch_embed = Adapted(self.patch_embed, method, rank)
        for b in self.blocks:
            b.attn.qkv = Adapted(b.attn.qkv, method, rank)
            b.attn.proj = Adapted(b.attn.proj, method, rank)
            b.fc1 = Adapted(b.fc1, method, rank)
            b.fc2 = Adapted(b.fc2, method, rank)


def timed(fn, steps, warmup):
    times = []
    for s in range(warmup + steps):
        t0 = time.perf_counter()
        fn()
        if s >= warmup:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def forward_flops(c):
    """Multiply-adds x 2 of one image's forward (as clvit's registry counts)."""
    n = (c["img"] // c["patch"]) ** 2
    t, d = n + 1, c["dim"]
    patch = 2 * n * d * 3 * c["patch"] ** 2
    block = 2 * t * d * (3 * d + d + 4 * d + 4 * d) + 2 * 2 * t * t * d
    return patch + c["depth"] * block  # the head excluded, as in clvit's registry


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="vit_tiny_patch4_32")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--infer-batch", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--method", default="full", choices=["full", "linear", "rkr", "piggyback"])
    ap.add_argument("--rank", type=int, default=4)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    c = CONFIGS[a.model]
    m = ViT(**c)
    if a.method in ("rkr", "piggyback"):
        m.adapt(a.method, a.rank)
    elif a.method == "linear":
        for p in m.parameters():
            p.requires_grad_(False)
        m.head.weight.requires_grad_(True)
        m.head.bias.requires_grad_(True)
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-4)
    x = torch.randn(max(a.batch, a.infer_batch), 3, c["img"], c["img"])
    y = torch.randint(0, 10, (a.batch,))

    def train():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(m(x[:a.batch]), y).backward()
        opt.step()

    def infer():
        with torch.no_grad():
            m(x[:a.infer_batch])

    tt = timed(train, a.steps, a.warmup)
    ti = timed(infer, a.steps, a.warmup)
    fpi = forward_flops(c)
    mult = 3.0 if a.method == "full" else 1.0
    print(json.dumps({
        "model": a.model, "method": a.method, "batch": a.batch, "infer_batch": a.infer_batch,
        "threads": a.threads, "peer": "pytorch " + torch.__version__,
        "train_images_per_s": a.batch / tt, "infer_images_per_s": a.infer_batch / ti,
        "train_gflops": mult * fpi * a.batch / tt / 1e9, "infer_gflops": fpi * a.infer_batch / ti / 1e9,
        "train_step_s_median": tt, "infer_step_s_median": ti, "flops_per_image": fpi,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }))


if __name__ == "__main__":
    main()
