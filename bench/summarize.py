#!/usr/bin/env python3
"""Prints the table of `make bench` from the JSON lines bench/run.sh wrote.

One row per figure the run planned (model x precision x method train step,
the model's inference in each precision, and each step's peak resident
memory), whether or not it was measured ("-" when not): the median over
repeats of clvit; of PyTorch in the same precision and clvit's ratio to it;
of PyTorch in its faster precision (fp32 or bf16 autocast, named) and the
ratio to that; clvit's achieved GFLOP/s and its share of the machine's
measured peak for that precision (the best bf16 unit for bf16 figures,
named in the header); and clvit's ratio to PyTorch in the same precision
within each repeat (the two ran minutes apart), which shows how far the
machine's noise moves a ratio. Memory rows take the lower PyTorch figure as best.

  bench/summarize.py [results.jsonl] [--per-repeat]
"""
import json
import statistics
import sys
from collections import defaultdict

METHOD_ORDER = ["full", "linear", "rkr", "piggyback"]
METHOD_NAME = {"full": "full", "linear": "linear", "rkr": "rkr rank-4", "piggyback": "piggyback"}


def load(path):
    rows = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    sys.exit(f"summarize: {path}:{n}: not JSON ({e})")
    return rows


def fmt(v, spec="%.1f"):
    return "-" if v is None else spec % v


def ratio(a, b):
    return fmt(a / b if a and b else None, "%.2fx")


class Runs:
    """The measurements by (kind, model, method, precision)."""

    def __init__(self, rows):
        self.by = defaultdict(list)
        for r in rows:
            if r["kind"] not in ("clvit", "torch", "clvit-mpi"):
                continue
            d = r["data"]
            method = "full" if d["method"] == "finetune" else d["method"]  # clvit's name for the whole network
            prec = d.get("precision", r.get("precision", "fp32"))
            self.by[(r["kind"], d["model"], method, prec)].append(d)

    def med(self, kind, model, method, prec, key):
        v = [d[key] for d in self.by.get((kind, model, method, prec), []) if d.get(key) is not None]
        return statistics.median(v) if v else None

    def values(self, kind, model, method, prec, key):
        return [d.get(key) for d in self.by.get((kind, model, method, prec), [])]


def peaks_of(rows):
    p = next((r["data"] for r in rows if r["kind"] == "peak"), {})
    fp32 = p.get("peak_gflops") or None
    bf16 = p.get("bf16_peak_gflops") or None
    return p, {"fp32": fp32, "bf16": bf16}


def header(rows, p, peak):
    for r in rows:
        if r["kind"] == "machine":
            d = r["data"]
            print(f"machine: {d.get('cpu', '?')}, {d.get('cores', '?')} cores ({d.get('flags', '')}), "
                  f"{d.get('threads', '?')} threads, OpenMP passive after GOMP_SPINCOUNT={d.get('spincount', 0)} "
                  "for clvit and PyTorch alike")
    if p:
        print(f"peak fp32: {fmt(peak['fp32'])} GFLOP/s (AVX2 FMA {fmt(p.get('avx2_fma_gflops'))}, AVX-512 FMA "
              f"{fmt(p.get('avx512_gflops'))}); peak bf16: {fmt(peak['bf16'])} GFLOP/s "
              f"({p.get('bf16_peak_source', 'not measured')}; vdpbf16ps {fmt(p.get('avx512_bf16_gflops'))}, "
              f"AMX {fmt(p.get('amx_bf16_gflops'))})")
        if p.get("amx_note"):
            print("AMX: " + p["amx_note"])
    gemm = [r["data"] for r in rows if r["kind"] == "gemm"]
    if gemm and gemm[-1].get("gflops"):
        g = gemm[-1]["gflops"]
        share = f" = {100 * g / peak['fp32']:.0f}% of the fp32 peak" if peak["fp32"] else ""
        print(f"oneDNN sgemm on the ViT step's shapes: {g:.1f} GFLOP/s{share} ({gemm[-1].get('gemm', '')})")
    for r in rows:
        if r["kind"] == "torch-blas":
            d = r["data"]
            print(f"PyTorch fp32 GEMM probe (512x512): {d['gflops']} GFLOP/s, {', '.join(d.get('blas', [])) or '?'}")
    for r in rows:
        if r["kind"] == "note":
            print("note: " + r["data"]["text"])
    if any(r["kind"] == "clvit" and r["data"].get("bf16_native") is False for r in rows):
        print("note: clvit bench reported bf16_native false: its bf16 runs without native bf16 instructions here")


def paired(runs, kind, model, method, prec, key):
    """clvit / PyTorch (same precision) repeat by repeat, as "1.41 1.22 1.35"; "-" without pairs.
    The MPI figure, measured after all repeats, pairs with PyTorch's repeats in order too."""
    c = runs.values(kind, model, method, prec, key)
    t = runs.values("torch", model, method, prec, key)
    if not c or len(c) != len(t) or any(v is None for v in c + t) or any(v <= 0 for v in t):
        return "-"
    return " ".join(f"{a / b:.2f}" for a, b in zip(c, t))


def table(rows, runs, plan, peak):
    print()
    print("| figure | clvit | PyTorch same precision | ratio | PyTorch best precision | ratio "
          "| clvit GFLOP/s (% of peak) | ratio per repeat |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    methods = sorted(plan["methods"], key=METHOD_ORDER.index)
    precs = plan["precisions"]
    # inference is measured by every method's run; the whole network's (full) is the one reported
    imethod = "full" if "full" in methods else methods[0]

    def speed_row(label, model, method, prec, key, gkey, kind="clvit"):
        c = runs.med(kind, model, method, prec, key)
        t = runs.med("torch", model, method, prec, key)
        best = [(runs.med("torch", model, method, q, key), q) for q in ("fp32", "bf16")]
        best = max(((v, q) for v, q in best if v is not None), default=(None, None))
        g = runs.med(kind, model, method, prec, gkey)
        pk = peak.get(prec)
        gf = fmt(g) + (f" ({100 * g / pk:.0f}%)" if g and pk else "")
        tb = "-" if best[0] is None else f"{best[0]:.1f} ({best[1]})"
        print(f"| {label} | {fmt(c)} | {fmt(t)} | {ratio(c, t)} | {tb} | {ratio(c, best[0])} | {gf} "
              f"| {paired(runs, kind, model, method, prec, key)} |")

    for model in plan["models"]:
        for prec in precs:
            for m in methods:
                speed_row(f"{model} {prec} train step ({METHOD_NAME[m]}), images/s", model, m, prec,
                          "train_images_per_s", "train_gflops")
            speed_row(f"{model} {prec} inference, images/s", model, imethod, prec, "infer_images_per_s",
                      "infer_gflops")
        if model == plan["models"][0] and runs.by.get(("clvit-mpi", model, "full", "fp32")):
            ranks = runs.by[("clvit-mpi", model, "full", "fp32")][0].get("ranks", "?")
            speed_row(f"{model} fp32 train step (full), {ranks} MPI ranks x 1 thread, images/s", model, "full",
                      "fp32", "train_images_per_s", "train_gflops", kind="clvit-mpi")
        for prec in precs:
            for m in methods:
                c = runs.med("clvit", model, m, prec, "peak_rss_mb")
                t = runs.med("torch", model, m, prec, "peak_rss_mb")
                best = [(runs.med("torch", model, m, q, "peak_rss_mb"), q) for q in ("fp32", "bf16")]
                best = min(((v, q) for v, q in best if v is not None), default=(None, None))
                tb = "-" if best[0] is None else f"{best[0]:.0f} ({best[1]})"
                print(f"| {model} {prec} {METHOD_NAME[m]} step peak RSS, MB | {fmt(c, '%.0f')} | {fmt(t, '%.0f')} "
                      f"| {ratio(c, t)} | {tb} | {ratio(c, best[0])} | | |")


def per_repeat(runs, plan):
    print("\nper repeat, train images/s (clvit / PyTorch):")
    for model in plan["models"]:
        for prec in plan["precisions"]:
            for m in plan["methods"]:
                c = ", ".join(fmt(v) for v in runs.values("clvit", model, m, prec, "train_images_per_s"))
                t = ", ".join(fmt(v) for v in runs.values("torch", model, m, prec, "train_images_per_s"))
                print(f"  {model} {prec} {m}: {c or '-'} / {t or '-'}")


def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    path = args[0] if args else "build/bench/results.jsonl"
    rows = load(path)
    plan = next((r["data"] for r in rows if r["kind"] == "plan"), None)
    if plan is None:
        sys.exit(f"summarize: {path} has no plan line (written by bench/run.sh)")
    runs = Runs(rows)
    p, peak = peaks_of(rows)
    header(rows, p, peak)
    table(rows, runs, plan, peak)
    steps = ", ".join(f"{m} {plan[m]['steps']} after {plan[m]['warmup']} (batch {plan[m]['batch']}, inference "
                      f"{plan[m]['infer_batch']})" for m in plan["models"] if m in plan)
    elapsed = next((r["data"]["seconds"] for r in rows if r["kind"] == "elapsed"), None)
    order = "step for step (bench/lockstep.py)" if plan.get("lockstep") else "one after the other"
    print(f"\nmedians over {plan['repeats']} repeats, clvit and PyTorch {order}, one machine, one run"
          + (f" of {elapsed / 60:.0f} min" if elapsed else "") + f"; timed steps per repeat: {steps}. "
          "GFLOP/s by the registry's nominal forward FLOPs x 3 (full, piggyback), x 2 (rkr), x 1 (inference); "
          "bf16 figures against the bf16 peak.")
    if "--per-repeat" in argv:
        per_repeat(runs, plan)


if __name__ == "__main__":
    main(sys.argv[1:])
