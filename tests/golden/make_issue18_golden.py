#!/usr/bin/python3
"""PyTorch reference values for issue 18's layers and losses (float64).

Run once with Debian's python3-torch (1.13):
    /usr/bin/python3 tests/golden/make_issue18_golden.py > tests/golden/issue18_golden.hpp
The tests include the header, so CI never needs PyTorch. Every input is a
closed-form function of its element index (sin, cos), and the C++ tests
build the same inputs with the same formulas. Each gradient is of
sum(y * cos(i)) over the output's flat index i.
"""
import math

import torch
import torch.nn.functional as F

from golden import cosw, ramp, vector

out = []


def emit(name, t):
    out.append(vector(name, t))


def value_and_grads(prefix, fn, *inputs):
    xs = [x.clone().requires_grad_(True) for x in inputs]
    y = fn(*xs)
    emit(prefix, y)
    (y * cosw(y)).sum().backward() if y.dim() > 0 else y.backward()
    for k, x in enumerate(xs):
        emit("%s_grad%d" % (prefix, k), x.grad)


# Activations on x = 3 sin(1.1 i + 0.2)
x = ramp([8], lambda i: math.sin(1.1 * i + 0.2), 3.0)
value_and_grads("gelu", F.gelu, x)
value_and_grads("gelu_tanh", lambda v: F.gelu(v, approximate="tanh"), x)
value_and_grads("silu", F.silu, x)
value_and_grads("softplus", lambda v: F.softplus(v, beta=2, threshold=3), x)

# LayerNorm over (3, 4) of a (2, 3, 4) input
x = ramp([2, 3, 4], lambda i: math.sin(0.9 * i) + 0.1 * i)
w = ramp([3, 4], lambda i: 1 + 0.1 * i)
b = ramp([3, 4], lambda i: 0.05 * i)
value_and_grads("layer_norm", lambda a, c, d: F.layer_norm(a, [3, 4], c, d, eps=1e-5), x, w, b)

# Embedding (5, 3) with padding_idx 2
w = ramp([5, 3], math.sin)
idx = torch.tensor([[0, 2], [4, 2], [1, 4]])
value_and_grads("embedding", lambda a: F.embedding(idx, a, padding_idx=2), w)

# AdaptiveAvgPool2d (5, 7) -> (3, 4) and global
x = ramp([2, 2, 5, 7], lambda i: math.sin(0.37 * i))
value_and_grads("adaptive_pool", lambda a: F.adaptive_avg_pool2d(a, (3, 4)), x)
value_and_grads("adaptive_pool_global", lambda a: F.adaptive_avg_pool2d(a, (1, 1)), x)

# ConvTranspose2d(2, 3, 3, stride 2, pad 1, output_padding 1)
x = ramp([1, 2, 3, 3], math.cos)
w = ramp([2, 3, 3, 3], math.sin, 0.3)
b = torch.tensor([0.1, -0.2, 0.3])
value_and_grads("conv_transpose",
                lambda a, c, d: F.conv_transpose2d(a, c, d, stride=2, padding=1, output_padding=1), x, w, b)

# Classification losses: logits (4, 5), labels, class weights
x = ramp([4, 5], lambda i: math.sin(1.3 * i), 2.0)
labels = torch.tensor([1, 0, 4, 1])
cw = torch.tensor([0.5, 1.0, 2.0, 1.5, 0.8])
for red in ["none", "mean", "sum"]:
    value_and_grads("nll_%s" % red, lambda a: F.nll_loss(F.log_softmax(a, 1), labels, weight=cw, ignore_index=0,
                                                          reduction=red), x)
    value_and_grads("ce_%s" % red, lambda a: F.cross_entropy(a, labels, weight=cw, ignore_index=0,
                                                              label_smoothing=0.1, reduction=red), x)
    value_and_grads("ce_noweight_%s" % red, lambda a: F.cross_entropy(a, labels, ignore_index=4,
                                                                       label_smoothing=0.2, reduction=red), x)
probs = F.softmax(ramp([4, 5], math.cos, 1.5), 1)
emit("ce_probs_target", probs)
value_and_grads("ce_probs", lambda a: F.cross_entropy(a, probs, weight=cw, label_smoothing=0.2), x)

# Regression losses on y (3, 4) and t (3, 4)
y = ramp([3, 4], lambda i: math.sin(0.8 * i), 1.5)
t = ramp([3, 4], lambda i: math.cos(0.5 * i), 0.9)
for red in ["none", "mean", "sum"]:
    value_and_grads("l1_%s" % red, lambda a: F.l1_loss(a, t, reduction=red), y)
    value_and_grads("smooth_l1_%s" % red, lambda a: F.smooth_l1_loss(a, t, beta=0.5, reduction=red), y)
    value_and_grads("huber_%s" % red, lambda a: F.huber_loss(a, t, delta=0.7, reduction=red), y)

# Binary cross-entropy on probabilities, with weights, and at p = 0 and 1
p = torch.sigmoid(ramp([3, 4], lambda i: math.sin(1.7 * i), 2.0))
t = ramp([3, 4], lambda i: 0.5 + 0.5 * math.cos(0.6 * i))
bw = ramp([4], lambda i: 0.5 + 0.25 * i)
for red in ["none", "mean", "sum"]:
    value_and_grads("bce_%s" % red, lambda a: F.binary_cross_entropy(a, t, weight=bw, reduction=red), p)
emit("bce_edges", F.binary_cross_entropy(torch.tensor([0.0, 1.0, 0.0, 1.0]), torch.tensor([1.0, 0.0, 0.0, 1.0]),
                                         reduction="none"))

# KL divergence: log-probabilities x, probabilities t with a zero
x = F.log_softmax(ramp([3, 4], lambda i: math.sin(0.7 * i), 2.0), 1)
t = F.softmax(ramp([3, 4], lambda i: math.cos(1.1 * i), 1.0), 1)
t[1, 2] = 0.0
for red in ["none", "mean", "sum", "batchmean"]:
    value_and_grads("kl_%s" % red, lambda a: F.kl_div(a, t, reduction=red), x)
logt = F.log_softmax(ramp([3, 4], lambda i: math.cos(1.1 * i), 1.0), 1)
value_and_grads("kl_log_target", lambda a, c: F.kl_div(a, c, reduction="batchmean", log_target=True), x, logt)
emit("kl_target", t)
emit("kl_input", x)

# Schedulers: the lr of SGD(lr=0.1) before the first step and after each
# scheduler.step() (ReduceLROnPlateau: step(metric) with the metrics given)
def lrs(make, n, metrics=None):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = make(opt)
    got = [opt.param_groups[0]["lr"]]
    for i in range(n):
        opt.step()
        sched.step(metrics[i]) if metrics else sched.step()
        got.append(opt.param_groups[0]["lr"])
    return torch.tensor(got)


sched = torch.optim.lr_scheduler
emit("onecycle_cos", lrs(lambda o: sched.OneCycleLR(o, max_lr=0.5, total_steps=10), 9))
emit("onecycle_linear_three_phase",
     lrs(lambda o: sched.OneCycleLR(o, max_lr=0.5, total_steps=12, pct_start=0.25, anneal_strategy="linear",
                                    three_phase=True, div_factor=10, final_div_factor=100), 11))
emit("multistep", lrs(lambda o: sched.MultiStepLR(o, [5, 2, 5], 0.5), 7))
plateau_min = [1.0, 0.9, 0.95, 0.95, 0.95, 0.89, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]
emit("plateau_min_metrics", torch.tensor(plateau_min))
emit("plateau_min_rel", lrs(lambda o: sched.ReduceLROnPlateau(o, patience=1, factor=0.5, threshold=0.01, cooldown=1,
                                                              min_lr=0.02), len(plateau_min), plateau_min))
plateau_max = [1, 2, 2.5, 2.6, 2.6, 2.6, 3.7, 3.7, 3.7, 3.7]
emit("plateau_max_metrics", torch.tensor(plateau_max, dtype=torch.float64))
emit("plateau_max_abs", lrs(lambda o: sched.ReduceLROnPlateau(o, mode="max", patience=2, threshold=0.5,
                                                              threshold_mode="abs"), len(plateau_max), plateau_max))

# Factories
emit("arange_fractional", torch.arange(0.5, 3.2, 0.3))
emit("arange_down", torch.arange(2.0, -1.0, -0.7))
emit("linspace_7", torch.linspace(-1.0, 2.0, 7))
emit("linspace_6", torch.linspace(0.1, 0.7, 6))

print("// Generated by tests/golden/make_issue18_golden.py with PyTorch %s (float64); do not edit." % torch.__version__)
print("#pragma once")
print("#include <vector>")
print("namespace golden18 {")
print("\n".join(out))
print("}  // namespace golden18")
