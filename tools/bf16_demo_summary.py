#!/usr/bin/python3
"""bf16 against fp32 over the runs tools/bf16_demo.sh leaves: one row per
method, over the seeds that finished in both precisions.

  tools/bf16_demo_summary.py runs/bf16-demo [METHOD ...]

Two paired differences (bf16 - fp32, same seed), each as mean +- sd over the
seeds and the standard error of that mean:
  final     the mean accuracy over all tasks after the last one (the demo's figure);
  diagonal  the mean accuracy of each task just after it was learned.
Methods that forget (finetune, ewc, lwf) swing by 5-20 points between seeds
in either precision in the final row; the diagonal shows whether bf16 learns
each task as well. For the isolating methods (rkr, piggyback, maskrkr,
independent, linear) the two are the same.
"""
import json
import math
import os
import re
import statistics
import sys


def load(path):
    """(final mean, diagonal mean) of a finished run.json, else None."""
    try:
        acc = json.load(open(path))["accuracy_matrix"]
    except (OSError, ValueError, KeyError):
        return None
    if not acc or any(v is None for v in acc[-1]) or len(acc[-1]) != len(acc):
        return None
    final = acc[-1]
    diag = [acc[t][t] for t in range(len(acc))]
    return sum(final) / len(final), sum(diag) / len(diag)


def mean_sd(v):
    return statistics.mean(v), (statistics.stdev(v) if len(v) > 1 else float("nan"))


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    root, wanted = sys.argv[1], sys.argv[2:]
    runs = {}
    for name in sorted(os.listdir(root)):
        m = re.fullmatch(r"([a-z]+)-(\d+)-(fp32|bf16)", name)
        if m:
            r = load(os.path.join(root, name, "run.json"))
            if r:
                runs[(m[1], int(m[2]), m[3])] = r
    methods = wanted or sorted({k[0] for k in runs})
    print("| method | seeds | fp32 final | bf16 final | bf16 - fp32 final | bf16 - fp32 diagonal |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for meth in methods:
        seeds = sorted(s for (m, s, p) in runs if m == meth and p == "fp32" and (m, s, "bf16") in runs)
        if not seeds:
            continue
        f = [runs[(meth, s, "fp32")] for s in seeds]
        b = [runs[(meth, s, "bf16")] for s in seeds]
        fin = [y[0] - x[0] for x, y in zip(f, b)]
        dia = [y[1] - x[1] for x, y in zip(f, b)]
        cells = []
        for d in (fin, dia):
            mu, sd = mean_sd(d)
            se = sd / math.sqrt(len(d)) if len(d) > 1 else float("nan")
            cells.append(f"{mu:+.2f} ± {sd:.2f} (se {se:.2f})")
        fm, fs = mean_sd([x[0] for x in f])
        bm, bs = mean_sd([x[0] for x in b])
        print(f"| {meth} | {len(seeds)} ({','.join(map(str, seeds))}) | {fm:.2f} ± {fs:.2f} | {bm:.2f} ± {bs:.2f} "
              f"| {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
