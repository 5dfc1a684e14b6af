#pragma once
/// @file
/// The autograd layer in one header: Variables and Functions, the engine's
/// entry points (backward, grad, hooks, observers, anomaly checks), every op,
/// user-defined Functions and gradcheck, tensors' factories and random numbers.
#include "zerograd/anomaly.hpp"
#include "zerograd/custom.hpp"
#include "zerograd/error.hpp"
#include "zerograd/factory.hpp"
#include "zerograd/function_io.hpp"
#include "zerograd/grad.hpp"
#include "zerograd/gradcheck.hpp"
#include "zerograd/observer.hpp"
#include "zerograd/op_registry.hpp"
#include "zerograd/ops.hpp"
#include "zerograd/random.hpp"
#include "zerograd/threads.hpp"
#include "zerograd/variable.hpp"

/// @namespace zg
/// zerograd: Variables and the Functions that make them, the backward engine,
/// every differentiable op, gradcheck, factories and random numbers; the
/// graph viewers (to_dot, to_html). Layers, optimizers and data-parallel
/// training live in the nested namespaces zg::nn, zg::optim and
/// zg::distributed.
