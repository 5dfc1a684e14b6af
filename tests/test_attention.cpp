// scaled_dot_product_attention: values and gradients against PyTorch
// (tests/golden/seq_ops_golden.hpp), gradcheck and second order with every
// kind of mask, causal, broadcast batches and dropout, rows with no key,
// shape errors, the memory it holds; and the layers a sequence model feeds
// (B, T, C) input through: Linear, LayerNorm, Embedding.
#include <malloc.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <thread>

#include "engine/buffer_cache.hpp"  // library-private; the tests see autograd/src
#include "golden/seq_ops_golden.hpp"
#include "zerograd/gemm.hpp"
#include "golden18.hpp"
#include "testing.hpp"

using namespace zg;
namespace F = zg::nn::functional;
using golden18::check_against;
using golden18::check_close;
using golden18::ramp;
using zg::testing::message_of;
using zg::testing::uniform;
using V = std::vector<Variable64>;
using Options = F::AttentionOptions<double>;

namespace {

// The closed forms of make_seq_ops_golden.py.
Variable64 seq_a(const Shape& s) { return ramp(s, [](double i) { return std::sin(0.7 * i + 0.3); }); }
Variable64 seq_b(const Shape& s) { return ramp(s, [](double i) { return std::cos(0.45 * i - 0.2); }); }
Variable64 seq_c(const Shape& s) {
  return ramp(s, [](double i) { return std::sin(1.3 * i) + 0.1 * std::cos(0.2 * i); });
}

Variable64 attend(const V& v, const Options& o) { return F::scaled_dot_product_attention(v[0], v[1], v[2], o); }

bool all_finite(const Variable64& x) {
  for (double d : x.data())
    if (!std::isfinite(d)) return false;
  return true;
}

}  // namespace

TEST_CASE("attention: values and gradients equal PyTorch's, with each kind of mask") {
  using namespace golden_seq;
  const V qkv = {seq_a({2, 2, 3, 4}), seq_b({2, 2, 5, 4}), seq_c({2, 2, 5, 3})};
  SUBCASE("no mask") {
    check_against([](const V& v) { return attend(v, {}); }, qkv, sdpa_plain,
                  {sdpa_plain_grad0, sdpa_plain_grad1, sdpa_plain_grad2});
  }
  SUBCASE("a scale") {
    Options o;
    o.scale = 0.3;
    check_against([&](const V& v) { return attend(v, o); }, qkv, sdpa_scale,
                  {sdpa_scale_grad0, sdpa_scale_grad1, sdpa_scale_grad2});
  }
  SUBCASE("a float mask, added to the scores and differentiated") {
    V with_mask = qkv;
    with_mask.push_back(ramp({3, 5}, [](double i) { return 0.5 * std::sin(2.1 * i); }));
    check_against(
        [](const V& v) {
          Options o;
          o.attn_mask = v[3];
          o.attn_mask_kind = F::AttnMask::Additive;
          return attend(v, o);
        },
        with_mask, sdpa_float_mask,
        {sdpa_float_mask_grad0, sdpa_float_mask_grad1, sdpa_float_mask_grad2, sdpa_float_mask_grad3});
  }
  SUBCASE("a boolean mask: 1 takes part") {
    Tensor<double> m = Tensor<double>::from_shape({2, 1, 3, 5});
    std::copy(sdpa_bool_mask_mask.begin(), sdpa_bool_mask_mask.end(), m.begin());
    Options o;
    o.attn_mask = Variable64(m);
    check_against([&](const V& v) { return attend(v, o); }, qkv, sdpa_bool_mask,
                  {sdpa_bool_mask_grad0, sdpa_bool_mask_grad1, sdpa_bool_mask_grad2});
  }
  SUBCASE("causal, k and v broadcast over the batch") {
    Options o;
    o.is_causal = true;
    check_against([&](const V& v) { return attend(v, o); }, {seq_a({2, 2, 4, 4}), seq_b({1, 2, 4, 4}), seq_c({1, 2, 4, 3})},
                  sdpa_causal, {sdpa_causal_grad0, sdpa_causal_grad1, sdpa_causal_grad2});
  }
}

TEST_CASE("attention: float32 follows float64, with a padding mask over keys and causal") {
  const V in = {uniform({2, 3, 6, 8}, -1, 1, 31), uniform({2, 3, 6, 8}, -1, 1, 32), uniform({2, 3, 6, 5}, -1, 1, 33)};
  // (B, 1, 1, S): the last two keys of sequence 1 are padding.
  Tensor<double> pad = xt::ones<double>({2, 1, 1, 6});
  pad(1, 0, 0, 4) = pad(1, 0, 0, 5) = 0;
  Options o;
  o.attn_mask = Variable64(pad);
  o.is_causal = true;
  std::vector<Variable> in32;
  for (const auto& x : in) in32.push_back(Variable(Tensor<float>(x.data())).requires_grad_());
  F::AttentionOptions<float> o32;
  o32.attn_mask = Variable(Tensor<float>(pad));
  o32.is_causal = true;
  const Variable y32 = F::scaled_dot_product_attention(in32[0], in32[1], in32[2], o32);
  V in64;
  for (const auto& x : in) in64.push_back(Variable64(x.data()).requires_grad_());
  const Variable64 y64 = attend(in64, o);
  CHECK(xt::allclose(Tensor<double>(y32.data()), y64.data(), 1e-5, 1e-5));
  zg::sum(zg::square(y32)).backward();
  zg::sum(zg::square(y64)).backward();
  for (std::size_t i = 0; i < 3; ++i) {
    CAPTURE(i);
    CHECK(xt::allclose(Tensor<double>(in32[i].grad().data()), in64[i].grad().data(), 1e-4, 1e-5));
  }
}

// Checks Note [Attention backward in one pass]. A plain backward runs the
// kernel, a create_graph backward the composed ops; in float32 their
// gradients of q, k, v (and of an additive mask) agree to rounding, with
// each mask, a scale, dropout, broadcast batches and sizes off the SIMD
// width; and the kernel repeats bit for bit.
TEST_CASE("attention: the one-pass backward equals the composed backward in float32") {
  // The mask's values: a Boolean pattern (row 1 and every third entry
  // masked), -inf above the diagonal (GPT's), random with row 1 and every
  // third entry -inf, or random.
  enum class M { none, boolean, causal_additive, additive_with_inf, additive };
  struct Case {
    const char* name;
    Shape q, k, v, mask;
    M style;
    bool causal;
    double scale, dropout;
  };
  const std::vector<Case> cases = {
      {"causal, odd sizes", {2, 3, 5, 4}, {2, 3, 5, 4}, {2, 3, 5, 3}, {}, M::none, true, 0, 0},
      {"GPT's shape and mask", {2, 4, 64, 32}, {2, 4, 64, 32}, {2, 4, 64, 32}, {64, 64}, M::causal_additive, false, 0,
       0},
      {"boolean mask with a row of no key", {2, 7, 3}, {2, 19, 3}, {2, 19, 5}, {7, 19}, M::boolean, false, 0, 0},
      {"key padding (batch 1 all padding) and causal", {3, 2, 9, 4}, {3, 2, 9, 4}, {3, 2, 9, 2}, {3, 1, 1, 9},
       M::boolean, true, 0, 0},
      {"additive mask with a row of -inf, and its gradient", {2, 6, 4}, {2, 11, 4}, {2, 11, 3}, {6, 11},
       M::additive_with_inf, false, 0, 0},
      {"a scale, k and v broadcast over the batch", {3, 2, 5, 4}, {1, 2, 17, 4}, {1, 2, 17, 6}, {}, M::none, false,
       0.3, 0},
      {"T 1", {2, 1, 1, 4}, {2, 1, 1, 4}, {2, 1, 1, 4}, {}, M::none, true, 0, 0},
      {"one query, a (1, 1) additive mask", {2, 1, 5}, {2, 13, 5}, {2, 13, 2}, {1, 1}, M::additive, false, 0, 0},
      {"dropout 0.3, causal", {2, 2, 6, 4}, {2, 2, 10, 4}, {2, 2, 10, 3}, {}, M::none, true, 0, 0.3},
      {"v widens the batch (composed both ways)", {1, 5, 4}, {1, 6, 4}, {3, 6, 2}, {}, M::none, false, 0, 0},
  };
  const double inf = std::numeric_limits<double>::infinity();
  unsigned seed = 4100;
  for (const Case& c : cases) {
    CAPTURE(c.name);
    const Tensor<double> q64 = uniform(c.q, -1, 1, seed++).data(), k64 = uniform(c.k, -1, 1, seed++).data(),
                         v64 = uniform(c.v, -1, 1, seed++).data();
    Tensor<double> m64;
    if (c.style != M::none) {
      m64 = uniform(c.mask, -1, 1, seed++).data();
      const std::size_t S = c.mask.back(), rows = m64.size() / S;
      for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t j = 0; j < S; ++j) {
          double& x = m64.data()[r * S + j];
          const bool off = r == 1 || (j + r) % 3 == 0;
          if (c.style == M::boolean) x = off ? 0 : 1;
          if (c.style == M::additive_with_inf && off) x = -inf;
          if (c.style == M::causal_additive) x = j > r ? -inf : 0;
        }
    }
    std::vector<Tensor<float>> grads[3];
    Variable seed_grad;
    for (int run = 0; run < 3; ++run) {  // the kernel, the kernel again, the composed ops
      std::vector<Variable> in;
      for (const Tensor<double>* x : {&q64, &k64, &v64}) in.push_back(Variable(Tensor<float>(*x)).requires_grad_());
      F::AttentionOptions<float> o;
      o.is_causal = c.causal;
      if (c.scale) o.scale = c.scale;
      Generator gen(7);
      if (c.dropout) o.dropout_p = c.dropout, o.generator = &gen;
      if (c.style != M::none) {
        o.attn_mask = Variable(Tensor<float>(m64));
        o.attn_mask_kind = c.style == M::boolean ? F::AttnMask::Boolean : F::AttnMask::Additive;
        if (c.style == M::additive_with_inf) in.push_back(o.attn_mask.requires_grad_());
      }
      const Variable y = F::scaled_dot_product_attention(in[0], in[1], in[2], o);
      if (!seed_grad.defined()) seed_grad = Variable(Tensor<float>(uniform(y.shape(), -1, 1, seed++).data()));
      Variable::BackwardOptions b;
      b.seed = seed_grad;
      b.create_graph = run == 2;
      y.backward(b);
      for (auto& x : in) {
        REQUIRE(x.grad().defined());
        grads[run].push_back(x.grad().data());
        x.cleargrad();  // a create_graph gradient holds its graph, which holds x: a cycle
      }
    }
    for (std::size_t i = 0; i < grads[0].size(); ++i) {
      CAPTURE(i);
      CHECK(xt::all(xt::isfinite(grads[0][i])));
      CHECK(grads[0][i] == grads[1][i]);
      const float size = std::max(1.0f, float(xt::amax(xt::abs(grads[2][i]))()));
      CHECK(float(xt::amax(xt::abs(grads[0][i] - grads[2][i]))()) <= 2e-6f * size);
    }
  }
}

ZG_GRADCHECK_CASE("ScaledDotProductAttention") {
  unsigned seed = 3000;
  const auto qkv = [&](const Shape& q, const Shape& k, const Shape& v) {
    return V{uniform(q, -1.0, 1.0, seed++), uniform(k, -1.0, 1.0, seed++), uniform(v, -1.0, 1.0, seed++)};
  };
  const auto check = [](const V& in, const Options& o) {
    CHECK_GRADCHECK([&](const V& v) { return attend(v, o); }, in);
    CHECK_GRADGRADCHECK([&](const V& v) { return zg::sum(zg::square(attend(v, o))); }, in);
  };
  SUBCASE("plain, a broadcast batch, L != S, no batch") {
    check(qkv({2, 3, 4}, {2, 5, 4}, {2, 5, 3}), {});
    check(qkv({2, 2, 3, 2}, {1, 2, 4, 2}, {2, 1, 4, 3}), {});
    check(qkv({3, 2}, {4, 2}, {4, 2}), {});
  }
  SUBCASE("causal, a boolean mask with a row of no keys, both") {
    Options o;
    o.is_causal = true;
    check(qkv({2, 4, 3}, {2, 4, 3}, {2, 4, 2}), o);
    Options b;
    b.attn_mask = ramp({3, 4}, [](double i) { return double(i > 3 && int(i) % 3 != 0); });  // row 0: no key
    check(qkv({2, 3, 2}, {2, 4, 2}, {2, 4, 2}), b);
    b.is_causal = true;
    check(qkv({2, 3, 2}, {2, 4, 2}, {2, 4, 2}), b);
  }
  SUBCASE("an additive mask gets its gradient") {
    V in = qkv({2, 3, 2}, {2, 4, 2}, {2, 4, 3});
    in.push_back(uniform({3, 4}, -1.0, 1.0, seed++));
    const auto f = [](const V& v) {
      Options o;
      o.attn_mask = v[3];
      o.attn_mask_kind = F::AttnMask::Additive;
      return attend(v, o);
    };
    CHECK_GRADCHECK(f, in);
    CHECK_GRADGRADCHECK([&](const V& v) { return zg::sum(zg::square(f(v))); }, in);
  }
  SUBCASE("dropout: the backward uses the forward's draws") {
    // A fresh generator of one seed per call: the same keep mask each time.
    const auto f = [](const V& v) {
      Generator gen(42);
      Options o;
      o.dropout_p = 0.3;
      o.generator = &gen;
      return attend(v, o);
    };
    const V in = qkv({2, 3, 4}, {2, 5, 4}, {2, 5, 3});
    CHECK_GRADCHECK(f, in);
    CHECK_GRADGRADCHECK([&](const V& v) { return zg::sum(zg::square(f(v))); }, in);
  }
}

TEST_CASE("attention: dropout matches the probabilities times the keep mask, only while training") {
  const V in = {uniform({2, 3, 4}, -1, 1, 1), uniform({2, 5, 4}, -1, 1, 2), uniform({2, 5, 3}, -1, 1, 3)};
  V a = {Variable64(in[0].data()).requires_grad_(), Variable64(in[1].data()).requires_grad_(),
         Variable64(in[2].data()).requires_grad_()};
  V b = {Variable64(in[0].data()).requires_grad_(), Variable64(in[1].data()).requires_grad_(),
         Variable64(in[2].data()).requires_grad_()};
  Generator gen(7);
  Options o;
  o.dropout_p = 0.4;
  o.generator = &gen;
  const Variable64 y = attend(a, o);
  // The same draws in the same order as functional::dropout.
  Generator again(7);
  const Variable64 p = zg::softmax(zg::matmul(b[0], b[1], false, true) * 0.5, -1);
  const Variable64 want = zg::matmul(F::dropout(p, 0.4, true, again), b[2]);
  check_close(y, std::vector<double>(want.data().begin(), want.data().end()), 1e-12);
  const Variable64 w = uniform(y.shape(), -1, 1, 9);
  zg::sum(y * w).backward();
  zg::sum(want * w).backward();
  for (std::size_t i = 0; i < 3; ++i) {
    CAPTURE(i);
    check_close(a[i].grad(), std::vector<double>(b[i].grad().data().begin(), b[i].grad().data().end()), 1e-12);
  }
  // Seeded through zg::generator() by default; eval mode and p = 0 draw nothing.
  Options g;
  g.dropout_p = 0.4;
  zg::manual_seed(5);
  const Variable64 first = attend(in, g);
  zg::manual_seed(5);
  CHECK(attend(in, g).data() == first.data());
  Options eval = g;
  eval.training = false;
  CHECK(attend(in, eval).data() == attend(in, {}).data());
  CHECK(message_of<ValueError>([&] {
          Options bad;
          bad.dropout_p = 1;
          attend(in, bad);
        }) == "scaled_dot_product_attention: dropout_p must be in [0, 1), got 1");
}

TEST_CASE("attention: a query row with no key to attend to gives zeros and no NaN, in value and gradient") {
  V in = {uniform({2, 3, 4}, -1, 1, 21), uniform({2, 5, 4}, -1, 1, 22), uniform({2, 5, 3}, -1, 1, 23)};
  for (auto& x : in) x.requires_grad_();
  Tensor<double> keep = xt::ones<double>({3, 5});
  for (std::size_t j = 0; j < 5; ++j) keep(1, j) = 0;  // query 1 sees nothing
  Options o;
  o.attn_mask = Variable64(keep);
  const Variable64 y = attend(in, o);
  for (std::size_t b = 0; b < 2; ++b)
    for (std::size_t j = 0; j < 3; ++j) CHECK(y.data()(b, 1, j) == 0.0);
  CHECK(all_finite(y));
  zg::sum(zg::square(y)).backward();
  for (const auto& x : in) CHECK(all_finite(x.grad()));
  for (std::size_t j = 0; j < 4; ++j) CHECK(in[0].grad().data()(0, 1, j) == 0.0);
  // The other rows as without the dead one.
  Tensor<double> fine = xt::ones<double>({3, 5});
  Options f;
  f.attn_mask = Variable64(fine);
  CHECK(y.data()(1, 2, 0) == doctest::Approx(attend(in, f).data()(1, 2, 0)).epsilon(1e-14));
  // An additive mask of -infinity over a whole row: the same.
  Tensor<double> add = xt::zeros<double>({3, 5});
  for (std::size_t j = 0; j < 5; ++j) add(2, j) = -std::numeric_limits<double>::infinity();
  Options a;
  a.attn_mask = Variable64(add);
  a.attn_mask_kind = F::AttnMask::Additive;
  const Variable64 z = attend(in, a);
  CHECK(all_finite(z));
  CHECK(z.data()(0, 2, 0) == 0.0);
}

TEST_CASE("attention: bad shapes are ShapeErrors naming the op and the shapes") {
  const auto zeros = [](const Shape& s) { return Variable64(Tensor<double>(xt::zeros<double>(s))); };
  const auto error = [&](const Shape& q, const Shape& k, const Shape& v, const Shape* m = nullptr) {
    Options o;
    if (m) o.attn_mask = zeros(*m);
    return message_of<ShapeError>([&] { F::scaled_dot_product_attention(zeros(q), zeros(k), zeros(v), o); });
  };
  CHECK(error({4}, {3, 4}, {3, 2}) ==
        "scaled_dot_product_attention: q, k and v must be (..., L, E), (..., S, E) and (..., S, Ev), got q (4), k (3, "
        "4), v (3, 2)");
  CHECK(error({2, 0, 4}, {2, 3, 4}, {2, 3, 2}) ==
        "scaled_dot_product_attention: empty sequence: q (2, 0, 4), k (2, 3, 4), v (2, 3, 2)");
  CHECK(error({2, 5, 4}, {2, 0, 4}, {2, 0, 2}) ==
        "scaled_dot_product_attention: empty sequence: q (2, 5, 4), k (2, 0, 4), v (2, 0, 2)");
  CHECK(error({2, 5, 4}, {2, 3, 5}, {2, 3, 2}) ==
        "scaled_dot_product_attention: q and k have different embedding sizes: q (2, 5, 4), k (2, 3, 5), v (2, 3, 2)");
  CHECK(error({2, 5, 4}, {2, 3, 4}, {2, 6, 2}) ==
        "scaled_dot_product_attention: k and v have different sequence lengths: q (2, 5, 4), k (2, 3, 4), v (2, 6, 2)");
  CHECK(error({2, 5, 4}, {3, 3, 4}, {3, 3, 2}) ==
        "scaled_dot_product_attention: batch dimensions do not broadcast: q (2, 5, 4), k (3, 3, 4), v (3, 3, 2)");
  const Shape m = {5, 4};
  CHECK(error({2, 5, 4}, {2, 3, 4}, {2, 3, 2}, &m) ==
        "scaled_dot_product_attention: attn_mask (5, 4) does not broadcast to the scores (2, 5, 3) of q (2, 5, 4), k "
        "(2, 3, 4), v (2, 3, 2)");
}

// The measurement of Note [Attention recomputes its probabilities]: the bytes a forward leaves
// allocated while its output waits for backward, beyond the output itself.
TEST_CASE("attention: memory held between forward and backward") {
  if (!detail::buffer_cache_enabled()) return;  // AddressSanitizer's allocator: mallinfo2 sees none of it
  const std::size_t B = 16, H = 4, T = 64, d = 32;
  const auto rand = [&](unsigned seed) {
    return Variable(Tensor<float>(uniform({B, H, T, d}, -1, 1, seed).data())).requires_grad_();
  };
  const Variable q = rand(1), k = rand(2), v = rand(3);
  // On a thread of its own, whose buffer cache (Note [Buffer cache]) starts
  // empty: what the forward leaves allocated is what its graph holds, plus
  // any intermediate the graph freed into that cache.
  const auto held = [&](const std::function<Variable()>& f) {
    long bytes = 0;
    std::thread([&] {
      const std::size_t before = mallinfo2().uordblks;
      const Variable y = f();
      bytes = long(mallinfo2().uordblks) - long(before) - long(y.size() * sizeof(float));
    }).join();
    return bytes;
  };
  F::AttentionOptions<float> drop;
  drop.dropout_p = 0.1;
  const auto composed = [&](double p) {
    Variable s = zg::matmul(q, k, false, true) * float(1 / std::sqrt(double(d)));
    return zg::matmul(F::dropout(zg::softmax(s, -1), p, true), v);
  };
  const long fused = held([&] { return F::scaled_dot_product_attention(q, k, v); });
  const long fused_drop = held([&] { return F::scaled_dot_product_attention(q, k, v, drop); });
  const long by_ops = held([&] { return composed(0); });
  const long by_ops_drop = held([&] { return composed(0.1); });
  MESSAGE("bytes held: fused " << fused << ", with dropout " << fused_drop << "; composed ops " << by_ops
                               << ", with dropout " << by_ops_drop);
  const long probabilities = long(B * H * T * T * sizeof(float));
  CHECK(fused < probabilities / 8);
  CHECK(fused_drop < probabilities / 8);
  CHECK(by_ops >= probabilities);
}

TEST_CASE("attention: causal self-attention, batched op against a loop over the batch (timing)" * doctest::skip()) {
  const std::size_t B = 16, T = 64, C = 128;
  const auto rand = [&](unsigned seed) {
    return Variable(Tensor<float>(uniform({B, T, C}, -1, 1, seed).data())).requires_grad_();
  };
  const Variable q = rand(1), k = rand(2), v = rand(3);
  Tensor<float> causal = Tensor<float>::from_shape({T, T});
  for (std::size_t i = 0; i < T; ++i)
    for (std::size_t j = 0; j < T; ++j) causal(i, j) = j > i ? 1.f : 0.f;
  const Variable hide(causal);
  const float scale = float(1 / std::sqrt(double(C)));
  const auto loop = [&] {
    std::vector<Variable> ys;
    for (std::size_t b = 0; b < B; ++b) {
      const auto at = [&](const Variable& x) { return zg::get_item(x, {static_cast<std::ptrdiff_t>(b)}); };
      Variable s = zg::masked_fill(zg::matmul(at(q), at(k), false, true) * scale, hide, -INFINITY);
      ys.push_back(zg::matmul(zg::softmax(s, -1), at(v)));
    }
    return zg::stack(ys);
  };
  const auto batched_ops = [&] {
    Variable s = zg::masked_fill(zg::matmul(q, k, false, true) * scale, hide, -INFINITY);
    return zg::matmul(zg::softmax(s, -1), v);
  };
  const auto fused = [&] {
    F::AttentionOptions<float> o;
    o.is_causal = true;
    return F::scaled_dot_product_attention(q, k, v, o);
  };
  const auto time = [&](const char* name, const std::function<Variable()>& f) {
    double best = 1e9;
    for (int rep = 0; rep < 30; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      zg::sum(f()).backward();
      best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    MESSAGE(std::string(name) << ": " << best << " ms forward + backward (best of 30)");
  };
  time("loop over the batch (get_item, 2-D matmul, stack)", loop);
  // The measurements of Note [Batched products]: q k^T of (16, 4, 64, 32) one GEMM after another, and spread over the threads.
  const Tensor<float> a = uniform({16, 4, 64, 32}, -1, 1, 4).data(), b = uniform({16, 4, 64, 32}, -1, 1, 5).data();
  Tensor<float> c = Tensor<float>::from_shape({16, 4, 64, 64});
  const auto p = detail::batched_product(zg::shape_of(a), zg::shape_of(b), false, true);
  const auto products = [&](const char* name, const std::function<void()>& f) {
    double best = 1e9;
    for (int rep = 0; rep < 200; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      f();
      best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    MESSAGE(std::string(name) << ": " << best << " ms (best of 200)");
  };
  products("q k^T, one GEMM after another", [&] {
    for (std::size_t i = 0; i < 64; ++i)
      detail::gemm<float>(false, true, 64, 64, 32, 1.f, a.data() + i * 2048, 32, b.data() + i * 2048, 32, 0.f,
                          c.data() + i * 4096, 64);
  });
  products("q k^T, batched_gemm", [&] { detail::batched_gemm<float>(p, a.data(), b.data(), c.data()); });
  // And (16, 64, 128) @ (128, 128): one GEMM per sequence, or one over all 1024 rows.
  const Tensor<float> x = uniform({16, 64, 128}, -1, 1, 6).data(), w = uniform({128, 128}, -1, 1, 7).data();
  Tensor<float> out = Tensor<float>::from_shape({16, 64, 128});
  const auto fold = detail::batched_product(zg::shape_of(x), zg::shape_of(w), false, false);
  products("(B, T, C) @ (C, D), one GEMM per sequence", [&] {
    for (std::size_t i = 0; i < 16; ++i)
      detail::gemm<float>(false, false, 64, 128, 128, 1.f, x.data() + i * 8192, 128, w.data(), 128, 0.f,
                          out.data() + i * 8192, 128);
  });
  products("(B, T, C) @ (C, D), batched_gemm", [&] { detail::batched_gemm<float>(fold, x.data(), w.data(), out.data()); });
  time("batched ops (N-D matmul, masked_fill, softmax)", batched_ops);
  time("scaled_dot_product_attention", fused);
}

TEST_CASE("Linear over (B, T, C): values and gradients equal PyTorch's, one GEMM over B T rows") {
  const V in = {seq_a({2, 3, 4}), seq_b({4, 5}), seq_c({5})};
  check_against([](const V& v) { return zg::linear(v[0], v[1], v[2]); }, in, golden_seq::linear_btc,
                {golden_seq::linear_btc_grad0, golden_seq::linear_btc_grad1, golden_seq::linear_btc_grad2});
  check_against([](const V& v) { return F::linear(v[0], v[1], v[2]); }, in, golden_seq::linear_btc,
                {golden_seq::linear_btc_grad0, golden_seq::linear_btc_grad1, golden_seq::linear_btc_grad2});
  // The layer: the last axis when it is `in`, the book's flattening otherwise.
  nn::BasicLinear<double> fc(4, 5);
  fc.weight.data() = in[1].data();
  fc.bias.data() = in[2].data();
  check_close(fc(in[0]), golden_seq::linear_btc);
  CHECK(fc(uniform({4}, -1, 1, 5)).shape() == Shape{5});
  CHECK(fc(uniform({2, 2, 3, 4}, -1, 1, 5)).shape() == Shape{2, 2, 3, 5});
  const GradcheckReport report = nn::gradcheck(fc, uniform({2, 3, 4}, -1, 1, 11));
  INFO(zg::testing::str(report));
  CHECK(report.passed);
  nn::BasicLinear<double> affine(12, 5);
  CHECK(affine(uniform({2, 3, 2, 2}, -1, 1, 6)).shape() == Shape{2, 5});
  CHECK(message_of<ShapeError>([&] { fc(uniform({3}, -1, 1, 7)); }) ==
        "Linear(in=4, out=5): input (3) has 3 features per sample");
  CHECK(message_of<ShapeError>([&] { fc(uniform({2, 3, 5}, -1, 1, 7)); }) ==
        "Linear(in=4, out=5): input (2, 3, 5) has 15 features per sample");
}

TEST_CASE("LayerNorm and Embedding take (B, T, C) and (B, T)") {
  nn::BasicLayerNorm<double> ln({4});
  const Variable64 x = seq_a({2, 3, 4});
  const Variable64 y = ln(x);
  REQUIRE(y.shape() == Shape{2, 3, 4});
  for (std::size_t b = 0; b < 2; ++b)
    for (std::size_t t = 0; t < 3; ++t) {
      double m = 0;
      for (std::size_t c = 0; c < 4; ++c) m += y.data()(b, t, c) / 4;
      CHECK(m == doctest::Approx(0).scale(1));
    }
  CHECK_GRADCHECK([](const V& v) { return F::layer_norm(v[0], {4}, v[1], v[2]); },
                  V{uniform({2, 3, 4}, -1, 1, 8), uniform({4}, 0.5, 1.5, 9), uniform({4}, -1, 1, 10)});
  nn::BasicEmbedding<double> emb(7, 4);
  const Variable64 idx(Tensor<double>{{0.0, 3.0, 6.0}, {6.0, 1.0, 0.0}});
  const Variable64 e = emb(idx);
  REQUIRE(e.shape() == Shape{2, 3, 4});
  for (std::size_t c = 0; c < 4; ++c) CHECK(e.data()(0, 2, c) == emb.weight.data()(6, c));
  // Embedding, then Linear over the last axis: (B, T) -> (B, T, D) -> (B, T, out).
  nn::BasicLinear<double> head(4, 3);
  CHECK(head(ln(e)).shape() == Shape{2, 3, 3});
}
