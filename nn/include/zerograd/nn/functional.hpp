#pragma once
// Layer-level operations on Variables, for float and double (layers use
// float; tests gradcheck these in double).
#include <cstddef>
#include <vector>

#include "zerograd/ops.hpp"
#include "zerograd/random.hpp"

namespace zg::nn::functional {

// Losses (losses.cpp); each returns a 0-d Variable

// Mean over the batch of -sum_c t_c log softmax(x)_c, computed stably with
// log-sum-exp. x is (N, C). target is either (N) class labels (integers in
// [0, C) stored in the Variable) or (N, C) one-hot / probability rows.
// Backward: (softmax(x) - t) / N.
template <class T> Var<T> softmax_cross_entropy(const Var<T>& x, const Var<T>& target);
// mean((y - t)^2) over all elements (PyTorch's MSELoss).
template <class T> Var<T> mse_loss(const Var<T>& y, const Var<T>& t);
// 0.5 * sum((y - t)^2) (the book's sum of squared error).
template <class T> Var<T> sum_squared_error(const Var<T>& y, const Var<T>& t);
// mean(max(x, 0) - x t + log(1 + exp(-|x|))): binary cross-entropy on logits.
template <class T> Var<T> binary_cross_entropy_with_logits(const Var<T>& x, const Var<T>& t);
// Fraction of rows of x (N, C) whose arg-max equals the label (or the
// arg-max of the one-hot row).
template <class T> double accuracy(const Var<T>& x, const Var<T>& target);

// Layers

// y = x W + b with W (in, out); x of rank > 2 is flattened to (N, in) first
// (the book's Affine) and its gradient reshaped back.
template <class T> Var<T> linear(const Var<T>& x, const Var<T>& W, const Var<T>& b);

// Inverted dropout: in training keep each element with probability 1 - p and
// scale kept values by 1 / (1 - p); identity when not training.
template <class T> Var<T> dropout(const Var<T>& x, double p, bool training, Generator& gen = generator());

// Batch normalisation (PyTorch semantics). x is (N, F) (per feature) or
// (N, C, H, W) (per channel); gamma, beta, running_mean, running_var are (F)
// or (C). In training, normalises with the batch statistics and updates the
// running ones in place: running = (1 - momentum) running + momentum batch,
// with the unbiased batch variance. In evaluation, uses the running ones.
template <class T>
Var<T> batch_norm(const Var<T>& x, const Var<T>& gamma, const Var<T>& beta, Var<T>& running_mean,
                  Var<T>& running_var, bool training, double momentum = 0.1, double eps = 1e-5);

}  // namespace zg::nn::functional

namespace zg::nn {

// Names of every differentiable Function nn defines (nn/src/op_list.cpp;
// autograd's are zg::differentiable_ops()).
const std::vector<std::string>& differentiable_ops();

}  // namespace zg::nn
