#pragma once
// What the GELU layer (layers2.cpp) checks as F::gelu does.
#include <string>

namespace zg::nn::functional {

// A ValueError naming op unless approximate is "none" or "tanh".
void check_gelu(const char* op, const std::string& approximate);

}  // namespace zg::nn::functional
