#!/usr/bin/python3
"""PyTorch reference values for the recurrent layers and cells (float64).

Run once with Debian's python3-torch (1.13):
    /usr/bin/python3 tests/golden/make_recurrent_golden.py > tests/golden/recurrent_golden.hpp
tests/test_recurrent.cpp includes the header, so CI never needs PyTorch.
Every input, initial state and parameter is a closed-form function of its
element index i (parameters also of their position j in the state_dict),
and the C++ test builds the same values with the same formulas:
    input   sin(0.9 i + 0.2)
    h0      0.5 cos(0.6 i)
    c0      0.4 sin(1.3 i)
    param j 0.5 sin(0.37 i + 1.1 j + 0.2)
The gradients are of
    sum(output * cos(i)) + sum(h_n * sin(0.5 i)) + sum(c_n * cos(0.3 i)).
Each layer's state_dict names are listed so that the test also checks that
zerograd registers the same names, shapes and order.
"""
import math

import torch

torch.set_default_dtype(torch.float64)
values = []
names = []


def emit(name, t):
    flat = t.detach().reshape(-1).tolist()
    values.append('    {"%s", {%s}},' % (name, ", ".join(repr(float(v)) for v in flat)))


def emit_names(name, listed):
    names.append('    {"%s", {%s}},' % (name, ", ".join('"%s"' % n for n in listed)))


def ramp(shape, f):
    n = math.prod(shape)
    return torch.tensor([f(i) for i in range(n)]).reshape(shape)


def set_parameters(module):
    with torch.no_grad():
        for j, (name, p) in enumerate(module.named_parameters()):
            p.copy_(ramp(list(p.shape), lambda i: 0.5 * math.sin(0.37 * i + 1.1 * j + 0.2)))


def loss_of(y, h, c):
    loss = (y * ramp(list(y.shape), math.cos)).sum() + (h * ramp(list(h.shape), lambda i: math.sin(0.5 * i))).sum()
    if c is not None:
        loss = loss + (c * ramp(list(c.shape), lambda i: math.cos(0.3 * i))).sum()
    return loss


def layer_case(prefix, make, lstm, x_shape, state_shape, with_state=True, grads=True):
    m = make()
    set_parameters(m)
    emit_names(prefix, [n for n, _ in m.named_parameters()])
    x = ramp(x_shape, lambda i: math.sin(0.9 * i + 0.2)).requires_grad_(True)
    h0 = ramp(state_shape, lambda i: 0.5 * math.cos(0.6 * i)).requires_grad_(True)
    c0 = ramp(state_shape, lambda i: 0.4 * math.sin(1.3 * i)).requires_grad_(True)
    if lstm:
        y, (h, c) = m(x, (h0, c0)) if with_state else m(x)
    else:
        y, h = m(x, h0) if with_state else m(x)
        c = None
    emit(prefix + "_output", y)
    emit(prefix + "_h_n", h)
    if lstm:
        emit(prefix + "_c_n", c)
    if not grads:
        return
    loss_of(y, h, c).backward()
    emit(prefix + "_grad_input", x.grad)
    if with_state:
        emit(prefix + "_grad_h0", h0.grad)
        if lstm:
            emit(prefix + "_grad_c0", c0.grad)
    for name, p in m.named_parameters():
        emit(prefix + "_grad_" + name, p.grad)


def cell_case(prefix, make, lstm):
    m = make()
    set_parameters(m)
    emit_names(prefix, [n for n, _ in m.named_parameters()])
    x = ramp([2, 3], lambda i: math.sin(0.9 * i + 0.2)).requires_grad_(True)
    h0 = ramp([2, 4], lambda i: 0.5 * math.cos(0.6 * i)).requires_grad_(True)
    c0 = ramp([2, 4], lambda i: 0.4 * math.sin(1.3 * i)).requires_grad_(True)
    if lstm:
        h, c = m(x, (h0, c0))
        loss = (h * ramp([2, 4], math.cos)).sum() + (c * ramp([2, 4], lambda i: math.sin(0.5 * i))).sum()
        emit(prefix + "_h", h)
        emit(prefix + "_c", c)
    else:
        h = m(x, h0)
        loss = (h * ramp([2, 4], math.cos)).sum()
        emit(prefix + "_h", h)
    loss.backward()
    emit(prefix + "_grad_input", x.grad)
    emit(prefix + "_grad_h0", h0.grad)
    if lstm:
        emit(prefix + "_grad_c0", c0.grad)
    for name, p in m.named_parameters():
        emit(prefix + "_grad_" + name, p.grad)


nn = torch.nn
layers = {
    "rnn_tanh": (lambda **k: nn.RNN(nonlinearity="tanh", **k), False),
    "rnn_relu": (lambda **k: nn.RNN(nonlinearity="relu", **k), False),
    "lstm": (nn.LSTM, True),
    "gru": (nn.GRU, False),
}
for kind, (make, lstm) in layers.items():
    # 2 layers, bidirectional, batch_first: input (B=2, T=3, 3), state (4, 2, 4)
    layer_case(kind + "_deep",
               lambda: make(input_size=3, hidden_size=4, num_layers=2, bidirectional=True, batch_first=True),
               lstm, [2, 3, 3], [4, 2, 4])
    # 1 layer with an initial state: input (T=4, B=3, 2), state (1, 3, 3)
    layer_case(kind + "_single", lambda: make(input_size=2, hidden_size=3), lstm, [4, 3, 2], [1, 3, 3])
    # no bias, zero initial state: input (T=3, B=2, 3)
    layer_case(kind + "_nobias", lambda: make(input_size=3, hidden_size=2, bias=False), lstm, [3, 2, 3], [1, 2, 2],
               with_state=False)
    # unbatched input (T=3, 3), bidirectional, state (2, 4)
    layer_case(kind + "_unbatched", lambda: make(input_size=3, hidden_size=4, bidirectional=True), lstm, [3, 3],
               [2, 4], grads=False)

cell_case("rnn_cell_tanh", lambda: nn.RNNCell(3, 4), False)
cell_case("rnn_cell_relu", lambda: nn.RNNCell(3, 4, nonlinearity="relu"), False)
cell_case("lstm_cell", lambda: nn.LSTMCell(3, 4), True)
cell_case("gru_cell", lambda: nn.GRUCell(3, 4), False)

print("// Generated by tests/golden/make_recurrent_golden.py with PyTorch %s (float64); do not edit." % torch.__version__)
print("#pragma once")
print("#include <map>")
print("#include <string>")
print("#include <vector>")
print("namespace recurrent_golden {")
print("// Each case's parameter names in state_dict order.")
print("inline const std::map<std::string, std::vector<std::string>> names = {")
print("\n".join(names))
print("};")
print("// Outputs, final states and gradients by name: <case>_output, <case>_grad_<parameter>, ...")
print("inline const std::map<std::string, std::vector<double>> values = {")
print("\n".join(values))
print("};")
print("}  // namespace recurrent_golden")
