"""The backbones `make bench` measures, as clvit's registry (src/models/registry.c)
defines them, and their forward FLOPs per image counted the way the registry
counts them (2 per multiply-add of every weight layer and attention product;
no norms, activations or head). Plain Python, no torch: bench/torch_peer.py
builds its networks from these rows, and bench/check.sh compares
forward_flops() with `clvit bench --json`'s flops_per_image."""

SPECS = {
    "vit_nano_patch4_32": dict(family="vit", img=32, patch=4, dim=64, depth=4, heads=2, hidden=256),
    "vit_tiny_patch4_32": dict(family="vit", img=32, patch=4, dim=192, depth=12, heads=3, hidden=768),
    "vit_tiny_patch16_224": dict(family="vit", img=224, patch=16, dim=192, depth=12, heads=3, hidden=768),
    "vit_small_patch16_224": dict(family="vit", img=224, patch=16, dim=384, depth=12, heads=6, hidden=1536),
    "vit_base_patch16_224": dict(family="vit", img=224, patch=16, dim=768, depth=12, heads=12, hidden=3072),
    "swin_nano_patch2_window4_32": dict(family="swin", img=32, patch=2, dim=32, window=4, depths=[2, 2, 2],
                                        heads=[2, 4, 8]),
    "swin_tiny_patch4_window7_224": dict(family="swin", img=224, patch=4, dim=96, window=7, depths=[2, 2, 6, 2],
                                         heads=[3, 6, 12, 24]),
    "resnet_nano_cifar": dict(family="resnet", img=32, stem=3, widths=[16, 32, 64, 128], blocks=[1, 1, 1, 1]),
    "resnet18_cifar": dict(family="resnet", img=32, stem=3, widths=[64, 128, 256, 512], blocks=[2, 2, 2, 2]),
    "resnet18": dict(family="resnet", img=224, stem=7, widths=[64, 128, 256, 512], blocks=[2, 2, 2, 2]),
}
IN_CHANS = 3


def feat_dim(s):
    """Width of the backbone's features (the head's input)."""
    if s["family"] == "vit":
        return s["dim"]
    if s["family"] == "swin":
        return s["dim"] * 2 ** (len(s["depths"]) - 1)
    return s["widths"][-1]


def _vit(s):
    n, d = (s["img"] // s["patch"]) ** 2, s["dim"]
    t = n + 1
    block = 2 * t * d * 3 * d + 2 * 2 * t * t * d + 2 * t * d * d + 2 * t * d * s["hidden"] * 2
    return 2 * n * IN_CHANS * s["patch"] ** 2 * d + s["depth"] * block


def _swin(s):
    h = s["img"] // s["patch"]
    c = s["dim"]
    f = 2 * h * h * IN_CHANS * s["patch"] ** 2 * c
    for i, depth in enumerate(s["depths"]):
        ws = h if h <= s["window"] else s["window"]  # timm: a window the grid's size when the grid is no larger
        f += depth * 2 * h * h * (3 * c * c + 2 * ws * ws * c + c * c + 8 * c * c)
        if i + 1 < len(s["depths"]):  # patch merging: 4C -> 2C on the halved grid
            f += 2 * (h // 2) ** 2 * 4 * c * 2 * c
            h, c = h // 2, 2 * c
    return f


def _conv(hw, cin, cout, k, stride, pad):
    ho = (hw + 2 * pad - k) // stride + 1
    return ho, 2 * ho * ho * cout * cin * k * k


def _resnet(s):
    w = s["widths"]
    if s["stem"] == 7:
        hw, f = _conv(s["img"], IN_CHANS, w[0], 7, 2, 3)
        hw = (hw + 2 - 3) // 2 + 1  # 3x3 max-pool, stride 2
    else:
        hw, f = _conv(s["img"], IN_CHANS, w[0], 3, 1, 1)
    cin = w[0]
    for i, n in enumerate(s["blocks"]):
        for j in range(n):
            stride = 2 if i > 0 and j == 0 else 1
            ho, f1 = _conv(hw, cin, w[i], 3, stride, 1)
            _, f2 = _conv(ho, w[i], w[i], 3, 1, 1)
            f += f1 + f2
            if stride != 1 or cin != w[i]:
                f += _conv(hw, cin, w[i], 1, stride, 0)[1]
            hw, cin = ho, w[i]
    return f


def forward_flops(name):
    """FLOPs of one image's forward, as clvit's registry counts them."""
    s = SPECS[name]
    return float({"vit": _vit, "swin": _swin, "resnet": _resnet}[s["family"]](s))


if __name__ == "__main__":
    for name in SPECS:
        print(name, int(forward_flops(name)))
