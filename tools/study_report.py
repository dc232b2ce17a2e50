#!/usr/bin/env python3
"""Writes the study's report (docs/study.md) from the run directories of
tools/run_study.sh: the tables of every part with mean and standard
deviation over seeds, the paired differences behind the paper's two claims,
the run time of each part, and the pictures drawn by `clvit report --plot`.
Standard library only.

    tools/study_report.py --runs runs/study --out docs/study.md [--bin build/clvit] [--quick]
"""
import argparse
import glob
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import time

METHODS = ["finetune", "linear", "independent", "rkr", "piggyback", "maskrkr"]
SUMMARY_MARK = "<!-- summary -->"


def load(path):
    try:
        with open(os.path.join(path, "run.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def mean_sd(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None, None, 0
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0), len(xs)


def fmt_ms(xs, digits=1):
    m, s, n = mean_sd(xs)
    if m is None:
        return "-"
    return f"{m:.{digits}f} ± {s:.{digits}f}" if n > 1 else f"{m:.{digits}f}"


def fmt_bits(b):
    if b is None:
        return "-"
    if b == 0:
        return "0"
    if b >= 8 * 1024 * 1024:
        return f"{b:,.0f} ({b / 8 / 1024 / 1024:.2f} MiB)"
    return f"{b:,.0f} ({b / 8 / 1024:.1f} KiB)"


def storage(run):
    """(marginal bits per task without heads, one-time bits beyond the base, head bits per task), as run.json's
    "storage" records them (src/io/storage_summary.c computes them; the study's runs all carry the key)."""
    st = run.get("storage")
    if not isinstance(st, dict) or st.get("marginal_bits_per_task") is None:
        return None, None, None
    one = st.get("one_time_bits", 0) - st.get("one_time", {}).get("base", run.get("base_bits", 0))
    return st["marginal_bits_per_task"], max(one, 0), st.get("head_bits_per_task")


def mean_of(xs):
    """Mean of the values that are known, or None."""
    xs = [x for x in xs if x is not None]
    return statistics.fmean(xs) if xs else None


def zero_share(run):
    """Mean over tasks that store masks of the share of mask bits that are 0 (%), or None."""
    shares = [t["masks"]["zero_share"] for t in run.get("tasks", []) if isinstance(t.get("masks"), dict)
              and t["masks"].get("bits")]
    return 100.0 * statistics.fmean(shares) if shares else None


def min_zero_share(run):
    shares = [t["masks"]["zero_share"] for t in run.get("tasks", []) if isinstance(t.get("masks"), dict)
              and t["masks"].get("bits")]
    return 100.0 * min(shares) if shares else None


def warnings_of(run):
    out = list(run.get("warnings", []))
    for t in run.get("tasks", []):
        for w in t.get("warnings", []):
            out.append(f"task {t.get('task')}: {w}")
    return out


def last_row(run):
    m = run.get("accuracy_matrix") or [[]]
    return [x for x in m[-1] if x is not None]


def runs_matching(pattern):
    out = {}
    for d in sorted(glob.glob(pattern)):
        if os.path.isdir(d):
            r = load(d)
            if r is not None and r.get("status") == "complete":
                out[d] = r
    return out


def seconds(root, part):
    try:
        with open(os.path.join(root, f"{part}.seconds")) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def hms(s):
    return "-" if s is None else f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class Doc:
    def __init__(self):
        self.lines = []

    def __call__(self, s=""):
        self.lines.append(s)

    def table(self, head, rows):
        self("| " + " | ".join(head) + " |")
        self("| " + " | ".join("---" if i == 0 else "---:" for i in range(len(head))) + " |")
        for r in rows:
            self("| " + " | ".join(str(c) for c in r) + " |")
        self()


def method_table(doc, runs_by_method):
    """One row per method: mean and sd over its runs (seeds or orders)."""
    rows = []
    for m in METHODS:
        rs = runs_by_method.get(m, [])
        if not rs:
            continue
        marg = [storage(r)[0] for r in rs]
        one = [storage(r)[1] for r in rs]
        head = [storage(r)[2] for r in rs]
        zs = [zero_share(r) for r in rs]
        mins = [min_zero_share(r) for r in rs]
        warns = sum(len(warnings_of(r)) for r in rs)
        rows.append([f"`{m}`", len(rs), fmt_ms([r.get("average_accuracy") for r in rs]),
                     fmt_ms([r.get("forgetting") for r in rs]),
                     fmt_bits(mean_of(marg)), fmt_bits(mean_of(one)), fmt_bits(mean_of(head)),
                     "-" if zs[0] is None else f"{statistics.fmean(z for z in zs if z is not None):.2f}"
                     + f" (min {min(z for z in mins if z is not None):.2f})",
                     warns])
    doc.table(["method", "runs", "average accuracy (%)", "forgetting (points)",
               "marginal bits per task, heads excluded", "one-time bits beyond the base", "head bits per task",
               "mask bits at 0 (%)", "warnings"], rows)


def per_task_table(doc, runs_by_method, n_tasks):
    rows = []
    for m in METHODS:
        rs = runs_by_method.get(m, [])
        if not rs:
            continue
        cols = []
        for j in range(n_tasks):
            vals = [last_row(r)[j] for r in rs if len(last_row(r)) > j]
            cols.append(fmt_ms(vals))
        rows.append([f"`{m}`"] + cols)
    doc.table(["method"] + [f"task {j + 1}" for j in range(n_tasks)], rows)


def paired(doc, a_runs, b_runs, key, label):
    """Paired differences a - b over the runs that share a key (seed or order)."""
    diffs = []
    for k, ra in a_runs.items():
        rb = b_runs.get(k)
        if rb is not None:
            diffs.append((k, ra["average_accuracy"] - rb["average_accuracy"]))
    if not diffs:
        doc(f"- {label}: no paired runs")
        return None
    m, s, n = mean_sd([d for _, d in diffs])
    each = ", ".join(f"{key} {k}: {d:+.2f}" for k, d in diffs)
    doc(f"- {label}: {m:+.2f} ± {s:.2f} points over {n} paired runs ({each})")
    return {"mean": m, "sd": s, "n": n, "above": sum(1 for _, d in diffs if d > 0), "key": key}


def verdict(results):
    """results: paired differences (dicts from paired()) that must all be > 0 for the claim to hold."""
    if any(r is None for r in results):
        return "cannot be judged (runs missing)"
    if all(r["mean"] > 0 for r in results):
        if all(r["mean"] > r["sd"] for r in results if r["n"] > 1):
            return "**holds** here (every paired difference positive on average, larger than its spread)"
        return "**holds on average**, but within the spread over seeds"
    if all(r["mean"] < 0 for r in results):
        return "**does not hold** here (the opposite on average)"
    return "**does not hold** here (ahead of some rivals, not of all)"


def diff_text(r, a, b):
    """'a is above b by X ± Y points (k of n seeds)' for one paired difference."""
    if r is None:
        return f"{a} vs {b}: no paired runs"
    word = "above" if r["mean"] > 0 else "below"
    unit = "seeds" if r["key"] == "seed" else "orders"
    return (f"{a} is {word} {b} by {abs(r['mean']):.2f} ± {r['sd']:.2f} points ({r['above']} of {r['n']} {unit} "
            f"above)")


def keyed(runs, pattern):
    out = {}
    for d, r in runs.items():
        mm = re.search(pattern, os.path.basename(d))
        if mm:
            out.setdefault(mm.group(1), {})[mm.group(2)] = r
    return out


def plots(args, part, dirs, doc, title):
    if not dirs or not args.bin:
        return
    outdir = os.path.join(args.plot_root, part)
    os.makedirs(outdir, exist_ok=True)
    res = subprocess.run([args.bin, "report", "--plot", outdir] + dirs, capture_output=True, text=True)
    if res.returncode:
        doc(f"(`clvit report --plot` failed: {res.stderr.strip()[:300]})")
        return
    # the document shows the accuracy-vs-bits picture; the per-run matrices stay in the runs' own reports
    for p in glob.glob(os.path.join(outdir, "*")):
        if not os.path.basename(p).startswith("accuracy-vs-bits"):
            os.remove(p)
    rel = os.path.relpath(outdir, os.path.dirname(os.path.abspath(args.out)))
    for p in sorted(glob.glob(os.path.join(outdir, "accuracy-vs-bits*.png"))):
        doc(f"![{title}: {os.path.basename(p)}]({rel}/{os.path.basename(p)})")
    doc()


def manifest_lines(doc, data_root):
    rows = []
    for d in ("glyphs100", "cjk1000", "domains5"):
        try:
            with open(os.path.join(data_root, d, "manifest.json")) as f:
                m = json.load(f)
        except (OSError, ValueError):
            continue
        counts = m.get("counts", {})
        summary = ", ".join(f"{k} {v['total'] if isinstance(v, dict) else v:,}" for k, v in counts.items()
                            if isinstance(v, (int, dict)) and (not isinstance(v, dict) or "total" in v))
        rows.append([d, m.get("classes_count", len(m.get("classes", [])) or "-"), summary or "-",
                     m.get("seed", "-"), str(m.get("checksum", "-"))])
    if rows:
        doc.table(["data set", "classes", "images", "seed", "checksum"], rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--bin", default="build/clvit")
    ap.add_argument("--data", default=None, help="the suite's root (for the manifests)")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    root = args.runs
    args.plot_root = os.path.join(os.path.dirname(os.path.abspath(args.out)), "study")
    if args.data is None:
        args.data = "data/study-quick" if args.quick else "data/study"
    doc = Doc()
    summary = []

    doc("# The paper's comparison, measured on the local study suite")
    doc()
    if args.quick:
        doc("**`make study-quick`**: the whole pipeline on a few hundred images and one epoch per task. "
            "The figures below test the pipeline, not the methods.")
        doc()
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = "?"
    doc(f"Generated by `tools/study_report.py` from `{root}` on {time.strftime('%Y-%m-%d')}, clvit commit "
        f"`{commit}`, {cpu}, {os.cpu_count()} cores. Regenerate with `tools/install-deps.sh --study && make study` "
        "(resumable). Every figure is the mean ± the standard deviation over seeds (or domain orders) unless "
        "said; accuracy is the average over tasks after the last task, task id given (task-incremental).")
    doc()
    doc(SUMMARY_MARK)
    doc("Storage is counted as `clvit report` counts it: *marginal bits per task* are what each further task "
        "adds, heads excluded, averaged over the tasks after any one-time cost; *one-time bits* are paid once "
        "beyond the base (Mask-RKR's shared real-valued LM, RM, F); heads are shown apart (every method pays "
        "the same head per task). A float is 32 bits, a mask bit 1.")
    doc()
    parts = ["pretrain", "glyphs", "domains", "budget", "rank", "ablation"]
    took = {p: seconds(root, p) for p in parts}
    pre_run = load(os.path.join(root, "pretrain-cjk1000"))
    if pre_run and pre_run.get("seconds") and (took["pretrain"] or 0) < pre_run["seconds"]:
        took["pretrain"] = int(pre_run["seconds"])     # kept from an earlier invocation: its own time
    whole = sum(t for t in took.values() if t is not None)
    doc("Run time of each part (wall clock, runs in parallel as `tools/run_study.sh` says; a part kept from an "
        "earlier invocation counts with its runs' own time):")
    doc()
    doc.table(["part"] + parts + ["whole study"], [["time"] + [hms(took[p]) for p in parts] + [hms(whole)]])
    doc("## Data")
    doc()
    manifest_lines(doc, args.data)
    pre = load(os.path.join(root, "pretrain-cjk1000"))
    if pre:
        acc = last_row(pre)
        epochs = pre.get("config", {}).get("train", {}).get("epochs", "?")
        doc(f"The base: `{pre.get('model')}` pretrained on cjk1000 (all its classes as one task, {epochs} epochs, "
            f"{hms(int(pre.get('seconds', 0)))}): {acc[0] if acc else '-'}% on its held-out fonts (chance "
            f"{100.0 / max(1, len(pre.get('tasks', [{}])[0].get('classes', [])) or 1):.2f}%).")
        doc()

    # ---- part 1: Split Glyphs-100 ----
    claims, gaps = {}, {}
    for setting, title in (("pretrained", "base pretrained on cjk1000"), ("scratch", "base trained on task 1")):
        runs = runs_matching(os.path.join(root, "glyphs", setting, "*-s*"))
        if not runs:
            continue
        by_m = {}
        for d, r in runs.items():
            by_m.setdefault(r.get("method"), []).append(r)
        n_tasks = max(r.get("n_tasks", 0) for r in runs.values())
        doc(f"## Split Glyphs-100 (10 tasks of 10 classes), {title}")
        doc()
        method_table(doc, by_m)
        doc("Accuracy of each task after the last one (%):")
        doc()
        per_task_table(doc, by_m, n_tasks)
        ks = keyed(runs, r"^([a-z]+)-s(\d+)$")
        ft, ind = by_m.get("finetune", []), by_m.get("independent", [])
        if ft and ind:
            gap = statistics.fmean(r["average_accuracy"] for r in ind) - statistics.fmean(
                r["average_accuracy"] for r in ft)
            gaps[setting] = gap
            doc(f"independent minus finetune: {gap:+.2f} points (the data separates the bounds when this is "
                "large).")
            doc()
        ranked = sorted(((statistics.fmean(r["average_accuracy"] for r in rs), m) for m, rs in by_m.items()),
                        reverse=True)
        nseeds = max(len(rs) for rs in by_m.values())
        summary.append(f"- Split Glyphs-100, {title} ({nseeds} seed{'s' if nseeds > 1 else ''}): "
                       + ", ".join(f"{m} {a:.1f}%" for a, m in ranked)
                       + (f"; independent - finetune = {gaps[setting]:+.1f} points" if setting in gaps else "")
                       + ".")
        doc(f"Paired differences of average accuracy over seeds ({title}):")
        doc()
        r1 = paired(doc, ks.get("maskrkr", {}), ks.get("rkr", {}), "seed", "maskrkr - rkr")
        r2 = paired(doc, ks.get("maskrkr", {}), ks.get("piggyback", {}), "seed", "maskrkr - piggyback")
        doc()
        claims[setting] = (r1, r2, by_m)
        plots(args, f"glyphs-{setting}", sorted(runs), doc, f"Split Glyphs-100, {title}")

    # ---- part 2: five domains ----
    druns = runs_matching(os.path.join(root, "domains", "*-o*"))
    dclaim = None
    if druns:
        by_m = {}
        for d, r in druns.items():
            by_m.setdefault(r.get("method"), []).append(r)
        doc("## Five domains, one task each, from the pretrained base (3 domain orders)")
        doc()
        method_table(doc, by_m)
        ks = keyed(druns, r"^([a-z]+)-o(\d+)$")
        ranked = sorted(((statistics.fmean(r["average_accuracy"] for r in rs), m) for m, rs in by_m.items()),
                        reverse=True)
        summary.append("- Five domains (3 orders): " + ", ".join(f"{m} {a:.1f}%" for a, m in ranked) + ".")
        doc("Paired differences of average accuracy over domain orders:")
        doc()
        d1 = paired(doc, ks.get("piggyback", {}), ks.get("rkr", {}), "order", "piggyback - rkr")
        d2 = paired(doc, ks.get("piggyback", {}), ks.get("maskrkr", {}), "order", "piggyback - maskrkr")
        d3 = paired(doc, ks.get("piggyback", {}), ks.get("linear", {}), "order", "piggyback - linear")
        doc()
        dclaim = (d1, d2, d3)
        plots(args, "domains", sorted(druns), doc, "five domains")

    # ---- the claims ----
    doc("## The paper's two claims")
    doc()
    for setting, (r1, r2, by_m) in claims.items():
        bits = {m: mean_of(storage(r)[0] for r in by_m.get(m, []))
                for m in ("rkr", "piggyback", "maskrkr")}
        once = mean_of(storage(r)[1] for r in by_m.get("maskrkr", []))
        fewer = (bits["maskrkr"] is not None and bits["rkr"] and bits["piggyback"]
                 and bits["maskrkr"] < bits["rkr"] and bits["maskrkr"] < bits["piggyback"])
        gap = gaps.get(setting)
        if gap is not None and gap < 10:
            acc = (f"no verdict: this setting cannot separate the methods (independent is only {gap:+.1f} points "
                   "from finetune: the base learned too little to share)")
        else:
            acc = (f"{verdict([r1, r2])}: {diff_text(r1, 'Mask-RKR', 'RKR')}; "
                   f"{diff_text(r2, 'Mask-RKR', 'Piggyback')}")
        ratio = (f"{bits['rkr'] / bits['maskrkr']:.0f}x fewer than RKR's and "
                 f"{bits['piggyback'] / bits['maskrkr']:.1f}x fewer than Piggyback's"
                 if fewer else "not fewer than RKR's and Piggyback's")
        doc(f"1. *Mask-RKR is more accurate than RKR and Piggyback while adding fewer parameters per task* "
            f"(one domain, Split Glyphs-100, base {setting}). Accuracy: {acc}. Storage: "
            f"{'**holds**' if fewer else '**does not hold**'}: Mask-RKR adds {fmt_bits(bits['maskrkr'])} per task, "
            f"{ratio} ({fmt_bits(bits['rkr'])} and {fmt_bits(bits['piggyback'])}), after a one-time "
            f"{fmt_bits(once)}.")
        summary.append(f"- Claim 1 (Mask-RKR more accurate than RKR and Piggyback with fewer bits), base {setting}: "
                       f"accuracy {acc}; storage {'holds' if fewer else 'does not hold'} "
                       f"({fmt_bits(bits['maskrkr'])} per task against {fmt_bits(bits['rkr'])} and "
                       f"{fmt_bits(bits['piggyback'])}).")
    if dclaim:
        d1, d2, d3 = dclaim
        doc(f"2. *Piggyback is the most accurate across domains* (five domains, against rkr, maskrkr and "
            f"linear): {verdict(list(dclaim))}: {diff_text(d1, 'Piggyback', 'RKR')}; "
            f"{diff_text(d2, 'Piggyback', 'Mask-RKR')}; {diff_text(d3, 'Piggyback', 'linear')}.")
        summary.append(f"- Claim 2 (Piggyback the most accurate across domains): {verdict(list(dclaim))}: "
                       f"{diff_text(d1, 'Piggyback', 'RKR')}; {diff_text(d2, 'Piggyback', 'Mask-RKR')}; "
                       f"{diff_text(d3, 'Piggyback', 'linear')}.")
    doc()

    # ---- part 3: budget ----
    bruns = runs_matching(os.path.join(root, "budget", "*"))
    if bruns:
        doc("## The masks' budget (Split Glyphs-100, pretrained base, seed 0)")
        doc()
        doc("A score starts at 1e-2 and its bit flips below 5e-3; with Adam a score moves about lr_mask x the "
            "schedule's factor per step (more only in rare steps), so lr_mask x the sum of the factors (the "
            "budget) must exceed 5e-3 for bits to flip; `short` marks runs that `mask_budget_short` flagged. "
            "The main parts use lr_mask 2e-4 and 3 epochs.")
        doc()
        rows = []
        for d, r in sorted(bruns.items()):
            mm = re.match(r"^([a-z]+)-e(\d+)-lr(.+)$", os.path.basename(d))
            if not mm:
                continue
            w = [x for x in warnings_of(r) if "mask_budget_short" in x]
            rows.append([f"`{mm.group(1)}`", mm.group(2), mm.group(3), f"{r['average_accuracy']:.2f}",
                         "-" if zero_share(r) is None else f"{zero_share(r):.2f}",
                         "-" if min_zero_share(r) is None else f"{min_zero_share(r):.2f}",
                         "short" if w else "enough"])
        doc.table(["method", "epochs", "lr_mask", "average accuracy (%)", "mask bits at 0 (%)",
                   "least of any task (%)", "budget"], rows)
        for m in ("piggyback", "maskrkr"):
            mine = [r for r in rows if r[0] == f"`{m}`"]
            if mine:
                best = max(mine, key=lambda r: float(r[3]))
                worst = min(mine, key=lambda r: float(r[3]))
                moved = (float(worst[4]) > float(best[4])) if worst[4] != "-" and best[4] != "-" else None
                why = ("" if moved is None else ": the worst masks moved more than the best" if moved
                       else ": the worst masks moved less than the best")
                summary.append(f"- {m}'s mask budget (seed 0): best {best[3]}% with {best[1]} epoch(s) at lr_mask "
                               f"{best[2]} ({best[4]}% of bits at 0), worst {worst[3]}% with {worst[1]} epoch(s) "
                               f"at lr_mask {worst[2]} ({worst[4]}% at 0){why}.")

    # ---- part 4: rank ----
    rruns = runs_matching(os.path.join(root, "rank", "*"))
    if rruns:
        doc("## Rank sweep (Split Glyphs-100, pretrained base)")
        doc()
        groups = {}
        for d, r in rruns.items():
            mm = re.match(r"^([a-z]+)-r(\d+)-s(\d+)$", os.path.basename(d))
            if mm:
                groups.setdefault((mm.group(1), int(mm.group(2))), []).append(r)
        # rank 2 is the main part's setting
        for d, r in runs_matching(os.path.join(root, "glyphs", "pretrained", "*-s*")).items():
            if r.get("method") in ("rkr", "maskrkr"):
                groups.setdefault((r["method"], 2), []).append(r)
        rows = []
        for (m, k), rs in sorted(groups.items()):
            rows.append([f"`{m}`", k, len(rs), fmt_ms([r["average_accuracy"] for r in rs]),
                         fmt_bits(mean_of(storage(r)[0] for r in rs)),
                         fmt_bits(mean_of(storage(r)[1] for r in rs))])
        doc.table(["method", "rank", "runs", "average accuracy (%)", "marginal bits per task", "one-time bits"],
                  rows)
        for m in ("rkr", "maskrkr"):
            ks_ = sorted(k for (mm_, k) in groups if mm_ == m)
            if len(ks_) > 1:
                lo, hi = groups[(m, ks_[0])], groups[(m, ks_[-1])]
                summary.append(f"- {m}'s rank {ks_[0]} -> {ks_[-1]}: "
                               f"{statistics.fmean(r['average_accuracy'] for r in lo):.1f}% -> "
                               f"{statistics.fmean(r['average_accuracy'] for r in hi):.1f}% for "
                               f"{fmt_bits(mean_of(storage(r)[0] for r in lo))} -> "
                               f"{fmt_bits(mean_of(storage(r)[0] for r in hi))} per task.")
        plots(args, "rank", sorted(rruns), doc, "rank sweep")

    # ---- part 5: ablation ----
    aruns = runs_matching(os.path.join(root, "ablation", "*"))
    if aruns:
        doc("## Mask-RKR ablation (Split Glyphs-100, pretrained base, seed 0)")
        doc()
        rows = []
        for d, r in sorted(aruns.items()):
            mm = re.match(r"^maskrkr-([a-z]+)-(.+)$", os.path.basename(d))
            if not mm:
                continue
            rows.append([mm.group(1), mm.group(2).replace("_", ","), f"{r['average_accuracy']:.2f}",
                         fmt_bits(storage(r)[0]), fmt_bits(storage(r)[1]),
                         "-" if zero_share(r) is None else f"{zero_share(r):.2f}"])
        doc.table(["source of LM, RM, F", "masked", "average accuracy (%)", "marginal bits per task",
                   "one-time bits", "mask bits at 0 (%)"], rows)
        if rows:
            best = max(rows, key=lambda r: float(r[2]))
            paper = [r for r in rows if r[0] == "first" and r[1] == "lm,rm,f"]
            summary.append(f"- Mask-RKR ablation (seed 0): best {best[2]}% with LM, RM, F from '{best[0]}' and "
                           f"masks on {best[1]}" + (f"; our default (first, lm,rm,f) {paper[0][2]}%" if paper else "")
                           + ".")

    # ---- warnings ----
    allw = []
    for part in ("glyphs/*", "domains", "budget", "rank", "ablation"):
        for d, r in runs_matching(os.path.join(root, part, "*")).items():
            by_code = {}
            for w in r.get("warnings", []):
                by_code.setdefault(w.split(":", 1)[0], ([], w))[0].append("run")
            for t in r.get("tasks", []):
                for w in t.get("warnings", []):
                    by_code.setdefault(w.split(":", 1)[0], ([], w))[0].append(str(t.get("task")))
            for code, (where, first) in sorted(by_code.items()):
                tasks = [x for x in where if x != "run"]
                scope = (f"task{'s' if len(tasks) > 1 else ''} {', '.join(tasks)}" if tasks else "the run")
                allw.append(f"- `{os.path.relpath(d, root)}`, {scope}: {first}")
    doc("## Warnings")
    doc()
    if allw:
        doc("Every run that flagged a task (near chance, a loss that never fell, a mask budget too short), "
            "each kind once with its first message:")
        doc()
        for w in allw:
            doc(w)
    else:
        doc("No run flagged any task.")
    doc()

    # the summary goes right after the header
    if summary and not args.quick:
        at = doc.lines.index(SUMMARY_MARK)
        doc.lines[at:at + 1] = ["## What the study finds", ""] + summary + [""]
    elif SUMMARY_MARK in doc.lines:
        doc.lines.remove(SUMMARY_MARK)

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(doc.lines).rstrip() + "\n")
    os.replace(tmp, args.out)
    print(f"study_report: wrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
