// conv2d, conv_transpose2d, conv2d_grad_weight, max_pool2d, avg_pool2d and
// their layers.
//
// Note: the column matrix. For one sample, col (C*KH*KW, OH*OW) holds in row
// (c, kh, kw) and column (oh, ow) the input pixel x[c][oh*S - P + kh][ow*S -
// P + kw] (zero in the padding). This is the transpose of the book's layout
// (rows (n, oh, ow), columns (c, kh, kw)), chosen because then
//   y_n  (FN, OH*OW)     = W (FN, C*KH*KW) @ col_n         (conv2d)
//   col_n                = W^T @ gy_n, then col2im         (conv_transpose2d)
//   gW   (FN, C*KH*KW)  += gy_n @ col_n^T                  (conv2d_grad_weight)
// are each one GEMM per sample that reads and writes the (N, C, H, W) arrays
// in place: no transposed copy of the output, and a col buffer of one sample
// (it stays in cache) instead of one for the whole batch.
#include "zerograd/nn/conv.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

#include <xsimd/xsimd.hpp>
#include <xtensor/xbuilder.hpp>

#include "zerograd/nn/init.hpp"
#include "zerograd/ops.hpp"
// The library's raw GEMM (private to the library, like the ops that use it).
#include "zerograd/gemm.hpp"
#include "zerograd/parallel.hpp"

#include "conv_dnnl.hpp"
#include "pool_simd.hpp"

namespace zg::nn::functional {
namespace {

using Index = std::ptrdiff_t;

template <class T>
Shape shape_of(const Tensor<T>& t) {
  return Shape(t.shape().begin(), t.shape().end());
}

std::string hw(std::size_t h, std::size_t w) { return std::to_string(h) + "x" + std::to_string(w); }

// Sizes of one convolution or pooling: input (N, C, H, W), kernel KH x KW,
// output OH x OW, stride S and padding P on both axes.
struct Geometry {
  std::size_t N, C, H, W, KH, KW, OH, OW, S, P;
  std::size_t plane() const { return H * W; }
  std::size_t out_plane() const { return OH * OW; }
  std::size_t patch() const { return C * KH * KW; }
};

void require_4d(const std::string& op, const Shape& x, const char* what, const char* layout) {
  if (x.size() != 4)
    throw ShapeError(op + ": " + what + " must be 4-D " + layout + ", got " + shape_str(x));
}

void check_stride_pad(const std::string& op, int stride, int pad) {
  if (stride < 1) throw ShapeError(op + ": stride must be >= 1, got " + std::to_string(stride));
  if (pad < 0) throw ShapeError(op + ": pad must be >= 0, got " + std::to_string(pad));
}

// PyTorch's limit: with pad <= kernel / 2 no window lies wholly in padding.
void check_pool_params(const std::string& op, int kernel, int stride, int pad) {
  if (kernel < 1) throw ShapeError(op + ": kernel must be >= 1, got " + std::to_string(kernel));
  check_stride_pad(op, stride, pad);
  if (pad > kernel / 2)
    throw ShapeError(op + ": pad " + std::to_string(pad) + " is more than half the kernel " +
                     std::to_string(kernel));
}

Geometry geometry(const std::string& op, const Shape& x, std::size_t KH, std::size_t KW, int stride, int pad) {
  require_4d(op, x, "input", "(N, C, H, W)");
  check_stride_pad(op, stride, pad);
  const std::size_t S = static_cast<std::size_t>(stride), P = static_cast<std::size_t>(pad);
  const std::size_t H = x[2] + 2 * P, W = x[3] + 2 * P;
  if (KH == 0 || KW == 0 || KH > H || KW > W)
    throw ShapeError(op + ": kernel " + hw(KH, KW) + " does not fit the padded input " + hw(H, W) +
                     " (input " + shape_str(x) + ", pad " + std::to_string(P) + ")");
  return {x[0], x[1], x[2], x[3], KH, KW, (H - KH) / S + 1, (W - KW) / S + 1, S, P};
}

Geometry pool_geometry(const std::string& op, const Shape& x, int kernel, int stride, int pad) {
  require_4d(op, x, "input", "(N, C, H, W)");
  check_pool_params(op, kernel, stride, pad);
  if (x[2] == 0 || x[3] == 0) throw ShapeError(op + ": input " + shape_str(x) + " has empty planes");
  return geometry(op, x, static_cast<std::size_t>(kernel), static_cast<std::size_t>(kernel), stride, pad);
}

// Im2col / col2im

// The outputs o in [lo, hi) whose input o*S - P + k lies inside [0, size).
struct Span {
  std::size_t lo, hi;
};
Span inside(std::size_t k, const Geometry& g, std::size_t size, std::size_t out) {
  const Index S = Index(g.S);
  const auto ceil_div = [S](Index a) { return a <= 0 ? 0 : static_cast<std::size_t>((a + S - 1) / S); };
  const Index P = Index(g.P), K = Index(k);
  const std::size_t lo = std::min(ceil_div(P - K), out);
  return {lo, std::max(lo, std::min(ceil_div(Index(size) + P - K), out))};
}

// Calls fn(at, from, lo, hi) for each row (c, kh, kw, oh) of one sample's
// column matrix: `at` is its offset in col, [lo, hi) the columns ow that read
// the image (the rest read padding) and `from` the offset in the sample of the
// pixel column lo reads; successive columns read every S-th pixel from there.
template <class F>
void for_each_col_row(const Geometry& g, F&& fn) {
  for (std::size_t c = 0; c < g.C; ++c)
    for (std::size_t kh = 0; kh < g.KH; ++kh) {
      const Span rows = inside(kh, g, g.H, g.OH);
      for (std::size_t kw = 0; kw < g.KW; ++kw) {
        const Span cols = inside(kw, g, g.W, g.OW);
        const std::size_t row = ((c * g.KH + kh) * g.KW + kw) * g.out_plane();
        for (std::size_t oh = 0; oh < g.OH; ++oh) {
          if (oh < rows.lo || oh >= rows.hi || cols.lo == cols.hi) {
            fn(row + oh * g.OW, std::size_t(0), std::size_t(0), std::size_t(0));
            continue;
          }
          const std::size_t ih = oh * g.S + kh - g.P, iw = cols.lo * g.S + kw - g.P;
          fn(row + oh * g.OW, (c * g.H + ih) * g.W + iw, cols.lo, cols.hi);
        }
      }
    }
}

// im2col for stride 1 and "same" padding (OH = H, OW = W: DeepConvNet's
// 3x3 pad 1). The rows of one (c, kh, kw) block are then the input plane
// shifted by d = (kh - P) W + (kw - P) as a flat array: one copy per block
// instead of one per row (28 floats, where the call cost as much as the copy),
// then zeros where the shift wrapped round a row edge or left the plane.
template <class T>
void im2col_same(const T* x, const Geometry& g, T* col) {
  const std::size_t M = g.out_plane();
  for (std::size_t c = 0; c < g.C; ++c)
    for (std::size_t kh = 0; kh < g.KH; ++kh) {
      const Span rows = inside(kh, g, g.H, g.OH);
      for (std::size_t kw = 0; kw < g.KW; ++kw) {
        const Span cols = inside(kw, g, g.W, g.OW);
        T* out = col + ((c * g.KH + kh) * g.KW + kw) * M;
        const T* plane = x + c * g.plane();
        std::fill(out, out + rows.lo * g.OW, T(0));
        std::fill(out + rows.hi * g.OW, out + M, T(0));
        if (rows.lo >= rows.hi) continue;
        // out[i] = plane[i + d] for i in [rows.lo OW, rows.hi OW), clipped to the plane.
        const Index d = (Index(kh) - Index(g.P)) * Index(g.W) + Index(kw) - Index(g.P);
        const Index first = std::max(Index(rows.lo * g.OW), -d);
        const Index last = std::min(Index(rows.hi * g.OW), Index(g.plane()) - d);
        if (first < last) std::copy(plane + first + d, plane + last + d, out + first);
        // Column by column: a row's edge is a value or two, and a per-row
        // fill became a memset call for each.
        const auto zero_column = [&](std::size_t j) {
          for (std::size_t oh = rows.lo; oh < rows.hi; ++oh) out[oh * g.OW + j] = T(0);
        };
        for (std::size_t j = 0; j < cols.lo; ++j) zero_column(j);
        for (std::size_t j = cols.hi; j < g.OW; ++j) zero_column(j);
      }
    }
}

// Copies a short run (an image row of 24 floats, say) in 32-byte pieces,
// the last one overlapping the one before: std::copy calls memmove, whose
// dispatch cost as much as copying such a run.
template <class T>
void copy_run(const T* in, std::size_t n, T* out) {
  constexpr std::size_t V = 32 / sizeof(T);
  if (n < V) {
    for (std::size_t j = 0; j < n; ++j) out[j] = in[j];
    return;
  }
  for (std::size_t j = 0; j + V < n; j += V) std::memcpy(out + j, in + j, 32);
  std::memcpy(out + n - V, in + n - V, 32);
}

// Zeroes a run of at least 32 bytes the same way (a memset call per short
// run cost more than the stores).
template <class T>
void zero_run(T* out, std::size_t n) {
  constexpr std::size_t V = 32 / sizeof(T);
  const T zeros[V] = {};
  for (std::size_t j = 0; j + V < n; j += V) std::memcpy(out + j, zeros, 32);
  std::memcpy(out + n - V, zeros, 32);
}

// A column matrix's buffer, left uninitialized: im2col and the GEMMs write
// every element (zeroing it first cost a pass over memory per call, and
// would hide an element they missed).
template <class T>
std::unique_ptr<T[]> column_buffer(std::size_t n) {
  return std::unique_ptr<T[]>(new T[n]);
}

// x: one sample (C, H, W); col: (C*KH*KW, OH*OW), fully written.
template <class T>
void im2col(const T* x, const Geometry& g, T* col) {
  if (g.S == 1 && g.OH == g.H && g.OW == g.W) return im2col_same(x, g, col);
  for_each_col_row(g, [&](std::size_t at, std::size_t from, std::size_t lo, std::size_t hi) {
    T* out = col + at;
    if (g.OW >= 32 / sizeof(T) && (lo > 0 || hi < g.OW)) {
      zero_run(out, g.OW);  // the padding, in whole vectors; the image part is then copied over it
    } else {
      std::fill(out, out + lo, T(0));
      std::fill(out + hi, out + g.OW, T(0));
    }
    if (g.S == 1) copy_run(x + from, hi - lo, out + lo);
    else for (std::size_t j = lo; j < hi; ++j) out[j] = x[from + (j - lo) * g.S];
  });
}

// The adjoint of im2col: adds every column entry back onto the pixel it was
// read from, so pixels shared by overlapping windows accumulate.
template <class T>
void col2im_add(const T* col, const Geometry& g, T* x) {
  for_each_col_row(g, [&](std::size_t at, std::size_t from, std::size_t lo, std::size_t hi) {
    const T* in = col + at + lo;
    T* out = x + from;
    const std::size_t n = hi - lo;
    if (g.S == 1) {  // contiguous: a loop the compiler vectorizes
      for (std::size_t j = 0; j < n; ++j) out[j] += in[j];
    } else {
      for (std::size_t j = 0; j < n; ++j) out[j * g.S] += in[j];
    }
  });
}

onednn::ConvDims dims_of(const Geometry& g, std::size_t FN) {
  return {g.N, g.C, g.H, g.W, FN, g.KH, g.KW, g.OH, g.OW, g.S, g.P};
}

std::string conv_attributes(int stride, int pad) {
  return "stride=" + std::to_string(stride) + ", pad=" + std::to_string(pad);
}

// Convolution

// Note [Conv2d with ReLU]: conv2d_relu, and Sequential for a Conv2d followed
// by a ReLU, run relu(conv2d(x, W, b)) as one Function, "Conv2dReLU". On
// oneDNN the ReLU is applied as the output is copied out of the kernel's
// blocked layout and its backward as gy is copied in (Note [ReLU in the
// reorders] in conv_dnnl.cpp); on im2col + GEMM as the bias is added. So
// the pre-activation array is never written, read back and kept for
// ReLU's backward, and neither ReLU nor ReLUGrad makes its own pass over
// memory. The backward's switch (output > 0, the same as pre-activation >
// 0) is kept as one byte per output, made only when the op is recorded.
// The output itself cannot serve: the next op's backward may free it before
// this one runs. DeepConvNet at batch 100, one thread, pinned to one core,
// 8 alternating runs: 3% faster (median paired ratio 0.97), and one array
// per layer less in memory.
template <class T>
struct Conv2d final : Function<T> {
  // recorded: the op goes into the graph (detail::records), so its backward
  // will run and needs the switches or position bytes; made only then.
  Conv2d(bool has_bias, int stride, int pad, bool relu = false, bool pool = false, bool recorded = false)
      : has_bias(has_bias), relu(relu || pool), pool(pool), recorded(recorded), stride(stride), pad(pad) {}
  bool has_bias, relu, pool, recorded;
  int stride, pad;
  // With relu: 1 where the output is > 0. With pool: per pooled output, the
  // window position (0-3, row-major) of its maximum, or 4 where that is not
  // > 0, in oneDNN's blocked order by pool_block channels if that is not 0.
  std::unique_ptr<std::uint8_t[]> positive;
  std::size_t pool_block = 0;
  std::string name() const override { return pool ? "Conv2dReLUMaxPool" : relu ? "Conv2dReLU" : "Conv2d"; }
  std::string attributes() const override {
    std::string a = conv_attributes(stride, pad) + (has_bias ? "" : ", no bias");
    if (pool) a += ", max pool 2x2";
    if (pool_block) a += " (pooled in oneDNN's " + std::to_string(pool_block) + "-channel blocks)";
    return a;
  }
  Outputs<T> forward(const TensorList<T>& x) override {
    const Shape sw = shape_of(x[1]);
    const Geometry g = check(shape_of(x[0]), sw, has_bias ? shape_of(x[2]) : Shape{});
    const std::size_t FN = sw[0], M = g.out_plane();
    if (pool) return forward_pooled(x, g, FN);
    Tensor<T> y = Tensor<T>::from_shape({g.N, FN, g.OH, g.OW});
    // Only a recorded op runs backward, and only that needs the switches.
    if (relu && recorded) positive.reset(new std::uint8_t[y.size()]);
    bool done = false;
    if constexpr (std::is_same_v<T, float>)  // Note [oneDNN convolutions]
      done = onednn::conv2d(dims_of(g, FN), x[0].data(), x[1].data(), has_bias ? x[2].data() : nullptr, y.data(),
                            relu, positive.get());
    if (!done)
      im2col_forward(x, g, FN, y.data(), [&](std::size_t n, const T* yn) {
        if (positive) mark_positive(yn, FN * M, positive.get() + n * FN * M);
      });
    return y;
  }
  // The convolution (with bias, and ReLU if relu) on im2col + GEMM, one GEMM
  // per sample; then sample(n, yn) on sample n's outputs while they are in
  // cache. They go to y, or where y is null to a buffer of the thread's.
  template <class Sample>
  void im2col_forward(const TensorList<T>& x, const Geometry& g, std::size_t FN, T* y, Sample&& sample) const {
    const std::size_t K = g.patch(), M = g.out_plane();
    // Samples are independent: each thread takes a block with a col buffer of its own.
    detail::parallel_for(g.N, 1, [&](std::size_t n0, std::size_t n1) {
      const std::unique_ptr<T[]> col = column_buffer<T>(K * M);
      const std::unique_ptr<T[]> own = y ? std::unique_ptr<T[]>() : column_buffer<T>(FN * M);
      for (std::size_t n = n0; n < n1; ++n) {
        T* yn = y ? y + n * FN * M : own.get();
        im2col(x[0].data() + n * g.C * g.plane(), g, col.get());
        detail::gemm<T>(false, false, FN, M, K, T(1), x[1].data(), K, col.get(), M, T(0), yn, M);
        // The bias (and ReLU) while the sample's rows are still in cache: a
        // fill before a beta = 1 GEMM made one more pass over memory.
        if (has_bias || relu)
          for (std::size_t f = 0; f < FN; ++f) add_bias_relu(yn + f * M, M, has_bias ? x[2].data()[f] : T(0));
        sample(n, yn);
      }
    });
  }
  // Note [Conv2d with ReLU and pooling]: max_pool2d(relu(conv2d(..)), 2),
  // the book's conv - relu - pool block, as one op "Conv2dReLUMaxPool". The
  // full-size output is never written out or kept: on oneDNN it is pooled in
  // the kernel's blocked layout (Note [Pooling in the reorders] in
  // conv_dnnl.cpp), on im2col sample by sample while in cache. The backward
  // needs one byte per pooled output: the window position (0-3) of its
  // maximum, which is where the separate pooling sends gy, or 4 where that
  // maximum is not > 0, which is exactly where the separate ReLU's switch
  // would stop it. Values and gradients are those of the three ops, ties,
  // NaN and odd sizes (a last row or column in no window) included. Batch
  // 100, one thread pinned to one core, 6 alternating runs against the ops
  // apart: DeepConvNet median paired ratio 0.92, SimpleConvNet 0.82 (6 of
  // 6 faster each); bench/conv_bench's conv_relu_pool lines give each layer.
  Tensor<T> forward_pooled(const TensorList<T>& x, const Geometry& g, std::size_t FN) {
    const Geometry p = pool_geometry("MaxPool2d", {g.N, FN, g.OH, g.OW}, 2, 2, 0);
    Tensor<T> out = Tensor<T>::from_shape({g.N, FN, p.OH, p.OW});
    if (recorded) positive.reset(new std::uint8_t[out.size()]);
    const T* b = has_bias ? x[2].data() : nullptr;
    const std::size_t M = g.out_plane(), PM = p.out_plane();
    std::uint8_t* at = positive.get();
    pool_block = 0;
    if constexpr (std::is_same_v<T, float>) {
      const onednn::ConvDims d = dims_of(g, FN);
      pool_block = onednn::conv2d_relu_pool(d, x[0].data(), x[1].data(), b, out.data(), at);
      if (pool_block) return out;
      // oneDNN with an output layout we do not pool in: the whole output, then the pooling.
      Tensor<T> y = onednn::taken(d) ? Tensor<T>::from_shape({g.N, FN, g.OH, g.OW}) : Tensor<T>();
      if (y.size() && onednn::conv2d(d, x[0].data(), x[1].data(), b, y.data(), true)) {
        detail::parallel_for(g.N, 1, [&](std::size_t n0, std::size_t n1) {
          for (std::size_t n = n0; n < n1; ++n)
            pool_sample(y.data() + n * FN * M, p, FN, out.data() + n * FN * PM, at ? at + n * FN * PM : nullptr);
        });
        return out;
      }
    }
    im2col_forward(x, g, FN, nullptr, [&](std::size_t n, const T* yn) {
      pool_sample(yn, p, FN, out.data() + n * FN * PM, at ? at + n * FN * PM : nullptr);
    });
    return out;
  }
  // One sample's planes y (planes, p.H, p.W), after ReLU, pooled 2x2 into out
  // with the rule of max_pool2d, and each maximum's position byte into at
  // (if not null): 0-3, or 4 where the maximum is not > 0. A function of its
  // own, with its pointers as arguments (see mark_positive).
  static void pool_sample(const T* y, const Geometry& p, std::size_t planes, T* out, std::uint8_t* at) {
    for (std::size_t c = 0; c < planes; ++c, y += p.plane())
      for (std::size_t oh = 0; oh < p.OH; ++oh) {
        const T* r0 = y + 2 * oh * p.W;
        const T* r1 = r0 + p.W;
#if defined(__AVX2__)
        // Eight windows at a time: selects, not mispredicted branches. A
        // row's last eight end it (overlapping, the same values again).
        if constexpr (std::is_same_v<T, float>)
          if (p.OW >= 8) {
            simd::by_eights(p.OW, [&](std::size_t o) {
              __m256 v[4];
              simd::deinterleave(r0 + 2 * o, v[0], v[1]);
              simd::deinterleave(r1 + 2 * o, v[2], v[3]);
              _mm256_storeu_ps(out + o, simd::window_max(v, at ? at + o : nullptr));
            });
            out += p.OW;
            if (at) at += p.OW;
            continue;
          }
#endif
        for (std::size_t ow = 0; ow < p.OW; ++ow) {
          const std::size_t j = 2 * ow;
          const T v[4] = {r0[j], r0[j + 1], r1[j], r1[j + 1]};
          *out++ = simd::window_max(v, at);
          if (at) ++at;
        }
      }
  }
  // row + b, and with relu max(that, 0) as a select, so NaN passes through.
  void add_bias_relu(T* row, std::size_t M, T b) const {
    if (!relu) {
      for (std::size_t j = 0; j < M; ++j) row[j] += b;
      return;
    }
    for (std::size_t j = 0; j < M; ++j) {
      const T v = row[j] + b;
      row[j] = v < T(0) ? T(0) : v;
    }
  }
  // on[i] = y[i] > 0 for one sample's outputs, while they are in cache. A
  // function of its own, with its pointers as arguments: byte stores may
  // alias anything, and through a lambda's captures the pointers were
  // reloaded for each element and the loop stayed scalar (4x slower).
  static void mark_positive(const T* y, std::size_t n, std::uint8_t* on) {
    for (std::size_t i = 0; i < n; ++i) on[i] = y[i] > T(0);
  }
  // gy where the constant 0/1 array on is 1, 0 elsewhere, differentiable in
  // gy: a where(), a select as ReLUGrad (a product would turn an infinite gy
  // into NaN).
  static Var<T> selected(Tensor<T> on, const Var<T>& gy) {
    return zg::where(Var<T>(std::move(on)), gy, Var<T>(Tensor<T>(xt::zeros<T>({std::size_t(1)}))));
  }
  // gy where the output was positive, 0 elsewhere: ReLU's backward. Under
  // create_graph selected() by a constant 0/1 array, differentiable again.
  Var<T> switched(const Var<T>& gy) const {
    const std::uint8_t* on = positive.get();
    if (is_grad_enabled()) {
      Tensor<T> m = Tensor<T>::from_shape(gy.shape());
      for (std::size_t i = 0; i < m.size(); ++i) m.data()[i] = on[i] ? T(1) : T(0);
      return selected(std::move(m), gy);
    }
    Tensor<T> g = Tensor<T>::from_shape(gy.shape());
    const T* in = gy.data().data();
    T* out = g.data();
    // Both loads unconditional, so the select compiles to a vector blend.
    detail::parallel_for(g.size(), detail::kElementGrain, [in, on, out](std::size_t b, std::size_t e) {
      for (std::size_t i = b; i < e; ++i) {
        const T v = in[i];
        out[i] = on[i] ? v : T(0);
      }
    });
    return Var<T>(std::move(g));
  }
  Variables<T> backward(const Variables<T>& gys) override {
    if (!relu) return backward_of(gys[0]);
    if constexpr (std::is_same_v<T, float>) {  // the switch, or the pooling's spread, applied as oneDNN's copy of gy is made
      Variables<T> g(this->num_inputs());
      if (!is_grad_enabled() && this->needs_input_grad(1) && (!pool || pool_block) &&
          all_on_onednn(gys[0], g, pool ? Upstream::Pooled : Upstream::Switched))
        return g;
    }
    return backward_of(pool ? unpooled(gys[0]) : switched(gys[0]));
  }
  // The pooled gy spread back over the windows, to each maximum whose byte
  // is not 4, 0 elsewhere: the pooling's and ReLU's backward. Under
  // create_graph a MaxPool2dGrad of gy selected by a constant 0/1 array.
  Var<T> unpooled(const Var<T>& gy) const;
  // One plane's pooled gy (PH, PW) spread into out (rows of OW) as its
  // position bytes at say.
  static void unpool_plane(const T* gy, const std::uint8_t* at, std::size_t OW, std::size_t PH, std::size_t PW,
                           T* out) {
    for (std::size_t ph = 0; ph < PH; ++ph, gy += PW, at += PW) {
      T* o0 = out + 2 * ph * OW;
      T* o1 = o0 + OW;
#if defined(__AVX2__)
      if constexpr (std::is_same_v<T, float>)
        if (PW >= 8) {  // as in pool_sample: eight windows at a time, the last eight overlapping
          simd::by_eights(PW, [&](std::size_t w) {
            const __m256 g = _mm256_loadu_ps(gy + w);
            const __m256i k = simd::bytes(at + w);
            simd::interleave(simd::share(g, k, 0), simd::share(g, k, 1), o0 + 2 * w);
            simd::interleave(simd::share(g, k, 2), simd::share(g, k, 3), o1 + 2 * w);
          });
          continue;
        }
#endif
      for (std::size_t pw = 0; pw < PW; ++pw) {
        const T v[2] = {T(0), gy[pw]};  // indexed, not branched on
        const unsigned k = at[pw];
        o0[2 * pw] = v[k == 0];
        o0[2 * pw + 1] = v[k == 1];
        o1[2 * pw] = v[k == 2];
        o1[2 * pw + 1] = v[k == 3];
      }
    }
  }
  void release() override {
    Function<T>::release();
    positive.reset();
  }
  // dx = conv_transpose2d(gy, W), dW = conv2d_grad_weight(x, gy), db = sum of gy over (n, oh, ow)
  Variables<T> backward_of(const Var<T>& gy) {
    const Var<T>& x = this->input(0);
    const Var<T>& W = this->input(1);
    Variables<T> g(this->num_inputs());
    if constexpr (std::is_same_v<T, float>)  // Note [One pass over gy] in conv_dnnl.cpp
      if (!is_grad_enabled() && this->needs_input_grad(1) && all_on_onednn(gy, g, Upstream::Plain)) return g;
    if (this->needs_input_grad(0)) g[0] = conv_transpose2d(gy, W, stride, pad, {x.shape()[2], x.shape()[3]});
    if (this->needs_input_grad(1))
      g[1] = conv2d_grad_weight(x, gy, {W.shape()[2], W.shape()[3]}, stride, pad);
    if (has_bias && this->needs_input_grad(2)) g[2] = zg::sum(gy, {0, 2, 3});
    return g;
  }

  // Outside create_graph the three gradients are plain arrays: oneDNN makes
  // them in one pass. False, with g untouched, where it cannot. gy is the
  // output's gradient (Plain), that before ReLU's switches (Switched: 0
  // where positive is 0) or the pooled output's (Pooled: spread back over
  // the windows as positive says).
  enum class Upstream { Plain, Switched, Pooled };
  bool all_on_onednn(const Var<T>& gy, Variables<T>& g, Upstream up) {
    const Tensor<T>& x = this->input(0).data();
    const Tensor<T>& W = this->input(1).data();
    const Geometry geo = geometry("Conv2d", shape_of(x), W.shape()[2], W.shape()[3], stride, pad);
    const onednn::ConvDims dims = dims_of(geo, W.shape()[0]);
    if (!onednn::taken(dims)) return false;  // before allocating: every im2col layer comes here
    const bool want_x = this->needs_input_grad(0), want_b = has_bias && this->needs_input_grad(2);
    Tensor<T> gx = want_x ? Tensor<T>::from_shape(x.shape()) : Tensor<T>();
    Tensor<T> gW = Tensor<T>::from_shape(W.shape());
    Tensor<T> gb = want_b ? Tensor<T>::from_shape({W.shape()[0]}) : Tensor<T>();
    float* const gxp = want_x ? gx.data() : nullptr;
    float* const gbp = want_b ? gb.data() : nullptr;
    const bool done =
        up == Upstream::Pooled
            ? onednn::backward_pooled(dims, x.data(), gy.data().data(), positive.get(), pool_block, W.data(), gxp,
                                      gW.data(), gbp)
            : onednn::backward(dims, x.data(), gy.data().data(), W.data(), gxp, gW.data(), gbp,
                               up == Upstream::Switched ? positive.get() : nullptr);
    if (!done) return false;
    if (want_x) g[0] = Var<T>(std::move(gx));
    g[1] = Var<T>(std::move(gW));
    if (want_b) g[2] = Var<T>(std::move(gb));
    return true;
  }

  Geometry check(const Shape& sx, const Shape& sw, const Shape& sb) const {
    require_4d("Conv2d", sx, "input", "(N, C, H, W)");
    require_4d("Conv2d", sw, "weight", "(FN, C, KH, KW)");
    if (sx[1] != sw[1])
      throw ShapeError("Conv2d: input has " + std::to_string(sx[1]) + " channels, weight " + shape_str(sw) +
                       " expects " + std::to_string(sw[1]));
    if (has_bias && (sb.size() != 1 || sb[0] != sw[0]))
      throw ShapeError("Conv2d: bias " + shape_str(sb) + " does not match weight " + shape_str(sw) +
                       ": expected (" + std::to_string(sw[0]) + ")");
    return geometry("Conv2d", sx, sw[2], sw[3], stride, pad);
  }
};

template <class T>
struct ConvTranspose2d final : Function<T> {
  ConvTranspose2d(int stride, int pad, Shape output_size)
      : stride(stride), pad(pad), output_size(std::move(output_size)) {}
  int stride, pad;
  Shape output_size;  // (H, W); empty: the smallest that fits
  std::string name() const override { return "ConvTranspose2d"; }
  std::string attributes() const override { return conv_attributes(stride, pad); }
  Outputs<T> forward(const TensorList<T>& x) override {
    const Shape sx = shape_of(x[0]), sw = shape_of(x[1]);
    const Geometry g = check(sx, sw);
    const std::size_t FN = sw[0], K = g.patch(), M = g.out_plane();
    Tensor<T> y = Tensor<T>::from_shape({g.N, g.C, g.H, g.W});
    if constexpr (std::is_same_v<T, float>)
      if (onednn::backward_data(dims_of(g, FN), x[0].data(), x[1].data(), y.data())) return y;
    detail::parallel_for(g.N, 1, [&](std::size_t n0, std::size_t n1) {
      const std::unique_ptr<T[]> col = column_buffer<T>(K * M);
      for (std::size_t n = n0; n < n1; ++n) {
        T* yn = y.data() + n * g.C * g.plane();
        std::fill_n(yn, g.C * g.plane(), T(0));
        detail::gemm<T>(true, false, K, M, FN, T(1), x[1].data(), K, x[0].data() + n * FN * M, M, T(0),
                        col.get(), M);
        col2im_add(col.get(), g, yn);
      }
    });
    return y;
  }
  // Bilinear in (x, W): dx = conv2d(gy, W), dW = conv2d_grad_weight(gy, x)
  Variables<T> backward(const Variables<T>& gy) override {
    const Var<T>& x = this->input(0);
    const Var<T>& W = this->input(1);
    Var<T> gx, gW;
    if (this->needs_input_grad(0)) gx = conv2d(gy[0], W, Var<T>(), stride, pad);
    if (this->needs_input_grad(1)) gW = conv2d_grad_weight(gy[0], x, {W.shape()[2], W.shape()[3]}, stride, pad);
    return {gx, gW};
  }

  Geometry check(const Shape& sx, const Shape& sw) const {
    const std::string op = "ConvTranspose2d";
    require_4d(op, sx, "input", "(N, FN, OH, OW)");
    require_4d(op, sw, "weight", "(FN, C, KH, KW)");
    check_stride_pad(op, stride, pad);
    if (sx[1] != sw[0])
      throw ShapeError(op + ": input has " + std::to_string(sx[1]) + " channels, weight " + shape_str(sw) +
                       " expects " + std::to_string(sw[0]));
    if (!output_size.empty() && output_size.size() != 2)
      throw ShapeError(op + ": output_size must be (H, W) or empty, got " + shape_str(output_size));
    Shape out = output_size;
    if (out.empty())
      for (std::size_t axis : {2, 3}) {
        const Index size = (Index(sx[axis]) - 1) * stride + Index(sw[axis]) - 2 * Index(pad);
        if (sx[axis] == 0 || size < 1)
          throw ShapeError(op + ": input " + shape_str(sx) + " with weight " + shape_str(sw) + ", " +
                           conv_attributes(stride, pad) + " has no output size");
        out.push_back(static_cast<std::size_t>(size));
      }
    const Geometry g = geometry(op, {sx[0], sw[1], out[0], out[1]}, sw[2], sw[3], stride, pad);
    if (g.OH != sx[2] || g.OW != sx[3])
      throw ShapeError(op + ": output size " + hw(out[0], out[1]) + " convolves to " + hw(g.OH, g.OW) +
                       ", not to the input's " + hw(sx[2], sx[3]) + " (kernel " + hw(sw[2], sw[3]) + ", " +
                       conv_attributes(stride, pad) + ")");
    return g;
  }
};

// Note [Few patch rows]: a weight gradient with one input channel and a
// 3x3 kernel (the first layer of DeepConvNet) is per sample gW (FN x 9) +=
// gy (FN x M) col (9 x M)^T with M in the hundreds: a GEMM whose output is
// 144 numbers, where OpenBLAS spends its time packing and libxsmm is not
// used (Note [Small products]: its copy of a 9-wide B^T lost). Here each gy
// row meets up to 8 patch rows at a time in SIMD registers. DeepConvNet's
// first layer, batch 100, one thread: 0.45 ms against 0.80 (im2col
// included). From 16 patch rows on, libxsmm's kernels win (SimpleConvNet's
// 5x5: 1.08 ms against 2.44 with this), so they keep those.
constexpr std::size_t kFewPatchRows = 15;

template <class T, std::size_t KB>
void few_rows_block(const T* g, const T* col, std::size_t M, T* gw) {
  using B = xsimd::batch<T>;
  constexpr std::size_t L = B::size;
  B acc[KB];
  for (auto& a : acc) a = B(T(0));
  std::size_t m = 0;
  for (; m + L <= M; m += L) {
    const B gv = B::load_unaligned(g + m);
    for (std::size_t k = 0; k < KB; ++k) acc[k] = xsimd::fma(gv, B::load_unaligned(col + k * M + m), acc[k]);
  }
  for (std::size_t k = 0; k < KB; ++k) {
    T sum = xsimd::hadd(acc[k]);
    for (std::size_t i = m; i < M; ++i) sum += g[i] * col[k * M + i];
    gw[k] += sum;
  }
}

// gw (FN x K) += gy (FN x M) col (K x M)^T, for K <= kFewPatchRows.
template <class T>
void few_rows_grad(const T* gy, const T* col, std::size_t FN, std::size_t K, std::size_t M, T* gw) {
  for (std::size_t f = 0; f < FN; ++f) {
    const T* g = gy + f * M;
    T* out = gw + f * K;
    std::size_t k = 0;
    for (; k + 8 <= K; k += 8) few_rows_block<T, 8>(g, col + k * M, M, out + k);
    for (; k + 4 <= K; k += 4) few_rows_block<T, 4>(g, col + k * M, M, out + k);
    for (; k < K; ++k) few_rows_block<T, 1>(g, col + k * M, M, out + k);
  }
}

template <class T>
struct Conv2dGradW final : Function<T> {
  Conv2dGradW(Shape kernel_size, int stride, int pad)
      : kernel_size(std::move(kernel_size)), stride(stride), pad(pad) {}
  Shape kernel_size;  // (KH, KW)
  int stride, pad;
  std::string name() const override { return "Conv2dGradW"; }
  std::string attributes() const override {
    return "kernel=" + hw(kernel_size[0], kernel_size[1]) + ", " + conv_attributes(stride, pad);
  }
  Outputs<T> forward(const TensorList<T>& x) override {
    const Shape sx = shape_of(x[0]), sg = shape_of(x[1]);
    const Geometry g = geometry("Conv2dGradW", sx, kernel_size[0], kernel_size[1], stride, pad);
    require_4d("Conv2dGradW", sg, "gradient", "(N, FN, OH, OW)");
    if (sg[0] != g.N || sg[2] != g.OH || sg[3] != g.OW)
      throw ShapeError("Conv2dGradW: gradient " + shape_str(sg) + " does not match input " + shape_str(sx) +
                       " convolved to " + hw(g.OH, g.OW) + " (kernel " + hw(g.KH, g.KW) + ", " +
                       conv_attributes(stride, pad) + ")");
    const std::size_t FN = sg[1], K = g.patch(), M = g.out_plane();
    Tensor<T> gW = xt::zeros<T>({FN, g.C, g.KH, g.KW});
    if constexpr (std::is_same_v<T, float>)
      if (onednn::backward_weights(dims_of(g, FN), x[0].data(), x[1].data(), gW.data())) return gW;
    // A sum over samples, accumulated per chunk of samples (GEMM with beta = 1).
    detail::parallel_sum(g.N, 1, gW.data(), gW.size(), [&](std::size_t n0, std::size_t n1, T* out) {
      const std::unique_ptr<T[]> col = column_buffer<T>(K * M);
      for (std::size_t n = n0; n < n1; ++n) {
        im2col(x[0].data() + n * g.C * g.plane(), g, col.get());
        const T* gy = x[1].data() + n * FN * M;
        if (K <= kFewPatchRows) few_rows_grad(gy, col.get(), FN, K, M, out);
        else detail::gemm<T>(false, true, FN, K, M, T(1), gy, M, col.get(), M, T(1), out, K);
      }
    });
    return gW;
  }
  // Bilinear in (x, gy): dx = conv_transpose2d(gy, G), d gy = conv2d(x, G) for upstream G
  Variables<T> backward(const Variables<T>& gG) override {
    const Var<T>& x = this->input(0);
    const Var<T>& gy = this->input(1);
    Var<T> gx, ggy;
    if (this->needs_input_grad(0)) gx = conv_transpose2d(gy, gG[0], stride, pad, {x.shape()[2], x.shape()[3]});
    if (this->needs_input_grad(1)) ggy = conv2d(x, gG[0], Var<T>(), stride, pad);
    return {gx, ggy};
  }
};

// Pooling

// Calls fn(oh, from, lo, hi) for each output row oh of one plane and each
// window element (kh, kw), in the window's row-major order: [lo, hi) are the
// outputs ow of that row whose element lies inside the image, `from` the
// plane offset of output lo's element; output ow + 1's is S further on. The
// loop over ow that fn runs is independent per ow, which pipelines (a loop
// per window was 2-3x slower).
template <class F>
void for_each_window_row(const Geometry& g, F&& fn) {
  std::vector<Span> cols(g.KW);
  for (std::size_t kw = 0; kw < g.KW; ++kw) cols[kw] = inside(kw, g, g.W, g.OW);
  for (std::size_t oh = 0; oh < g.OH; ++oh) {
    for (std::size_t kh = 0; kh < g.KH; ++kh) {
      const Index h = Index(oh * g.S + kh) - Index(g.P);
      if (h < 0 || h >= Index(g.H)) continue;
      for (std::size_t kw = 0; kw < g.KW; ++kw)
        if (cols[kw].lo < cols[kw].hi)
          fn(oh, std::size_t(h) * g.W + cols[kw].lo * g.S + kw - g.P, cols[kw].lo, cols[kw].hi);
    }
  }
}

// Where each output of a max pooling took its value from: per output, the
// index within its (n, c) plane of the input (32 bits: half the memory
// traffic of size_t, the pooling's bottleneck).
struct ArgMax {
  ArgMax(Shape x_shape, std::size_t out_plane)
      : x_shape(std::move(x_shape)), plane(this->x_shape[2] * this->x_shape[3]), out_plane(out_plane),
        size(this->x_shape[0] * this->x_shape[1] * out_plane), at(new std::uint32_t[size]) {}
  Shape x_shape;
  std::size_t plane, out_plane, size;
  std::unique_ptr<std::uint32_t[]> at;
  std::size_t planes() const { return out_plane ? size / out_plane : 0; }
  // Calls fn(input index, output index) for every output of planes [p0, p1),
  // as flat indices.
  template <class F>
  void each(std::size_t p0, std::size_t p1, F&& fn) const {
    for (std::size_t p = p0, yi = p0 * out_plane; p < p1; ++p)
      for (std::size_t i = 0; i < out_plane; ++i, ++yi) fn(p * plane + at[yi], yi);
  }
};

// Pooling runs planes (n, c) in parallel, at least this many per thread.
constexpr std::size_t kPlaneGrain = 64;

std::string pool_attributes(int kernel, int stride, int pad) {
  return "kernel=" + std::to_string(kernel) + ", " + conv_attributes(stride, pad);
}

// 2x2 windows, stride 2, no padding: each window's four values read
// directly, in row-major order with the same rule as the general path
// (strictly greater wins, so the first maximum; a NaN wins once).
template <class T>
void pool_2x2(const T* x, const Geometry& g, std::size_t p0, std::size_t p1, T* y, std::uint32_t* arg) {
  y += p0 * g.out_plane();
  arg += p0 * g.out_plane();
  for (std::size_t p = p0; p < p1; ++p) {
    const T* xp = x + p * g.plane();
    for (std::size_t oh = 0; oh < g.OH; ++oh) {
      const T* r0 = xp + 2 * oh * g.W;
      const T* r1 = r0 + g.W;
      const std::uint32_t base = static_cast<std::uint32_t>(2 * oh * g.W);
      for (std::size_t ow = 0; ow < g.OW; ++ow) {
        const std::size_t j = 2 * ow;
        T best = r0[j];
        std::uint32_t at = base + static_cast<std::uint32_t>(j);
        const T cand[3] = {r0[j + 1], r1[j], r1[j + 1]};
        const std::uint32_t where[3] = {at + 1, at + static_cast<std::uint32_t>(g.W),
                                        at + static_cast<std::uint32_t>(g.W) + 1};
        for (int k = 0; k < 3; ++k) {
          const bool take = cand[k] > best || (cand[k] != cand[k] && best == best);
          best = take ? cand[k] : best;
          at = take ? where[k] : at;
        }
        *y++ = best;
        *arg++ = at;
      }
    }
  }
}

#if defined(__AVX2__)
// float: eight windows at a time, by selects. The compiler vectorizes the
// generic loop below in steps of 8 and 4 windows, but the rest of a row
// runs a scalar rule that mispredicts: 2.4 ns a window on 28x28 planes,
// 6.1 on 14x14, 13 on 6x6, against 0.7 on 24x24 and 16x16 (no rest) and
// 1.3 on 8x8. Here rows of eight windows or more load their two input rows
// and split them into even and odd columns, the row's last eight
// overlapping the ones before (0.6-0.8 ns a window); narrower planes gather
// each window's four values from its top-left corner (2.1-3.6 ns). Rows of
// a multiple of four windows have no rest and keep the generic loop, which
// is as fast or faster there (overlapping or gathering does extra work).
namespace pool8 {

// corner + (k & 1) + (k >> 1) W: where position k (0-3) of each window lies.
inline __m256i position(__m256i corner, __m256 k, __m256i width) {
  const __m256i kk = _mm256_cvttps_epi32(k);
  return _mm256_add_epi32(corner, _mm256_add_epi32(_mm256_and_si256(kk, _mm256_set1_epi32(1)),
                                                   _mm256_mullo_epi32(_mm256_srli_epi32(kk, 1), width)));
}

inline void store(float* y, std::uint32_t* at, const __m256 v[4], __m256i corner, __m256i width) {
  __m256 k;
  _mm256_storeu_ps(y, simd::window_max_at(v, k));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(at), position(corner, k, width));
}

// Planes whose rows have at least eight windows.
inline void by_rows(const float* xp, const Geometry& g, float* y, std::uint32_t* at) {
  const __m256i width = _mm256_set1_epi32(std::int32_t(g.W));
  const __m256i even = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
  for (std::size_t oh = 0; oh < g.OH; ++oh, y += g.OW, at += g.OW) {
    const float* r0 = xp + 2 * oh * g.W;
    simd::by_eights(g.OW, [&](std::size_t o) {
      __m256 v[4];
      simd::deinterleave(r0 + 2 * o, v[0], v[1]);
      simd::deinterleave(r0 + g.W + 2 * o, v[2], v[3]);
      store(y + o, at + o, v, _mm256_add_epi32(_mm256_set1_epi32(std::int32_t(2 * oh * g.W + 2 * o)), even), width);
    });
  }
}

// Planes of narrower rows, with at least eight windows in all.
inline void gathered(const float* xp, const Geometry& g, const std::int32_t* corners, float* y, std::uint32_t* at) {
  const __m256i width = _mm256_set1_epi32(std::int32_t(g.W)), one = _mm256_set1_epi32(1);
  simd::by_eights(g.out_plane(), [&](std::size_t w) {
    const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(corners + w));
    const __m256i below = _mm256_add_epi32(c, width);
    const __m256 v[4] = {_mm256_i32gather_ps(xp, c, 4), _mm256_i32gather_ps(xp, _mm256_add_epi32(c, one), 4),
                         _mm256_i32gather_ps(xp, below, 4), _mm256_i32gather_ps(xp, _mm256_add_epi32(below, one), 4)};
    store(y + w, at + w, v, c, width);
  });
}

}  // namespace pool8

void pool_2x2(const float* x, const Geometry& g, std::size_t p0, std::size_t p1, float* y, std::uint32_t* arg) {
  const std::size_t n = g.out_plane();
  if (n < 8 || g.OW % 4 == 0 || g.plane() >= (std::size_t{1} << 31)) return pool_2x2<float>(x, g, p0, p1, y, arg);
  std::vector<std::int32_t> corners;
  if (g.OW < 8)
    for (std::size_t oh = 0; oh < g.OH; ++oh)
      for (std::size_t ow = 0; ow < g.OW; ++ow) corners.push_back(std::int32_t(2 * oh * g.W + 2 * ow));
  for (std::size_t p = p0; p < p1; ++p) {
    if (g.OW >= 8) pool8::by_rows(x + p * g.plane(), g, y + p * n, arg + p * n);
    else pool8::gathered(x + p * g.plane(), g, corners.data(), y + p * n, arg + p * n);
  }
}
#endif

template <class T>
struct MaxPool2d final : Function<T> {
  // With `at` set this gathers x at those positions instead of finding the
  // maxima: MaxPool2dGrad's backward, the pooling linearised at its input.
  MaxPool2d(int kernel, int stride, int pad, std::shared_ptr<const ArgMax> at = nullptr)
      : kernel(kernel), stride(stride), pad(pad), argmax(std::move(at)), gather(argmax != nullptr) {}
  int kernel, stride, pad;
  std::shared_ptr<const ArgMax> argmax;
  bool gather;
  std::string name() const override { return "MaxPool2d"; }
  std::string attributes() const override {
    return pool_attributes(kernel, stride, pad) + (gather ? ", at saved arg-max" : "");
  }
  Outputs<T> forward(const TensorList<T>& x) override {
    const Geometry g = pool_geometry("MaxPool2d", shape_of(x[0]), kernel, stride, pad);
    Tensor<T> y = Tensor<T>::from_shape({g.N, g.C, g.OH, g.OW});
    if (gather) {
      if (shape_of(x[0]) != argmax->x_shape)
        throw ShapeError("MaxPool2d: input " + shape_str(x[0].shape()) + " is not the " +
                         shape_str(argmax->x_shape) + " the arg-max was saved for");
      detail::parallel_for(argmax->planes(), kPlaneGrain, [&](std::size_t p0, std::size_t p1) {
        argmax->each(p0, p1, [&](std::size_t xi, std::size_t yi) { y.data()[yi] = x[0].data()[xi]; });
      });
      return y;
    }
    if (g.plane() > std::numeric_limits<std::uint32_t>::max())
      throw ShapeError("MaxPool2d: input planes of " + hw(g.H, g.W) + " have more than 2^32 elements");
    auto at = std::make_shared<ArgMax>(shape_of(x[0]), g.out_plane());
    if (g.KH == 2 && g.KW == 2 && g.S == 2 && g.P == 0) {
      detail::parallel_for(g.N * g.C, kPlaneGrain, [&](std::size_t p0, std::size_t p1) {
        pool_2x2(x[0].data(), g, p0, p1, y.data(), at->at.get());  // the book's networks: 3x faster
      });
      argmax = std::move(at);
      return y;
    }
    const auto first = [&](std::size_t o) { return o * g.S < g.P ? 0 : o * g.S - g.P; };
    detail::parallel_for(g.N * g.C, kPlaneGrain, [&](std::size_t p0, std::size_t p1) {
      for (std::size_t p = p0; p < p1; ++p) {
        const T* xp = x[0].data() + p * g.plane();
        T* yp = y.data() + p * g.out_plane();
        std::uint32_t* ap = at->at.get() + p * g.out_plane();
        // Start from each window's first element inside the image (padding is -inf).
        for (std::size_t oh = 0; oh < g.OH; ++oh)
          for (std::size_t ow = 0; ow < g.OW; ++ow) {
            const std::size_t j = first(oh) * g.W + first(ow);
            yp[oh * g.OW + ow] = xp[j];
            ap[oh * g.OW + ow] = static_cast<std::uint32_t>(j);
          }
        for_each_window_row(g, [&](std::size_t oh, std::size_t from, std::size_t lo, std::size_t hi) {
          T* yr = yp + oh * g.OW;
          std::uint32_t* ar = ap + oh * g.OW;
          for (std::size_t ow = lo, j = from; ow < hi; ++ow, j += g.S) {
            // Strictly greater, so the first maximum wins; a NaN wins once. Selects, not
            // branches: which element wins is data-dependent and mispredicts.
            const T u = xp[j], v = yr[ow];
            const bool take = u > v || (u != u && v == v);
            ar[ow] = take ? static_cast<std::uint32_t>(j) : ar[ow];
            yr[ow] = take ? u : v;
          }
        });
      }
    });
    argmax = std::move(at);
    return y;
  }
  // dx = gy scattered to the arg-max of each window
  Variables<T> backward(const Variables<T>& gy) override;
  void release() override {
    Function<T>::release();
    argmax.reset();
  }
};

template <class T>
struct MaxPool2dGrad final : Function<T> {
  MaxPool2dGrad(int kernel, int stride, int pad, std::shared_ptr<const ArgMax> argmax)
      : kernel(kernel), stride(stride), pad(pad), argmax(std::move(argmax)) {}
  int kernel, stride, pad;
  std::shared_ptr<const ArgMax> argmax;
  std::string name() const override { return "MaxPool2dGrad"; }
  std::string attributes() const override { return pool_attributes(kernel, stride, pad); }
  Outputs<T> forward(const TensorList<T>& x) override {
    if (x[0].size() != argmax->size)
      throw ShapeError("MaxPool2dGrad: gradient " + shape_str(x[0].shape()) + " does not match the pooling of " +
                       shape_str(argmax->x_shape));
    Tensor<T> gx = Tensor<T>::from_shape(argmax->x_shape);
    // Plane by plane: zero it, then scatter into it while it is in cache.
    detail::parallel_for(argmax->planes(), kPlaneGrain, [&](std::size_t p0, std::size_t p1) {
      for (std::size_t p = p0; p < p1; ++p) {
        std::fill_n(gx.data() + p * argmax->plane, argmax->plane, T(0));
        argmax->each(p, p + 1, [&](std::size_t xi, std::size_t yi) { gx.data()[xi] += x[0].data()[yi]; });
      }
    });
    return gx;
  }
  // The scatter's adjoint is the gather at the same positions.
  Variables<T> backward(const Variables<T>& ggx) override {
    return {apply1<MaxPool2d<T>>({ggx[0]}, kernel, stride, pad, argmax)};
  }
  void release() override {
    Function<T>::release();
    argmax.reset();
  }
};

template <class T>
Variables<T> MaxPool2d<T>::backward(const Variables<T>& gy) {
  return {apply1<MaxPool2dGrad<T>>({gy[0]}, kernel, stride, pad, argmax)};
}

template <class T>
Var<T> Conv2d<T>::unpooled(const Var<T>& gy) const {
  const Shape& x = this->input(0).shape();
  const Shape& w = this->input(1).shape();
  const Geometry g = geometry("Conv2d", x, w[2], w[3], stride, pad);
  const std::size_t FN = w[0], PH = g.OH / 2, PW = g.OW / 2, PM = PH * PW, M = g.out_plane();
  // The position bytes in (N, FN, PH, PW) order.
  const std::uint8_t* at = positive.get();
  std::unique_ptr<std::uint8_t[]> plain;
  if (pool_block) {
    const std::size_t B = pool_block;
    plain.reset(new std::uint8_t[g.N * FN * PM]);
    for (std::size_t n = 0, o = 0; n < g.N; ++n)
      for (std::size_t c = 0; c < FN; ++c)
        for (std::size_t i = 0; i < PM; ++i) plain[o++] = at[((n * (FN / B) + c / B) * PM + i) * B + c % B];
    at = plain.get();
  }
  if (is_grad_enabled()) {
    auto arg = std::make_shared<ArgMax>(Shape{g.N, FN, g.OH, g.OW}, PM);
    Tensor<T> on = Tensor<T>::from_shape(gy.shape());
    for (std::size_t o = 0; o < arg->size; ++o) {
      const std::size_t i = o % PM, k = at[o] < 4 ? at[o] : 0;
      arg->at[o] = static_cast<std::uint32_t>((2 * (i / PW) + k / 2) * g.OW + 2 * (i % PW) + k % 2);
      on.data()[o] = at[o] < 4 ? T(1) : T(0);
    }
    return apply1<MaxPool2dGrad<T>>({selected(std::move(on), gy)}, 2, 2, 0, std::move(arg));
  }
  Tensor<T> full = Tensor<T>::from_shape({g.N, FN, g.OH, g.OW});
  const T* in = gy.data().data();
  detail::parallel_for(g.N * FN, kPlaneGrain, [&](std::size_t p0, std::size_t p1) {
    for (std::size_t p = p0; p < p1; ++p) {
      T* out = full.data() + p * M;
      if (g.OH % 2 || g.OW % 2) std::fill_n(out, M, T(0));  // a last row or column no window covers
      unpool_plane(in + p * PM, at + p * PM, g.OW, PH, PW, out);
    }
  });
  return Var<T>(std::move(full));
}

template <class T>
struct AvgPool2d final : Function<T> {
  AvgPool2d(int kernel, int stride, int pad) : kernel(kernel), stride(stride), pad(pad) {}
  int kernel, stride, pad;
  std::string name() const override { return "AvgPool2d"; }
  std::string attributes() const override { return pool_attributes(kernel, stride, pad); }
  Outputs<T> forward(const TensorList<T>& x) override {
    const Geometry g = pool_geometry("AvgPool2d", shape_of(x[0]), kernel, stride, pad);
    Tensor<T> y = xt::zeros<T>({g.N, g.C, g.OH, g.OW});
    detail::parallel_for(g.N * g.C, kPlaneGrain, [&](std::size_t p0, std::size_t p1) {
      for (std::size_t p = p0; p < p1; ++p) {
        const T* xp = x[0].data() + p * g.plane();
        T* yp = y.data() + p * g.out_plane();
        for_each_window_row(g, [&](std::size_t oh, std::size_t from, std::size_t lo, std::size_t hi) {
          T* yr = yp + oh * g.OW;
          for (std::size_t ow = lo, j = from; ow < hi; ++ow, j += g.S) yr[ow] += xp[j];
        });
      }
    });
    y *= T(1) / T(g.KH * g.KW);  // padding counts as zeros
    return y;
  }
  bool saves_inputs() const override { return false; }  // backward needs only x's shape
  // dx = gy / K^2 spread over each window
  Variables<T> backward(const Variables<T>& gy) override;
};

template <class T>
struct AvgPool2dGrad final : Function<T> {
  AvgPool2dGrad(int kernel, int stride, int pad, Shape x_shape)
      : kernel(kernel), stride(stride), pad(pad), x_shape(std::move(x_shape)) {}
  int kernel, stride, pad;
  Shape x_shape;
  std::string name() const override { return "AvgPool2dGrad"; }
  std::string attributes() const override { return pool_attributes(kernel, stride, pad); }
  Outputs<T> forward(const TensorList<T>& x) override {
    const Geometry g = pool_geometry("AvgPool2dGrad", x_shape, kernel, stride, pad);
    const Shape sg = shape_of(x[0]);
    if (sg != Shape{g.N, g.C, g.OH, g.OW})
      throw ShapeError("AvgPool2dGrad: gradient " + shape_str(sg) + " does not match the pooling of " +
                       shape_str(x_shape) + " to " + shape_str(Shape{g.N, g.C, g.OH, g.OW}));
    Tensor<T> gx = xt::zeros<T>(x_shape);
    const T scale = T(1) / T(g.KH * g.KW);
    detail::parallel_for(g.N * g.C, kPlaneGrain, [&](std::size_t p0, std::size_t p1) {
      for (std::size_t p = p0; p < p1; ++p) {
        const T* gp = x[0].data() + p * g.out_plane();
        T* xp = gx.data() + p * g.plane();
        for_each_window_row(g, [&](std::size_t oh, std::size_t from, std::size_t lo, std::size_t hi) {
          const T* gr = gp + oh * g.OW;
          for (std::size_t ow = lo, j = from; ow < hi; ++ow, j += g.S) xp[j] += gr[ow] * scale;
        });
      }
    });
    return gx;
  }
  bool saves_inputs() const override { return false; }
  // The spread's adjoint is the average again.
  Variables<T> backward(const Variables<T>& ggx) override { return {avg_pool2d(ggx[0], kernel, stride, pad)}; }
};

template <class T>
Variables<T> AvgPool2d<T>::backward(const Variables<T>& gy) {
  return {apply1<AvgPool2dGrad<T>>({gy[0]}, kernel, stride, pad, this->input_shape(0))};
}

}  // namespace

template <class T>
Var<T> conv2d(const Var<T>& x, const Var<T>& W, const Var<T>& b, int stride, int pad) {
  if (!b.defined()) return apply1<Conv2d<T>>({x, W}, false, stride, pad);
  return apply1<Conv2d<T>>({x, W, b}, true, stride, pad);
}

namespace {
// conv2d with ReLU, and with pool 2x2 max pooling, telling the Function
// whether it is recorded: only then does it make the bytes its backward reads.
template <class T>
Var<T> conv2d_fused(const Var<T>& x, const Var<T>& W, const Var<T>& b, int stride, int pad, bool pool) {
  const detail::InputRef<T> in[] = {x, W, b};
  const bool recorded = detail::records(in, b.defined() ? 3 : 2);
  if (!b.defined()) return apply1<Conv2d<T>>({x, W}, false, stride, pad, true, pool, recorded);
  return apply1<Conv2d<T>>({x, W, b}, true, stride, pad, true, pool, recorded);
}
}  // namespace

template <class T>
Var<T> conv2d_relu(const Var<T>& x, const Var<T>& W, const Var<T>& b, int stride, int pad) {
  return conv2d_fused(x, W, b, stride, pad, false);
}

template <class T>
Var<T> conv2d_relu_pool(const Var<T>& x, const Var<T>& W, const Var<T>& b, int stride, int pad) {
  return conv2d_fused(x, W, b, stride, pad, true);
}

template <class T>
Var<T> conv_transpose2d(const Var<T>& x, const Var<T>& W, int stride, int pad, const Shape& output_size) {
  return apply1<ConvTranspose2d<T>>({x, W}, stride, pad, output_size);
}

template <class T>
Var<T> conv2d_grad_weight(const Var<T>& x, const Var<T>& gy, const Shape& kernel_size, int stride, int pad) {
  if (kernel_size.size() != 2)
    throw ShapeError("Conv2dGradW: kernel_size must be (KH, KW), got " + shape_str(kernel_size));
  return apply1<Conv2dGradW<T>>({x, gy}, kernel_size, stride, pad);
}

template <class T>
Var<T> max_pool2d(const Var<T>& x, int kernel, int stride, int pad) {
  return apply1<MaxPool2d<T>>({x}, kernel, stride, pad);
}
template <class T>
Var<T> max_pool2d(const Var<T>& x, int kernel) {
  return max_pool2d(x, kernel, kernel, 0);
}

template <class T>
Var<T> avg_pool2d(const Var<T>& x, int kernel, int stride, int pad) {
  return apply1<AvgPool2d<T>>({x}, kernel, stride, pad);
}
template <class T>
Var<T> avg_pool2d(const Var<T>& x, int kernel) {
  return avg_pool2d(x, kernel, kernel, 0);
}

#define ZG_INSTANTIATE(T)                                                                      \
  template Var<T> conv2d(const Var<T>&, const Var<T>&, const Var<T>&, int, int);               \
  template Var<T> conv2d_relu(const Var<T>&, const Var<T>&, const Var<T>&, int, int);          \
  template Var<T> conv2d_relu_pool(const Var<T>&, const Var<T>&, const Var<T>&, int, int);     \
  template Var<T> conv_transpose2d(const Var<T>&, const Var<T>&, int, int, const Shape&);      \
  template Var<T> conv2d_grad_weight(const Var<T>&, const Var<T>&, const Shape&, int, int);    \
  template Var<T> max_pool2d(const Var<T>&, int, int, int);                                    \
  template Var<T> max_pool2d(const Var<T>&, int);                                              \
  template Var<T> avg_pool2d(const Var<T>&, int, int, int);                                    \
  template Var<T> avg_pool2d(const Var<T>&, int);
ZG_INSTANTIATE(float)
ZG_INSTANTIATE(double)
#undef ZG_INSTANTIATE

}  // namespace zg::nn::functional

namespace zg::nn {

template <class T>
BasicConv2d<T>::BasicConv2d(std::size_t in_channels, std::size_t out_channels, std::size_t kernel, int stride, int pad,
                            double weight_std)
    : in_(in_channels), out_(out_channels), kernel_(kernel), stride_(stride), pad_(pad) {
  if (in_channels == 0 || out_channels == 0 || kernel == 0)
    throw ValueError("Conv2d: in_channels, out_channels and kernel must be >= 1, got " + extra_repr());
  functional::check_stride_pad("Conv2d", stride, pad);
  if (!(weight_std >= 0) || std::isinf(weight_std))
    throw ValueError("Conv2d: weight_std must be finite and >= 0 (0: He init), got " + std::to_string(weight_std));
  weight = this->register_parameter("weight", BasicVariable<T>(Tensor<T>::from_shape({out_, in_, kernel_, kernel_})));
  init::normal(weight, weight_std > 0 ? weight_std : std::sqrt(2.0 / double(in_ * kernel_ * kernel_)));
  bias = this->register_parameter("bias", BasicVariable<T>(Tensor<T>(xt::zeros<T>({out_}))));
}

template <class T>
BasicVariable<T> BasicConv2d<T>::forward(const BasicVariable<T>& x) {
  return functional::conv2d(x, weight, bias, stride_, pad_);
}

template <class T>
BasicVariable<T> BasicConv2d<T>::forward_relu(const BasicVariable<T>& x) {
  return functional::conv2d_relu(x, weight, bias, stride_, pad_);
}

template <class T>
BasicVariable<T> BasicConv2d<T>::forward_relu_pool(const BasicVariable<T>& x) {
  return functional::conv2d_relu_pool(x, weight, bias, stride_, pad_);
}

template <class T>
std::string BasicConv2d<T>::extra_repr() const {
  return "in=" + std::to_string(in_) + ", out=" + std::to_string(out_) + ", kernel=" + std::to_string(kernel_) +
         ", stride=" + std::to_string(stride_) + ", pad=" + std::to_string(pad_);
}

template <class T>
BasicMaxPool2d<T>::BasicMaxPool2d(int kernel, int stride, int pad)
    : kernel_(kernel), stride_(stride == 0 ? kernel : stride), pad_(pad) {
  functional::check_pool_params("MaxPool2d", kernel_, stride_, pad_);
}

template <class T>
BasicVariable<T> BasicMaxPool2d<T>::forward(const BasicVariable<T>& x) {
  return functional::max_pool2d(x, kernel_, stride_, pad_);
}

template <class T>
std::string BasicMaxPool2d<T>::extra_repr() const {
  return functional::pool_attributes(kernel_, stride_, pad_);
}

template <class T>
BasicAvgPool2d<T>::BasicAvgPool2d(int kernel, int stride, int pad)
    : kernel_(kernel), stride_(stride == 0 ? kernel : stride), pad_(pad) {
  functional::check_pool_params("AvgPool2d", kernel_, stride_, pad_);
}

template <class T>
BasicVariable<T> BasicAvgPool2d<T>::forward(const BasicVariable<T>& x) {
  return functional::avg_pool2d(x, kernel_, stride_, pad_);
}

template <class T>
std::string BasicAvgPool2d<T>::extra_repr() const {
  return functional::pool_attributes(kernel_, stride_, pad_);
}

template class BasicConv2d<float>;
template class BasicConv2d<double>;
template class BasicMaxPool2d<float>;
template class BasicMaxPool2d<double>;
template class BasicAvgPool2d<float>;
template class BasicAvgPool2d<double>;

}  // namespace zg::nn
