#pragma once
/// @file
/// Every differentiable Function registers its name beside its definition.
#include <string>
#include <vector>

namespace zg {

/// The names of every Function registered with ZG_REGISTER_OP in this
/// program, sorted: the library's ops, and a user's own if registered.
std::vector<std::string> differentiable_ops();

namespace detail {
bool register_op(const char* name);
}  // namespace detail

}  // namespace zg

#define ZG_REGISTER_OP_CAT_(a, b) a##b
#define ZG_REGISTER_OP_CAT(a, b) ZG_REGISTER_OP_CAT_(a, b)
/// One line beside an op's definition, at namespace scope: `ZG_REGISTER_OP(Mul);`
/// The test suite then requires a gradcheck case that runs it and a rule in
/// words for each of its inputs.
#define ZG_REGISTER_OP(Name)                                                          \
  [[maybe_unused]] static const bool ZG_REGISTER_OP_CAT(zg_registered_op_, __LINE__) = \
      ::zg::detail::register_op(#Name)
