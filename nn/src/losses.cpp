// Losses: softmax cross-entropy (fused, stable), MSE, the book's sum of
// squared error, binary cross-entropy on logits, accuracy; PyTorch's losses
// with a reduction (nll, cross-entropy, L1, smooth L1, Huber, BCE, KL).
#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "zerograd/nn/functional.hpp"
#include "zerograd/op_registry.hpp"

namespace zg::nn::functional {
namespace {

// Target rows as probabilities: labels (N) become one-hot rows.
template <class T>
Tensor<T> target_rows(const Tensor<T>& x, const Tensor<T>& target, const char* op) {
  const std::size_t n = x.shape()[0], c = x.shape()[1];
  if (target.dimension() == 2) {
    if (target.shape()[0] != n || target.shape()[1] != c)
      throw ShapeError(std::string(op) + ": target " + shape_str(target.shape()) + " does not match logits " +
                       shape_str(x.shape()));
    return target;
  }
  if (target.dimension() != 1 || target.shape()[0] != n)
    throw ShapeError(std::string(op) + ": target must be labels (" + std::to_string(n) + ") or rows (" +
                     std::to_string(n) + ", " + std::to_string(c) + "), got " + shape_str(target.shape()));
  Tensor<T> rows = Tensor<T>::from_shape({n, c});
  rows.fill(T(0));
  for (std::size_t i = 0; i < n; ++i) {
    const T label = target.data()[i];
    if (!(label >= 0 && label < T(c)) || label != std::floor(label))
      throw ValueError(std::string(op) + ": label " + std::to_string(label) + " at index " + std::to_string(i) +
                       " is not a class in [0, " + std::to_string(c) + ")");
    rows.data()[i * c + static_cast<std::size_t>(label)] = T(1);
  }
  return rows;
}

template <class T>
struct SoftmaxCrossEntropy final : Function<T> {
  std::string name() const override { return "SoftmaxCrossEntropy"; }
  Outputs<T> forward(const TensorList<T>& in) override {
    const Tensor<T>& x = in[0];
    if (x.dimension() != 2 || x.shape()[0] == 0)
      throw ShapeError("SoftmaxCrossEntropy: logits must be (N, C) with N > 0, got " + shape_str(x.shape()));
    const Tensor<T> t = target_rows(x, in[1], "SoftmaxCrossEntropy");
    const std::size_t n = x.shape()[0], c = x.shape()[1];
    double total = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const T* row = x.data() + i * c;
      const T* trow = t.data() + i * c;
      const T m = *std::max_element(row, row + c);
      double s = 0, tsum = 0, tx = 0;
      for (std::size_t j = 0; j < c; ++j) {
        s += std::exp(double(row[j] - m));
        tsum += trow[j];
        tx += double(trow[j]) * row[j];
      }
      total += (m + std::log(s)) * tsum - tx;  // sum_c t_c (logsumexp - x_c)
    }
    return Tensor<T>(static_cast<T>(total / double(n)));
  }
  // d loss / d x = (softmax(x) - t) / N; the target gets no gradient
  Variables<T> backward(const Variables<T>& gy) override {
    const Var<T>& x = this->input(0);
    const T n = static_cast<T>(x.shape()[0]);
    Var<T> t(target_rows(x.data(), this->input(1).data(), "SoftmaxCrossEntropy"));
    return {(zg::softmax(x) - t) * (gy[0] / n), Var<T>()};
  }
  std::string rule(std::size_t i) const override {
    return i == 0 ? "upstream \u00d7 (softmax(x) - t) / N"
                  : "none: the labels are constants";
  }
};
ZG_REGISTER_OP(SoftmaxCrossEntropy);


template <class T>
Var<T> constant(Tensor<T> t) {
  return Var<T>(std::move(t));
}

void reject_batchmean(Reduction reduction, const char* op) {
  if (reduction != Reduction::None && reduction != Reduction::Mean && reduction != Reduction::Sum)
    throw ValueError(std::string(op) + ": reduction " + reduction_name(reduction) +
                     " is only for kl_div (use none, mean or sum)");
}

// The per-element losses combined as asked; Mean divides by their count.
template <class T>
Var<T> reduce(const Var<T>& per, Reduction reduction, const char* op) {
  reject_batchmean(reduction, op);
  if (reduction == Reduction::None) return per;
  const Var<T> total = zg::sum(per);
  return reduction == Reduction::Sum ? total : total * (T(1) / static_cast<T>(std::max<std::size_t>(per.size(), 1)));
}

template <class T>
void same_shape(const Var<T>& y, const Var<T>& t, const char* op) {
  if (y.shape() != t.shape())
    throw ShapeError(std::string(op) + ": input " + shape_str(y.shape()) + " and target " + shape_str(t.shape()) +
                     " differ");
}

// Note [Label losses]: nll_loss and cross_entropy with labels are both
// -sum_ic M_ic logp_ic for a constant matrix M: row i holds
// (1 - eps) w[t_i] / d1 at column t_i plus eps / C * w_c / d2 in every
// column, and is zero for an ignored row. d1 and d2 are 1 for None and Sum;
// for Mean d1 = sum of w[t_i] over the kept rows and d2 is the same with
// weights, the number of kept rows without (PyTorch's rule). One product and one sum then give the
// loss, and its gradient -M (as a Variable op, so it differentiates again).
template <class T>
Var<T> label_loss(const Var<T>& logp, const Var<T>& target, const Var<T>& weight, std::ptrdiff_t ignore_index,
                  double eps, Reduction reduction, const char* op) {
  const Shape s = logp.shape();
  if (s.size() != 2 || s[0] == 0)
    throw ShapeError(std::string(op) + ": input must be (N, C) with N > 0, got " + shape_str(s));
  const std::size_t n = s[0], c = s[1];
  if (target.shape() != Shape{n})
    throw ShapeError(std::string(op) + ": target must be labels (" + std::to_string(n) + ") for input " +
                     shape_str(s) + ", got " + shape_str(target.shape()));
  if (weight.defined() && weight.shape() != Shape{c})
    throw ShapeError(std::string(op) + ": weight must be (" + std::to_string(c) + "), got " +
                     shape_str(weight.shape()));
  reject_batchmean(reduction, op);
  auto w = [&](std::size_t k) { return weight.defined() ? double(weight.data().data()[k]) : 1.0; };
  std::vector<std::ptrdiff_t> label(n);
  double kept_weight = 0, kept = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const T v = target.data().data()[i];
    const bool ignored = v == T(ignore_index);
    if (!ignored && (!(v >= 0 && v < T(c)) || v != std::floor(v)))
      throw ValueError(std::string(op) + ": label " + zg::number_str(double(v)) + " at index " + std::to_string(i) +
                       " is not a class in [0, " + std::to_string(c) + ") nor ignore_index " +
                       std::to_string(ignore_index));
    label[i] = ignored ? -1 : std::ptrdiff_t(v);
    if (!ignored) kept_weight += w(std::size_t(v)), kept += 1;
  }
  const bool mean = reduction == Reduction::Mean;
  const double d1 = mean ? kept_weight : 1, d2 = mean ? (weight.defined() ? kept_weight : kept) : 1;
  Tensor<T> m = Tensor<T>::from_shape({n, c});
  m.fill(T(0));
  for (std::size_t i = 0; i < n; ++i) {
    if (label[i] < 0) continue;
    T* row = m.data() + i * c;
    if (eps > 0)
      for (std::size_t k = 0; k < c; ++k) row[k] = static_cast<T>(eps / double(c) * w(k) / d2);
    row[label[i]] += static_cast<T>((1 - eps) * w(std::size_t(label[i])) / d1);
  }
  Var<T> picked = logp * constant(std::move(m));
  if (reduction == Reduction::None) return -zg::sum(picked, {1});
  if (mean && kept_weight == 0) return zg::sum(picked) * std::numeric_limits<T>::quiet_NaN();  // 0 / 0
  return -zg::sum(picked);
}

// The class weights as a Variable: the weight argument or options.weight,
// which must not both be given.
template <class T>
Var<T> class_weight(const Var<T>& weight, const std::vector<double>& option, const char* op) {
  if (option.empty()) return weight;
  if (weight.defined())
    throw ValueError(std::string(op) + ": weight is given twice, as the weight argument " + shape_str(weight.shape()) +
                     " and as options.weight (" + std::to_string(option.size()) + "); give one");
  Tensor<T> w = Tensor<T>::from_shape({option.size()});
  std::transform(option.begin(), option.end(), w.begin(), [](double v) { return static_cast<T>(v); });
  return Var<T>(std::move(w));
}

// log(v) where log(v) >= -100, else -100 (PyTorch's clamp); the clamped
// elements get no gradient, and none is ever 1 / 0.
template <class T>
Var<T> clamped_log(const Var<T>& v) {
  Tensor<T> keep = Tensor<T>::from_shape(v.data().shape());
  std::transform(v.data().begin(), v.data().end(), keep.begin(),
                 [](T a) { return std::log(a) >= T(-100) ? T(1) : T(0); });
  Var<T> mask = constant(std::move(keep));
  return zg::where(mask, zg::log(zg::where(mask, v, Var<T>(T(1)))), Var<T>(T(-100)));
}

}  // namespace

std::string reduction_name(Reduction r) {
  switch (r) {
    case Reduction::None: return "none";
    case Reduction::Mean: return "mean";
    case Reduction::Sum: return "sum";
    case Reduction::BatchMean: return "batchmean";
  }
  return "reduction " + std::to_string(int(r));
}

template <class T>
Var<T> nll_loss(const Var<T>& x, const Var<T>& target, const Var<T>& weight, std::ptrdiff_t ignore_index,
                Reduction reduction) {
  return label_loss(x, target, weight, ignore_index, 0.0, reduction, "nll_loss");
}

template <class T>
Var<T> nll_loss(const Var<T>& x, const Var<T>& target, const NLLLossOptions& o) {
  return label_loss(x, target, class_weight(Var<T>(), o.weight, "nll_loss"), o.ignore_index, 0.0, o.reduction,
                    "nll_loss");
}

template <class T>
Var<T> cross_entropy(const Var<T>& x, const Var<T>& target, const CrossEntropyOptions& o) {
  return cross_entropy(x, target, Var<T>(), o);
}

template <class T>
Var<T> cross_entropy(const Var<T>& x, const Var<T>& target, const Var<T>& weight_arg, const CrossEntropyOptions& o) {
  const Var<T> weight = class_weight(weight_arg, o.weight, "cross_entropy");
  const double eps = o.label_smoothing;
  if (!(eps >= 0 && eps <= 1))
    throw ValueError("cross_entropy: label_smoothing must be in [0, 1], got " + zg::number_str(eps));
  if (x.ndim() != 2 || x.shape()[0] == 0)
    throw ShapeError("cross_entropy: input must be (N, C) with N > 0, got " + shape_str(x.shape()));
  if (target.ndim() != 2) return label_loss(zg::log_softmax(x, 1), target, weight, o.ignore_index, eps, o.reduction,
                                            "cross_entropy");
  // probability rows: -sum_c w_c t'_ic logp_ic, t' = (1 - eps) t + eps / C; Mean over N
  same_shape(x, target, "cross_entropy");
  const std::size_t n = x.shape()[0], c = x.shape()[1];
  if (weight.defined() && weight.shape() != Shape{c})
    throw ShapeError("cross_entropy: weight must be (" + std::to_string(c) + "), got " + shape_str(weight.shape()));
  Tensor<T> m = Tensor<T>::from_shape({n, c});
  for (std::size_t i = 0; i < n * c; ++i) {
    const double wk = weight.defined() ? double(weight.data().data()[i % c]) : 1.0;
    m.data()[i] = static_cast<T>(wk * ((1 - eps) * double(target.data().data()[i]) + eps / double(c)));
  }
  Var<T> per = -zg::sum(zg::log_softmax(x, 1) * constant(std::move(m)), {1});
  return reduce(per, o.reduction, "cross_entropy");
}

template <class T>
Var<T> l1_loss(const Var<T>& y, const Var<T>& t, Reduction reduction) {
  same_shape(y, t, "l1_loss");
  return reduce(zg::abs(y - t), reduction, "l1_loss");
}

template <class T>
Var<T> smooth_l1_loss(const Var<T>& y, const Var<T>& t, double beta, Reduction reduction) {
  same_shape(y, t, "smooth_l1_loss");
  if (!(beta >= 0) || !std::isfinite(beta))
    throw ValueError("smooth_l1_loss: beta must be finite and >= 0, got " + zg::number_str(beta));
  if (beta == 0) return reduce(zg::abs(y - t), reduction, "smooth_l1_loss");
  Var<T> d = y - t, ad = zg::abs(d);
  Var<T> per = zg::where(zg::less(ad.detach(), static_cast<T>(beta)), zg::square(d) * static_cast<T>(0.5 / beta),
                         ad - static_cast<T>(0.5 * beta));
  return reduce(per, reduction, "smooth_l1_loss");
}

template <class T>
Var<T> huber_loss(const Var<T>& y, const Var<T>& t, double delta, Reduction reduction) {
  same_shape(y, t, "huber_loss");
  if (!(delta > 0) || !std::isfinite(delta))
    throw ValueError("huber_loss: delta must be finite and > 0, got " + zg::number_str(delta));
  Var<T> d = y - t, ad = zg::abs(d);
  Var<T> per = zg::where(zg::less_equal(ad.detach(), static_cast<T>(delta)), zg::square(d) * T(0.5),
                         (ad - static_cast<T>(0.5 * delta)) * static_cast<T>(delta));
  return reduce(per, reduction, "huber_loss");
}

template <class T>
Var<T> binary_cross_entropy(const Var<T>& p, const Var<T>& t, const Var<T>& weight, Reduction reduction) {
  same_shape(p, t, "binary_cross_entropy");
  const Tensor<T>& a = p.data();
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!(a.data()[i] >= 0 && a.data()[i] <= 1))
      throw ValueError("binary_cross_entropy: input must hold probabilities in [0, 1], got " +
                      zg::number_str(double(a.data()[i])) + " at index " + std::to_string(i));
  Var<T> per = -(t * clamped_log(p) + (T(1) - t) * clamped_log(T(1) - p));
  if (weight.defined()) {
    if (broadcast_shapes(weight.shape(), p.shape(), "binary_cross_entropy") != p.shape())
      throw ShapeError("binary_cross_entropy: weight " + shape_str(weight.shape()) +
                       " does not broadcast to input " + shape_str(p.shape()));
    per = per * weight;
  }
  return reduce(per, reduction, "binary_cross_entropy");
}

template <class T>
Var<T> kl_div(const Var<T>& x, const Var<T>& t, Reduction reduction, bool log_target) {
  same_shape(x, t, "kl_div");
  Var<T> per;
  if (log_target) {
    per = zg::exp(t) * (t - x);  // exp(t) (t - x)
  } else {
    const Tensor<T>& a = t.data();
    for (std::size_t i = 0; i < a.size(); ++i)
      if (!(a.data()[i] >= 0))
        throw ValueError("kl_div: target must hold probabilities >= 0 (or pass log_target), got " +
                        zg::number_str(double(a.data()[i])) + " at index " + std::to_string(i));
    Var<T> positive = zg::greater(t.detach(), T(0));
    Var<T> t_log_t = zg::where(positive, t * zg::log(zg::where(positive, t, Var<T>(T(1)))), Var<T>(T(0)));
    per = t_log_t - t * x;  // t (log t - x), 0 where t = 0
  }
  if (reduction != Reduction::BatchMean) return reduce(per, reduction, "kl_div");
  const std::size_t batch = x.ndim() ? std::max<std::size_t>(x.shape()[0], 1) : 1;
  return zg::sum(per) * (T(1) / static_cast<T>(batch));
}

template <class T>
Var<T> softmax_cross_entropy(const Var<T>& x, const Var<T>& target) {
  return apply1<SoftmaxCrossEntropy<T>>({x, target});
}

template <class T>
Var<T> mse_loss(const Var<T>& y, const Var<T>& t) {
  if (y.shape() != t.shape())
    throw ShapeError("mse_loss: prediction " + shape_str(y.shape()) + " and target " + shape_str(t.shape()) +
                     " differ");
  return zg::sum(zg::square(y - t)) * (T(1) / static_cast<T>(std::max<std::size_t>(y.size(), 1)));
}

template <class T>
Var<T> sum_squared_error(const Var<T>& y, const Var<T>& t) {
  if (y.shape() != t.shape())
    throw ShapeError("sum_squared_error: prediction " + shape_str(y.shape()) + " and target " +
                     shape_str(t.shape()) + " differ");
  return zg::sum(zg::square(y - t)) * T(0.5);
}

template <class T>
Var<T> binary_cross_entropy_with_logits(const Var<T>& x, const Var<T>& t) {
  if (x.shape() != t.shape())
    throw ShapeError("binary_cross_entropy_with_logits: logits " + shape_str(x.shape()) + " and target " +
                     shape_str(t.shape()) + " differ");
  // max(x, 0) - x t + log(1 + exp(-|x|)): never overflows
  Var<T> per = zg::relu(x) - x * t + zg::log(zg::exp(-zg::abs(x)) + T(1));
  return zg::sum(per) * (T(1) / static_cast<T>(std::max<std::size_t>(x.size(), 1)));
}

template <class T>
double accuracy(const Var<T>& x, const Var<T>& target) {
  const Tensor<T>& a = x.data();
  if (a.dimension() != 2 || a.shape()[0] == 0)
    throw ShapeError("accuracy: scores must be (N, C) with N > 0, got " + shape_str(a.shape()));
  const Tensor<T> t = target_rows(a, target.data(), "accuracy");
  const std::size_t n = a.shape()[0], c = a.shape()[1];
  std::size_t correct = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const T* row = a.data() + i * c;
    const T* trow = t.data() + i * c;
    correct += std::max_element(row, row + c) - row == std::max_element(trow, trow + c) - trow;
  }
  return double(correct) / double(n);
}

#define ZG_INSTANTIATE(T)                                                           \
  template Var<T> softmax_cross_entropy(const Var<T>&, const Var<T>&);              \
  template Var<T> mse_loss(const Var<T>&, const Var<T>&);                           \
  template Var<T> sum_squared_error(const Var<T>&, const Var<T>&);                  \
  template Var<T> binary_cross_entropy_with_logits(const Var<T>&, const Var<T>&);   \
  template double accuracy(const Var<T>&, const Var<T>&);                                   \
  template Var<T> nll_loss(const Var<T>&, const Var<T>&, const Var<T>&, std::ptrdiff_t, Reduction);  \
  template Var<T> cross_entropy(const Var<T>&, const Var<T>&, const Var<T>&, const CrossEntropyOptions&); \
  template Var<T> cross_entropy(const Var<T>&, const Var<T>&, const CrossEntropyOptions&); \
  template Var<T> nll_loss(const Var<T>&, const Var<T>&, const NLLLossOptions&); \
  template Var<T> l1_loss(const Var<T>&, const Var<T>&, Reduction);                         \
  template Var<T> smooth_l1_loss(const Var<T>&, const Var<T>&, double, Reduction);          \
  template Var<T> huber_loss(const Var<T>&, const Var<T>&, double, Reduction);              \
  template Var<T> binary_cross_entropy(const Var<T>&, const Var<T>&, const Var<T>&, Reduction); \
  template Var<T> kl_div(const Var<T>&, const Var<T>&, Reduction, bool);
ZG_INSTANTIATE(float)
ZG_INSTANTIATE(double)
#undef ZG_INSTANTIATE

}  // namespace zg::nn::functional
