#!/usr/bin/env python3
"""Where oneDNN's time goes in a clvit run: ONEDNN_VERBOSE=1 output summed by primitive and shape.

  ONEDNN_VERBOSE=1 build/clvit bench --model vit_tiny_patch4_32 --precision bf16 --steps 2 \\
      | bench/onednn_profile.py --peak 408

Reads oneDNN's verbose lines (oneDNN 2.x: onednn_verbose,exec,cpu,<primitive>,<implementation>,
<propagation>,<memory descriptors>,<attributes>,<auxiliary>,<problem>,<milliseconds>) from the
files named or standard input, ignores every other line, and prints one row per (primitive,
implementation, propagation, data types, transposed operands, problem): calls, milliseconds in
all, the share of all of oneDNN's time, and for matmuls and convolutions the GFLOP/s (and % of
--peak). A matmul's FLOPs are 2 M N K times its batch dimensions; a convolution's 2 mb oc oh ow
(ic / g) kh kw (od kd for 3-D) whatever its propagation (backward data and weights do as many).

What it cannot see: clv_gemm's fp32 GEMM (dnnl_sgemm logs nothing), and everything outside
oneDNN. Verbose mode itself costs a little per call; read the shares, not the step time.
Warmup steps are in the sums too: run few of them (--warmup 1).
"""
import argparse
import collections
import re
import sys


def dims(text):
    return [int(v) for v in text.split("x")]


def matmul_flops(problem):
    """2 M N K x batch for 'MxK:KxN:MxN', batched 'b..xMxK:b..xKxN:b..xMxN' (broadcast dims: the output's)."""
    parts = problem.split(":")
    if len(parts) != 3:
        return None
    try:
        a, c = dims(parts[0]), dims(parts[2])
    except ValueError:
        return None
    if len(a) < 2 or len(a) != len(c):
        return None
    batch = 1
    for v in c[:-2]:
        batch *= v
    return 2 * batch * c[-2] * c[-1] * a[-1]


CONV_KEYS = ("mb", "g", "ic", "oc", "id", "od", "kd", "ih", "oh", "kh", "iw", "ow", "kw")


def conv_flops(problem):
    """2 mb oc oh ow (ic / g) kh kw from 'mb128_ic64oc128_ih32oh16kh3sh2dh0ph1_iw32ow16kw3sw2dw0pw1'"""
    v = {k: int(n) for k, n in re.findall(r"([a-z]+)(\d+)", problem) if k in CONV_KEYS}
    if not all(k in v for k in ("mb", "ic", "oc")):
        return None
    g = v.get("g", 1)
    # oneDNN omits a spatial dimension's sizes when they equal the first one's (and 1-D/2-D drop d)
    oh = v.get("oh", 1)
    ow, kw = v.get("ow", oh), v.get("kw", v.get("kh", 1))
    spatial = v.get("od", 1) * v.get("kd", 1) * oh * v.get("kh", 1) * ow * kw
    return 2 * v["mb"] * v["oc"] * (v["ic"] // g) * spatial


def data_types(mds):
    """'src_bf16:... wei_bf16:... bia_f32:... dst_f32:...' -> 'src bf16, wei bf16, dst f32' (no bias, none undef)"""
    kinds = re.findall(r"(?:^|\s)(src|wei|dst|diff_src|diff_wei|diff_dst)_([a-z0-9]+):", mds)
    return ", ".join(f"{k} {t}" for k, t in kinds if t != "undef")


def transposed(mds):
    """which of a matmul's 2-D operands come in column-major (oneDNN's 'ba' layout): 'A', 'B', 'AB' or ''"""
    out = ""
    for name, tag in (("src", "A"), ("wei", "B")):
        m = re.search(r"\b" + name + r"_[a-z0-9]+:[a-z]*:blocked:([a-zA-Z0-9]+):", mds)
        if m and m.group(1) == "ba":
            out += tag
    return out


def parse(lines):
    """({key: [calls, ms, flops or None]} for every exec line, the exec lines not understood)"""
    rows, bad = collections.OrderedDict(), 0
    for line in lines:
        if not line.startswith("onednn_verbose,exec,"):
            continue
        f = line.rstrip("\n").split(",")
        try:
            ms = float(f[-1]) if len(f) >= 11 else None
        except ValueError:
            ms = None
        if ms is None:
            bad += 1
            continue
        prim, impl, prop, mds, problem = f[3], f[4], f[5], f[6], f[-2]
        flops = matmul_flops(problem) if prim == "matmul" else conv_flops(problem) if prim == "convolution" else None
        key = (prim, impl, prop, data_types(mds), transposed(mds) if prim == "matmul" else "", problem)
        r = rows.setdefault(key, [0, 0.0, 0 if flops is not None else None])
        r[0] += 1
        r[1] += ms
        if flops is not None:
            r[2] += flops
    return rows, bad


def gflops(flops, ms):
    """GFLOP/s of flops done in ms milliseconds"""
    return flops / (ms * 1e-3) / 1e9


def table(rows, bad=0, peak=None, top=None):
    total = sum(r[1] for r in rows.values())
    out = ["| ms | share | calls | GFLOP/s | primitive | implementation | propagation | types | transposed | problem |",
           "| ---: | ---: | ---: | ---: | --- | --- | --- | --- | --- | --- |"]
    ranked = sorted(rows.items(), key=lambda kv: -kv[1][1])
    for (prim, impl, prop, types, tr, problem), (calls, ms, flops) in ranked[:top]:
        rate = ""
        if flops and ms > 0:
            g = gflops(flops, ms)
            rate = f"{g:.1f}" + (f" ({100 * g / peak:.0f}%)" if peak else "")
        share = 100 * ms / total if total else 0.0
        out.append(f"| {ms:.2f} | {share:.1f}% | {calls} | {rate} | {prim} | {impl} | {prop} | {types} | {tr} | {problem} |")
    counted_flops = sum(r[2] for r in rows.values() if r[2])
    counted_ms = sum(r[1] for r in rows.values() if r[2])
    summary = f"oneDNN: {total:.1f} ms in {sum(r[0] for r in rows.values())} calls"
    if counted_ms > 0:
        g = gflops(counted_flops, counted_ms)
        summary += f"; matmuls and convolutions {counted_ms:.1f} ms at {g:.1f} GFLOP/s"
        summary += f" ({100 * g / peak:.0f}% of {peak:g})" if peak else ""
    if top is not None and len(ranked) > top:
        summary += f"; {len(ranked) - top} more rows not shown"
    if bad:
        summary += f"; {bad} exec line{'s' if bad > 1 else ''} not understood (skipped)"
    return "\n".join(out + ["", summary])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="*", help="verbose output (default: standard input)")
    ap.add_argument("--peak", type=float, help="the precision's peak GFLOP/s (bench/peak_flops) for a %% column")
    ap.add_argument("--top", type=int, help="only the TOP rows with the most time")
    a = ap.parse_args()
    if a.top is not None and a.top < 1:
        ap.error("--top must be at least 1")
    if a.peak is not None and a.peak <= 0:
        ap.error("--peak must be positive")
    lines = []
    for name in a.files or ["-"]:
        try:
            with (sys.stdin if name == "-" else open(name)) as fh:
                lines.extend(fh)
        except OSError as e:
            sys.exit(f"onednn_profile: {name}: {e.strerror}")
    rows, bad = parse(lines)
    if not rows:
        sys.exit("onednn_profile: no oneDNN exec lines in the input (was ONEDNN_VERBOSE=1 set?)")
    print(table(rows, bad, a.peak, a.top))


if __name__ == "__main__":
    main()
