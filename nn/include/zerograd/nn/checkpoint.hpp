#pragma once
/// @file
/// Checkpoints: a module's parameters and buffers (and optionally an
/// optimizer's state) in one .npz that numpy.load reads.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "zerograd/nn/module.hpp"
#include "zerograd/nn/npz.hpp"
#include "zerograd/random.hpp"

namespace zg::nn {

/// Writes module.state() plus `extra` (such as optimizer.state_dict()) to path
/// atomically: the previous checkpoint survives any failure.
void save_checkpoint(const std::string& path, const Module& module, const NamedArrays& extra = {});

/// How load_checkpoint treats entries it does not expect.
struct LoadOptions {
  /// As PyTorch's load_state_dict: entries nobody takes (not the module's and
  /// not given to load_extra) and names the module has but the file lacks are
  /// an error. When false they are reported in the LoadResult instead, and the
  /// module takes the entries it has.
  bool strict = true;
  /// Which entries that are not the module's load_extra takes; others are
  /// unexpected. Default: every one, when load_extra is given.
  std::function<bool(const std::string& name)> extra_names;
  /// The most bytes the entries for load_extra may declare in all. Default
  /// (0): twice the module's own bytes plus 1 MiB, what Adam's two moments
  /// per parameter need. Raise it for an optimizer that keeps more.
  std::uint64_t max_extra_bytes = 0;
};

/// What a non-strict load_checkpoint could not match.
struct LoadResult {
  std::vector<std::string> missing;     ///< the module's names the file lacks
  std::vector<std::string> unexpected;  ///< entries nobody took (never inflated)
};

/// Reads path and loads it into module. Only the zip directory is read first:
/// names are checked (plain dotted paths; no "/", "..", empty segments) and
/// every size is bounded by what the module and load_extra need before any
/// member is inflated; a member nobody takes is never inflated. Then each
/// array's header is checked (float32, the module's shape), and each array is
/// inflated straight into a new array with its CRC-32 verified. On any
/// problem nothing is changed and the error (zg::IOError for a damaged file,
/// zg::ValueError for a mismatch) lists every problem. Entries that are not
/// the module's go to load_extra (e.g. an optimizer's load_state_dict); if it
/// throws, the module is restored to what it held before.
LoadResult load_checkpoint(const std::string& path, Module& module,
                           const std::function<void(const NamedArrays&)>& load_extra = {},
                           const LoadOptions& options = {});

/// The generator's full state as a float32 array (each 64-bit word as four
/// exact 16-bit parts), so a checkpoint resumes the same random stream.
Tensor<float> encode_generator(const Generator& gen);
/// Restores a state written by encode_generator; throws zg::ValueError naming
/// key if `a` is not one.
void decode_generator(const Tensor<float>& a, Generator& gen, const std::string& key);

}  // namespace zg::nn
