#!/usr/bin/python3
"""Reference fixtures for tests/test_swin.c, computed by PyTorch (float64).

The Swin Transformer below is timm 0.6's SwinTransformer (ape=False,
patch_norm=True, qkv_bias=True, mlp_ratio 4, no dropout, downsample at the
end of every stage but the last), written in plain torch with timm's module
names so that state_dict() keys match clvit's parameter names (timm is not
installed here). The head is left out: clvit's backbone ends at the average
over tokens.

  swin_micro.safetensors   img 16, patch 2, 3 channels, dim 8, window 4,
                           depths 2-2, heads 2-4: stage 1 has a shifted block,
                           stage 2 a grid the window's size (no shift), one
                           patch merging. Random weights; x [2,3,16,16],
                           R [2,16]; the features and, for loss =
                           sum(feats * R), grad.<param> and grad.x.
  swin_tiny_state_dict.txt swin_tiny_patch4_window7_224's state_dict keys and
                           shapes (buffers relative_position_index and
                           attn_mask included, as timm saves them).

Run from the repository root:  /usr/bin/python3 tools/make_swin_fixtures.py
"""

import torch
import torch.nn as nn
from fixture_safetensors import write_safetensors


def window_partition(x, ws):
    B, H, W, C = x.shape
    x = x.view(B, H // ws, ws, W // ws, ws, C)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, ws, ws, C)


def window_reverse(windows, ws, H, W):
    B = int(windows.shape[0] / (H * W / ws / ws))
    x = windows.view(B, H // ws, W // ws, ws, ws, -1)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(B, H, W, -1)


class WindowAttention(nn.Module):
    def __init__(self, dim, ws, num_heads):
        super().__init__()
        self.ws = ws
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * ws - 1) * (2 * ws - 1), num_heads))
        coords = torch.stack(torch.meshgrid([torch.arange(ws), torch.arange(ws)], indexing="ij"))
        cf = torch.flatten(coords, 1)
        rel = (cf[:, :, None] - cf[:, None, :]).permute(1, 2, 0).contiguous()
        rel[:, :, 0] += ws - 1
        rel[:, :, 1] += ws - 1
        rel[:, :, 0] *= 2 * ws - 1
        self.register_buffer("relative_position_index", rel.sum(-1))
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, mask=None):
        B_, N, C = x.shape
        qkv = self.qkv(x).reshape(B_, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        q = q * self.scale
        attn = q @ k.transpose(-2, -1)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(N, N, -1)
        attn = attn + bias.permute(2, 0, 1).contiguous().unsqueeze(0)
        if mask is not None:
            nW = mask.shape[0]
            attn = attn.view(B_ // nW, nW, self.num_heads, N, N) + mask.unsqueeze(1).unsqueeze(0)
            attn = attn.view(-1, self.num_heads, N, N)
        attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(B_, N, C)
        return self.proj(x)


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class SwinTransformerBlock(nn.Module):
    def __init__(self, dim, res, num_heads, ws, shift):
        super().__init__()
        self.res = res
        if min(res) <= ws:
            shift = 0
            ws = min(res)
        self.ws, self.shift = ws, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, ws, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, 4 * dim)
        if shift > 0:
            H, W = res
            img_mask = torch.zeros((1, H, W, 1))
            cnt = 0
            for h in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
                for w in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
                    img_mask[:, h, w, :] = cnt
                    cnt += 1
            mw = window_partition(img_mask, ws).view(-1, ws * ws)
            am = mw.unsqueeze(1) - mw.unsqueeze(2)
            am = am.masked_fill(am != 0, float(-100.0)).masked_fill(am == 0, float(0.0))
        else:
            am = None
        self.register_buffer("attn_mask", am)

    def forward(self, x):
        H, W = self.res
        B, L, C = x.shape
        shortcut = x
        x = self.norm1(x).view(B, H, W, C)
        if self.shift > 0:
            x = torch.roll(x, shifts=(-self.shift, -self.shift), dims=(1, 2))
        xw = window_partition(x, self.ws).view(-1, self.ws * self.ws, C)
        aw = self.attn(xw, mask=self.attn_mask).view(-1, self.ws, self.ws, C)
        x = window_reverse(aw, self.ws, H, W)
        if self.shift > 0:
            x = torch.roll(x, shifts=(self.shift, self.shift), dims=(1, 2))
        x = shortcut + x.view(B, H * W, C)
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    def __init__(self, res, dim):
        super().__init__()
        self.res = res
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x):
        H, W = self.res
        B, L, C = x.shape
        x = x.view(B, H, W, C)
        x0 = x[:, 0::2, 0::2, :]
        x1 = x[:, 1::2, 0::2, :]
        x2 = x[:, 0::2, 1::2, :]
        x3 = x[:, 1::2, 1::2, :]
        x = torch.cat([x0, x1, x2, x3], -1).view(B, -1, 4 * C)
        return self.reduction(self.norm(x))


class BasicLayer(nn.Module):
    def __init__(self, dim, res, depth, num_heads, ws, downsample):
        super().__init__()
        self.blocks = nn.ModuleList([SwinTransformerBlock(dim, res, num_heads, ws, 0 if i % 2 == 0 else ws // 2)
                                     for i in range(depth)])
        self.downsample = PatchMerging(res, dim) if downsample else None

    def forward(self, x):
        for b in self.blocks:
            x = b(x)
        return self.downsample(x) if self.downsample is not None else x


class PatchEmbed(nn.Module):
    def __init__(self, patch, in_chans, dim):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, patch, patch)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        return self.norm(self.proj(x).flatten(2).transpose(1, 2))


class SwinTransformer(nn.Module):
    def __init__(self, img, patch, in_chans, dim, depths, heads, ws):
        super().__init__()
        self.patch_embed = PatchEmbed(patch, in_chans, dim)
        r = img // patch
        layers = []
        for i, (d, h) in enumerate(zip(depths, heads)):
            layers.append(BasicLayer(dim * 2 ** i, (r // 2 ** i, r // 2 ** i), d, h, ws, i + 1 < len(depths)))
        self.layers = nn.Sequential(*layers)
        self.norm = nn.LayerNorm(dim * 2 ** (len(depths) - 1))

    def forward(self, x):
        x = self.layers(self.patch_embed(x))
        return self.norm(x).mean(dim=1)  # AdaptiveAvgPool1d(1) over tokens + flatten


def micro():
    torch.manual_seed(2468)
    m = SwinTransformer(16, 2, 3, 8, [2, 2], [2, 4], 4).double()
    with torch.no_grad():
        for name, p in m.named_parameters():
            if "norm" in name and name.endswith(".weight"):
                p.copy_(1 + 0.2 * torch.randn_like(p))
            elif name.endswith(".bias") or "relative_position_bias_table" in name:
                p.copy_(0.3 * torch.randn_like(p))
            else:
                p.copy_(torch.randn_like(p) / p.shape[-1] ** 0.5)
    out = {k: v.clone() for k, v in m.named_parameters()}
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64, requires_grad=True)
    R = torch.randn(2, 16, dtype=torch.float64)
    feats = m(x)
    (feats * R).sum().backward()
    out["feats"] = feats.detach()
    for k, p in m.named_parameters():
        out["grad." + k] = p.grad
    out["grad.x"] = x.grad
    out["x"] = x.detach()
    out["R"] = R
    write_safetensors("tests/fixtures/swin_micro.safetensors", out, {"what": "swin micro, timm 0.6 semantics"})


def tiny_names(path):
    m = SwinTransformer(224, 4, 3, 96, [2, 2, 6, 2], [3, 6, 12, 24], 7)
    m.head = nn.Linear(768, 1000)
    with open(path, "w") as f:
        for k, v in m.state_dict().items():
            f.write(" ".join([k] + [str(d) for d in v.shape]) + "\n")


if __name__ == "__main__":
    micro()
    tiny_names("tests/fixtures/swin_tiny_state_dict.txt")
