#!/usr/bin/env python3
"""Prints the reference numbers of tests/test_optim.c: three steps of
torch.optim.SGD (momentum, nesterov) and torch.optim.AdamW on a small tensor
with fixed gradients, torch.nn.utils.clip_grad_norm_, and a LambdaLR cosine
schedule with warmup. Paste the output into the test when the cases change.

Run:  /usr/bin/python3 tools/make_optim_fixtures.py
"""
import math

import torch

W0 = [0.5, -1.25, 2.0, 0.0, -0.75]
GRADS = [[0.1, -0.2, 0.3, -0.4, 0.5], [-0.3, 0.1, 0.0, 0.2, -0.1], [0.05, 0.05, -0.6, 0.1, 0.9]]


def run(make, lr_factors=(1.0, 1.0, 1.0)):
    w = torch.nn.Parameter(torch.tensor(W0, dtype=torch.float32))
    opt = make([w])
    base = [g["lr"] for g in opt.param_groups]
    for k, g in enumerate(GRADS):
        for pg, b in zip(opt.param_groups, base):
            pg["lr"] = b * lr_factors[k]
        w.grad = torch.tensor(g, dtype=torch.float32)
        opt.step()
    return w.detach().tolist()


def c_array(name, vals):
    return "static const float %s[5] = {%s};" % (name, ", ".join("%.9gf" % v for v in vals))


print(c_array("sgd_expected", run(lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01))))
print(c_array("nesterov_expected",
              run(lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01))))
print(c_array("adamw_expected",
              run(lambda p: torch.optim.AdamW(p, lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05),
                  lr_factors=(1.0, 0.5, 0.25))))
print(c_array("adamw_nodecay_expected",
              run(lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.0))))

g = [torch.tensor([3.0, 4.0]), torch.tensor([12.0])]
ps = [torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(1))]
for p, gg in zip(ps, g):
    p.grad = gg.clone()
norm = torch.nn.utils.clip_grad_norm_(ps, 6.5)
print("/* clip: norm %.9g, grads %s */" % (norm.item(), [p.grad.tolist() for p in ps]))

total, warm, mn = 100, 10, 0.1


def lam(step):
    if step < warm:
        return (step + 1) / warm
    prog = (step - warm) / (total - warm)
    return mn + (1 - mn) * 0.5 * (1 + math.cos(math.pi * prog))


w = torch.nn.Parameter(torch.zeros(1))
opt = torch.optim.SGD([w], lr=1.0)
sched = torch.optim.lr_scheduler.LambdaLR(opt, lam)
vals = {}
for step in range(total):
    vals[step] = opt.param_groups[0]["lr"]
    opt.step()
    sched.step()
print("/* schedule (total 100, warmup 10, min 0.1): " +
      ", ".join("%d: %.9g" % (s, vals[s]) for s in (0, 9, 10, 55, 99)) + " */")
