#!/usr/bin/python3
"""Fixtures for tests/test_ckpt_layout.c: one small Swin with a 5-class head,
saved in timm 0.6's layout and in timm >= 0.9's, and PyTorch's logits.

timm is not installed here, so the names are built from timm's source
(timm/models/swin_transformer.py): the network is tools/make_swin_fixtures.py's
timm-0.6 SwinTransformer; timm_09_names() is the inverse of timm >= 0.9's
checkpoint_filter_fn (which maps 0.6 files to 0.9 names):
  layers.i.downsample.*  ->  layers.(i+1).downsample.*   (patch merging now
                             opens stage i+1 instead of closing stage i; its
                             2x2 concatenation order is unchanged)
  head.*                 ->  head.fc.*                   (ClassifierHead)
  relative_position_index, attn_mask: buffers, persistent in 0.6 (saved here
                             as timm 0.6 saved them: int64 and float32), not
                             persistent since timm 0.9.5 (left out)

  tests/fixtures/layout/swin_06.safetensors   timm 0.6 names (+ buffers)
  tests/fixtures/layout/swin_09.safetensors   timm >= 0.9 names
  tests/fixtures/layout/expected.safetensors  x [3, 3, 16, 16], logits [3, 5]

Config: img 16, patch 2, dim 4, window 4, depths 2-2-2, heads 1-2-4: stage 0
(8x8) has a shifted block, stage 1 (4x4) a grid the window's size, stage 2
(2x2) a window shrunk to the grid; two patch mergings. Random weights, rounded
to float32 before the float64 reference forward.

Run from the repository root:  /usr/bin/python3 tools/make_swin_layout_fixtures.py
"""
import os
import re
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_swin_fixtures import SwinTransformer  # noqa: E402
from fixture_safetensors import write_safetensors  # noqa: E402

OUT = "tests/fixtures/layout"


def timm_09_names(sd06):
    """timm 0.6 state_dict -> timm >= 0.9.5's: the inverse of its checkpoint_filter_fn."""
    out = {}
    for k, v in sd06.items():
        if k.endswith("relative_position_index") or k.endswith("attn_mask"):
            continue
        k = re.sub(r"^layers\.(\d+)\.downsample", lambda m: "layers.%d.downsample" % (int(m.group(1)) + 1), k)
        k = re.sub(r"^head\.", "head.fc.", k)
        out[k] = v
    return out


def state_dict_06(net, head):
    """As timm 0.6 saves it: parameters and persistent buffers, head.weight/bias."""
    sd = {}
    for k, v in net.state_dict().items():
        sd[k] = v.to(torch.float32) if v.dtype.is_floating_point else v.to(torch.int64)
    sd["head.weight"] = head.weight.detach().float()
    sd["head.bias"] = head.bias.detach().float()
    return sd


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(1357)
    net = SwinTransformer(16, 2, 3, 4, [2, 2, 2], [1, 2, 4], 4).double().eval()
    head = nn.Linear(16, 5).double()
    with torch.no_grad():
        for k, p in list(net.named_parameters()) + [("head." + n, p) for n, p in head.named_parameters()]:
            if "norm" in k and k.endswith(".weight"):
                p.copy_(1 + 0.2 * torch.randn_like(p))
            elif k.endswith(".bias") or "relative_position_bias_table" in k:
                p.copy_(0.3 * torch.randn_like(p))
            else:
                p.copy_(torch.randn_like(p) / p.shape[-1] ** 0.5)
            p.copy_(p.float().double())  # the files hold float32: the reference uses the same values
        x = torch.randn(3, 3, 16, 16, dtype=torch.float64).float().double()
        logits = head(net(x))
    sd06 = state_dict_06(net, head)
    meta = {"what": "swin tiny-config fixture, random weights", "made_by": "tools/make_swin_layout_fixtures.py"}
    write_safetensors(f"{OUT}/swin_06.safetensors", sd06, dict(meta, layout="timm 0.6"), keep_dtype=True)
    write_safetensors(f"{OUT}/swin_09.safetensors", timm_09_names(sd06), dict(meta, layout="timm >= 0.9"), keep_dtype=True)
    write_safetensors(f"{OUT}/expected.safetensors", {"x": x, "logits": logits},
                      dict(meta, config="img 16 patch 2 dim 4 window 4 depths 2-2-2 heads 1-2-4, head 5"),
                      keep_dtype=True)


if __name__ == "__main__":
    main()
