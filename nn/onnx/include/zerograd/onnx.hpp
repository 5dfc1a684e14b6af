#pragma once
/// @file
/// ONNX export: a recorded forward pass written as an ONNX model, through
/// ONNX's own generated classes (nn/onnx/src/export.cpp). Built when the ONNX
/// library is found (zerograd::onnx); docs/onnx.md has the operator table.
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "zerograd/nn/module.hpp"
#include "zerograd/variable.hpp"

namespace zg::onnx {

/// The operator set every exported model imports (17: LayerNormalization's).
constexpr int kOpset = 17;

/// What export_model and export_graph write besides the graph itself.
struct ExportOptions {
  std::vector<std::string> input_names;   ///< default "input", then "input1", ...
  std::vector<std::string> output_names;  ///< default "output", then "output1", ...
  /// Axis 0 of every input and output is the symbolic "batch": the model runs
  /// on any batch size. Other axes keep the example's sizes, but sequence_axis.
  bool dynamic_batch = true;
  /// The input's axis that is a sequence length, such as 1 for token ids
  /// (batch, steps): export_model makes it, and every size that follows it,
  /// the symbolic "sequence", so that the model runs on any length its
  /// forward accepts. Unset, the length is the example's.
  std::optional<std::size_t> sequence_axis;
  /// Initializer names for leaves of the graph (parameters, buffers); other
  /// constants are named by their Variable's name or "const_<k>".
  nn::NamedVariables names;
  std::string graph_name = "zerograd";  ///< the ONNX graph's name
};

/// Runs model once on example_input in eval mode (Dropout gone, BatchNorm on
/// its running statistics), records that forward pass and writes it to path
/// as an ONNX model at opset kOpset: parameters become initializers with their
/// dotted names ("fc1.weight"), the input is "input" and the output "output"
/// unless options name them. The file passes ONNX's checker before it is
/// written, atomically (temp file, then rename). A Function without an ONNX
/// mapping is a ValueError naming it, its place in the graph and the Functions
/// that have one; nothing is written then. With dynamic_batch or
/// sequence_axis, a second forward on other sizes must run the same Functions
/// (Note [Two runs]); a constant made from those sizes is rebuilt in the graph
/// when it is a fill, the positions 0..n-1 or a causal mask, and is a
/// ValueError otherwise (Note [Constants that follow the batch]).
void export_model(nn::Module& model, const Variable& example_input, const std::string& path,
                  const ExportOptions& options = {});

/// The graph from inputs to outputs, for computations that are not a Module.
/// Record the forward with each input's requires_grad_() set and under a
/// KeepIntermediatesGuard (so every intermediate stays reachable); an input
/// the outputs do not depend on, or an intermediate that was freed, is a
/// ValueError saying so.
void export_graph(const std::vector<Variable>& outputs, const std::vector<Variable>& inputs, const std::string& path,
                  const ExportOptions& options = {});

/// The names of the Functions export maps to ONNX operators, sorted.
std::vector<std::string> exportable_functions();

}  // namespace zg::onnx
