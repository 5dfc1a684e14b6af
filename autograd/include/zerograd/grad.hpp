#pragma once
/// @file
/// Gradients on demand: zg::grad, as PyTorch's torch.autograd.grad (grad.cpp).
#include <optional>

#include "zerograd/variable.hpp"

namespace zg {

/// What zg::grad takes besides its Variables (torch.autograd.grad's keywords).
struct GradOptions {
  std::optional<bool> retain_graph;  ///< default: create_graph
  bool create_graph = false;  ///< record the backward itself, so the gradients can be differentiated again
  bool allow_unused = false;  ///< an input the outputs do not depend on gets an empty Variable
};

/// The gradients of outputs (seeded with grad_outputs, default ones) with
/// respect to inputs, leaves or not, as PyTorch's torch.autograd.grad: no
/// .grad is read or written, and only the Functions between them run.
template <class T>
Variables<T> grad(const Variables<T>& outputs, const Variables<T>& inputs, const Variables<T>& grad_outputs = {},
                  const GradOptions& options = {});
/// The same for one output.
template <class T>
Variables<T> grad(const BasicVariable<T>& output, const Variables<T>& inputs, const Variables<T>& grad_outputs = {},
                  const GradOptions& options = {}) {
  return grad<T>(Variables<T>{output}, inputs, grad_outputs, options);
}

}  // namespace zg
