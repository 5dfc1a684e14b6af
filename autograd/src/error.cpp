// The pieces error messages are made of (zerograd/error.hpp).
#include <sstream>

#include "zerograd/error.hpp"

namespace zg {

std::string shape_str(const Shape& shape) {
  std::ostringstream out;
  out << '(';
  for (std::size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << ')';
  return out.str();
}

std::string number_str(double v) {
  std::ostringstream out;
  out << (v == 0 ? 0.0 : v);  // -0 prints as 0
  return out.str();
}

std::string quoted(const std::string& name) {
  constexpr std::size_t kShown = 80;
  if (name.size() <= kShown) return "'" + name + "'";
  return "'" + name.substr(0, kShown) + "...' (" + std::to_string(name.size()) + " characters)";
}

std::string listed(const std::vector<std::string>& items, const std::string& separator, std::size_t shown) {
  std::string out;
  for (std::size_t i = 0; i < items.size() && i < shown; ++i) out += (i ? separator : "") + items[i];
  if (items.size() > shown) out += separator + "and " + std::to_string(items.size() - shown) + " more";
  return out;
}

}  // namespace zg
