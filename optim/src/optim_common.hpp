#pragma once
// Small helpers shared by the optimizer sources (not installed).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "zerograd/error.hpp"
#include "zerograd/parallel.hpp"

namespace zg::optim::detail {

inline void check_lr(const std::string& who, double lr) {
  if (!(lr >= 0 && std::isfinite(lr))) throw ValueError(who + ": lr must be a finite number >= 0, got " + zg::number_str(lr));
}

inline void check_decay(const std::string& who, double lambda) {
  if (!(lambda >= 0 && std::isfinite(lambda)))
    throw ValueError(who + ": weight_decay must be a finite number >= 0, got " + zg::number_str(lambda));
}

inline std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts(1);
  for (char c : s) {
    if (c == sep) parts.emplace_back();
    else parts.back() += c;
  }
  return parts;
}

// "12" -> 12; anything but a plain decimal number ("", "-1", "01", "1e3") -> nullopt.
inline std::optional<std::size_t> parse_index(const std::string& s) {
  if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  if (s.size() > 1 && s[0] == '0') return std::nullopt;
  return std::stoul(s);
}

inline std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out.empty() ? "no buffers" : out;
}

// Note [Denormals]: an optimizer state that decays where the gradient stays
// zero (Adam's m and v, momentum's velocity, RMSprop's h, for the weights of
// a unit that no longer fires) sinks into float's subnormal range after a
// few hundred steps. Arithmetic on subnormals is many times slower: in
// SimpleConvNet training every epoch after the first took twice as long,
// 37% of it in Adam's update. States are therefore stored flushed: a value
// below the smallest normal float (1.2e-38) becomes 0 (NaN and inf pass). Its contribution to
// the update was below 1e-30 anyway. Written with integer masks: a
// floating-point compare or a select kept gcc from vectorizing the loops.
inline float flush(float x) {
  std::uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  bits &= 0u - static_cast<std::uint32_t>((bits & 0x7f800000u) != 0);  // exponent 0: zero or subnormal
  std::memcpy(&x, &bits, sizeof bits);
  return x;
}

// Runs fn(k) for every element index k < n, large arrays split across
// zerograd's threads (elementwise updates: no order between elements).
template <class F>
void for_each_element(std::size_t n, F&& fn) {
  zg::detail::parallel_for(n, zg::detail::kElementGrain, [&](std::size_t b, std::size_t e) {
    for (std::size_t k = b; k < e; ++k) fn(k);
  });
}

}  // namespace zg::optim::detail
