#pragma once
// One step of each recurrence in autograd ops: the math the recurrent layer
// Functions (recurrent.cpp here) and the cells (nn/src/recurrent.cpp) share.
#include "zerograd/variable.hpp"

namespace zg::nn::functional {

// x W^T for x (N, in) and W (out, in): PyTorch's layout, read in place by BLAS.
template <class T> Var<T> times_transposed(const Var<T>& x, const Var<T>& w);

// xw is x W_ih^T + b_ih for this step, (B, G H); b_hh may be empty (no bias,
// or already added into xw).
template <class T>
Var<T> rnn_step(const Var<T>& xw, const Var<T>& h, const Var<T>& w_hh, const Var<T>& b_hh, bool relu);
template <class T>
void lstm_step(const Var<T>& xw, Var<T>& h, Var<T>& c, const Var<T>& w_hh, const Var<T>& b_hh);
template <class T>
Var<T> gru_step(const Var<T>& xw, const Var<T>& h, const Var<T>& w_hh, const Var<T>& b_hh);

}  // namespace zg::nn::functional
