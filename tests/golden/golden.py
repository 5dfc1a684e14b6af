"""What the golden-value generators beside this file share: inputs as
closed-form functions of the element index (the C++ tests build the same
ones), and arrays written as C++ initialisers. Importing it makes float64
PyTorch's default."""
import math

import torch

torch.set_default_dtype(torch.float64)


def flat(t):
    """The values of t, flattened, as C++ literals separated by commas."""
    return ", ".join(repr(float(v)) for v in t.detach().reshape(-1).tolist())


def vector(name, t):
    return "inline const std::vector<double> %s = {%s};" % (name, flat(t))


def ramp(shape, f, scale=1.0, shift=0.0):
    n = math.prod(shape)
    return torch.tensor([scale * f(i) + shift for i in range(n)], dtype=torch.float64).reshape(shape)


def cosw(y):
    """The weights of the tests' loss sum(y * cos(i)) over y's flat index i."""
    return ramp(list(y.shape), math.cos)
