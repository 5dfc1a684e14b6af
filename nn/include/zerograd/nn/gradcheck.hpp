#pragma once
/// @file
/// Gradient checking a whole Module in float64: its parameters and its input
/// against central differences (PyTorch users' module.double() + gradcheck).
#include "zerograd/gradcheck.hpp"
#include "zerograd/nn/module.hpp"

namespace zg::nn {

/// gradcheck's options for a whole Module.
struct ModuleGradcheckOptions : GradcheckOptions {
  /// Also check d output / d input (off for index inputs, such as Embedding's).
  bool check_input = true;
};

/// Checks backward through module(input) against central differences, for
/// every parameter that requires a gradient and, with check_input, the input.
/// The report's worst_name is "input" or the parameter's dotted name.
/// The module runs in the mode it is in: train mode checks BatchNorm with
/// batch statistics, and Dropout draws the same mask in every pass (the
/// generator is put back before each). Afterwards the parameters, buffers,
/// gradients and the generator are as before. Throws ValueError naming the
/// module when it has nothing to check.
GradcheckReport gradcheck(Module64& module, const Variable64& input, const ModuleGradcheckOptions& options = {});
/// A float Module is checked through module.to<double>() (rebuild() needed),
/// on the input converted to double.
GradcheckReport gradcheck(const Module& module, const Variable& input, const ModuleGradcheckOptions& options = {});

}  // namespace zg::nn
