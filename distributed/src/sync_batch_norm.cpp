// all_reduce_sum as a graph op, and batch normalisation over the global batch.
#include "zerograd/distributed/sync_batch_norm.hpp"

#include "zerograd/custom.hpp"
#include "zerograd/nn/functional.hpp"
#include "zerograd/ops.hpp"

namespace zg::distributed {

namespace {

struct AllReduceSum {
  ProcessGroup* group;
  std::string name() const { return "AllReduceSum"; }
  template <class T>
  Outputs<T> forward(const TensorList<T>& x) const {
    Tensor<T> y = x[0];
    group->all_reduce_sum(y.data(), y.size());
    return y;
  }
  // y = sum_r x_r, and the loss is the sum of the ranks' losses: dx_r = sum_r gy_r
  template <class T>
  Variables<T> backward(const Function<T>&, const Variables<T>& gy) const {
    return {all_reduce_sum(gy[0], *group)};
  }
};

}  // namespace

template <class T>
BasicVariable<T> all_reduce_sum(const BasicVariable<T>& x, ProcessGroup& group) {
  return call(AllReduceSum{&group}, x);
}

template <class T>
BasicVariable<T> sync_batch_norm(const BasicVariable<T>& x, const BasicVariable<T>& gamma,
                                 const BasicVariable<T>& beta, BasicVariable<T>& running_mean,
                                 BasicVariable<T>& running_var, bool training, double momentum, double eps,
                                 ProcessGroup& group) {
  if (!training) return nn::functional::batch_norm(x, gamma, beta, running_mean, running_var, false, momentum, eps);
  const Shape s = x.shape();
  if (s.size() != 2 && s.size() != 4)
    throw ShapeError("sync_batch_norm: input must be (N, F) or (N, C, H, W), got " + shape_str(s));
  const std::size_t c = s[1];
  for (const BasicVariable<T>* p : {&gamma, &beta, static_cast<const BasicVariable<T>*>(&running_mean),
                                    static_cast<const BasicVariable<T>*>(&running_var)})
    if (p->shape() != Shape{c})
      throw ShapeError("sync_batch_norm: input " + shape_str(s) + " has " + std::to_string(c) +
                       " features/channels but a parameter has shape " + shape_str(p->shape()));
  const Axes axes = s.size() == 2 ? Axes{0} : Axes{0, 2, 3};
  const Shape stat_shape = s.size() == 2 ? Shape{1, c} : Shape{1, c, 1, 1};
  // Every rank must join the all-reduces, whatever its batch: the count first.
  double local_count = double(x.size() / std::max<std::size_t>(c, 1)), count = local_count;
  group.all_reduce_sum(&count, 1);
  if (count < 2)
    throw ValueError("sync_batch_norm: training needs more than one value per channel over all ranks, input " +
                     shape_str(s) + " on rank " + std::to_string(group.rank()));
  const T inv_count = static_cast<T>(1.0 / count);
  BasicVariable<T> mu = all_reduce_sum(zg::sum(x, axes, true), group) * inv_count;
  BasicVariable<T> xc = x - mu;
  BasicVariable<T> var = all_reduce_sum(zg::sum(zg::square(xc), axes, true), group) * inv_count;
  BasicVariable<T> inv_std = zg::pow(var + static_cast<T>(eps), T(-0.5));
  // running = (1 - momentum) running + momentum batch (unbiased variance), the same on every rank
  const T m = static_cast<T>(momentum);
  const T unbias = static_cast<T>(count / (count - 1));
  for (std::size_t i = 0; i < c; ++i) {
    running_mean.data().data()[i] = (1 - m) * running_mean.data().data()[i] + m * mu.data().data()[i];
    running_var.data().data()[i] = (1 - m) * running_var.data().data()[i] + m * var.data().data()[i] * unbias;
  }
  return xc * inv_std * zg::reshape(gamma, stat_shape) + zg::reshape(beta, stat_shape);
}

SyncBatchNorm::SyncBatchNorm(std::size_t features, double momentum, double eps, ProcessGroup& group)
    : features_(features), momentum_(momentum), eps_(eps), group_(group) {
  if (features == 0) throw ValueError("SyncBatchNorm: the feature/channel count must be positive");
  gamma = register_parameter("gamma", Variable(Tensor<float>(xt::ones<float>({features}))));
  beta = register_parameter("beta", Variable(Tensor<float>(xt::zeros<float>({features}))));
  running_mean = register_buffer("running_mean", Variable(Tensor<float>(xt::zeros<float>({features}))));
  running_var = register_buffer("running_var", Variable(Tensor<float>(xt::ones<float>({features}))));
}

Variable SyncBatchNorm::forward(const Variable& x) {
  if ((x.ndim() != 2 && x.ndim() != 4) || x.shape()[1] != features_)
    throw ShapeError("SyncBatchNorm(" + std::to_string(features_) + "): expected input (N, " +
                     std::to_string(features_) + ") or (N, " + std::to_string(features_) + ", H, W), got " +
                     shape_str(x.shape()));
  return sync_batch_norm(x, gamma, beta, running_mean, running_var, is_training(), momentum_, eps_, group_);
}

std::string SyncBatchNorm::extra_repr() const {
  return std::to_string(features_) + ", momentum=" + std::to_string(momentum_) + ", eps=" + std::to_string(eps_);
}

#define ZG_INSTANTIATE(T)                                                                                  \
  template BasicVariable<T> all_reduce_sum(const BasicVariable<T>&, ProcessGroup&);                       \
  template BasicVariable<T> sync_batch_norm(const BasicVariable<T>&, const BasicVariable<T>&,             \
                                            const BasicVariable<T>&, BasicVariable<T>&, BasicVariable<T>&, \
                                            bool, double, double, ProcessGroup&);
ZG_INSTANTIATE(float)
ZG_INSTANTIATE(double)
#undef ZG_INSTANTIATE

}  // namespace zg::distributed
