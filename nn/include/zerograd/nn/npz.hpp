#pragma once
// .npy and .npz (numpy) files: what checkpoints are made of.
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "zerograd/variable.hpp"  // zg::Tensor

namespace zg::nn {

// One array from an .npz, float32 or float64 on disk.
struct NpyArray {
  std::string dtype;  // "<f4" or "<f8"
  std::vector<std::size_t> shape;
  std::vector<double> values;  // exact for both dtypes
  Tensor<float> as_float() const;
  Tensor<double> as_double() const;
};

using NamedArrays = std::vector<std::pair<std::string, Tensor<float>>>;
using NamedNpy = std::vector<std::pair<std::string, NpyArray>>;

// The bytes of a version 1.0 .npy file holding a (little-endian, C order).
std::string encode_npy(const Tensor<float>& a);
std::string encode_npy(const Tensor<double>& a);
// Parses .npy bytes; throws zg::IOError naming `what` and the byte offset of
// the problem. Accepts <f4 and <f8, C order.
NpyArray decode_npy(const std::string& bytes, const std::string& what);

// Writes arrays as an .npz (zip of name.npy, stored) atomically: a temp file
// in the same directory, then rename; an existing file is never left damaged.
void save_npz(const std::string& path, const NamedArrays& arrays);
namespace testing_hooks {
// Testing hook: the next save_npz fails while writing entry `entry` (its
// bytes stop halfway through), as a full disk or I/O error would. -1: off.
void fail_next_save_at_entry(int entry);
}  // namespace testing_hooks

// Reads every array of an .npz; throws zg::IOError naming the file and entry.
NamedNpy load_npz(const std::string& path);

}  // namespace zg::nn
