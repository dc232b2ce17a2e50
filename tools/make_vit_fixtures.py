#!/usr/bin/python3
"""Reference fixtures for tests/test_vit.c, computed by PyTorch (float64).

The ViT below is timm's VisionTransformer with its defaults, written in plain
torch with timm's module names so that state_dict() keys match clvit's
parameter names (timm is not installed here).

  vit_micro.safetensors  img 8, patch 4, 3 channels, dim 16, depth 2, heads 2,
                         mlp 64, random (non-trivial) weights; input x [2,3,8,8],
                         R [2,16]; expected feats and, for loss = sum(feats * R),
                         grad.<param> for every parameter and grad.x.
  vit_nano_logits.safetensors
                         vit_nano_patch4_32 + a 10-class head whose weights and
                         input come from formula() below (tests/test_vit.c
                         implements the same); only the expected logits [2,10].

Run from the repository root:  /usr/bin/python3 tools/make_vit_fixtures.py
"""
import math

import torch
import torch.nn as nn
from fixture_safetensors import write_safetensors


class Attention(nn.Module):
    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = (q * self.scale) @ k.transpose(-2, -1)
        attn = attn.softmax(dim=-1)
        x = attn @ v
        x = x.transpose(1, 2).reshape(B, N, C)
        return self.proj(x)


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()  # exact (erf)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, num_heads, hidden):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, hidden)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, patch, in_chans, dim):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch, stride=patch, bias=True)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)  # B, Np, D


class VisionTransformer(nn.Module):
    def __init__(self, img, patch, in_chans, dim, depth, heads, hidden, num_classes=0):
        super().__init__()
        n_patches = (img // patch) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, n_patches + 1, dim))
        self.patch_embed = PatchEmbed(patch, in_chans, dim)
        self.blocks = nn.ModuleList([Block(dim, heads, hidden) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, num_classes) if num_classes else None

    def forward_features(self, x):
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = x + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)[:, 0]  # global_pool='token'

    def forward(self, x):
        f = self.forward_features(x)
        return self.head(f) if self.head is not None else f


def micro():
    torch.manual_seed(1234)
    m = VisionTransformer(img=8, patch=4, in_chans=3, dim=16, depth=2, heads=2, hidden=64).double()
    with torch.no_grad():
        for name, p in m.named_parameters():
            if "norm" in name and name.endswith(".weight"):
                p.copy_(1 + 0.2 * torch.randn_like(p))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn_like(p))
            elif name in ("cls_token", "pos_embed"):
                p.copy_(0.5 * torch.randn_like(p))
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn_like(p) / math.sqrt(fan_in))
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    R = torch.randn(2, 16, dtype=torch.float64)
    feats = m(x)
    (feats * R).sum().backward()
    out = {name: p for name, p in m.named_parameters()}
    out.update({"x": x, "R": R, "feats": feats})
    out.update({"grad." + name: p.grad for name, p in m.named_parameters()})
    out["grad.x"] = x.grad
    write_safetensors("tests/fixtures/vit_micro.safetensors", out,
                      {"config": "img 8 patch 4 in_chans 3 dim 16 depth 2 heads 2 mlp 64",
                       "loss": "sum(feats * R)", "made_by": "tools/make_vit_fixtures.py"})


def formula(name, k, n):
    """Element i of the k-th tensor in sorted-name order (see test_vit.c)."""
    i = torch.arange(n, dtype=torch.float64)
    # the i*i term keeps rows from being near-periodic copies of each other
    s = torch.sin(0.0013 * i * i + 0.37 * i + 1.7 * k)
    if "norm" in name and name.endswith(".weight"):
        return 1.0 + 0.1 * s
    return 0.1 * s


def nano():
    m = VisionTransformer(img=32, patch=4, in_chans=3, dim=64, depth=4, heads=2, hidden=256,
                          num_classes=10).double()
    with torch.no_grad():
        params = dict(m.named_parameters())
        for k, name in enumerate(sorted(params)):
            p = params[name]
            p.copy_(formula(name, k, p.numel()).reshape(p.shape))
        n = 2 * 3 * 32 * 32
        j = torch.arange(n, dtype=torch.float64)
        x = torch.sin(0.0007 * j * j + 0.3).reshape(2, 3, 32, 32)
        logits = m(x)
    write_safetensors("tests/fixtures/vit_nano_logits.safetensors", {"logits": logits},
                      {"model": "vit_nano_patch4_32 + head 10",
                       "weights": "tensor k (sorted names), element i: "
                                  "0.1 sin(0.0013 i i + 0.37 i + 1.7 k); norm weights 1 + 0.1 sin(...)",
                       "input": "x[j] = sin(0.0007 j j + 0.3), [2,3,32,32]",
                       "made_by": "tools/make_vit_fixtures.py"})


if __name__ == "__main__":
    micro()
    nano()
