// Gradient checking by central differences.
#include "zerograd/gradcheck.hpp"

#include <cmath>
#include <ostream>
#include <random>

#include "ops/common.hpp"

namespace zg {
namespace {

Shape unravel(std::size_t flat, const Shape& shape) {
  Shape idx(shape.size());
  for (std::size_t d = shape.size(); d-- > 0;) {
    idx[d] = flat % shape[d];
    flat /= shape[d];
  }
  return idx;
}

std::vector<Variable64> fresh_leaves(const std::vector<Variable64>& inputs) {
  std::vector<Variable64> leaves;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined()) throw Error("gradcheck: input " + std::to_string(i) + " is empty");
    Variable64 leaf(inputs[i].data(), inputs[i].name());
    leaf.requires_grad_();
    leaves.push_back(leaf);
  }
  return leaves;
}

// L = sum_k sum(w_k * y_k), computed on raw arrays (for the numeric side) or
// as a graph (for the analytic side).
struct Projection {
  std::vector<Tensor<double>> weights;
  void init(const std::vector<Variable64>& ys, unsigned seed) {
    std::mt19937 gen(seed + 12345u);
    std::uniform_real_distribution<double> dist(0.5, 1.5);
    for (const auto& y : ys) {
      Tensor<double> w = Tensor<double>::from_shape(y.data().shape());
      for (auto& v : w) v = dist(gen) * (gen() % 2 ? 1.0 : -1.0);
      weights.push_back(std::move(w));
    }
  }
  double value(const std::vector<Variable64>& ys) const {
    double total = 0;
    for (std::size_t k = 0; k < ys.size(); ++k) {
      const auto& y = ys[k].data();
      for (std::size_t i = 0; i < y.size(); ++i) total += weights[k].data()[i] * y.data()[i];
    }
    return total;
  }
  Variable64 graph(const std::vector<Variable64>& ys) const {
    Variable64 total;
    for (std::size_t k = 0; k < ys.size(); ++k) {
      Variable64 term = zg::sum(ys[k] * Variable64(weights[k]));
      total = total.defined() ? total + term : term;
    }
    return total;
  }
};

}  // namespace

GradcheckReport gradcheck(const Function64& f, const std::vector<Variable64>& inputs,
                          const GradcheckOptions& o) {
  const std::vector<Variable64> xs = fresh_leaves(inputs);
  return gradcheck_leaves([&f, &xs] { return f(xs); }, xs, o);
}

GradcheckReport gradcheck_leaves(const std::function<std::vector<Variable64>()>& f,
                                 const std::vector<Variable64>& leaves, const GradcheckOptions& o) {
  std::vector<Variable64> xs = leaves;
  for (std::size_t i = 0; i < xs.size(); ++i)
    if (!xs[i].defined() || !xs[i].requires_grad())
      throw Error("gradcheck: input " + std::to_string(i) + (xs[i].defined() ? " does not require grad" : " is empty"));
  std::vector<Variable64> ys = f();
  if (ys.empty()) throw Error("gradcheck: the function returned no outputs");
  Projection proj;
  proj.init(ys, o.seed);
  Variable64 loss = proj.graph(ys);
  GradcheckReport report;
  if (!loss.requires_grad()) {
    report.passed = false;
    report.reason = "the output does not depend on any input through a recorded graph";
    return report;
  }
  // The caller's gradients go back once the analytic ones are read.
  std::vector<Variable64> saved_grads;
  for (auto& x : xs) {
    saved_grads.push_back(x.grad());
    x.cleargrad();  // f itself may have run a backward
  }
  loss.backward();
  // Snapshot every analytic gradient before f runs again for the numeric side.
  std::vector<Tensor<double>> analytics;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const auto& x = xs[i];
    analytics.push_back(x.grad().defined() ? x.grad().data() : Tensor<double>(xt::zeros<double>(x.data().shape())));
    x.cleargrad();
    if (saved_grads[i].defined()) x.set_grad(saved_grads[i]);
  }

  double worst_score = -1;
  bool any_nonzero = false;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const Tensor<double>& analytic = analytics[i];
    Tensor<double>& x = xs[i].data();
    const std::size_t n = x.size();
    const std::size_t m = o.max_elements_per_input ? std::min(n, o.max_elements_per_input) : n;
    for (std::size_t k = 0; k < m; ++k) {
      const std::size_t j = m == n ? k : k * n / m;
      const double saved = x.data()[j];
      double plus, minus;
      {
        NoGradGuard no_grad;
        x.data()[j] = saved + o.eps;
        plus = proj.value(f());
        x.data()[j] = saved - o.eps;
        minus = proj.value(f());
      }
      x.data()[j] = saved;
      const double numeric = (plus - minus) / (2 * o.eps);
      const double a = analytic.data()[j];
      const double abs_err = std::abs(a - numeric);
      const double rel_err = abs_err / std::max(std::abs(numeric), 1e-12);
      const double score = abs_err - (o.atol + o.rtol * std::abs(numeric));
      any_nonzero = any_nonzero || std::abs(a) > o.atol || std::abs(numeric) > o.atol;
      report.max_abs_error = std::max(report.max_abs_error, abs_err);
      report.max_rel_error = std::max(report.max_rel_error, std::min(rel_err, abs_err > 0 ? rel_err : 0.0));
      ++report.elements_checked;
      if (!std::isfinite(a) || !std::isfinite(numeric) || score > worst_score) {
        worst_score = std::isfinite(score) ? score : 1e300;
        report.worst_input = i;
        report.worst_name = xs[i].name();
        report.worst_position = unravel(j, zg::shape_of(x));
        report.analytic = a;
        report.numeric = numeric;
      }
    }
  }
  if (worst_score > 0) {
    report.passed = false;
    report.reason = "analytic and numeric gradients differ";
  } else if (o.require_nonzero && !any_nonzero && report.elements_checked > 0) {
    report.passed = false;
    report.reason = "every gradient is zero: the check would prove nothing";
  }
  return report;
}

GradcheckReport gradcheck(const ScalarFunction64& f, const std::vector<Variable64>& inputs,
                          const GradcheckOptions& o) {
  return gradcheck(Function64([&f](const std::vector<Variable64>& xs) {
                     return std::vector<Variable64>{f(xs)};
                   }),
                   inputs, o);
}

GradcheckReport gradcheck(const ScalarFunction64& f, const std::vector<Variable>& inputs,
                          const GradcheckOptions& o) {
  std::vector<Variable64> converted;
  for (const auto& x : inputs) converted.push_back(x.to<double>());
  return gradcheck(f, converted, o);
}

GradcheckReport gradgradcheck(const ScalarFunction64& f, const std::vector<Variable64>& inputs,
                              const GradcheckOptions& o) {
  // The function under test is x -> (d f / d x_i for each i), built with create_graph.
  Function64 gradient_of_f = [&f, &o](const std::vector<Variable64>& xs) {
    // Analytic pass: leaves hang off xs so the gradient is a graph of xs.
    // Numeric pass (under no_grad): fresh leaves, plain first-order backward.
    const bool outer = is_grad_enabled();
    EnableGradGuard record;
    std::vector<Variable64> leaves;
    for (const auto& x : xs) {
      if (outer && x.requires_grad()) {
        leaves.push_back(zg::add(x, 0.0));
      } else {
        Variable64 leaf(x.data());
        leaves.push_back(leaf.requires_grad_());
      }
    }
    Projection proj;
    Variable64 y = f(leaves);
    proj.init({y}, o.seed + 1);
    Variable64 loss = proj.graph({y});
    std::vector<Variable64> grads;
    if (loss.requires_grad()) {
      typename Variable64::BackwardOptions bo;
      bo.create_graph = outer;
      bo.retain_grad = true;
      loss.backward(bo);
    }
    for (const auto& l : leaves) {
      grads.push_back(l.grad().defined() ? l.grad()
                                         : Variable64(Tensor<double>(xt::zeros<double>(l.data().shape()))));
      l.cleargrad();  // a create_graph grad refers back to l: break that cycle
    }
    if (outer)
      for (const auto& x : xs) x.cleargrad();  // the inner backward reached xs too
    return grads;
  };
  return gradcheck(gradient_of_f, inputs, o);
}

std::ostream& operator<<(std::ostream& out, const GradcheckReport& r) {
  const auto flags = out.flags();
  const auto precision = out.precision(4);
  out << std::defaultfloat;
  out << (r.passed ? "gradcheck passed" : "gradcheck FAILED");
  if (!r.reason.empty()) out << " (" << r.reason << ")";
  out << ": " << r.elements_checked << " elements, max abs error " << r.max_abs_error
      << ", max rel error " << r.max_rel_error << "; worst: input " << r.worst_input;
  if (!r.worst_name.empty()) out << " (" << r.worst_name << ")";
  out << " at "
      << shape_str(r.worst_position) << ", analytic " << r.analytic << " vs numeric " << r.numeric;
  out.flags(flags);
  out.precision(precision);
  return out;
}

template <class T>
Tensor<T> numerical_gradient(const std::function<T()>& loss, BasicVariable<T>& x, double h) {
  NoGradGuard no_grad;
  Tensor<T>& data = x.data();
  Tensor<T> grad = Tensor<T>::from_shape(data.shape());
  for (std::size_t j = 0; j < data.size(); ++j) {
    const T saved = data.data()[j];
    data.data()[j] = static_cast<T>(saved + h);
    const double plus = loss();
    data.data()[j] = static_cast<T>(saved - h);
    const double minus = loss();
    data.data()[j] = saved;
    grad.data()[j] = static_cast<T>((plus - minus) / (2 * h));
  }
  return grad;
}

template Tensor<float> numerical_gradient(const std::function<float()>&, BasicVariable<float>&, double);
template Tensor<double> numerical_gradient(const std::function<double()>&, BasicVariable<double>&, double);

}  // namespace zg
