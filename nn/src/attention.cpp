#include "zerograd/nn/attention.hpp"

#include <cmath>
#include <limits>

#include "zerograd/nn/functional.hpp"
#include "zerograd/nn/init.hpp"

namespace zg::nn {

namespace F = functional;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

std::string mha_name(const MultiheadAttentionOptions& o) {
  return "MultiheadAttention(embed_dim=" + std::to_string(o.embed_dim) + ", num_heads=" + std::to_string(o.num_heads) +
         ")";
}

template <class T> BasicVariable<T> constant(Tensor<T> t) { return BasicVariable<T>(std::move(t)); }

// The rows (every axis but the last) of m whose entries are all -infinity,
// as a 0/1 tensor with a last axis of 1: the queries with no key left.
template <class T> Tensor<T> dead_rows(const Tensor<T>& m) {
  Shape shape(m.shape().begin(), m.shape().end());
  const std::size_t s = shape.back();
  shape.back() = 1;
  Tensor<T> dead = Tensor<T>::from_shape(shape);
  const T* p = m.data();
  for (std::size_t r = 0; r < dead.size(); ++r) {
    bool all = s > 0;
    for (std::size_t j = 0; j < s && all; ++j) all = p[r * s + j] == -std::numeric_limits<T>::infinity();
    dead.data()[r] = all ? T(1) : T(0);
  }
  return dead;
}

}  // namespace

template <class T>
BasicMultiheadAttention<T>::BasicMultiheadAttention(const MultiheadAttentionOptions& options) : options_(options) {
  const std::size_t e = options.embed_dim, h = options.num_heads;
  if (e == 0 || h == 0 || e % h != 0)
    throw ValueError(mha_name(options) + ": embed_dim must be a positive multiple of num_heads");
  if (!(options.dropout >= 0 && options.dropout < 1))
    throw ValueError(mha_name(options) + ": dropout must be in [0, 1), got " + zg::number_str(options.dropout));
  // Xavier-uniform's variance for the stacked (3E, E) weight, as PyTorch.
  BasicVariable<T> w(Tensor<T>(Tensor<T>::from_shape({3 * e, e})));
  init::normal(w, std::sqrt(2.0 / double(4 * e)));
  in_proj_weight = this->register_parameter("in_proj_weight", w);
  if (options.bias)
    in_proj_bias = this->register_parameter("in_proj_bias", BasicVariable<T>(Tensor<T>(xt::zeros<T>({3 * e}))));
  out_proj = this->register_module("out_proj", std::make_shared<BasicLinear<T>>(e, e, Init::xavier(), options.bias));
}

template <class T>
BasicVariable<T> BasicMultiheadAttention<T>::forward(const BasicVariable<T>& x) {
  BasicMultiheadAttentionArgs<T> args;
  args.need_weights = false;
  return forward(x, x, x, args).output;
}

// Note [MultiheadAttention's masks]: MultiheadAttention marks with a nonzero
// what may not be attended to, scaled_dot_product_attention what may. Boolean
// masks are merged into one "may attend" tensor (B or 1, H or 1, L or 1, S);
// an Additive attn_mask stays a Variable (it gets a gradient) and a key
// padding mask is added to it as -infinity. need_weights computes the
// probabilities with composed ops, where a query with no key left is given
// uniform scores and then zero weights, so that neither value nor gradient
// is NaN; without need_weights the one SDPA Function does the same.
template <class T>
BasicAttentionOutput<T> BasicMultiheadAttention<T>::forward(const BasicVariable<T>& query, const BasicVariable<T>& key,
                                                            const BasicVariable<T>& value,
                                                            const BasicMultiheadAttentionArgs<T>& args) {
  const std::size_t e = options_.embed_dim, h = options_.num_heads, d = e / h;
  const std::string name = mha_name(options_);
  const std::string shapes =
      "query " + shape_str(query.shape()) + ", key " + shape_str(key.shape()) + ", value " + shape_str(value.shape());
  if (!query.defined() || !key.defined() || !value.defined()) throw ValueError(name + ": query, key and value are needed");
  const std::size_t rank = query.ndim();
  if ((rank != 2 && rank != 3) || key.ndim() != rank || value.ndim() != rank)
    throw ShapeError(name + ": query, key and value must all be (L, B, E), (B, L, E) batch first, or (L, E), got " +
                     shapes);
  if (query.shape().back() != e || key.shape().back() != e || value.shape().back() != e)
    throw ShapeError(name + ": query, key and value need " + std::to_string(e) + " features, got " + shapes);
  const bool batched = rank == 3;
  const std::size_t seq_axis = batched && !options_.batch_first ? 0 : (batched ? 1 : 0);
  const std::size_t batch_axis = options_.batch_first ? 0 : 1;
  if (batched && (key.shape()[batch_axis] != query.shape()[batch_axis] ||
                  value.shape()[batch_axis] != query.shape()[batch_axis]))
    throw ShapeError(name + ": query, key and value have different batch sizes: " + shapes);
  if (key.shape()[seq_axis] != value.shape()[seq_axis])
    throw ShapeError(name + ": key and value must have the same length, got " + shapes);
  const std::size_t l = query.shape()[seq_axis], s = key.shape()[seq_axis];
  const std::size_t b = batched ? query.shape()[batch_axis] : 1;
  if (l == 0 || s == 0 || b == 0) throw ShapeError(name + ": empty sequence or batch: " + shapes);

  // Everything in (B, L, E) from here on.
  auto batch_major = [&](const BasicVariable<T>& x) {
    if (!batched) return zg::expand_dims(x, 0);
    return options_.batch_first ? x : zg::transpose(x, 0, 1);
  };
  BasicVariable<T> qp, kp, vp;
  if (query.id() == key.id() && key.id() == value.id()) {
    BasicVariable<T> packed = zg::matmul(batch_major(query), in_proj_weight, false, true);
    if (in_proj_bias.defined()) packed = packed + in_proj_bias;
    auto parts = zg::split(packed, {e, e, e}, -1);
    qp = parts[0], kp = parts[1], vp = parts[2];
  } else {
    auto w = zg::split(in_proj_weight, {e, e, e}, 0);
    std::vector<BasicVariable<T>> bias;
    if (in_proj_bias.defined()) bias = zg::split(in_proj_bias, {e, e, e}, 0);
    auto project = [&](const BasicVariable<T>& x, std::size_t i) {
      BasicVariable<T> y = zg::matmul(batch_major(x), w[i], false, true);
      return bias.empty() ? y : y + bias[i];
    };
    qp = project(query, 0), kp = project(key, 1), vp = project(value, 2);
  }
  auto heads = [&](const BasicVariable<T>& x, std::size_t len) {
    return zg::transpose(zg::reshape(x, {b, len, h, d}), 1, 2);  // (B, H, len, d)
  };
  const BasicVariable<T> qh = heads(qp, l), kh = heads(kp, s), vh = heads(vp, s);

  // The masks, in scaled_dot_product_attention's convention.
  const T* kpm = nullptr;
  if (args.key_padding_mask.defined()) {
    const Shape want = batched ? Shape{b, s} : Shape{s};
    if (args.key_padding_mask.shape() != want)
      throw ShapeError(name + ": key_padding_mask must be " + shape_str(want) + ", got " +
                       shape_str(args.key_padding_mask.shape()) + " for " + shapes);
    kpm = args.key_padding_mask.data().data();
  }
  std::size_t mask_heads = 1;  // H when attn_mask has one per batch and head
  if (args.attn_mask.defined()) {
    const Shape& m = args.attn_mask.shape();
    const bool ok = m == Shape{l, s} || m == Shape{b * h, l, s};
    if (!ok)
      throw ShapeError(name + ": attn_mask must be " + shape_str({l, s}) + " or " + shape_str({b * h, l, s}) +
                       ", got " + shape_str(m) + " for " + shapes);
    if (m.size() == 3) mask_heads = h;
  }
  const bool additive = args.attn_mask.defined() && args.attn_mask_kind == F::AttnMask::Additive;
  BasicVariable<T> mask;  // empty, or SDPA's mask broadcasting to (B, H, L, S)
  F::AttnMask kind = F::AttnMask::Boolean;
  if (additive) {
    kind = F::AttnMask::Additive;
    mask = mask_heads == 1 ? zg::reshape(args.attn_mask, {1, 1, l, s}) : zg::reshape(args.attn_mask, {b, h, l, s});
    if (kpm) {
      Tensor<T> pad = Tensor<T>::from_shape({b, 1, 1, s});
      for (std::size_t i = 0; i < b * s; ++i) pad.data()[i] = kpm[i] != 0 ? T(-kInf) : T(0);
      mask = mask + constant(std::move(pad));
    }
  } else if (kpm || args.attn_mask.defined()) {
    const std::size_t mb = kpm || mask_heads > 1 ? b : 1, ml = args.attn_mask.defined() ? l : 1;
    Tensor<T> allowed = Tensor<T>::from_shape({mb, mask_heads, ml, s});
    const T* am = args.attn_mask.defined() ? args.attn_mask.data().data() : nullptr;
    for (std::size_t i = 0; i < mb; ++i)
      for (std::size_t j = 0; j < mask_heads; ++j)
        for (std::size_t r = 0; r < ml; ++r)
          for (std::size_t c = 0; c < s; ++c) {
            bool ok = !(kpm && kpm[i * s + c] != 0);
            if (am) ok = ok && am[((mask_heads > 1 ? i * h + j : 0) * l + r) * s + c] == 0;
            allowed.data()[((i * mask_heads + j) * ml + r) * s + c] = ok ? T(1) : T(0);
          }
    mask = constant(std::move(allowed));
  }

  BasicVariable<T> attended, weights;  // (B, H, L, d), (B, H, L, S)
  const bool training = this->is_training();
  if (!args.need_weights) {
    F::AttentionOptions<T> o;
    o.attn_mask = mask;
    o.attn_mask_kind = kind;
    o.dropout_p = options_.dropout;
    o.training = training;
    attended = F::scaled_dot_product_attention(qh, kh, vh, o);
  } else {
    BasicVariable<T> scores = zg::matmul(qh, kh, false, true) * (1.0 / std::sqrt(double(d)));
    if (mask.defined()) {
      Tensor<T> blocked_values;  // -infinity where a key is masked
      if (kind == F::AttnMask::Additive) {
        scores = scores + mask;
        blocked_values = mask.data();
      } else {
        blocked_values = Tensor<T>(xt::where(xt::equal(mask.data(), T(0)), T(-kInf), T(0)));
        scores = zg::masked_fill(scores, constant(Tensor<T>(xt::where(xt::equal(mask.data(), T(0)), T(1), T(0)))), -kInf);
      }
      const BasicVariable<T> dead = constant(dead_rows(blocked_values));
      weights = zg::masked_fill(zg::softmax(zg::masked_fill(scores, dead, 0.0), -1), dead, 0.0);
    } else {
      weights = zg::softmax(scores, -1);
    }
    if (options_.dropout > 0) weights = F::dropout(weights, options_.dropout, training);
    attended = zg::matmul(weights, vh);
    if (args.average_attn_weights) weights = zg::mean(weights, {1});
    if (!batched) weights = zg::squeeze(weights, 0);
  }
  BasicVariable<T> out = out_proj->forward(zg::reshape(zg::transpose(attended, 1, 2), {b, l, e}));
  if (!batched) out = zg::squeeze(out, 0);
  else if (!options_.batch_first) out = zg::transpose(out, 0, 1);
  return {out, weights};
}

template <class T>
std::string BasicMultiheadAttention<T>::extra_repr() const {
  const auto& o = options_;
  return "embed_dim=" + std::to_string(o.embed_dim) + ", num_heads=" + std::to_string(o.num_heads) +
         (o.dropout > 0 ? ", dropout=" + zg::number_str(o.dropout) : "") + (o.bias ? "" : ", bias=false") +
         (o.batch_first ? ", batch_first=true" : "");
}

template <class T>
AnyModule BasicMultiheadAttention<T>::rebuild(Dtype dtype) const {
  return nn::rebuild<BasicMultiheadAttention>(dtype, options_);
}

namespace {

std::string layer_repr(const TransformerLayerOptions& o) {
  return "d_model=" + std::to_string(o.d_model) + ", nhead=" + std::to_string(o.nhead) +
         ", dim_feedforward=" + std::to_string(o.dim_feedforward) + ", dropout=" + zg::number_str(o.dropout) +
         ", activation=" + o.activation + (o.batch_first ? ", batch_first=true" : "") +
         (o.norm_first ? ", norm_first=true" : "");
}

void check_layer_options(const std::string& layer, const TransformerLayerOptions& o) {
  if (o.activation != "relu" && o.activation != "gelu")
    throw ValueError(layer + ": activation must be \"relu\" or \"gelu\", got \"" + o.activation + "\"");
  if (o.dim_feedforward == 0) throw ValueError(layer + ": dim_feedforward must be positive");
}

MultiheadAttentionOptions attention_options(const TransformerLayerOptions& o) {
  MultiheadAttentionOptions a(o.d_model, o.nhead);
  a.dropout = o.dropout;
  a.batch_first = o.batch_first;
  return a;
}

template <class T> BasicVariable<T> activate(const std::string& activation, const BasicVariable<T>& x) {
  return activation == "gelu" ? F::gelu(x, std::string("none")) : zg::relu(x);
}

template <class T>
BasicVariable<T> attend(BasicMultiheadAttention<T>& mha, const BasicVariable<T>& x, const BasicVariable<T>& memory,
                        const BasicVariable<T>& mask, F::AttnMask kind, const BasicVariable<T>& padding) {
  BasicMultiheadAttentionArgs<T> args;
  args.need_weights = false;
  args.attn_mask = mask;
  args.attn_mask_kind = kind;
  args.key_padding_mask = padding;
  return mha.forward(x, memory, memory, args).output;
}

}  // namespace

template <class T>
BasicTransformerEncoderLayer<T>::BasicTransformerEncoderLayer(const TransformerLayerOptions& options)
    : options_(options) {
  check_layer_options("TransformerEncoderLayer", options);
  const std::size_t dm = options.d_model, ff = options.dim_feedforward;
  self_attn = this->register_module("self_attn", std::make_shared<BasicMultiheadAttention<T>>(attention_options(options)));
  linear1 = this->register_module("linear1", std::make_shared<BasicLinear<T>>(dm, ff, Init::xavier()));
  dropout = this->register_module("dropout", std::make_shared<BasicDropout<T>>(options.dropout));
  linear2 = this->register_module("linear2", std::make_shared<BasicLinear<T>>(ff, dm, Init::xavier()));
  norm1 = this->register_module("norm1", std::make_shared<BasicLayerNorm<T>>(Shape{dm}, options.layer_norm_eps));
  norm2 = this->register_module("norm2", std::make_shared<BasicLayerNorm<T>>(Shape{dm}, options.layer_norm_eps));
  dropout1 = this->register_module("dropout1", std::make_shared<BasicDropout<T>>(options.dropout));
  dropout2 = this->register_module("dropout2", std::make_shared<BasicDropout<T>>(options.dropout));
}

template <class T>
BasicVariable<T> BasicTransformerEncoderLayer<T>::feed_forward(const BasicVariable<T>& x) {
  return dropout2->forward(linear2->forward(dropout->forward(activate(options_.activation, linear1->forward(x)))));
}

template <class T>
BasicVariable<T> BasicTransformerEncoderLayer<T>::forward(const BasicVariable<T>& src, const BasicEncoderMasks<T>& m) {
  auto sa = [&](const BasicVariable<T>& x) {
    return dropout1->forward(attend(*self_attn, x, x, m.src_mask, m.src_mask_kind, m.src_key_padding_mask));
  };
  if (options_.norm_first) {
    BasicVariable<T> x = src + sa(norm1->forward(src));
    return x + feed_forward(norm2->forward(x));
  }
  BasicVariable<T> x = norm1->forward(src + sa(src));
  return norm2->forward(x + feed_forward(x));
}

template <class T>
std::string BasicTransformerEncoderLayer<T>::extra_repr() const {
  return layer_repr(options_);
}

template <class T>
AnyModule BasicTransformerEncoderLayer<T>::rebuild(Dtype dtype) const {
  return nn::rebuild<BasicTransformerEncoderLayer>(dtype, options_);
}

template <class T>
BasicTransformerDecoderLayer<T>::BasicTransformerDecoderLayer(const TransformerLayerOptions& options)
    : options_(options) {
  check_layer_options("TransformerDecoderLayer", options);
  const std::size_t dm = options.d_model, ff = options.dim_feedforward;
  self_attn = this->register_module("self_attn", std::make_shared<BasicMultiheadAttention<T>>(attention_options(options)));
  multihead_attn =
      this->register_module("multihead_attn", std::make_shared<BasicMultiheadAttention<T>>(attention_options(options)));
  linear1 = this->register_module("linear1", std::make_shared<BasicLinear<T>>(dm, ff, Init::xavier()));
  dropout = this->register_module("dropout", std::make_shared<BasicDropout<T>>(options.dropout));
  linear2 = this->register_module("linear2", std::make_shared<BasicLinear<T>>(ff, dm, Init::xavier()));
  norm1 = this->register_module("norm1", std::make_shared<BasicLayerNorm<T>>(Shape{dm}, options.layer_norm_eps));
  norm2 = this->register_module("norm2", std::make_shared<BasicLayerNorm<T>>(Shape{dm}, options.layer_norm_eps));
  norm3 = this->register_module("norm3", std::make_shared<BasicLayerNorm<T>>(Shape{dm}, options.layer_norm_eps));
  dropout1 = this->register_module("dropout1", std::make_shared<BasicDropout<T>>(options.dropout));
  dropout2 = this->register_module("dropout2", std::make_shared<BasicDropout<T>>(options.dropout));
  dropout3 = this->register_module("dropout3", std::make_shared<BasicDropout<T>>(options.dropout));
}

template <class T>
BasicVariable<T> BasicTransformerDecoderLayer<T>::forward(const BasicVariable<T>&) {
  throw ValueError("TransformerDecoderLayer: forward needs the memory: forward(tgt, memory, masks)");
}

template <class T>
BasicVariable<T> BasicTransformerDecoderLayer<T>::forward(const BasicVariable<T>& tgt, const BasicVariable<T>& memory,
                                                          const BasicDecoderMasks<T>& m) {
  auto sa = [&](const BasicVariable<T>& x) {
    return dropout1->forward(attend(*self_attn, x, x, m.tgt_mask, m.tgt_mask_kind, m.tgt_key_padding_mask));
  };
  auto ca = [&](const BasicVariable<T>& x) {
    return dropout2->forward(
        attend(*multihead_attn, x, memory, m.memory_mask, m.memory_mask_kind, m.memory_key_padding_mask));
  };
  auto ff = [&](const BasicVariable<T>& x) {
    return dropout3->forward(
        linear2->forward(dropout->forward(activate(options_.activation, linear1->forward(x)))));
  };
  if (options_.norm_first) {
    BasicVariable<T> x = tgt + sa(norm1->forward(tgt));
    x = x + ca(norm2->forward(x));
    return x + ff(norm3->forward(x));
  }
  BasicVariable<T> x = norm1->forward(tgt + sa(tgt));
  x = norm2->forward(x + ca(x));
  return norm3->forward(x + ff(x));
}

template <class T>
std::string BasicTransformerDecoderLayer<T>::extra_repr() const {
  return layer_repr(options_);
}

template <class T>
AnyModule BasicTransformerDecoderLayer<T>::rebuild(Dtype dtype) const {
  return nn::rebuild<BasicTransformerDecoderLayer>(dtype, options_);
}

namespace {

// A copy of layer (values included), as the concrete type.
template <template <class> class L, class T> std::shared_ptr<L<T>> clone_of(const L<T>& layer) {
  return std::dynamic_pointer_cast<L<T>>(layer.template to<T>());
}

// The stack's layers and norm in dtype U: the body of rebuild().
template <template <class> class Stack, template <class> class Layer, class T>
AnyModule rebuild_stack(Dtype dtype, const Stack<T>& stack) {
  auto build = [&](auto tag) -> AnyModule {
    using U = decltype(tag);
    const auto layer = std::dynamic_pointer_cast<Layer<U>>(stack.layers.front()->template to<U>());
    std::shared_ptr<BasicLayerNorm<U>> norm;
    if (stack.norm) norm = std::dynamic_pointer_cast<BasicLayerNorm<U>>(stack.norm->template to<U>());
    return std::make_shared<Stack<U>>(*layer, stack.layers.size(), norm);
  };
  if (dtype == Dtype::float64) return build(double{});
  return build(float{});
}

}  // namespace

template <class T>
BasicTransformerEncoder<T>::BasicTransformerEncoder(const BasicTransformerEncoderLayer<T>& encoder_layer,
                                                    std::size_t num_layers, std::shared_ptr<BasicLayerNorm<T>> norm_)
    : norm(std::move(norm_)) {
  if (num_layers == 0) throw ValueError("TransformerEncoder: num_layers must be positive");
  auto list = this->register_module("layers", std::make_shared<BasicModuleList<T>>());
  for (std::size_t i = 0; i < num_layers; ++i) {
    layers.push_back(clone_of(encoder_layer));
    list->push_back(layers.back());
  }
  if (norm) this->register_module("norm", norm);
}

template <class T>
BasicVariable<T> BasicTransformerEncoder<T>::forward(const BasicVariable<T>& src, const BasicEncoderMasks<T>& masks) {
  BasicVariable<T> x = src;
  for (auto& layer : layers) x = layer->forward(x, masks);
  return norm ? norm->forward(x) : x;
}

template <class T>
AnyModule BasicTransformerEncoder<T>::rebuild(Dtype dtype) const {
  return rebuild_stack<BasicTransformerEncoder, BasicTransformerEncoderLayer>(dtype, *this);
}

template <class T>
BasicTransformerDecoder<T>::BasicTransformerDecoder(const BasicTransformerDecoderLayer<T>& decoder_layer,
                                                    std::size_t num_layers, std::shared_ptr<BasicLayerNorm<T>> norm_)
    : norm(std::move(norm_)) {
  if (num_layers == 0) throw ValueError("TransformerDecoder: num_layers must be positive");
  auto list = this->register_module("layers", std::make_shared<BasicModuleList<T>>());
  for (std::size_t i = 0; i < num_layers; ++i) {
    layers.push_back(clone_of(decoder_layer));
    list->push_back(layers.back());
  }
  if (norm) this->register_module("norm", norm);
}

template <class T>
BasicVariable<T> BasicTransformerDecoder<T>::forward(const BasicVariable<T>&) {
  throw ValueError("TransformerDecoder: forward needs the memory: forward(tgt, memory, masks)");
}

template <class T>
BasicVariable<T> BasicTransformerDecoder<T>::forward(const BasicVariable<T>& tgt, const BasicVariable<T>& memory,
                                                     const BasicDecoderMasks<T>& masks) {
  BasicVariable<T> x = tgt;
  for (auto& layer : layers) x = layer->forward(x, memory, masks);
  return norm ? norm->forward(x) : x;
}

template <class T>
AnyModule BasicTransformerDecoder<T>::rebuild(Dtype dtype) const {
  return rebuild_stack<BasicTransformerDecoder, BasicTransformerDecoderLayer>(dtype, *this);
}

template <class T> BasicVariable<T> generate_square_subsequent_mask(std::size_t size) {
  Tensor<T> m = Tensor<T>(xt::zeros<T>({size, size}));
  for (std::size_t i = 0; i < size; ++i)
    for (std::size_t j = i + 1; j < size; ++j) m(i, j) = -std::numeric_limits<T>::infinity();
  return BasicVariable<T>(std::move(m));
}

#define ZG_INSTANTIATE(T)                                                    \
  template class BasicMultiheadAttention<T>;                                 \
  template class BasicTransformerEncoderLayer<T>;                            \
  template class BasicTransformerDecoderLayer<T>;                            \
  template class BasicTransformerEncoder<T>;                                 \
  template class BasicTransformerDecoder<T>;                                 \
  template BasicVariable<T> generate_square_subsequent_mask<T>(std::size_t);
ZG_INSTANTIATE(float)
ZG_INSTANTIATE(double)
#undef ZG_INSTANTIATE

}  // namespace zg::nn
