// Losses: softmax cross-entropy (fused, stable), MSE, the book's sum of
// squared error, binary cross-entropy on logits, accuracy.
#include <algorithm>
#include <cmath>

#include "zerograd/nn/functional.hpp"

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
};

}  // namespace

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
  template double accuracy(const Var<T>&, const Var<T>&);
ZG_INSTANTIATE(float)
ZG_INSTANTIATE(double)
#undef ZG_INSTANTIATE

}  // namespace zg::nn::functional
