// Max and average pooling over planes, and the bookkeeping of the fused
// Conv2dReLUMaxPool's positions; the 2x2 max-pooling kernels are in
// pool_2x2.cpp.
#include "kernels/pool.hpp"

#include <algorithm>
#include <vector>

#include "zerograd/parallel.hpp"

namespace zg::nn::kernels {
namespace {


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

}  // namespace

template <class T>
void max_pool2d(const T* x, const Geometry& g, T* y, ArgMax& arg) {
  if (g.KH == 2 && g.KW == 2 && g.S == 2 && g.P == 0) {  // Note [Pooling eight windows at a time]
    detail::parallel_for(g.N * g.C, kPlaneGrain, [&](std::size_t p0, std::size_t p1) {
      max_pool_2x2(x, g, p0, p1, y, arg.at.get());  // the book's networks: 3x faster
    });
    return;
  }
  const auto first = [&](std::size_t o) { return o * g.S < g.P ? 0 : o * g.S - g.P; };
  detail::parallel_for(g.N * g.C, kPlaneGrain, [&](std::size_t p0, std::size_t p1) {
    for (std::size_t p = p0; p < p1; ++p) {
      const T* xp = x + p * g.plane();
      T* yp = y + p * g.out_plane();
      std::uint32_t* ap = arg.at.get() + p * g.out_plane();
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
}

template <class T>
void gather(const T* x, const ArgMax& arg, T* y) {
  detail::parallel_for(arg.planes(), kPlaneGrain, [&](std::size_t p0, std::size_t p1) {
    arg.each(p0, p1, [&](std::size_t xi, std::size_t yi) { y[yi] = x[xi]; });
  });
}

template <class T>
void scatter(const T* gy, const ArgMax& arg, T* gx) {
  // Plane by plane: zero it, then scatter into it while it is in cache.
  detail::parallel_for(arg.planes(), kPlaneGrain, [&](std::size_t p0, std::size_t p1) {
    for (std::size_t p = p0; p < p1; ++p) {
      std::fill_n(gx + p * arg.plane, arg.plane, T(0));
      arg.each(p, p + 1, [&](std::size_t xi, std::size_t yi) { gx[xi] += gy[yi]; });
    }
  });
}

template <class T>
void window_sums(const T* x, const Geometry& g, T* y) {
  detail::parallel_for(g.N * g.C, kPlaneGrain, [&](std::size_t p0, std::size_t p1) {
    for (std::size_t p = p0; p < p1; ++p) {
      const T* xp = x + p * g.plane();
      T* yp = y + p * g.out_plane();
      for_each_window_row(g, [&](std::size_t oh, std::size_t from, std::size_t lo, std::size_t hi) {
        T* yr = yp + oh * g.OW;
        for (std::size_t ow = lo, j = from; ow < hi; ++ow, j += g.S) yr[ow] += xp[j];
      });
    }
  });
}

template <class T>
void spread(const T* gy, const Geometry& g, T scale, T* gx) {
  detail::parallel_for(g.N * g.C, kPlaneGrain, [&](std::size_t p0, std::size_t p1) {
    for (std::size_t p = p0; p < p1; ++p) {
      const T* gp = gy + p * g.out_plane();
      T* xp = gx + p * g.plane();
      for_each_window_row(g, [&](std::size_t oh, std::size_t from, std::size_t lo, std::size_t hi) {
        const T* gr = gp + oh * g.OW;
        for (std::size_t ow = lo, j = from; ow < hi; ++ow, j += g.S) xp[j] += gr[ow] * scale;
      });
    }
  });
}

std::unique_ptr<std::uint8_t[]> unblocked(const std::uint8_t* at, std::size_t N, std::size_t FN, std::size_t PM,
                                          std::size_t B) {
  std::unique_ptr<std::uint8_t[]> plain(new std::uint8_t[N * FN * PM]);
  for (std::size_t n = 0, o = 0; n < N; ++n)
    for (std::size_t c = 0; c < FN; ++c)
      for (std::size_t i = 0; i < PM; ++i) plain[o++] = at[((n * (FN / B) + c / B) * PM + i) * B + c % B];
  return plain;
}

template <class T>
std::shared_ptr<ArgMax> argmax_of_bytes(const std::uint8_t* at, const Shape& full, T* on) {
  const std::size_t OW = full[3], PW = full[3] / 2, PM = (full[2] / 2) * PW;
  auto arg = std::make_shared<ArgMax>(full, PM);
  for (std::size_t o = 0; o < arg->size; ++o) {
    const std::size_t i = o % PM, k = at[o] < 4 ? at[o] : 0;
    arg->at[o] = static_cast<std::uint32_t>((2 * (i / PW) + k / 2) * OW + 2 * (i % PW) + k % 2);
    on[o] = at[o] < 4 ? T(1) : T(0);
  }
  return arg;
}

#define ZG_INSTANTIATE(T)                                                                                  \
  template void max_pool2d(const T*, const Geometry&, T*, ArgMax&);                                       \
  template void gather(const T*, const ArgMax&, T*);                                                      \
  template void scatter(const T*, const ArgMax&, T*);                                                     \
  template void window_sums(const T*, const Geometry&, T*);                                               \
  template void spread(const T*, const Geometry&, T, T*);                                                 \
  template std::shared_ptr<ArgMax> argmax_of_bytes(const std::uint8_t*, const Shape&, T*);
ZG_INSTANTIATE(float)
ZG_INSTANTIATE(double)
#undef ZG_INSTANTIATE

}  // namespace zg::nn::kernels
