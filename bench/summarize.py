#!/usr/bin/env python3
"""Prints the table of `make bench` from the JSON lines bench/run.sh wrote:
per figure, the median over repeats of clvit, of PyTorch (OMP_WAIT_POLICY
passive, its faster setting here; default in brackets) and their ratio, and
clvit's achieved GFLOP/s as a fraction of the measured peak."""
import json
import statistics
import sys
from collections import defaultdict


def main(path):
    rows = [json.loads(l) for l in open(path) if l.strip()]
    peak = next((r["data"]["peak_gflops"] for r in rows if r["kind"] == "peak"), None)
    gemm = [r["data"] for r in rows if r["kind"] == "gemm"]
    runs = defaultdict(list)
    for r in rows:
        if r["kind"] in ("clvit", "torch-passive", "torch-default", "clvit-mpi"):
            # clvit bench called the whole network's training "full" before it said "finetune"
            m = "full" if r["data"]["method"] == "finetune" else r["data"]["method"]
            runs[(r["kind"], m)].append(r["data"])

    def med(kind, method, key):
        v = [d[key] for d in runs.get((kind, method), [])]
        return statistics.median(v) if v else None

    def fmt(v, spec="%.1f"):
        return "-" if v is None else spec % v

    print(f"peak (FMA chains): {fmt(peak)} GFLOP/s")
    if gemm:
        total = gemm[-1]
        print(f"GEMM on the step's shapes: {fmt(total.get('gflops'))} GFLOP/s"
              + (f" = {100 * total['gflops'] / peak:.0f}% of peak" if peak else "") + f" ({total.get('gemm', '')})")
    print()
    print("| figure | clvit | PyTorch passive (default) | ratio | clvit GFLOP/s (% of peak) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    methods = sorted({m for (_, m) in runs}, key=lambda m: ["full", "linear", "rkr", "piggyback"].index(m))
    for m in methods:
        for key, label, gkey in (("train_images_per_s", "train step", "train_gflops"),
                                 ("infer_images_per_s", "inference", "infer_gflops")):
            if m != "full" and key == "infer_images_per_s":
                continue
            c, tp, td = med("clvit", m, key), med("torch-passive", m, key), med("torch-default", m, key)
            g = med("clvit", m, gkey)
            ratio = c / tp if c and tp else None
            frac = f"{g:.1f} ({100 * g / peak:.0f}%)" if g and peak else fmt(g)
            torch_s = fmt(tp) + (f" ({td:.1f})" if td else "")
            name = f"{label} ({m}), images/s" if m != "full" else f"{label}, images/s"
            print(f"| {name} | {fmt(c)} | {torch_s} | {fmt(ratio, '%.2fx')} | {frac if key.startswith('train') or m == 'full' else ''} |")
    mp = med("clvit-mpi", "full", "train_images_per_s")
    if mp:
        ranks = runs[("clvit-mpi", "full")][0].get("ranks", "?")
        tp = med("torch-passive", "full", "train_images_per_s")
        g = med("clvit-mpi", "full", "train_gflops")
        frac = f"{g:.1f} ({100 * g / peak:.0f}%)" if g and peak else fmt(g)
        print(f"| train step, {ranks} MPI ranks x 1 thread, images/s | {fmt(mp)} | {fmt(tp)} | "
              f"{fmt(mp / tp if tp else None, '%.2fx')} | {frac} |")
        ip, tip = med("clvit-mpi", "full", "infer_images_per_s"), med("torch-passive", "full", "infer_images_per_s")
        print(f"| inference, {ranks} MPI ranks x 1 thread, images/s | {fmt(ip)} | {fmt(tip)} | "
              f"{fmt(ip / tip if ip and tip else None, '%.2fx')} | |")
    for m in methods:
        c, t = med("clvit", m, "peak_rss_mb"), med("torch-passive", m, "peak_rss_mb")
        what = "full step" if m == "full" else f"{m} step"
        print(f"| peak resident memory ({what}), MB | {fmt(c, '%.0f')} | {fmt(t, '%.0f')} | "
              f"{fmt(c / t if c and t else None, '%.2fx')} | |")
    n = len(runs.get(("clvit", "full"), []))
    print(f"\nmedians over {n} repeats (each the median of its timed steps), one machine, one run")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "build/bench/results.jsonl")
