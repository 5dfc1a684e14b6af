// Your own differentiable function: softplus(x) = log(1 + exp(x)) written once
// as a template (forward on raw arrays with xtensor, backward with Variable
// ops), run in float and double, gradient-checked to first and second order,
// and then a deliberately broken backward that gradcheck catches.
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "cli.hpp"
#include <zerograd/zerograd.hpp>

namespace {

using zg::Variable64;
using V = std::vector<Variable64>;

struct Softplus {
  std::string name() const { return "Softplus"; }
  // max(x, 0) + log(1 + exp(-|x|)): the same value, but exp never overflows
  template <class T>
  zg::Outputs<T> forward(const zg::TensorList<T>& x) const {
    return zg::Tensor<T>(xt::maximum(x[0], T(0)) + xt::log1p(xt::exp(-xt::abs(x[0]))));
  }
  // d softplus(x) = sigmoid(x) dx; zg::sigmoid is a Variable op, so this differentiates again
  template <class T>
  zg::Variables<T> backward(const zg::Function<T>& self, const zg::Variables<T>& gy) const {
    return {gy[0] * zg::sigmoid(self.input(0))};
  }
  // What the graph player shows for this step's input.
  std::string rule(std::size_t) const { return "upstream \u00d7 sigmoid(x)"; }
};

// The classic slip: the local derivative is right, but it is not multiplied
// by the upstream gradient gy (the chain rule is forgotten).
struct SoftplusForgotGy : Softplus {
  std::string name() const { return "SoftplusForgotGy"; }
  template <class T>
  zg::Variables<T> backward(const zg::Function<T>& self, const zg::Variables<T>&) const {
    return {zg::sigmoid(self.input(0))};
  }
};

// Values on one line: [a, b, c], or [[a, b], [c, d]] for a matrix.
template <class T>
std::string str(const zg::Tensor<T>& t) {
  std::ostringstream out;
  out << std::setprecision(4);
  const std::size_t cols = t.shape().back(), rows = t.size() / cols;
  if (t.dimension() == 2) out << '[';
  for (std::size_t i = 0; i < rows; ++i) {
    out << (i ? ", [" : "[");
    for (std::size_t j = 0; j < cols; ++j) out << (j ? ", " : "") << t.data()[i * cols + j];
    out << ']';
  }
  if (t.dimension() == 2) out << ']';
  return out.str();
}

template <class T>
void show_dtype(const char* type_name) {
  zg::BasicVariable<T> x({T(-2), T(0), T(2)}, "x");
  x.requires_grad_();
  auto y = zg::call(Softplus{}, x);
  zg::sum(y).backward();
  std::cout << "  " << type_name << ":  x = " << str(x.data()) << "  softplus(x) = " << str(y.data())
            << "  d/dx = " << str(x.grad().data()) << "\n";
}

// The page plays the same graph forward and backward; the custom node's
// rule in words comes from Softplus::rule.
void write_page(const Variable64& loss, zg::GraphRecorder<double>& recorder, const std::filesystem::path& dir) {
  recorder.backward(loss);
  zg::HtmlOptions o;
  o.title = "A custom Function (softplus) in a graph";
  o.rankdir = "TB";
  const auto path = (dir / "softplus.html").string();
  zg::write_text_file(path, recorder.html(o));
  std::cout << "Step-by-step page: " << path << " (open it in a browser)\n";
}

void draw(const std::filesystem::path& dir, bool html) {
  Variable64 x({-1.0, 0.5, 2.0}, "x"), w({0.5, -1.0, 2.0}, "w");
  x.requires_grad_();
  std::optional<zg::GraphRecorder<double>> recorder;
  if (html) recorder.emplace();
  auto y = zg::call(Softplus{}, x).set_name("softplus(x)");
  auto loss = zg::sum((y * w).set_name("w * softplus(x)")).set_name("loss");
  zg::DotOptions o;
  o.show_values = true;
  o.rankdir = "TB";
  const auto dot = (dir / "softplus.dot").string(), png = (dir / "softplus.png").string();
  zg::write_text_file(dot, zg::to_dot(loss, o));
  std::cout << "\nThe custom node in a graph: " << dot;
  if (zg::render_dot_to_png(dot, png)) std::cout << " and " << png;
  std::cout << "\n";
  if (recorder) write_page(loss, *recorder, dir);
}

}  // namespace

int main(int argc, char** argv) {
  cli::App app{
      "A user-defined differentiable function (softplus) written once with zg::call: it runs in\n"
      "float and double, passes gradcheck and gradgradcheck, and a broken backward (the upstream\n"
      "gradient forgotten) is caught by gradcheck, which names the worst element."};
  std::string out_dir = "out/custom_function";
  bool html = false;
  app.add_option("--out", out_dir, "Directory for softplus.dot / .png / .html")->capture_default_str();
  app.add_flag("--html", html,
               "Also write softplus.html, a page that plays the custom node's graph forward and backward step "
               "by step in a browser (needs Graphviz's dot)");
  ZG_CLI_PARSE(app, argc, argv);

  try {
    std::filesystem::create_directories(out_dir);
    std::cout << std::setprecision(4)
              << "1. softplus(x) = log(1 + exp(x)) as a user op, one template for both dtypes\n";
    show_dtype<float>("zg::Variable (float)   ");
    show_dtype<double>("zg::Variable64 (double)");
    std::cout << "  d/dx is sigmoid(x) = [0.1192, 0.5, 0.8808] in both.\n";

    // Inputs on both sides of 0; softplus is smooth, so no point is a kink.
    const V x = {Variable64({{-3.0, -0.5, 0.2}, {1.0, 2.5, 4.0}}, "x")};
    auto softplus = [](const V& v) { return zg::call(Softplus{}, v[0]); };
    std::cout << "\n2. gradcheck in float64: backward against central differences\n  "
              << zg::gradcheck(softplus, x) << "\n";
    std::cout << "\n3. gradgradcheck: the backward of the backward (sigmoid's own backward)\n  "
              << zg::gradgradcheck(softplus, x) << "\n";

    std::cout << "\n4. A broken backward that forgets to multiply by the upstream gradient gy\n";
    Variable64 x1(x[0].data());
    x1.requires_grad_();
    zg::sum(zg::call(SoftplusForgotGy{}, x1)).backward();
    std::cout << "  sum(y).backward() cannot see the bug (its gy is all ones):\n    d/dx = " << str(x1.grad().data())
              << "\n  gradcheck weighs the outputs randomly, so gy is not all ones:\n  ";
    const auto bad = zg::gradcheck([](const V& v) { return zg::call(SoftplusForgotGy{}, v[0]); }, x);
    std::cout << bad << "\n  worst element: input " << bad.worst_input << " at index "
              << zg::shape_str(bad.worst_position) << " (x = "
              << x[0].data()(bad.worst_position[0], bad.worst_position[1]) << "): analytic " << bad.analytic
              << " vs numeric " << bad.numeric << "\n  The numeric value is w x sigmoid(x) for gradcheck's random weight w on that output;\n"
                 "  the broken backward returned sigmoid(x) whatever w was.\n";
    draw(out_dir, html);
  } catch (const std::exception& e) {
    std::cerr << "custom_function: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
