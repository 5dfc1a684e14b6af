// Higher-order derivatives (volume 3 of the book, steps 33-36): backward with
// create_graph records the gradient as a graph of its own, which can be
// differentiated again. Newton's method, the first four derivatives of tanh,
// and double backprop.
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <unordered_set>
#include <vector>

#include "cli.hpp"
#include <zerograd/zerograd.hpp>

namespace {

namespace fs = std::filesystem;
using zg::Variable64;

Variable64::BackwardOptions create_graph() {
  Variable64::BackwardOptions o;
  o.create_graph = true;
  return o;
}

Variable64 f(const Variable64& x) { return zg::pow(x, 4.0) - 2.0 * zg::square(x); }

// Steps of x <- x - lr f'(x) from x = 2 until |x - 1| < tol.
int gradient_descent_steps(double lr, double tol) {
  Variable64 x(2.0);
  x.requires_grad_();
  int steps = 0;
  for (; std::abs(x.item() - 1) >= tol && steps < 100000; ++steps) {
    x.cleargrad();
    f(x).backward();
    x.set_data(zg::Tensor<double>(x.item() - lr * x.grad().item()));
  }
  return steps;
}

// Newton's method on f: x <- x - f'(x) / f''(x), both derivatives by autograd.
void newton(const fs::path& dir) {
  std::cout << "1. Newton's method minimizing f(x) = x^4 - 2x^2 from x = 2 (minimum at x = 1)\n"
            << "   step  x                    f'(x)          f''(x)\n";
  std::ostringstream csv;
  csv << "step,x,df,d2f\n" << std::setprecision(17);
  Variable64 x(2.0, "x");
  x.requires_grad_();
  for (int step = 0; step <= 10; ++step) {
    x.cleargrad();
    f(x).backward(create_graph());  // x.grad() = f'(x), itself a graph of x
    Variable64 df = x.grad();
    x.cleargrad();  // otherwise f'' would be added to f'
    df.backward();
    const double d1 = df.item(), d2 = x.grad().item();
    std::cout << "   " << std::setw(4) << step << "  " << std::setw(19) << std::setprecision(16) << x.item()
              << "  " << std::setw(13) << std::setprecision(6) << d1 << "  " << std::setw(8) << d2 << "\n";
    csv << step << ',' << x.item() << ',' << d1 << ',' << d2 << '\n';
    const double dx = d1 / d2;
    if (std::abs(dx) < 1e-15) break;
    x.set_data(zg::Tensor<double>(x.item() - dx));
  }
  x.cleargrad();  // a create_graph gradient holds a graph that holds x: break the cycle
  zg::write_text_file((dir / "newton.csv").string(), csv.str());
  std::cout << "   Newton reaches 1 in a handful of steps; gradient descent (lr 0.01) needs "
            << gradient_descent_steps(0.01, 1e-6) << " to get within 1e-6.\n"
            << "   Iterates written to " << (dir / "newton.csv").string() << "\n";
}

std::size_t count_functions(const Variable64& y) {
  std::vector<std::shared_ptr<zg::Function<double>>> todo;
  std::unordered_set<const zg::Function<double>*> seen;
  if (y.creator()) todo.push_back(y.creator());
  while (!todo.empty()) {
    auto fn = todo.back();
    todo.pop_back();
    if (!seen.insert(fn.get()).second) continue;
    for (std::size_t i = 0; i < fn->num_inputs(); ++i)
      if (fn->input_creator(i)) todo.push_back(fn->input_creator(i));
  }
  return seen.size();
}

void draw(const Variable64& y, const fs::path& dir, const std::string& stem) {
  zg::DotOptions o;
  o.show_values = true;
  const auto dot = (dir / (stem + ".dot")).string(), png = (dir / (stem + ".png")).string();
  zg::write_text_file(dot, zg::to_dot(y, o));
  std::cout << "   The graph of tanh'' written to " << dot;
  if (zg::render_dot_to_png(dot, png)) std::cout << " and " << png;
  std::cout << "\n";
}

// d^n tanh(x) by n create_graph backwards, against the closed forms (y = tanh x).
void tanh_derivatives(double at, const fs::path& dir) {
  const double y = std::tanh(at), s = 1 - y * y;  // s = tanh'(x)
  const double closed[4] = {s, -2 * y * s, -2 * s * (1 - 3 * y * y), 8 * y * s * (2 - 3 * y * y)};
  const char* formula[4] = {"1 - y^2", "-2y(1 - y^2)", "-2(1 - y^2)(1 - 3y^2)", "8y(1 - y^2)(2 - 3y^2)"};
  std::cout << "\n2. Derivatives of tanh at x = " << at << " (y = tanh x = " << std::setprecision(10) << y
            << ")\n   n  autograd            closed form         formula                  |diff|     "
               "its graph\n";
  // Every node of these derivative graphs keeps its value, for the picture
  // (by default a value no backward needs is freed once nobody holds it).
  zg::KeepIntermediatesGuard keep_values;
  Variable64 x(at, "x");
  x.requires_grad_();
  Variable64 g = zg::tanh(x).set_name("y = tanh x");
  Variable64 second;
  for (int n = 1; n <= 4; ++n) {
    x.cleargrad();
    g.backward(create_graph());
    g = x.grad();  // d^n tanh / dx^n, as a graph: the next round differentiates it
    std::cout << "   " << n << std::setprecision(12) << "  " << std::setw(18) << g.item() << "  " << std::setw(18)
              << closed[n - 1] << "  " << std::left << std::setw(23) << formula[n - 1] << std::right << "  "
              << std::setprecision(2) << std::setw(8) << std::abs(g.item() - closed[n - 1]) << "   "
              << count_functions(g) << " Functions\n";
    if (n == 2) second = g;
  }
  std::cout << "   Each derivative is a graph built by the previous backward, so the graphs grow.\n";
  draw(second.set_name("tanh''(x)"), dir, "tanh_d2");
  x.cleargrad();
}

void double_backprop() {
  std::cout << "\n3. Double backprop: y = x^2, z = (dy/dx)^3 + y, dz/dx at x = 2\n";
  Variable64 x(2.0, "x");
  x.requires_grad_();
  Variable64 y = zg::square(x);
  y.backward(create_graph());
  Variable64 gx = x.grad();  // 2x = 4, a graph of x
  x.cleargrad();
  Variable64 z = zg::pow(gx, 3.0) + y;  // 64 + 4 = 68
  z.backward();
  // By hand: z = (2x)^3 + x^2 = 8x^3 + x^2, so dz/dx = 24x^2 + 2x = 96 + 4 = 100.
  std::cout << std::setprecision(10) << "   dy/dx = " << gx.item() << ", z = " << z.item()
            << ", dz/dx = " << x.grad().item() << "   (by hand: 24x^2 + 2x = 100)\n";
}

}  // namespace

int main(int argc, char** argv) {
  cli::App app{
      "Higher-order derivatives with backward(create_graph): Newton's method on x^4 - 2x^2 using\n"
      "the second derivative, the first four derivatives of tanh against their closed forms, and\n"
      "the gradient of a function of a gradient (double backprop)."};
  std::string out_dir = "out/higher_order";
  double at = 0.5;
  app.add_option("--out", out_dir, "Directory for newton.csv and tanh_d2.dot / .png")->capture_default_str();
  app.add_option("--at", at, "Point at which to differentiate tanh")->capture_default_str();
  ZG_CLI_PARSE(app, argc, argv);

  try {
    fs::create_directories(out_dir);
    newton(out_dir);
    tanh_derivatives(at, out_dir);
    double_backprop();
  } catch (const std::exception& e) {
    std::cerr << "higher_order: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
