// Deep Learning from Scratch, chapter 5: ReLU as a switch. In a small
// Affine -> ReLU -> Affine graph, backward passes the gradient through ReLU
// where its input was positive and blocks it everywhere else (also at 0).
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>

#include "cli.hpp"
#include <zerograd/zerograd.hpp>

namespace {

using zg::Tensor;
using zg::Variable;

std::string str(const Tensor<float>& t) {
  std::ostringstream out;
  const std::size_t cols = t.shape().back(), rows = t.size() / cols;
  out << '[';
  for (std::size_t i = 0; i < rows; ++i) {
    out << (i ? ", [" : "[");
    for (std::size_t j = 0; j < cols; ++j) out << (j ? ", " : "") << t.data()[i * cols + j] + 0.0f;
    out << ']';
  }
  return out.str() + ']';
}

// The ReLU node, element by element: what came in forward, the mask, what
// arrives from above and what goes on down.
void explain_relu(const zg::BackwardStep<float>& s) {
  const Tensor<float>& a = s.inputs[0].data();
  const Tensor<float>& up = s.output_grads[0].data();
  const Tensor<float>& down = s.input_grads[0].data();
  std::cout << "  ReLU    -> h   switch per element: mask = (a > 0)\n"
            << "    sample  unit     input a   mask   upstream dL/dh   downstream dL/da\n";
  for (std::size_t i = 0; i < a.shape(0); ++i)
    for (std::size_t j = 0; j < a.shape(1); ++j) {
      const bool on = a(i, j) > 0;
      std::cout << "    " << std::setw(6) << i << std::setw(6) << j << std::setw(12) << a(i, j) << std::setw(7) << on
                << std::setw(17) << up(i, j) << std::setw(19) << down(i, j) + 0.0f
                << (on ? "   passed" : a(i, j) == 0 ? "   blocked (a = 0: relu'(0) is taken as 0)" : "   blocked")
                << "\n";
    }
}

void narrate(const zg::BackwardStep<float>& s) {
  const std::string out = s.outputs[0].name();
  if (s.function.name() == "ReLU") return explain_relu(s);
  std::cout << "  Linear  -> " << out << "   upstream dL/d" << out << " = " << str(s.output_grads[0].data()) << "\n";
  const Variable& x = s.inputs[0];
  if (x.requires_grad())
    std::cout << "            sends dL/d" << x.name() << " = gy " << s.inputs[1].name() << "^T = " << str(s.input_grads[0].data()) << "\n";
  const std::string W = s.inputs[1].name(), b = s.inputs[2].name();
  std::cout << "            sends dL/d" << W << " = " << x.name() << "^T gy and dL/d" << b
            << " = gy summed over the batch" << (x.requires_grad() ? "" : " (x is data: no gradient)") << "\n";
}

void draw(const Variable& y, const std::filesystem::path& dir) {
  zg::DotOptions o;
  o.show_values = true;
  o.show_grads = true;
  o.max_elements = 12;
  o.rankdir = "TB";
  const auto dot = (dir / "relu_switch.dot").string(), png = (dir / "relu_switch.png").string();
  zg::write_text_file(dot, zg::to_dot(y, o));
  std::cout << "\nThe graph with values and gradients: " << dot;
  if (zg::render_dot_to_png(dot, png)) std::cout << " and " << png;
  std::cout << "\n";
}

void write_page(const zg::GraphRecorder<float>& recorder, const std::filesystem::path& dir) {
  zg::HtmlOptions o;
  o.title = "ReLU as a switch: Affine -> ReLU -> Affine (chapter 5)";
  o.rankdir = "TB";
  const auto path = (dir / "relu_switch.html").string();
  zg::write_text_file(path, recorder.html(o));
  std::cout << "Step-by-step page: " << path << " (open it in a browser)\n";
}

Variable parameter(Tensor<float> values, const std::string& name) {
  Variable p(std::move(values), name);
  p.requires_grad_();
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  cli::App app{
      "ReLU as a switch (Deep Learning from Scratch, chapter 5): x (2 samples, 3 features) ->\n"
      "Affine (3 -> 4) -> ReLU -> Affine (4 -> 2) with fixed weights. Backward shows, element by\n"
      "element, ReLU passing the gradient where its input was positive and blocking it elsewhere."};
  std::string out_dir = "out/relu_switch";
  bool html = false;
  app.add_option("--out", out_dir, "Directory for relu_switch.dot / .png / .html")->capture_default_str();
  app.add_flag("--html", html,
               "Also write relu_switch.html, a page that plays the graph forward and backward step by step "
               "in a browser (needs Graphviz's dot)");
  ZG_CLI_PARSE(app, argc, argv);

  try {
    std::filesystem::create_directories(out_dir);
    // Halves and integers: every value below is exact in float, so a = 0 is exactly 0.
    const Variable x(Tensor<float>{{1.0f, -2.0f, 0.5f}, {-1.0f, 0.5f, 2.0f}}, "x");
    auto W1 = parameter({{1.0f, -1.0f, 0.5f, 0.0f}, {0.5f, 1.0f, -0.5f, 1.0f}, {-1.0f, 0.5f, 1.0f, -0.5f}}, "W1");
    auto b1 = parameter({0.5f, 0.0f, -0.5f, 1.0f}, "b1");
    auto W2 = parameter({{1.0f, -1.0f}, {0.5f, 1.0f}, {-1.0f, 0.5f}, {2.0f, 1.0f}}, "W2");
    auto b2 = parameter({0.5f, -0.5f}, "b2");

    std::optional<zg::GraphRecorder<float>> recorder;  // the steps, for the HTML page
    if (html) recorder.emplace();
    auto a = zg::linear(x, W1, b1).set_name("a");
    auto h = zg::relu(a).set_name("h");
    auto y = zg::linear(h, W2, b2).set_name("y");
    std::cout << "Forward\n  x = " << str(x.data()) << "\n  a = x W1 + b1 = " << str(a.data())
              << "\n  h = relu(a)   = " << str(h.data()) << "\n  y = h W2 + b2 = " << str(y.data()) << "\n";

    const Variable dy(Tensor<float>{{1.0f, -1.0f}, {0.5f, 2.0f}});
    std::cout << "\nBackward from dL/dy = " << str(dy.data()) << " (what a loss above y would send)\n";
    Variable::BackwardOptions o;
    o.seed = dy;
    o.retain_grad = true;
    o.retain_graph = true;
    o.observer = narrate;
    if (recorder) recorder->backward(y, o);
    else y.backward(o);

    std::cout << "\ndL/dW1 = x^T dL/da = " << str(W1.grad().data())
              << "\n  Column 0 is all zero: hidden unit 0 was switched off for both samples, so no weight\n"
                 "  into it learns from this batch. Column 1 only hears from sample 1, where it was on.\n";
    draw(y, out_dir);
    if (recorder) write_page(*recorder, out_dir);
  } catch (const std::exception& e) {
    std::cerr << "relu_switch: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
