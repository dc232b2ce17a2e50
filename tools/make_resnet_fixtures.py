#!/usr/bin/python3
"""Reference fixtures for tests/test_resnet.c, computed by PyTorch (float64).

The ResNet below is torchvision's resnet with BasicBlocks (timm's resnet18 is
the same network), written in plain torch with torchvision's module names so
that state_dict() keys match clvit's parameter names (torchvision and timm are
not installed here). The `fc` head is left out: clvit's backbone ends at the
global average pool.

  resnet_micro_c.safetensors  CIFAR stem (3x3 stride 1, no max-pool), img 16,
                              widths 4-8-8-16, blocks 2-1-1-1
  resnet_micro_i.safetensors  ImageNet stem (7x7 stride 2 + 3x3 max-pool),
                              img 64, 1 channel, widths 4-4-8-8, blocks 1-1-1-1
  resnet18_state_dict.txt     torchvision resnet18's state_dict keys and shapes
Each holds random (non-trivial) weights and batch-norm statistics under
torchvision's names, an input x [2,C,S,S] and R [2,F]; for loss =
sum(feats * R): in eval mode (running statistics, as for a frozen base) the
features `feats_eval` and the gradients `grad_eval.<conv weight>` and
`grad_eval.x`; in train mode (batch statistics) `feats_train`, `grad.<param>`
for every weight and norm affine parameter, `grad.x`, and the running
statistics after that forward, `after.<name>`.

Run from the repository root:  /usr/bin/python3 tools/make_resnet_fixtures.py
"""
import json

import torch
import torch.nn as nn
from fixture_safetensors import write_safetensors


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        sc = x if self.downsample is None else self.downsample(x)
        return self.relu(out + sc)


class ResNet(nn.Module):
    def __init__(self, stem, widths, blocks, in_chans=3):
        super().__init__()
        if stem == 7:
            self.conv1 = nn.Conv2d(in_chans, widths[0], 7, 2, 3, bias=False)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        else:
            self.conv1 = nn.Conv2d(in_chans, widths[0], 3, 1, 1, bias=False)
            self.maxpool = nn.Identity()
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU()
        cin = widths[0]
        for i in range(4):
            layer = []
            for j in range(blocks[i]):
                stride = 2 if (i > 0 and j == 0) else 1
                layer.append(BasicBlock(cin, widths[i], stride))
                cin = widths[i]
            setattr(self, "layer%d" % (i + 1), nn.Sequential(*layer))

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(4):
            x = getattr(self, "layer%d" % (i + 1))(x)
        return x.mean(dim=(2, 3))  # adaptive average pool to 1x1 + flatten


def randomize(m):
    with torch.no_grad():
        for name, p in m.named_parameters():
            if "bn" in name or "downsample.1" in name:
                p.copy_(1 + 0.3 * torch.randn_like(p) if name.endswith("weight") else 0.1 * torch.randn_like(p))
            else:
                fan_in = p.shape[1] * p.shape[2] * p.shape[3]
                p.copy_(torch.randn_like(p) * (2.0 / fan_in) ** 0.5)
        for name, b in m.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.2 * torch.randn_like(b))
            elif name.endswith("running_var"):
                b.copy_(0.5 + torch.rand_like(b))


def make(path, stem, img, widths, blocks, seed, in_chans=3):
    torch.manual_seed(seed)
    m = ResNet(stem, widths, blocks, in_chans).double()
    randomize(m)
    out = {}
    for k, v in m.state_dict().items():
        if not k.endswith("num_batches_tracked"):
            out[k] = v.clone()
    x = torch.randn(2, in_chans, img, img, dtype=torch.float64)
    R = torch.randn(2, widths[3], dtype=torch.float64)
    m.eval()
    xe = x.clone().requires_grad_(True)
    fe = m(xe)
    (fe * R).sum().backward()
    out["feats_eval"] = fe.detach()
    for k, p in m.named_parameters():  # eval mode: the norms are fixed affine maps (a frozen base)
        if p.dim() == 4:
            out["grad_eval." + k] = p.grad.clone()
        p.grad = None
    out["grad_eval.x"] = xe.grad
    m.train()
    xg = x.clone().requires_grad_(True)
    feats = m(xg)
    (feats * R).sum().backward()
    out["feats_train"] = feats.detach()
    for k, p in m.named_parameters():
        out["grad." + k] = p.grad
    out["grad.x"] = xg.grad
    for k, v in m.state_dict().items():
        if k.endswith("running_mean") or k.endswith("running_var"):
            out["after." + k] = v.clone()
    out["x"] = x
    out["R"] = R
    write_safetensors(path, out, {"stem": str(stem), "img": str(img), "widths": json.dumps(widths),
                                  "blocks": json.dumps(blocks)})


def resnet18_names(path):
    """torchvision's resnet18 state_dict keys and shapes, in order (with fc)."""
    m = ResNet(7, [64, 128, 256, 512], [2, 2, 2, 2])
    m.fc = nn.Linear(512, 1000)
    with open(path, "w") as f:
        for k, v in m.state_dict().items():
            f.write(" ".join([k] + [str(d) for d in v.shape]) + "\n")


if __name__ == "__main__":
    resnet18_names("tests/fixtures/resnet18_state_dict.txt")
    make("tests/fixtures/resnet_micro_c.safetensors", 3, 16, [4, 8, 8, 16], [2, 1, 1, 1], 4321)
    # 64 pixels and one channel: the last stage is 2x2, so its batch norms see 8 values per channel
    # (with 1x1 they would see 2, and float32 against float64 would differ by 1e-3 from ill-conditioning)
    make("tests/fixtures/resnet_micro_i.safetensors", 7, 64, [4, 4, 8, 8], [1, 1, 1, 1], 8765, in_chans=1)
