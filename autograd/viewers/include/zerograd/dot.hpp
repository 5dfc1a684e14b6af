#pragma once
/// @file
/// Graphviz export of a computational graph.
#include <cstddef>
#include <string>
#include <vector>

#include "zerograd/variable.hpp"

namespace zg {

/// What to_dot draws.
struct DotOptions {
  bool show_values = false;      ///< print data of Variables with few elements
  bool show_grads = false;       ///< print grads (kept with retain_grad) likewise
  std::size_t max_elements = 8;  ///< larger arrays show only their shape
  std::string rankdir = "LR";    ///< "LR" left to right, "TB" top to bottom
};

/// The graph that produced y, in DOT: Variables are ellipses (name, shape,
/// optionally value and grad), Functions are boxes, edges follow the data.
template <class T>
std::string to_dot(const BasicVariable<T>& y, const DotOptions& options = {});

/// Writes text to path atomically (temp file in the same directory, then
/// rename): a failure never leaves a half-written file. Throws IOError.
void write_text_file(const std::string& path, const std::string& text);

/// Runs a program found on PATH with these arguments (args[0] is the program),
/// without a shell and with its output discarded; true if it exited with 0.
bool run_quietly(std::vector<std::string> args);

/// Renders a DOT file to PNG with Graphviz's `dot`; false if `dot` is not
/// installed or failed (the DOT file is still there).
bool render_dot_to_png(const std::string& dot_path, const std::string& png_path);

/// s as the inside of a DOT string: '"' and '\\' escaped (to_dot and to_html).
std::string dot_escape(const std::string& s);

}  // namespace zg
