#pragma once
/// @file
/// The one error family every zerograd failure belongs to. Messages name the
/// operation and the offending shapes, values or file offsets.
#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

namespace zg {

/// The base of every error zerograd throws; what() names the operation and
/// the offending shapes or values.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
/// Shapes that do not fit: broadcasting, matmul, a gradient's shape, an axis.
class ShapeError : public Error { public: using Error::Error; };
/// A dtype that does not fit, such as a float64 array where float32 is read.
class DTypeError : public Error { public: using Error::Error; };
/// A value out of its range: a probability, a size, an option's string.
class ValueError : public Error { public: using Error::Error; };
/// A file that cannot be read or written, or whose contents are bad; names the
/// file and the byte offset.
class IOError : public Error { public: using Error::Error; };

using Shape = std::vector<std::size_t>;  ///< an array's dimensions

/// "(2, 3)" for a shape, "()" for 0-d.
std::string shape_str(const Shape& shape);

/// The same for any container of dimensions (an xtensor shape, say).
template <class S>
std::string shape_str(const S& shape) {
  return shape_str(Shape(shape.begin(), shape.end()));
}

/// A number as messages, summaries and graph labels print it: 0.5, 1e-05,
/// 0.333333, 220 for 220.00000000000003 (std::ostream's default, six
/// significant digits), and 0 for -0.
std::string number_str(double v);

/// Pieces of a message whose length does not grow with the input (a hostile
/// file may hold 20,000 names, or one of 60 KB): quoted(name) is 'name', cut
/// after 80 characters and then saying how long it was; listed(items) joins
/// the first `shown` items and says how many more there are.
std::string quoted(const std::string& name);
/// See quoted(): the first `shown` items joined by separator, then how many
/// more there are.
std::string listed(const std::vector<std::string>& items, const std::string& separator = ", ",
                   std::size_t shown = 5);

}  // namespace zg
