#!/usr/bin/python3
"""Reference fixtures for tests/test_ewc_lwf_math.c, computed by PyTorch in
float64 and stored as float32 in tests/fixtures/ewc_lwf.safetensors.

EWC (include/clvit/ewc_math.h):
  A tiny linear classifier (W 4x6, b 4) and 10 labelled inputs in batches of
  4, 4, 2. For each batch, the gradient of the batch's mean cross-entropy
  (true labels) w.r.t. (W, b) flattened = ewc.grads[b] (28 floats), as FACIL's
  compute_fisher_matrix_diag makes it; ewc.fisher is FACIL's loop
  (fisher += grad^2 * len(targets), then / n_samples) merged online into
  ewc.fisher_prev: decay * fisher_prev + that. Then the penalty
  lambda/2 sum F (theta - anchor)^2 at ewc.theta around ewc.anchor with
  F = ewc.fisher, and its autograd gradient ewc.penalty_grad.

LwF (include/clvit/lwf_math.h):
  Two old heads (3 and 5 classes, 4 rows; head 1's logits spread to +-60 so
  a naive exp would lose them), new logits lwf.z.j and the teacher's
  lwf.y.j; lwf.loss.j = alpha * mean_n CE(softmax(y/T), log_softmax(z/T)),
  lwf.loss = their sum, lwf.grad.j its autograd gradient w.r.t. lwf.z.j.
  The script also checks that for one head this equals FACIL's
  Appr.cross_entropy(z, y, exp=1/T) with eps = 0, times alpha.

Run from the repository root:  /usr/bin/python3 tools/make_ewc_lwf_fixtures.py
"""

import torch
import torch.nn.functional as F
from fixture_safetensors import write_safetensors

torch.set_default_dtype(torch.float64)


def ewc(out):
    torch.manual_seed(14)
    lin = torch.nn.Linear(6, 4)
    x = torch.randn(10, 6)
    y = torch.tensor([0, 3, 1, 2, 2, 0, 1, 3, 3, 1])
    batches = [(0, 4), (4, 8), (8, 10)]
    grads = []
    fisher = {n: torch.zeros_like(p) for n, p in lin.named_parameters()}
    for lo, hi in batches:  # FACIL's loop, with the true labels
        lin.zero_grad()
        F.cross_entropy(lin(x[lo:hi]), y[lo:hi]).backward()
        grads.append(torch.cat([lin.weight.grad.flatten(), lin.bias.grad.flatten()]))
        for n, p in lin.named_parameters():
            fisher[n] += p.grad.pow(2) * (hi - lo)
    fisher_new = torch.cat([fisher["weight"].flatten(), fisher["bias"].flatten()]) / 10
    decay = 0.75
    fisher_prev = torch.rand(28) * 0.1
    fisher_t = decay * fisher_prev + fisher_new

    anchor = torch.cat([lin.weight.detach().flatten(), lin.bias.detach().flatten()])
    theta = (anchor + 0.3 * torch.randn(28)).requires_grad_(True)
    lam = 50.0
    penalty = lam / 2 * (fisher_t * (theta - anchor).pow(2)).sum()
    penalty.backward()
    out.update({
        "ewc.grads": torch.stack(grads), "ewc.batch_sizes": torch.tensor([4.0, 4.0, 2.0]),
        "ewc.fisher_prev": fisher_prev, "ewc.decay": torch.tensor([decay]), "ewc.fisher": fisher_t,
        "ewc.theta": theta, "ewc.anchor": anchor, "ewc.lambda": torch.tensor([lam]),
        "ewc.penalty": penalty.reshape(1), "ewc.penalty_grad": theta.grad,
    })


def facil_cross_entropy(outputs, targets, exp=1.0, eps=1e-5):
    """FACIL's LwF Appr.cross_entropy (size_average=True)."""
    out = F.softmax(outputs, dim=1)
    tar = F.softmax(targets, dim=1)
    if exp != 1:
        out = out.pow(exp)
        out = out / out.sum(1).view(-1, 1).expand_as(out)
        tar = tar.pow(exp)
        tar = tar / tar.sum(1).view(-1, 1).expand_as(tar)
    out = out + eps / out.size(1)
    out = out / out.sum(1).view(-1, 1).expand_as(out)
    return (-(tar * out.log()).sum(1)).mean()


def lwf(out):
    torch.manual_seed(16)
    T, alpha = 2.0, 0.7
    total = 0.0
    for j, (K, scale) in enumerate([(3, 1.5), (5, 30.0)]):
        z = (scale * torch.randn(4, K)).requires_grad_(True)
        y = scale * torch.randn(4, K)
        loss = alpha * -(F.softmax(y / T, dim=1) * F.log_softmax(z / T, dim=1)).sum(1).mean()
        loss.backward()
        if j == 0:
            ref = alpha * facil_cross_entropy(z.detach(), y, exp=1.0 / T, eps=0.0)
            assert abs(ref.item() - loss.item()) < 1e-12, (ref.item(), loss.item())
        out.update({"lwf.z.%d" % j: z, "lwf.y.%d" % j: y, "lwf.loss.%d" % j: loss.reshape(1),
                    "lwf.grad.%d" % j: z.grad})
        total = total + loss.item()
    out.update({"lwf.loss": torch.tensor([total]), "lwf.T": torch.tensor([T]), "lwf.alpha": torch.tensor([alpha])})


def main():
    out = {}
    ewc(out)
    lwf(out)
    write_safetensors("tests/fixtures/ewc_lwf.safetensors", out,
                      {"made_by": "tools/make_ewc_lwf_fixtures.py", "dtype": "computed in float64"})


if __name__ == "__main__":
    main()
