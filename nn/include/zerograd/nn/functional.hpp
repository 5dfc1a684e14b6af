#pragma once
/// @file
/// Layer-level operations on Variables, for float and double (layers use
/// float; tests gradcheck these in double).
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "zerograd/ops.hpp"
#include "zerograd/random.hpp"

/// @namespace zg::nn::functional
/// Layer-level operations as free functions on Variables (PyTorch's
/// torch.nn.functional): losses, normalisation, dropout, convolutions,
/// pooling, attention. The layers in zg::nn call them.
namespace zg::nn::functional {

/// How a loss combines its per-element values (PyTorch's reduction): None
/// returns them, Mean averages (a weighted mean where the loss has weights),
/// Sum adds them; BatchMean (kl_div only) is the sum divided by the batch size.
enum class Reduction { None, Mean, Sum, BatchMean };
std::string reduction_name(Reduction r);  ///< "none", "mean", "sum" or "batchmean", as PyTorch spells them

// Losses (losses.cpp); each returns a 0-d Variable unless reduction is None

/// Mean over the batch of -sum_c t_c log softmax(x)_c, computed stably with
/// log-sum-exp. x is (N, C). target is either (N) class labels (integers in
/// [0, C) stored in the Variable) or (N, C) one-hot / probability rows.
/// Backward: (softmax(x) - t) / N.
template <class T> Var<T> softmax_cross_entropy(const Var<T>& x, const Var<T>& target);
/// mean((y - t)^2) over all elements (PyTorch's MSELoss).
template <class T> Var<T> mse_loss(const Var<T>& y, const Var<T>& t);
/// 0.5 * sum((y - t)^2) (the book's sum of squared error).
template <class T> Var<T> sum_squared_error(const Var<T>& y, const Var<T>& t);
/// mean(max(x, 0) - x t + log(1 + exp(-|x|))): binary cross-entropy on logits.
template <class T> Var<T> binary_cross_entropy_with_logits(const Var<T>& x, const Var<T>& t);

// PyTorch-style losses with a reduction (losses.cpp). Labels are class
// indices stored as whole numbers in a Variable of the input's dtype.

/// The options of nll_loss and cross_entropy, set by name as PyTorch's keyword
/// arguments: o.weight = {0.5, 1, 2}; o.ignore_index = 0. weight holds one
/// number per class (PyTorch's weight=); empty means every class weighs 1.
/// It is a constant, as the weight Variable was, so plain numbers serve
/// float and double models alike.
struct NLLLossOptions {
  Reduction reduction = Reduction::Mean;  ///< Mean: the weighted mean over the rows not ignored
  std::ptrdiff_t ignore_index = -100;  ///< rows with this label count 0
  std::vector<double> weight = {};  ///< (C), or empty
};
/// The options of cross_entropy: NLLLossOptions' and label_smoothing.
struct CrossEntropyOptions {
  Reduction reduction = Reduction::Mean;  ///< as NLLLossOptions::reduction
  std::ptrdiff_t ignore_index = -100;  ///< labels only
  double label_smoothing = 0;          ///< in [0, 1]
  std::vector<double> weight = {};     ///< (C), or empty
};

/// -w[t_i] x[i, t_i] for log-probabilities x (N, C) and labels t (N); weight
/// (C) is optional (empty: all 1). Rows whose label is ignore_index count 0
/// and drop out of the Mean, which divides by the sum of w[t_i] over the
/// other rows (NaN when no row is left, as in PyTorch).
template <class T>
Var<T> nll_loss(const Var<T>& x, const Var<T>& target, const NLLLossOptions& options);
/// The older positional form.
template <class T>
Var<T> nll_loss(const Var<T>& x, const Var<T>& target, const Var<T>& weight = Var<T>(),
                std::ptrdiff_t ignore_index = -100, Reduction reduction = Reduction::Mean);

/// nll_loss(log_softmax(x), t) for labels t (N), mixed with label_smoothing
/// eps as in PyTorch: (1 - eps) nll + eps / C * sum_c -w_c log p_ic, where
/// with weights the Mean of the smoothing term also divides by sum w[t_i] and
/// without weights by the number of rows not ignored (PyTorch 1.13). For
/// probability targets t (N, C): -sum_c w_c t'_ic log p_ic with
/// t' = (1 - eps) t + eps / C, Mean over N.
template <class T>
Var<T> cross_entropy(const Var<T>& x, const Var<T>& target, const CrossEntropyOptions& options);
/// The older form, with the weight as a Variable before the options; a weight
/// given both here and in options.weight throws ValueError.
template <class T>
Var<T> cross_entropy(const Var<T>& x, const Var<T>& target, const Var<T>& weight = Var<T>(),
                     const CrossEntropyOptions& options = {});

/// |y - t|.
template <class T> Var<T> l1_loss(const Var<T>& y, const Var<T>& t, Reduction reduction = Reduction::Mean);
/// 0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta (d = y - t); beta 0 is l1_loss.
template <class T>
Var<T> smooth_l1_loss(const Var<T>& y, const Var<T>& t, double beta = 1.0, Reduction reduction = Reduction::Mean);
/// 0.5 d^2 where |d| <= delta, else delta (|d| - 0.5 delta).
template <class T>
Var<T> huber_loss(const Var<T>& y, const Var<T>& t, double delta = 1.0, Reduction reduction = Reduction::Mean);
/// -w (t log p + (1 - t) log(1 - p)) on probabilities p in [0, 1], each log
/// clamped to >= -100 as in PyTorch, so p = 0 or 1 gives a finite loss.
/// weight is optional and broadcasts against p.
template <class T>
Var<T> binary_cross_entropy(const Var<T>& p, const Var<T>& t, const Var<T>& weight = Var<T>(),
                            Reduction reduction = Reduction::Mean);
/// t (log t - x) for log-probabilities x and probabilities t (0 where t = 0);
/// with log_target, t holds log-probabilities: exp(t) (t - x). BatchMean is
/// the sum divided by x.shape()[0] (the true KL divergence per sample).
template <class T>
Var<T> kl_div(const Var<T>& x, const Var<T>& t, Reduction reduction = Reduction::Mean, bool log_target = false);

/// Fraction of rows of x (N, C) whose arg-max equals the label (or the
/// arg-max of the one-hot row).
template <class T> double accuracy(const Var<T>& x, const Var<T>& target);

// Layers

/// y = x W + b with W (in, out), over the last axis of x as in PyTorch:
/// (..., in) -> (..., out), as one GEMM over all leading axes. When the last
/// axis is not `in` and x has rank > 2, x is flattened to (N, rest) first (the
/// book's Affine: (N, C, H, W) -> (N, out) for in = C H W) and its gradient
/// reshaped back. So the last axis wins when it equals `in`.
template <class T> Var<T> linear(const Var<T>& x, const Var<T>& W, const Var<T>& b);

/// Inverted dropout: in training keep each element with probability 1 - p and
/// scale kept values by 1 / (1 - p); identity when not training.
template <class T> Var<T> dropout(const Var<T>& x, double p, bool training, Generator& gen = generator());

/// Batch normalisation (PyTorch semantics). x is (N, F) (per feature) or
/// (N, C, H, W) (per channel); gamma, beta, running_mean, running_var are (F)
/// or (C). In training, normalises with the batch statistics and updates the
/// running ones in place: running = (1 - momentum) running + momentum batch,
/// with the unbiased batch variance. In evaluation, uses the running ones.
template <class T>
Var<T> batch_norm(const Var<T>& x, const Var<T>& gamma, const Var<T>& beta, Var<T>& running_mean,
                  Var<T>& running_var, bool training, double momentum = 0.1, double eps = 1e-5);

// Activations (layers2.cpp)

/// The Gauss error function, elementwise. Function "Erf".
template <class T> Var<T> erf(const Var<T>& x);
/// x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)) with approximate "none"; with
/// "tanh", 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))), as PyTorch's
/// approximate='none' | 'tanh'. Any other string throws ValueError.
template <class T> Var<T> gelu(const Var<T>& x, const std::string& approximate = "none");
/// The same for a string literal, which would otherwise convert to bool.
template <class T> Var<T> gelu(const Var<T>& x, const char* approximate) { return gelu(x, std::string(approximate)); }
/// The older form: true is approximate "tanh", false "none".
template <class T> Var<T> gelu(const Var<T>& x, bool tanh_approximation);
/// x sigmoid(x).
template <class T> Var<T> silu(const Var<T>& x);
/// log(1 + exp(beta x)) / beta, and x itself where beta x > threshold (PyTorch).
template <class T> Var<T> softplus(const Var<T>& x, double beta = 1, double threshold = 20);

/// Layer normalisation over the trailing axes given by normalized_shape:
/// (x - mean) / sqrt(var + eps) (biased variance), then * weight + bias when
/// they are given (each of shape normalized_shape; either may be empty).
template <class T>
Var<T> layer_norm(const Var<T>& x, const Shape& normalized_shape, const Var<T>& weight = Var<T>(),
                  const Var<T>& bias = Var<T>(), double eps = 1e-5);

/// Rows of weight (V, D) at the indices (any shape, whole numbers in [0, V)):
/// the result has shape indices.shape() + (D). The row padding_idx gets no
/// gradient. Function "Embedding".
template <class T>
Var<T> embedding(const Var<T>& indices, const Var<T>& weight, std::optional<std::size_t> padding_idx = {});

// Attention (ops/attention.cpp)

/// What attn_mask holds, as PyTorch tells by its dtype: Boolean, nonzero
/// where a query may attend to a key (True takes part) and 0 where it may
/// not; Additive, numbers added to the scores (-infinity masks).
enum class AttnMask { Boolean, Additive };

/// The options of scaled_dot_product_attention, set by name as PyTorch's
/// keyword arguments: o.is_causal = true; o.dropout_p = 0.1.
template <class T>
struct AttentionOptions {
  Var<T> attn_mask = {};  ///< broadcasts to the scores (..., L, S); empty: none
  AttnMask attn_mask_kind = AttnMask::Boolean;  ///< what attn_mask holds
  bool is_causal = false;  ///< query i attends to keys j <= i (the top-left triangle, as PyTorch)
  double dropout_p = 0;    ///< on the attention probabilities, in [0, 1)
  bool training = true;    ///< dropout only while training (a module passes is_training())
  std::optional<double> scale = {};  ///< default 1 / sqrt(E)
  Generator* generator = nullptr;    ///< the dropout's draws; nullptr: zg::generator()
};

/// softmax(q k^T scale + mask) v over the last two axes, as PyTorch 2's
/// F.scaled_dot_product_attention: q (..., L, E), k (..., S, E), v (..., S,
/// Ev) -> (..., L, Ev); batch axes broadcast as matmul's. A Boolean mask and
/// is_causal may go together; an Additive mask gets a gradient (sum_to its
/// shape). Dropout keeps each probability with 1 - dropout_p, scaled by
/// 1 / (1 - dropout_p), and its backward uses the same draws. A query row
/// whose keys are all masked (or all -infinity) gives zeros, and sends no
/// gradient, where PyTorch gives NaN. Bad shapes (ranks under 2, an empty
/// sequence, E or S differing, batch axes or a mask that do not broadcast)
/// throw ShapeError naming the op and the shapes; dropout_p outside [0, 1)
/// ValueError. One Function "ScaledDotProductAttention", whose backward
/// recomputes the probabilities (Note [Attention recomputes its probabilities]).
template <class T>
Var<T> scaled_dot_product_attention(const Var<T>& q, const Var<T>& k, const Var<T>& v,
                                    const AttentionOptions<T>& options = {});

// Recurrent layers (ops/recurrent.cpp)

/// Which recurrence recurrent_layer runs, each in PyTorch's gate order:
/// RNNTanh and RNNReLU h' = tanh or relu(x W_ih^T + b_ih + h W_hh^T + b_hh);
/// LSTM gates i, f, g, o; GRU gates r, z, n (as nn::RNN, nn::LSTM, nn::GRU).
enum class RecurrentMode { RNNTanh, RNNReLU, LSTM, GRU };

/// The options of recurrent_layer, set by name: o.mode = RecurrentMode::GRU; o.reverse = true.
struct RecurrentLayerOptions {
  RecurrentMode mode = RecurrentMode::LSTM;  ///< the recurrence
  bool reverse = false;  ///< run from the last step to the first (a bidirectional layer's second direction)
};

/// One recurrent layer in one direction over every step, as one Function
/// ("RNNLayer", "LSTMLayer" or "GRULayer"): x (T, B, I); the initial state
/// h0 and (LSTM only) c0, each (B, H) or empty for zeros; w_ih (G H, I),
/// w_hh (G H, H), and the biases b_ih, b_hh (G H), both given or both empty,
/// in PyTorch's layout (G = 1, 4 or 3 gates). Returns {y, h_T} and for an
/// LSTM also c_T: y (T, B, H) is h after each step, in the input's order of
/// time also when reverse, and h_T, c_T (B, H) the state after the last
/// step. Float32 runs on oneDNN's fused kernels where zerograd was built
/// with them; float64 and gradients under create_graph run the same math as
/// autograd ops, so every order of gradient works. Bad shapes throw
/// ShapeError naming the op and the shapes; a c0 for a layer that is not an
/// LSTM, or one bias without the other, ValueError.
template <class T>
Variables<T> recurrent_layer(const Var<T>& x, const Var<T>& h0, const Var<T>& c0, const Var<T>& w_ih,
                             const Var<T>& w_hh, const Var<T>& b_ih, const Var<T>& b_hh,
                             const RecurrentLayerOptions& options);

/// Mean over the windows PyTorch's adaptive pooling uses: output cell i of
/// OH covers rows floor(i H / OH) to ceil((i + 1) H / OH) - 1 (columns alike).
/// x (N, C, H, W) -> (N, C, OH, OW); (1, 1) is global average pooling.
template <class T> Var<T> adaptive_avg_pool2d(const Var<T>& x, const Shape& output_size);
/// A square output: adaptive_avg_pool2d(x, 7) is adaptive_avg_pool2d(x, {7, 7}).
template <class T> Var<T> adaptive_avg_pool2d(const Var<T>& x, std::size_t output_size);

/// PyTorch's F.conv_transpose2d: x (N, in, H, W) with W (in, out, k, k) and a
/// bias b (out), or an empty b for none, gives (N, out, OH, OW) with
/// OH = (H - 1) stride - 2 padding + k + output_padding (OW alike), where
/// 0 <= output_padding < stride picks among the sizes that convolve back to
/// (H, W). Function "ConvTranspose2d"; the form in nn/conv.hpp takes the
/// output size itself and no bias.
template <class T>
Var<T> conv_transpose2d(const Var<T>& x, const Var<T>& W, const Var<T>& b, int stride = 1, int padding = 0,
                        int output_padding = 0);

}  // namespace zg::nn::functional
