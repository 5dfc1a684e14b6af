#pragma once
// Anomaly mode's check (zerograd/anomaly.hpp), run by the engine.
#include <algorithm>
#include <cmath>
#include <string>

#include "zerograd/variable.hpp"

namespace zg::detail {

// Throws naming f, the pass and the first non-finite element.
template <class T>
void check_finite(const Function<T>& f, const Tensor<T>& t, const char* pass, const std::string& what) {
  const T* bad = std::find_if(t.data(), t.data() + t.size(), [](T v) { return !std::isfinite(v); });
  if (bad == t.data() + t.size()) return;
  Shape idx(t.dimension());
  for (std::size_t d = t.dimension(), flat = static_cast<std::size_t>(bad - t.data()); d-- > 0; flat /= t.shape()[d])
    idx[d] = flat % t.shape()[d];
  throw ValueError(f.name() + ": " + pass + " produced " + (std::isnan(*bad) ? "NaN" : "Inf") + " in " + what +
                   " " + shape_str(t.shape()) + " at index " + shape_str(idx) + " (anomaly mode)");
}

}  // namespace zg::detail
