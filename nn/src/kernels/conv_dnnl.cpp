#include "kernels/conv_dnnl.hpp"

// Note [oneDNN convolutions]: float stride-1 convolutions (forward, input
// gradient, weight gradient) run on oneDNN, the library PyTorch's CPU
// convolutions run on, when zerograd is built with Debian's libdnnl-dev.
// oneDNN generates its kernels for the CPU it finds (AVX-512 where there is
// one, whatever OPENBLAS_CORETYPE says) and picks Winograd F(4x4, 3x3) for
// the 3x3 layers with 16k channels, where it does fewer operations. Arrays
// stay (N, C, H, W) between ops: each call reorders its inputs into the
// blocked layouts the kernels want and its output back, with primitives and
// blocked buffers cached per thread and shape. Measured on DeepConvNet's six
// layers, forward + backward at batch 100, one thread, AVX-512 EPYC: 29.5 ms
// against 48.1 ms for im2col + GEMM (OpenBLAS Haswell kernels and libxsmm);
// see bench/conv_bench. Where oneDNN is missing, or ZEROGRAD_CONV=im2col is
// set, or the stride is not 1, im2col + GEMM runs; float64 always does
// (gradient checks). Results agree with the direct path to float rounding
// (tests/test_conv.cpp's exactness test covers every DeepConvNet shape), and
// with a fixed thread count they repeat bit for bit.

#ifdef ZEROGRAD_HAVE_DNNL

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <unordered_map>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include <dnnl.hpp>
#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "zerograd/error.hpp"
#include "zerograd/parallel.hpp"
#include "zerograd/threads.hpp"

#include "kernels/onednn_runtime.hpp"
#include "kernels/pool_simd.hpp"

namespace zg::nn::onednn {
namespace {

using dnnl::memory;
using tag = memory::format_tag;

enum class Kind { Forward, Data, Weights };

bool enabled() {
  static const bool on = [] {
    const char* v = std::getenv("ZEROGRAD_CONV");
    return !(v && std::strcmp(v, "im2col") == 0);
  }();
  return on;
}

memory::dims dims(std::size_t a, std::size_t b, std::size_t c, std::size_t d) {
  return {memory::dim(a), memory::dim(b), memory::dim(c), memory::dim(d)};
}

// A plain (N, C, H, W) array and, when the kernel wants another layout, the
// blocked buffer it uses with the reorders between the two. Blocked buffers
// have no memory of their own: run() points them into the thread's arena.
struct Operand {
  memory plain, blocked;
  dnnl::reorder in, out;
  std::size_t bytes = 0;  // of the blocked buffer, 0 when the plain array is used
  std::size_t block = 0;  // B when the blocked layout is (N, C/B, H, W, B) for B = 16 or 8, else 0
  void init(const memory::desc& plain_desc, const memory::desc& want, bool input) {
    plain = memory(plain_desc, engine(), DNNL_MEMORY_NONE);
    if (want == plain_desc) return;
    blocked = memory(want, engine(), DNNL_MEMORY_NONE);
    bytes = want.get_size();
    if (input) in = dnnl::reorder(plain, blocked);
    else out = dnnl::reorder(blocked, plain);
    const memory::dims d = plain_desc.dims();
    for (auto [b, t] : {std::pair{16, tag::nChw16c}, std::pair{8, tag::nChw8c}})
      if (d.size() == 4 && want == memory::desc(d, memory::data_type::f32, t)) block = std::size_t(b);
  }
  // The blocked buffer, at the arena's next free bytes.
  float* claim(char*& arena) {
    blocked.set_data_handle(arena);
    arena += rounded(bytes);
    return static_cast<float*>(blocked.get_data_handle());
  }
  // The memory the primitive reads or writes, after copying p in if needed.
  memory& prepare(dnnl::stream& s, const void* p, char*& arena) {
    plain.set_data_handle(const_cast<void*>(p));
    if (!blocked) return plain;
    claim(arena);
    if (in) in.execute(s, plain, blocked);
    return blocked;
  }
  void finish(dnnl::stream& s) {
    if (blocked && out) out.execute(s, blocked, plain);
  }
  // The layout the primitive reads or writes.
  memory::desc used() const { return blocked ? blocked.get_desc() : plain.get_desc(); }
  static std::size_t rounded(std::size_t n) { return (n + 63) / 64 * 64; }
};

// Note [ReLU in the reorders]: a Conv2d followed by ReLU (Note [Conv2d
// with ReLU] in ops/conv_fused.cpp) applies the ReLU, and keeps its switch,
// as the output is copied out of oneDNN's blocked layout, and its backward
// switches gy off as gy is copied into it: the two reorders are ours, and
// no pass over memory is added. oneDNN's own ReLU post-op was as fast but
// turns NaN into 0 (vmaxps), which would hide a diverged model; here NaN
// stays NaN, as in zg::relu. The blocked layouts are (N, C/B, H, W, B)
// with B = 16 (AVX-512 kernels) or 8 (AVX2); for others oneDNN reorders
// and a separate pass does the ReLU.
struct Planes {
  std::size_t N, C, HW, B;  // (N, C, HW) plain, (N, C/B, HW, B) blocked
};

#if defined(__AVX2__)
// Byte k of kSpread[m] is bit k of m: 8 switches from a movemask.
constexpr std::array<std::uint64_t, 256> kSpread = [] {
  std::array<std::uint64_t, 256> t{};
  for (std::size_t m = 0; m < 256; ++m)
    for (std::size_t k = 0; k < 8; ++k) t[m] |= std::uint64_t((m >> k) & 1) << (8 * k);
  return t;
}();

// An 8x8 block: r[k] holds row k, and afterwards column k.
inline void transpose8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
  r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
  r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
  r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
  r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
  r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
  r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
  r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}
#endif

// Calls fn(nb, plane) for each (n, channel block) nb of N samples of C
// channels in blocks of B, in parallel: plane is the index in (N, C) of the
// block's first channel.
template <class F>
void each_block(std::size_t N, std::size_t C, std::size_t B, F&& fn) {
  const std::size_t blocks = C / B;
  zg::detail::parallel_for(N * blocks, 1, [&](std::size_t b0, std::size_t b1) {
    for (std::size_t nb = b0; nb < b1; ++nb) fn(nb, nb / blocks * C + nb % blocks * B);
  });
}

// y = max(blocked, 0), NaN staying NaN (a select, as zg::relu), and where
// positive is not null, positive = y > 0.
void relu_from_blocked(const float* blocked, const Planes& p, float* y, std::uint8_t* positive) {
  each_block(p.N, p.C, p.B, [&](std::size_t nb, std::size_t plane) {
    const float* in = blocked + nb * p.HW * p.B;
    float* out = y + plane * p.HW;
    std::uint8_t* on = positive ? positive + plane * p.HW : nullptr;
    std::size_t i = 0;
#if defined(__AVX2__)
    const __m256 zero = _mm256_setzero_ps();
    for (; i + 8 <= p.HW; i += 8)
      for (std::size_t h = 0; h < p.B; h += 8) {
        __m256 r[8];
        for (std::size_t k = 0; k < 8; ++k) r[k] = _mm256_loadu_ps(in + (i + k) * p.B + h);
        transpose8(r);
        for (std::size_t c = 0; c < 8; ++c) {
          const std::size_t at = (h + c) * p.HW + i;
          const __m256 v = _mm256_blendv_ps(r[c], zero, _mm256_cmp_ps(r[c], zero, _CMP_LT_OQ));
          _mm256_storeu_ps(out + at, v);
          if (!on) continue;
          const std::uint64_t bytes = kSpread[std::size_t(_mm256_movemask_ps(_mm256_cmp_ps(v, zero, _CMP_GT_OQ)))];
          std::memcpy(on + at, &bytes, 8);
        }
      }
#endif
    for (; i < p.HW; ++i)
      for (std::size_t c = 0; c < p.B; ++c) {
        const float v = in[i * p.B + c], r = v < 0.0f ? 0.0f : v;
        out[c * p.HW + i] = r;
        if (on) on[c * p.HW + i] = r > 0.0f;
      }
  });
}

// The same on a plain y in place, for layouts the above does not know.
void relu_in_place(float* y, std::size_t n, std::uint8_t* positive) {
  zg::detail::parallel_for(n, zg::detail::kElementGrain, [&](std::size_t b, std::size_t e) {
    for (std::size_t i = b; i < e; ++i) {
      const float v = y[i], r = v < 0.0f ? 0.0f : v;
      y[i] = r;
      if (positive) positive[i] = r > 0.0f;
    }
  });
}

// blocked = gy where positive, 0 elsewhere: ReLU's backward on the way in.
void switched_to_blocked(const float* gy, const std::uint8_t* positive, const Planes& p, float* blocked) {
  each_block(p.N, p.C, p.B, [&](std::size_t nb, std::size_t plane) {
    const float* in = gy + plane * p.HW;
    const std::uint8_t* on = positive + plane * p.HW;
    float* out = blocked + nb * p.HW * p.B;
    std::size_t i = 0;
#if defined(__AVX2__)
    const __m256i zero = _mm256_setzero_si256();
    for (; i + 8 <= p.HW; i += 8)
      for (std::size_t h = 0; h < p.B; h += 8) {
        __m256 r[8];
        for (std::size_t c = 0; c < 8; ++c) {
          const std::size_t at = (h + c) * p.HW + i;
          const __m256i m = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(on + at)));
          r[c] = _mm256_and_ps(_mm256_loadu_ps(in + at), _mm256_castsi256_ps(_mm256_cmpgt_epi32(m, zero)));
        }
        transpose8(r);
        for (std::size_t k = 0; k < 8; ++k) _mm256_storeu_ps(out + (i + k) * p.B + h, r[k]);
      }
#endif
    for (; i < p.HW; ++i)
      for (std::size_t c = 0; c < p.B; ++c) {
        const float v = in[c * p.HW + i];
        out[i * p.B + c] = on[c * p.HW + i] ? v : 0.0f;
      }
  });
}

// Note [Pooling in the reorders]: a Conv2d, ReLU and 2x2 max pooling
// (Note [Conv2d with ReLU and pooling] in ops/conv_fused.cpp) pool the output while
// it is still in oneDNN's blocked layout, where the B channels of one
// position are adjacent: each window is four vector loads and three
// selects, and only the pooled quarter is copied out to (N, C, PH, PW).
// Each pooled output keeps one byte, the window position (0-3, row-major)
// of its maximum, or 4 where the maximum is not > 0 and ReLU passes no
// gradient; the bytes stay in the blocked order (N, C/B, PH*PW, B). The
// backward spreads gy back over the windows straight into the blocked
// layout its primitives read. So neither the full-size output nor its
// gradient is ever written in (N, C, H, W), read back, or kept.
struct Window {
  std::size_t N, C, OH, OW, B;  // the convolution's output, blocked by B; pooled: (OH / 2, OW / 2)
  std::size_t pooled() const { return (OH / 2) * (OW / 2); }
  // Pooled output i's window: the offset of its top-left position in a
  // block, and those of its four positions (row-major) from there.
  std::size_t corner(std::size_t i) const { return (2 * (i / (OW / 2)) * OW + 2 * (i % (OW / 2))) * B; }
  std::array<std::size_t, 4> offsets() const { return {0, B, OW * B, (OW + 1) * B}; }
};

// A (HW, B) tile into (B, HW) rows and back.
void tile_to_rows(const float* tile, std::size_t HW, std::size_t B, float* rows) {
  std::size_t i = 0;
#if defined(__AVX2__)
  for (; i + 8 <= HW; i += 8)
    for (std::size_t h = 0; h < B; h += 8) {
      __m256 r[8];
      for (std::size_t k = 0; k < 8; ++k) r[k] = _mm256_loadu_ps(tile + (i + k) * B + h);
      transpose8(r);
      for (std::size_t c = 0; c < 8; ++c) _mm256_storeu_ps(rows + (h + c) * HW + i, r[c]);
    }
#endif
  for (; i < HW; ++i)
    for (std::size_t c = 0; c < B; ++c) rows[c * HW + i] = tile[i * B + c];
}
void rows_to_tile(const float* rows, std::size_t HW, std::size_t B, float* tile) {
  std::size_t i = 0;
#if defined(__AVX2__)
  for (; i + 8 <= HW; i += 8)
    for (std::size_t h = 0; h < B; h += 8) {
      __m256 r[8];
      for (std::size_t c = 0; c < 8; ++c) r[c] = _mm256_loadu_ps(rows + (h + c) * HW + i);
      transpose8(r);
      for (std::size_t k = 0; k < 8; ++k) _mm256_storeu_ps(tile + (i + k) * B + h, r[k]);
    }
#endif
  for (; i < HW; ++i)
    for (std::size_t c = 0; c < B; ++c) tile[i * B + c] = rows[c * HW + i];
}

// The thread's tile of one pooled (n, channel block).
float* pooled_tile(std::size_t floats) {
  thread_local std::vector<float> tile;
  if (tile.size() < floats) tile.resize(floats);
  return tile.data();
}

// One window's B channels (blocked, from its top-left position w0): the max
// of relu(x) into out[0, B) and its position byte into at (if not null).
// The same rule as max_pool2d after relu: ReLU a select (NaN stays NaN),
// then the first maximum in row-major order wins, and a NaN wins once.
void relu_pool_window(const float* w0, const std::array<std::size_t, 4>& off, std::size_t B, float* out,
                      std::uint8_t* at) {
  std::size_t c = 0;
#if defined(__AVX2__)
  for (; c + 8 <= B; c += 8) {
    __m256 v[4];
    for (std::size_t j = 0; j < 4; ++j) v[j] = simd::relu(_mm256_loadu_ps(w0 + off[j] + c));
    _mm256_storeu_ps(out + c, simd::window_max(v, at ? at + c : nullptr));
  }
#endif
  for (; c < B; ++c) {
    float v[4];
    for (std::size_t j = 0; j < 4; ++j) {
      const float x = w0[off[j] + c];
      v[j] = x < 0.0f ? 0.0f : x;
    }
    out[c] = simd::window_max(v, at ? at + c : nullptr);
  }
}

// pooled (N, C, OH / 2, OW / 2) = 2x2 max pooling, stride 2, of relu(blocked);
// at (may be null) the position bytes, in blocked order.
void relu_pool_from_blocked(const float* blocked, const Window& p, float* pooled, std::uint8_t* at) {
  const std::size_t PHW = p.pooled();
  const auto off = p.offsets();
  each_block(p.N, p.C, p.B, [&](std::size_t nb, std::size_t plane) {
    float* tile = pooled_tile(PHW * p.B);
    const float* in = blocked + nb * p.OH * p.OW * p.B;
    for (std::size_t i = 0; i < PHW; ++i)
      relu_pool_window(in + p.corner(i), off, p.B, tile + i * p.B, at ? at + (nb * PHW + i) * p.B : nullptr);
    tile_to_rows(tile, PHW, p.B, pooled + plane * PHW);
  });
}

// blocked (N, C/B, OH, OW, B) = gy (N, C, OH / 2, OW / 2) spread over the
// windows: each value to the position its byte in at names, 0 elsewhere
// (and 0 in a last row or column no window covers).
void unpooled_to_blocked(const float* gy, const std::uint8_t* at, const Window& p, float* blocked) {
  const std::size_t PHW = p.pooled(), size = p.OH * p.OW * p.B;
  const auto off = p.offsets();
  each_block(p.N, p.C, p.B, [&](std::size_t nb, std::size_t plane) {
    float* tile = pooled_tile(PHW * p.B);
    float* out = blocked + nb * size;
    if (p.OH % 2 || p.OW % 2) std::fill_n(out, size, 0.0f);
    rows_to_tile(gy + plane * PHW, PHW, p.B, tile);
    const std::uint8_t* a = at + nb * PHW * p.B;
    for (std::size_t i = 0; i < PHW; ++i) {
      float* w0 = out + p.corner(i);
      const float* g = tile + i * p.B;
      const std::uint8_t* k = a + i * p.B;
      std::size_t c = 0;
#if defined(__AVX2__)
      for (; c + 8 <= p.B; c += 8) {
        const __m256 v = _mm256_loadu_ps(g + c);
        const __m256i kc = simd::bytes(k + c);
        for (int j = 0; j < 4; ++j) _mm256_storeu_ps(w0 + off[std::size_t(j)] + c, simd::share(v, kc, j));
      }
#endif
      for (; c < p.B; ++c)
        for (std::size_t j = 0; j < 4; ++j) w0[off[j] + c] = k[c] == j ? g[c] : 0.0f;
    }
  });
}

struct Entry {
  dnnl::primitive conv;
  Operand a, b, c;  // Forward: src, weights, dst; Data: diff_dst, weights, diff_src; Weights: src, diff_dst, diff_weights
  memory bias, scratch;
  std::size_t scratch_bytes = 0;
  std::size_t arena_bytes() const {
    return Operand::rounded(a.bytes) + Operand::rounded(b.bytes) + Operand::rounded(c.bytes) +
           Operand::rounded(scratch_bytes);
  }
};

using Key = std::tuple<int, int, std::size_t, std::size_t, std::size_t, std::size_t, std::size_t, std::size_t,
                       std::size_t, bool>;

struct Descs {
  memory::desc x, w, b, y;
  memory::dims strides, pad;
};
Descs descs(const ConvDims& d, tag any_or_plain, bool bias) {
  const auto f32 = memory::data_type::f32;
  Descs s{memory::desc(dims(d.N, d.C, d.H, d.W), f32, any_or_plain == tag::any ? tag::any : tag::nchw),
          memory::desc(dims(d.FN, d.C, d.KH, d.KW), f32, any_or_plain == tag::any ? tag::any : tag::oihw),
          bias ? memory::desc({memory::dim(d.FN)}, f32, tag::x) : memory::desc(),
          memory::desc(dims(d.N, d.FN, d.OH, d.OW), f32, any_or_plain == tag::any ? tag::any : tag::nchw),
          {memory::dim(d.S), memory::dim(d.S)},
          {memory::dim(d.P), memory::dim(d.P)}};
  return s;
}

dnnl::primitive_attr user_scratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

dnnl::convolution_forward::primitive_desc forward_pd(const ConvDims& d, bool bias, dnnl::algorithm alg) {
  const Descs a = descs(d, tag::any, bias);
  const auto prop = dnnl::prop_kind::forward_training;
  auto fd = bias ? dnnl::convolution_forward::desc(prop, alg, a.x, a.w, a.b, a.y, a.strides, a.pad, a.pad)
                 : dnnl::convolution_forward::desc(prop, alg, a.x, a.w, a.y, a.strides, a.pad, a.pad);
  return dnnl::convolution_forward::primitive_desc(fd, user_scratchpad(), engine());
}

// The input-gradient and weight-gradient primitives take the same three
// descriptors (x, w, y), the weight gradient also the bias's, and the
// forward primitive as a hint.
template <class Backward>
typename Backward::primitive_desc backward_pd(const ConvDims& d, dnnl::algorithm alg, bool bias = false) {
  const Descs a = descs(d, tag::any, bias);
  const auto bd = [&] {
    if constexpr (std::is_same_v<Backward, dnnl::convolution_backward_weights>)
      if (bias) return typename Backward::desc(alg, a.x, a.w, a.b, a.y, a.strides, a.pad, a.pad);
    return typename Backward::desc(alg, a.x, a.w, a.y, a.strides, a.pad, a.pad);
  }();
  return typename Backward::primitive_desc(bd, user_scratchpad(), engine(), forward_pd(d, bias, alg));
}

// Winograd F(4x4, 3x3) for 3x3 layers whose channel counts fill its 16-wide
// blocks (DeepConvNet's 16 to 64: 1.1-1.9x faster than direct there), direct
// otherwise; oneDNN's own choice (convolution_auto) took Winograd for one
// input channel, 8x slower than direct. Only generated kernels are kept:
// oneDNN's reference and im2col + GEMM fallbacks are no faster than ours.
template <class Make>
auto with_algorithm(const ConvDims& d, Make&& make) {
  auto jit = [](auto pd) {
    const std::string impl = pd.impl_info_str();
    if (impl.rfind("jit", 0) != 0) throw dnnl::error(dnnl_unimplemented, ("no generated kernel: " + impl).c_str());
    return pd;
  };
  if (d.KH == 3) try {
      return jit(make(dnnl::algorithm::convolution_winograd));
    } catch (const dnnl::error&) {
    }
  return jit(make(dnnl::algorithm::convolution_direct));
}

Entry make_entry(Kind kind, const ConvDims& d, bool bias) {
  const Descs p = descs(d, tag::nchw, bias);
  Entry e;
  auto scratchpad = [&e](const auto& pd) {
    e.scratch_bytes = pd.scratchpad_desc().get_size();
    e.scratch = memory(pd.scratchpad_desc(), engine(), DNNL_MEMORY_NONE);
  };
  if (kind == Kind::Forward) {
    auto pd = with_algorithm(d, [&](dnnl::algorithm alg) { return forward_pd(d, bias, alg); });
    e.conv = dnnl::convolution_forward(pd);
    e.a.init(p.x, pd.src_desc(), true);
    e.b.init(p.w, pd.weights_desc(), true);
    e.c.init(p.y, pd.dst_desc(), false);
    if (bias) e.bias = memory(p.b, engine(), DNNL_MEMORY_NONE);
    scratchpad(pd);
  } else if (kind == Kind::Data) {
    auto pd = with_algorithm(d, [&](dnnl::algorithm alg) { return backward_pd<dnnl::convolution_backward_data>(d, alg); });
    e.conv = dnnl::convolution_backward_data(pd);
    e.a.init(p.y, pd.diff_dst_desc(), true);
    e.b.init(p.w, pd.weights_desc(), true);
    e.c.init(p.x, pd.diff_src_desc(), false);
    scratchpad(pd);
  } else {
    auto pd = with_algorithm(
        d, [&](dnnl::algorithm alg) { return backward_pd<dnnl::convolution_backward_weights>(d, alg, bias); });
    e.conv = dnnl::convolution_backward_weights(pd);
    e.a.init(p.x, pd.src_desc(), true);
    e.b.init(p.y, pd.diff_dst_desc(), true);
    e.c.init(p.w, pd.diff_weights_desc(), false);
    if (bias) e.bias = memory(p.b, engine(), DNNL_MEMORY_NONE);
    scratchpad(pd);
  }
  return e;
}

using Cache = std::map<Key, std::unique_ptr<Entry>>;
Cache& cache() {
  thread_local Cache c;
  return c;
}

// Each operation below starts here: the cache is emptied when it holds 62
// primitives, which bounds those kept for shapes met once. Not in entry()
// itself: an operation looks up two primitives, and emptying the cache at
// the second lookup would free the first.
void start_operation() {
  if (cache().size() >= 62) cache().clear();
}

// The thread's primitive for this convolution, made on first use; null when
// oneDNN has none (then the caller's path runs, and is remembered). Valid
// until the next start_operation().
Entry* entry(Kind kind, const ConvDims& d, bool bias) {
  Cache& cache = onednn::cache();
  const Key key{int(kind), zg::num_threads(), d.N, d.C, d.H, d.W, d.FN, d.KH, d.OH, bias};
  auto it = cache.find(key);
  if (it == cache.end()) {
    std::unique_ptr<Entry> made;
    try {
      // oneDNN fixes a primitive's thread count when it makes it.
      use_onednn_threads();
      made = std::make_unique<Entry>(make_entry(kind, d, bias));
    } catch (const dnnl::error&) {
    }
    it = cache.emplace(key, std::move(made)).first;
  }
  return it->second.get();
}


using Args = std::unordered_map<int, memory>;

// Points e's scratchpad at the arena's next free bytes and passes it.
void add_scratch(Entry* e, Args& args, char*& free) {
  if (!e->scratch_bytes) return;
  e->scratch.set_data_handle(free);
  free += Operand::rounded(e->scratch_bytes);
  args.emplace(DNNL_ARG_SCRATCHPAD, e->scratch);
}

// Runs e's primitive on (p, q) into r with `args` naming them, then
// finish(stream) copies r out of the primitive's layout.
template <class Finish>
bool run(Entry* e, const void* p, const void* q, void* r, int arg_p, int arg_q, int arg_r, const float* bias,
         Finish&& finish) {
  if (!e) return false;
  on_onednn("conv2d", e->arena_bytes(), [&](dnnl::stream& s, char* free) {
    Args args{{arg_p, e->a.prepare(s, p, free)}, {arg_q, e->b.prepare(s, q, free)}, {arg_r, e->c.prepare(s, r, free)}};
    if (bias) {
      e->bias.set_data_handle(const_cast<float*>(bias));
      args.emplace(DNNL_ARG_BIAS, e->bias);
    }
    add_scratch(e, args, free);
    e->conv.execute(s, args);
    finish(s);
  });
  return true;
}
// The same, r copied out by oneDNN's reorder.
bool run(Entry* e, const void* p, const void* q, void* r, int arg_p, int arg_q, int arg_r, const float* bias = nullptr) {
  return run(e, p, q, r, arg_p, arg_q, arg_r, bias, [e](dnnl::stream& s) { e->c.finish(s); });
}

// The forward, with ReLU on the way out when relu is set (Note [ReLU in the
// reorders]; positive may be null).
bool run_forward(Entry* e, const ConvDims& d, const float* x, const float* w, const float* b, float* y, bool relu,
                 std::uint8_t* positive) {
  if (!relu) return run(e, x, w, y, DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST, b);
  return run(e, x, w, y, DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST, b, [&](dnnl::stream& s) {
    s.wait();
    if (e->c.block) {
      relu_from_blocked(static_cast<const float*>(e->c.blocked.get_data_handle()),
                        {d.N, d.FN, d.OH * d.OW, e->c.block}, y, positive);
      return;
    }
    e->c.finish(s);
    s.wait();
    relu_in_place(y, d.N * d.FN * d.OH * d.OW, positive);
  });
}

// Note [One pass over gy]: a convolution's backward needs gy in the blocked
// layout twice, for the input gradient and for the weight gradient, and the
// bias gradient is a sum over it. Run together, gy is reordered once and
// the weight-gradient primitive sums the bias gradient as it goes: at batch
// 100, one thread, this saved the second reorder (0.05-0.26 ms per layer)
// and a separate pass over gy for the bias. data may be null (no input
// gradient wanted), and then gx too; gb is null for no bias.
// The gradient a backward starts from: gy itself; gy switched off where
// positive is 0 (Note [ReLU in the reorders]); or, with pool_at, the pooled
// gy spread back over its windows (Note [Pooling in the reorders]; the bytes
// were made in blocks of pool_block channels).
struct Upstream {
  const float* gy;
  const std::uint8_t* positive = nullptr;
  const std::uint8_t* pool_at = nullptr;
  std::size_t pool_block = 0;
};

bool run_backward(Entry* data, Entry* weights, const ConvDims& d, const float* x, const Upstream& up, const float* w,
                  float* gx, float* gw, float* gb) {
  if (!weights || (gx && !data)) return false;
  if (gx && !(data->a.used() == weights->b.used())) return false;  // no layout to share
  Operand& gy_in = gx ? data->a : weights->b;
  // A layout we do not copy into, or not the one the bytes were made in.
  if ((up.positive || up.pool_at) && !gy_in.block) return false;
  if (up.pool_at && gy_in.block != up.pool_block) return false;
  // gy in the blocked layout, switched off or spread as up says.
  const auto prepare_gy = [&](dnnl::stream& s, char*& free) -> memory& {
    if (up.pool_at)
      unpooled_to_blocked(up.gy, up.pool_at, {d.N, d.FN, d.OH, d.OW, gy_in.block}, gy_in.claim(free));
    else if (up.positive)
      switched_to_blocked(up.gy, up.positive, {d.N, d.FN, d.OH * d.OW, gy_in.block}, gy_in.claim(free));
    else
      return gy_in.prepare(s, up.gy, free);
    return gy_in.blocked;
  };
  // Both count gy's blocked copy once; the rest of the input gradient's
  // buffers are dead when the weight gradient's are made, in the same place.
  const std::size_t bytes = std::max(weights->arena_bytes(), gx ? data->arena_bytes() : 0);
  on_onednn("conv2d backward", bytes, [&](dnnl::stream& s, char* free) {
    memory g_w;  // gy for the weight gradient: the input gradient's copy, or made below
    if (gx) {
      memory& g = prepare_gy(s, free);
      char* const after_gy = free;
      Args args{{DNNL_ARG_DIFF_DST, g}, {DNNL_ARG_WEIGHTS, data->b.prepare(s, w, free)},
                {DNNL_ARG_DIFF_SRC, data->c.prepare(s, gx, free)}};
      add_scratch(data, args, free);
      data->conv.execute(s, args);
      data->c.finish(s);
      free = after_gy;
      g_w = weights->b.blocked ? weights->b.blocked : weights->b.plain;
      g_w.set_data_handle(g.get_data_handle());
    } else {
      g_w = prepare_gy(s, free);
    }
    Args args{{DNNL_ARG_SRC, weights->a.prepare(s, x, free)}, {DNNL_ARG_DIFF_DST, g_w},
              {DNNL_ARG_DIFF_WEIGHTS, weights->c.prepare(s, gw, free)}};
    if (gb) {
      weights->bias.set_data_handle(gb);
      args.emplace(DNNL_ARG_DIFF_BIAS, weights->bias);
    }
    add_scratch(weights, args, free);
    weights->conv.execute(s, args);
    weights->c.finish(s);
  });
  return true;
}

// Note [Padding by hand]: oneDNN's Winograd takes 3x3 layers with padding
// 1 at most, so DeepConvNet's pad-2 layer (32 channels, 14x14) ran on
// direct kernels, its weight gradient on the AVX2 one: 8.6 ms forward and
// backward at batch 100, one thread. The same convolution of the input
// zero-padded by hand to 16x16, with padding 1, runs on Winograd in 5.6 ms
// (2.7 ms against 4.9 at two threads), and the copies in and out cost about
// 0.3 ms. So a 3x3 layer with more padding than 1 runs that way wherever
// oneDNN has Winograd for the padded shape.
ConvDims padded_by_hand(const ConvDims& d) {
  ConvDims p = d;
  p.H += 2 * (d.P - 1);
  p.W += 2 * (d.P - 1);
  p.P = 1;
  return p;
}

bool pads_by_hand(const ConvDims& d) {
  if (d.KH != 3 || d.P < 2) return false;
  thread_local std::map<std::tuple<std::size_t, std::size_t, std::size_t, std::size_t>, bool> winograd;
  const auto key = std::make_tuple(d.C, d.FN, d.H, d.W);
  auto it = winograd.find(key);
  if (it == winograd.end()) {
    bool found = false;
    try {
      const std::string impl =
          forward_pd(padded_by_hand(d), false, dnnl::algorithm::convolution_winograd).impl_info_str();
      found = impl.rfind("jit", 0) == 0;
    } catch (const dnnl::error&) {
    }
    it = winograd.emplace(key, found).first;
  }
  return it->second;
}

// The thread's buffers for x padded by hand and for that gradient, sized to d.
float* padded_buffer(const ConvDims& d, int slot = 0) {
  thread_local std::vector<float> buf[2];
  buf[slot].resize(d.N * d.C * d.H * d.W);
  return buf[slot].data();
}

// x (N, C, H, W) into p, which has e more zeros on each side.
void pad(const float* x, const ConvDims& d, std::size_t e, float* p) {
  const std::size_t PW = d.W + 2 * e, PH = d.H + 2 * e;
  std::fill(p, p + d.N * d.C * PH * PW, 0.0f);
  for (std::size_t plane = 0; plane < d.N * d.C; ++plane)
    for (std::size_t h = 0; h < d.H; ++h)
      std::copy_n(x + (plane * d.H + h) * d.W, d.W, p + (plane * PH + h + e) * PW + e);
}

// The inverse: the middle (H, W) of each plane of p into x.
void crop(const float* p, const ConvDims& d, std::size_t e, float* x) {
  const std::size_t PW = d.W + 2 * e, PH = d.H + 2 * e;
  for (std::size_t plane = 0; plane < d.N * d.C; ++plane)
    for (std::size_t h = 0; h < d.H; ++h)
      std::copy_n(p + (plane * PH + h + e) * PW + e, d.W, x + (plane * d.H + h) * d.W);
}

}  // namespace

bool taken(const ConvDims& d) {
  // Measured only where channels fill 16-wide blocks: with one input channel
  // (the first layers of the book's nets) oneDNN's direct kernels were
  // slower than im2col + GEMM (SimpleConvNet's 5x5: 15 ms against 0.85).
  return enabled() && d.N > 0 && d.C % 16 == 0 && d.C > 0 && d.FN % 16 == 0 && d.FN > 0 && d.S == 1 && d.KH == d.KW && d.OH == d.H + 2 * d.P - d.KH + 1;
}

bool conv2d(const ConvDims& d, const float* x, const float* w, const float* b, float* y, bool relu,
            std::uint8_t* positive) {
  if (!taken(d)) return false;
  start_operation();
  if (pads_by_hand(d)) {
    const ConvDims p = padded_by_hand(d);
    float* xp = padded_buffer(p);
    pad(x, d, d.P - 1, xp);
    return run_forward(entry(Kind::Forward, p, b != nullptr), p, xp, w, b, y, relu, positive);
  }
  return run_forward(entry(Kind::Forward, d, b != nullptr), d, x, w, b, y, relu, positive);
}

bool backward_data(const ConvDims& d, const float* gy, const float* w, float* gx) {
  if (!taken(d)) return false;
  start_operation();
  if (pads_by_hand(d)) {
    const ConvDims p = padded_by_hand(d);
    float* gxp = padded_buffer(p);
    if (!run(entry(Kind::Data, p, false), gy, w, gxp, DNNL_ARG_DIFF_DST, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_SRC))
      return false;
    crop(gxp, d, d.P - 1, gx);
    return true;
  }
  return run(entry(Kind::Data, d, false), gy, w, gx, DNNL_ARG_DIFF_DST, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_SRC);
}

namespace {
// Both gradients and the bias's from up, with x padded by hand where
// Note [Padding by hand] applies.
bool backward_from(const ConvDims& d, const float* x, const Upstream& up, const float* w, float* gx, float* gw,
                   float* gb) {
  if (!taken(d)) return false;
  const bool by_hand = pads_by_hand(d);
  const ConvDims p = by_hand ? padded_by_hand(d) : d;
  start_operation();
  Entry* weights = entry(Kind::Weights, p, gb != nullptr);
  Entry* data = gx ? entry(Kind::Data, p, false) : nullptr;
  if (!by_hand) return run_backward(data, weights, d, x, up, w, gx, gw, gb);
  float* xp = padded_buffer(p, 0);
  float* gxp = gx ? padded_buffer(p, 1) : nullptr;
  pad(x, d, d.P - 1, xp);
  if (!run_backward(data, weights, p, xp, up, w, gxp, gw, gb)) return false;
  if (gx) crop(gxp, d, d.P - 1, gx);
  return true;
}
}  // namespace

bool backward(const ConvDims& d, const float* x, const float* gy, const float* w, float* gx, float* gw, float* gb,
              const std::uint8_t* positive) {
  return backward_from(d, x, Upstream{gy, positive}, w, gx, gw, gb);
}

std::size_t conv2d_relu_pool(const ConvDims& d, const float* x, const float* w, const float* b, float* pooled,
                             std::uint8_t* at) {
  if (!taken(d) || d.OH < 2 || d.OW < 2) return 0;
  const bool by_hand = pads_by_hand(d);
  const ConvDims p = by_hand ? padded_by_hand(d) : d;
  start_operation();
  Entry* e = entry(Kind::Forward, p, b != nullptr);
  if (!e || !e->c.block) return 0;
  const float* in = x;
  if (by_hand) {
    float* xp = padded_buffer(p);
    pad(x, d, d.P - 1, xp);
    in = xp;
  }
  run(e, in, w, pooled, DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST, b, [&](dnnl::stream& s) {
    s.wait();
    relu_pool_from_blocked(static_cast<const float*>(e->c.blocked.get_data_handle()),
                           {d.N, d.FN, d.OH, d.OW, e->c.block}, pooled, at);
  });
  return e->c.block;
}

bool backward_pooled(const ConvDims& d, const float* x, const float* gy, const std::uint8_t* at, std::size_t block,
                     const float* w, float* gx, float* gw, float* gb) {
  return backward_from(d, x, Upstream{gy, nullptr, at, block}, w, gx, gw, gb);
}

bool backward_weights(const ConvDims& d, const float* x, const float* gy, float* gw) {
  if (!taken(d)) return false;
  start_operation();
  if (pads_by_hand(d)) {
    const ConvDims p = padded_by_hand(d);
    float* xp = padded_buffer(p);
    pad(x, d, d.P - 1, xp);
    return run(entry(Kind::Weights, p, false), xp, gy, gw, DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_WEIGHTS);
  }
  return run(entry(Kind::Weights, d, false), x, gy, gw, DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_WEIGHTS);
}

}  // namespace zg::nn::onednn

#else

namespace zg::nn::onednn {
bool taken(const ConvDims&) { return false; }
bool conv2d(const ConvDims&, const float*, const float*, const float*, float*, bool, std::uint8_t*) { return false; }
bool backward_data(const ConvDims&, const float*, const float*, float*) { return false; }
bool backward_weights(const ConvDims&, const float*, const float*, float*) { return false; }
bool backward(const ConvDims&, const float*, const float*, const float*, float*, float*, float*, const std::uint8_t*) {
  return false;
}
std::size_t conv2d_relu_pool(const ConvDims&, const float*, const float*, const float*, float*, std::uint8_t*) {
  return 0;
}
bool backward_pooled(const ConvDims&, const float*, const float*, const std::uint8_t*, std::size_t, const float*, float*,
                     float*, float*) {
  return false;
}
}  // namespace zg::nn::onednn

#endif
