// Deep Learning from Scratch, Appendix A: the Softmax-with-Loss graph. Softmax
// followed by cross-entropy, built from primitive ops only, sends (y - t) / N
// back to the logits; identity output with the sum of squared error sends
// y - t. The backward observer narrates every node on the way.
#include <algorithm>
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

namespace F = zg::nn::functional;
using zg::Tensor;
using zg::Variable64;

// One line: 0.5, or [[a, b, c], [d, e, f]] for a matrix.
std::string str(const Tensor<double>& t) {
  std::ostringstream out;
  out << std::setprecision(4);
  if (t.dimension() == 0) {
    out << t() + 0.0;
    return out.str();
  }
  const std::size_t cols = t.shape().back(), rows = t.size() / cols;
  if (t.dimension() == 2) out << '[';
  for (std::size_t i = 0; i < rows; ++i) {
    out << (i ? ", [" : "[");
    for (std::size_t j = 0; j < cols; ++j) out << (j ? ", " : "") << t.data()[i * cols + j] + 0.0;  // no "-0"
    out << ']';
  }
  if (t.dimension() == 2) out << ']';
  return out.str();
}

// How each primitive node turns its upstream gradient gy into its inputs'.
std::string rule(const std::string& fn, std::size_t input) {
  if (fn == "MulConst") return "gy x the constant";
  if (fn == "Neg") return "-gy";
  if (fn == "Sum") return "gy copied back to every element that was summed";
  if (fn == "Mul") return "gy x the other input";
  if (fn == "Log") return "gy / y";
  if (fn == "Div") return input == 0 ? "gy / s" : "-gy e / s^2, summed along each row (s was broadcast)";
  if (fn == "Exp") return "gy x exp(x); gy is the sum of what Div and Sum sent, e feeds both";
  if (fn == "Sub") return input == 0 ? "gy" : "-gy";
  if (fn == "Square") return "gy x 2 d";
  return "";
}

void narrate(const zg::BackwardStep<double>& s) {
  const std::string out = s.outputs[0].defined() ? s.outputs[0].name() : "?";
  std::cout << "  " << std::left << std::setw(8) << s.function.name() << " -> " << std::setw(5) << out
            << std::right << " upstream gy = dL/d" << out << " = " << str(s.output_grads[0].data()) << "\n";
  for (std::size_t i = 0; i < s.inputs.size(); ++i) {
    std::cout << "             " << std::left << std::setw(5) << s.inputs[i].name() << std::right;
    if (!s.inputs[i].requires_grad() || !s.input_grads[i].defined())
      std::cout << " is a constant: no gradient needed\n";
    else
      std::cout << " receives " << str(s.input_grads[i].data()) << "   (" << rule(s.function.name(), i) << ")\n";
  }
}

Variable64::BackwardOptions narrated() {
  Variable64::BackwardOptions o;
  o.retain_grad = true;   // grads on every node, for the picture
  o.retain_graph = true;  // the graph stays to be drawn
  o.observer = narrate;
  return o;
}

Variable64 named(Variable64 v, const std::string& name) { return v.set_name(name); }

// Names the nodes below y along first inputs: y's creator's input 0, its creator's input 0, ...
void name_chain(Variable64 y, const std::vector<std::string>& names) {
  for (const auto& name : names) {
    y = y.creator()->input(0);
    y.set_name(name);
  }
}

// The largest |a - b| over all elements.
double max_diff(const Tensor<double>& a, const Tensor<double>& b) {
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a.data()[i] - b.data()[i]));
  return m;
}

void side_by_side(const char* at, const Tensor<double>& logits_grad, const Tensor<double>& formula,
                  const char* formula_name, const Tensor<double>* fused) {
  std::cout << "\n  (i, j)   " << std::setw(16) << at << "   " << std::setw(14) << formula_name
            << (fused ? "       fused loss" : "")
            << "\n" << std::setprecision(10);
  for (std::size_t i = 0; i < formula.shape(0); ++i)
    for (std::size_t j = 0; j < formula.shape(1); ++j) {
      std::cout << "  (" << i << ", " << j << ")   " << std::setw(16) << logits_grad(i, j) << "   " << std::setw(14)
                << formula(i, j);
      if (fused) std::cout << "   " << std::setw(14) << (*fused)(i, j);
      std::cout << "\n";
    }
  std::cout << std::setprecision(3) << "  max |difference| to " << formula_name << ": "
            << max_diff(logits_grad, formula);
  if (fused) std::cout << ", to the fused loss: " << max_diff(logits_grad, *fused);
  std::cout << "\n";
}

void draw(const Variable64& loss, const std::filesystem::path& dir) {
  zg::DotOptions o;
  o.show_values = true;
  o.show_grads = true;
  o.rankdir = "TB";  // the value lists are long: stack the nodes
  const auto dot = (dir / "softmax_with_loss.dot").string(), png = (dir / "softmax_with_loss.png").string();
  zg::write_text_file(dot, zg::to_dot(loss, o));
  std::cout << "\nThe primitive graph (values and gradients on the nodes): " << dot;
  if (zg::render_dot_to_png(dot, png)) std::cout << " and " << png;
  std::cout << "\n";
}

void write_page(const zg::GraphRecorder<double>& recorder, const std::filesystem::path& dir) {
  zg::HtmlOptions o;
  o.title = "Softmax-with-Loss from primitive ops (Appendix A)";
  o.rankdir = "TB";
  const auto path = (dir / "softmax_with_loss.html").string();
  zg::write_text_file(path, recorder.html(o));
  std::cout << "Step-by-step page: " << path << " (open it in a browser)\n";
}

}  // namespace

int main(int argc, char** argv) {
  cli::App app{
      "Deep Learning from Scratch, Appendix A: softmax + cross-entropy built from primitive ops\n"
      "(exp, sum, div, log, mul, neg) for 2 samples and 3 classes. Backward is narrated node by\n"
      "node; the gradient at the logits is (y - t) / N, the same as the fused\n"
      "softmax_cross_entropy's. Then identity output with the sum of squared error, whose\n"
      "gradient is y - t. The graph is written as DOT and PNG (and with --html as a page that plays\n"
      "it step by step)."};
  std::string out_dir = "out/softmax_with_loss";
  bool html = false;
  app.add_option("--out", out_dir, "Directory for softmax_with_loss.dot / .png / .html")->capture_default_str();
  app.add_flag("--html", html,
               "Also write softmax_with_loss.html, a page that plays the primitive graph forward and backward "
               "step by step in a browser (needs Graphviz's dot)");
  ZG_CLI_PARSE(app, argc, argv);

  try {
    std::filesystem::create_directories(out_dir);
    const Tensor<double> logits = {{0.3, 2.9, 4.0}, {1.0, 2.0, 3.0}};
    const Variable64 t(Tensor<double>{{0, 0, 1}, {1, 0, 0}}, "t");  // one-hot: classes 2 and 0
    const double N = 2;

    std::cout << "=== Softmax-with-Loss from primitive ops, N = 2 samples, 3 classes ===\n\nForward\n";
    Variable64 x(logits, "x");
    x.requires_grad_();
    std::optional<zg::GraphRecorder<double>> recorder;  // the steps, for the HTML page
    if (html) recorder.emplace();
    // No row maximum is subtracted here, to keep the graph to the book's nodes; the fused
    // softmax_cross_entropy uses log-sum-exp and cannot overflow.
    auto e = named(zg::exp(x), "e");                                // e = exp(x)
    auto s = named(zg::sum(e, {1}, true), "s");                     // s = row sums, (2, 1)
    auto y = named(e / s, "y");                                     // y = softmax(x)
    auto log_y = named(zg::log(y), "log_y");
    auto tlog = named(t * log_y, "tlogy");
    auto total = named(zg::sum(tlog), "sum");
    auto minus = named(-total, "neg");
    auto L = named(minus * (1 / N), "L");                           // L = -sum(t log y) / N
    std::cout << "  x = " << str(x.data()) << "   t = " << str(t.data()) << "\n  y = softmax(x) = "
              << str(y.data()) << "\n  L = -sum(t log y) / N = " << std::setprecision(10) << L.item() << "\n";

    std::cout << "\nBackward, one node at a time (gy: the gradient arriving from above)\n";
    if (recorder) recorder->backward(L, narrated());
    else L.backward(narrated());

    const Tensor<double> expected = (y.data() - t.data()) / N;
    Variable64 x_fused(logits, "x");
    x_fused.requires_grad_();
    F::softmax_cross_entropy(x_fused, t).backward();
    const Tensor<double> fused = x_fused.grad().data();
    std::cout << "\nThe gradient that reached the logits is (y - t) / N:";
    side_by_side("dL/dx (logits)", x.grad().data(), expected, "(y - t) / N", &fused);
    std::cout << "  Each node applied only its own local rule; together they collapse to (y - t) / N.\n";
    draw(L, out_dir);
    if (recorder) write_page(*recorder, out_dir);
    recorder.reset();  // the graphs below are not on the page

    std::cout << "\n=== Identity output y = x with the sum of squared error: L = 0.5 sum((y - t)^2) ===\n\n";
    Variable64 out(logits, "y");
    out.requires_grad_();
    Variable64 sse;
    {
      // The loss's inner nodes (y - t, its square, their sum) are made inside
      // sum_squared_error; keep them reachable so they can be named and narrated.
      zg::KeepIntermediatesGuard keep;
      sse = F::sum_squared_error(out, t).set_name("L");
    }
    std::cout << "  y = " << str(out.data()) << "   L = " << std::setprecision(10) << sse.item() << "\n\nBackward\n";
    name_chain(sse, {"sum", "sq", "d"});  // the loss is 0.5 * sum(square(y - t)): name its nodes
    sse.backward(narrated());
    const Tensor<double> diff = out.data() - t.data();
    side_by_side("dL/dy", out.grad().data(), diff, "y - t", nullptr);
    std::cout << "\nBoth pairs were designed together: the loss's gradient is the output error y - t\n"
                 "(divided by N for the batch mean), with nothing of the softmax or log left in it.\n";
  } catch (const std::exception& e) {
    std::cerr << "softmax_with_loss: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
