// Note [Column matrix copies]: im2col copies a convolution's input rows
// into the column matrix (Note [The column matrix]) in pieces sized for the
// book's networks: the stride-1 "same" layers of DeepConvNet copy a whole
// shifted plane per row block instead of one call per 28-float row (the
// call cost as much as the copy), and short runs are copied and zeroed in
// 32-byte pieces instead of memmove and memset calls, whose dispatch cost
// as much as copying such a run.
#include "kernels/im2col.hpp"

#include <algorithm>
#include <cstring>

// The library's raw GEMM (private to the library, like the ops that use it).
#include "zerograd/gemm.hpp"
#include "zerograd/parallel.hpp"

#include "kernels/few_rows.hpp"

namespace zg::nn::kernels {
namespace {

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

// row + b, and with ReLU max(that, 0) as a select, so NaN passes through.
template <class T>
void add_bias(T* row, std::size_t M, T b, Activation act) {
  if (act == Activation::None) {
    for (std::size_t j = 0; j < M; ++j) row[j] += b;
    return;
  }
  for (std::size_t j = 0; j < M; ++j) {
    const T v = row[j] + b;
    row[j] = v < T(0) ? T(0) : v;
  }
}

}  // namespace

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

template <class T>
void conv2d_gemm(const T* x, const T* w, const T* b, const Geometry& g, std::size_t FN, Activation act, T* y,
                 const SampleFn<T>& sample) {
  const std::size_t K = g.patch(), M = g.out_plane();
  // Samples are independent: each thread takes a block with a col buffer of its own.
  detail::parallel_for(g.N, 1, [&](std::size_t n0, std::size_t n1) {
    const std::unique_ptr<T[]> col = column_buffer<T>(K * M);
    const std::unique_ptr<T[]> own = y ? std::unique_ptr<T[]>() : column_buffer<T>(FN * M);
    for (std::size_t n = n0; n < n1; ++n) {
      T* yn = y ? y + n * FN * M : own.get();
      im2col(x + n * g.C * g.plane(), g, col.get());
      detail::gemm<T>(false, false, FN, M, K, T(1), w, K, col.get(), M, T(0), yn, M);
      // The bias (and ReLU) while the sample's rows are still in cache: a
      // fill before a beta = 1 GEMM made one more pass over memory.
      if (b || act == Activation::ReLU)
        for (std::size_t f = 0; f < FN; ++f) add_bias(yn + f * M, M, b ? b[f] : T(0), act);
      if (sample) sample(n, yn);
    }
  });
}

template <class T>
void conv_transpose2d_gemm(const T* x, const T* w, const Geometry& g, std::size_t FN, T* y) {
  const std::size_t K = g.patch(), M = g.out_plane();
  detail::parallel_for(g.N, 1, [&](std::size_t n0, std::size_t n1) {
    const std::unique_ptr<T[]> col = column_buffer<T>(K * M);
    for (std::size_t n = n0; n < n1; ++n) {
      T* yn = y + n * g.C * g.plane();
      std::fill_n(yn, g.C * g.plane(), T(0));
      detail::gemm<T>(true, false, K, M, FN, T(1), w, K, x + n * FN * M, M, T(0), col.get(), M);
      col2im_add(col.get(), g, yn);
    }
  });
}

template <class T>
void conv2d_grad_weight_gemm(const T* x, const T* gy, const Geometry& g, std::size_t FN, T* gw) {
  const std::size_t K = g.patch(), M = g.out_plane();
  // A sum over samples, accumulated per chunk of samples (GEMM with beta = 1).
  detail::parallel_sum(g.N, 1, gw, FN * K, [&](std::size_t n0, std::size_t n1, T* out) {
    const std::unique_ptr<T[]> col = column_buffer<T>(K * M);
    for (std::size_t n = n0; n < n1; ++n) {
      im2col(x + n * g.C * g.plane(), g, col.get());
      const T* gyn = gy + n * FN * M;
      if (K <= kFewPatchRows) few_rows_grad(gyn, col.get(), FN, K, M, out);
      else detail::gemm<T>(false, true, FN, K, M, T(1), gyn, M, col.get(), M, T(1), out, K);
    }
  });
}

#define ZG_INSTANTIATE(T)                                                                                      \
  template void im2col(const T*, const Geometry&, T*);                                                        \
  template void col2im_add(const T*, const Geometry&, T*);                                                    \
  template void conv2d_gemm(const T*, const T*, const T*, const Geometry&, std::size_t, Activation, T*,       \
                            const SampleFn<T>&);                                                              \
  template void conv_transpose2d_gemm(const T*, const T*, const Geometry&, std::size_t, T*);                  \
  template void conv2d_grad_weight_gemm(const T*, const T*, const Geometry&, std::size_t, T*);
ZG_INSTANTIATE(float)
ZG_INSTANTIATE(double)
#undef ZG_INSTANTIATE

}  // namespace zg::nn::kernels
