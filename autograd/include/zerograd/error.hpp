#pragma once
// The one error family every zerograd failure belongs to. Messages name the
// operation and the offending shapes, values or file offsets.
#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

namespace zg {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
class ShapeError : public Error { public: using Error::Error; };
class DTypeError : public Error { public: using Error::Error; };
class ValueError : public Error { public: using Error::Error; };
class IOError : public Error { public: using Error::Error; };

using Shape = std::vector<std::size_t>;

// "(2, 3)" for a shape, "()" for 0-d.
std::string shape_str(const Shape& shape);

template <class S>
std::string shape_str(const S& shape) {
  return shape_str(Shape(shape.begin(), shape.end()));
}

// A number as messages, summaries and graph labels print it: 0.5, 1e-05,
// 0.333333, 220 for 220.00000000000003 (std::ostream's default, six
// significant digits), and 0 for -0.
std::string number_str(double v);

// Pieces of a message whose length does not grow with the input (a hostile
// file may hold 20,000 names, or one of 60 KB): quoted(name) is 'name', cut
// after 80 characters and then saying how long it was; listed(items) joins
// the first `shown` items and says how many more there are.
std::string quoted(const std::string& name);
std::string listed(const std::vector<std::string>& items, const std::string& separator = ", ",
                   std::size_t shown = 5);

}  // namespace zg
