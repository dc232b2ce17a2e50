#!/usr/bin/env python3
"""Runs two benchmark commands step for step, one step at a time.

On a shared machine the speed one process sees moves by 20-30% within a
minute (other tenants), so two programs measured one after the other are
compared under different loads. Here both run at once and take turns: A's
step, then B's, then A's, ... and while one steps the other waits in a
blocking read (no CPU). Each timed step of one program then sits seconds from
the other's, under about the same load, and the ratio of their medians is
steadier; nothing else about the measurement changes (each still times its
own steps, reports its own medians and peak memory).

What it is fit for: two builds or settings of the same program (an A/B run),
whose steps leave the caches and memory in the same state for each other.
It resolves about 5%: one clvit binary against itself gave B/A 1.011, 1.055,
1.005, 1.043 (vit_tiny bf16 train) and 0.948, 0.952 (swin_tiny fp32), so run
each pair twice with A and B swapped.
Not for clvit against PyTorch: a step that follows the other program's heavy
step costs them differently. vit_tiny_patch4_32 bf16 at batch 128 on an AMD
EPYC (Zen 4), 2 threads, alone / in lockstep with the other, three
alternated rounds (2026-12-02): PyTorch 87.7 / 76.0, 98.2 / 76.5, 91.0 / 78.8
img/s (about -16%), clvit 102.8 / 102.4, 116.2 / 109.3, 112.3 / 104.8 (about
-4%); beside a partner that only sleeps between its turns PyTorch lost
nothing (alone 68-93, beside it 61-94 img/s, in no order). So make bench runs
them one after the other unless BENCH_LOCKSTEP=1.

  lockstep.py [--timeout S] --out A.json B.json -- CMD_A ... -- CMD_B ...

Each command gets `--turns R,W` appended (clvit bench and bench/torch_peer.py
take it): before every step, warmup or timed, training or inference, it
writes one byte "r" (ready) to descriptor W and then reads one byte "g" (go)
from R; when it has nothing left to step it exits (its end of W closes). The
runner waits until both are ready for their first step (their setup runs
concurrently, untimed), then gives the turn to each in order and waits for
its next "r" (or its exit) before giving the next. A command that writes "r"
again before it was given "g" stepped out of turn: that is an error. A
command that exits early (a failure) leaves the other to step alone.

Each command's standard output goes to its --out file. Exit status: 0 when
both commands succeeded and kept the protocol, 1 otherwise (stderr says
which); 2 for bad arguments. A summary line on stderr gives the turns taken.
"""
import argparse
import os
import select
import subprocess
import sys
import time

USAGE = next(line.strip() for line in __doc__.splitlines() if line.strip().startswith("lockstep.py ["))


class Child:
    def __init__(self, name, cmd, out_path):
        self.name = name
        to_r, self.to_w = os.pipe()  # runner -> child: "g"
        self.from_r, from_w = os.pipe()  # child -> runner: "r"
        self.out = open(out_path, "wb")
        try:
            self.proc = subprocess.Popen(cmd + ["--turns", f"{to_r},{from_w}"], pass_fds=(to_r, from_w),
                                         stdout=self.out)
        except OSError as e:
            sys.exit(f"lockstep: cannot start {name} ({cmd[0]}): {e}")
        os.close(to_r)
        os.close(from_w)
        self.ready = False  # waiting for "g"
        self.done = False
        self.turns = 0
        self.error = None

    def wait_ready(self, timeout):
        """Reads the next "r" (ready = True) or the end (done = True)."""
        r, _, _ = select.select([self.from_r], [], [], timeout)
        if not r:
            return self.stop(f"no step finished in {timeout:.0f} s: stopped")
        b = os.read(self.from_r, 1)
        if not b:
            self.finish()
        elif b != b"r":
            self.stop(f"wrote {b!r} instead of the protocol's b'r'")
        else:
            self.ready = True

    def go(self, timeout):
        """Gives the turn; returns when the child is ready for its next step or has ended."""
        if select.select([self.from_r], [], [], 0)[0]:  # anything before "g" is a step out of turn
            if os.read(self.from_r, 1):
                return self.stop("stepped out of turn (wrote to the runner before it was given the turn)")
            return self.finish()  # it ended while waiting: its status tells
        self.ready = False
        try:
            os.write(self.to_w, b"g")
        except BrokenPipeError:
            self.finish()
            return
        self.turns += 1
        self.wait_ready(timeout)

    def stop(self, error):
        """Ends a child that broke the protocol or hung."""
        self.error = error
        self.proc.kill()
        self.finish()

    def finish(self):
        self.ready = False
        if not self.done:
            self.done = True
            for fd in (self.to_w, self.from_r):
                os.close(fd)
            self.rc = self.proc.wait()
            self.out.close()


def main():
    argv = sys.argv[1:]
    if argv.count("--") != 2:
        print(f"usage: {USAGE}\nlockstep: expected two commands, each after --", file=sys.stderr)
        sys.exit(2)
    a_at = argv.index("--")
    b_at = argv.index("--", a_at + 1)
    ap = argparse.ArgumentParser(prog="lockstep.py", usage=USAGE)
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds one step may take (default 900)")
    ap.add_argument("--out", nargs=2, required=True, metavar=("A", "B"), help="where each command's stdout goes")
    opts = ap.parse_args(argv[:a_at])
    cmd_a, cmd_b = argv[a_at + 1:b_at], argv[b_at + 1:]
    if not cmd_a or not cmd_b:
        ap.error("a command after -- is empty")
    if opts.timeout <= 0:
        ap.error("--timeout must be positive")
    children = [Child("A", cmd_a, opts.out[0]), Child("B", cmd_b, opts.out[1])]
    started = time.monotonic()
    for c in children:  # both set up (untimed) before either steps
        c.wait_ready(opts.timeout)
    while any(c.ready for c in children):
        for c in children:
            if c.ready:
                c.go(opts.timeout)
    failed = 0
    for c in children:
        c.finish()
        what = " ".join(c.proc.args[:4]).replace("\n", " ")[:80]
        if c.error:
            print(f"lockstep: {c.name} ({what} ...): {c.error}", file=sys.stderr)
            failed = 1
        elif c.rc != 0:
            print(f"lockstep: {c.name} ({what} ...) exited with status {c.rc}", file=sys.stderr)
            failed = 1
    a, b = children
    print(f"lockstep: {a.turns} and {b.turns} steps taken in turn in {time.monotonic() - started:.0f} s",
          file=sys.stderr)
    sys.exit(failed)


if __name__ == "__main__":
    main()
