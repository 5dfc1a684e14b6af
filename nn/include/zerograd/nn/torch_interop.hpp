#pragma once
/// @file
/// Weights to and from PyTorch: a state_dict saved as .npz by
/// examples/torch_interop.py loads into the same architecture built from
/// zerograd's layers, and the other way round.
#include <string>
#include <utility>
#include <vector>

#include "zerograd/nn/module.hpp"

namespace zg::nn {

// Note [PyTorch layouts]: the arrays of a PyTorch layer and of zerograd's
// layer of the same name differ only here:
//   Linear        weight (out, in) in PyTorch, (in, out) here (the book's
//                 x W + b): transposed on the way in and out.
//   BatchNorm1d/2d  weight, bias are gamma, beta here; running_mean and
//                 running_var are the same; num_batches_tracked (an int64
//                 counter that only matters with momentum=None) has no
//                 counterpart: it is skipped on the way in and not written.
//   Conv2d (out, in, k, k), ConvTranspose2d (in, out, k, k), Embedding,
//                 LayerNorm, RNN, LSTM, GRU and their cells (weights
//                 (out, in), as PyTorch's), MultiheadAttention's
//                 in_proj_weight (3E, E, q k v stacked) and in_proj_bias:
//                 the same layout and names (its out_proj is a Linear).
// Every other array keeps its name and layout.

/// Which PyTorch module each of this module's submodules corresponds to.
struct TorchNames {
  /// PyTorch module path -> this module's path, such as {"fc1", "affine1"}. A
  /// path not listed is the same on both sides (nn.Sequential's "0", "1", ...
  /// match zerograd's Sequential).
  std::vector<std::pair<std::string, std::string>> rename;
  /// Instead of names, pair the i-th PyTorch module (in state_dict order)
  /// that holds arrays with the i-th submodule here that holds parameters or
  /// buffers (in registration order); shapes are still checked. Ignored by
  /// to_torch_state_dict, which then keeps this module's own paths.
  bool by_order = false;
};

/// The arrays of a PyTorch state_dict (PyTorch's names and layouts) in this
/// module's names and layouts, ready for module.load_state. Every array the
/// module needs must be there with PyTorch's shape for it, and every given
/// array must be used (num_batches_tracked aside); otherwise zg::ValueError
/// lists each problem with both names and both shapes.
NamedArrays from_torch_state_dict(const Module& module, const NamedArrays& state_dict, const TorchNames& names = {});

/// The module's parameters and buffers named and laid out as PyTorch's
/// load_state_dict expects (num_batches_tracked aside: load it with
/// strict=False, or add it, as examples/torch_interop.py does).
NamedArrays to_torch_state_dict(const Module& module, const TorchNames& names = {});

/// Loads an .npz of float32 arrays named as a PyTorch state_dict into module.
/// Each member's declared size and .npy header are checked against what the
/// module needs before it is inflated (a hostile file cannot make it
/// allocate more); nothing changes unless every array is valid. zg::IOError
/// for a damaged file, zg::ValueError for a mismatch.
void load_torch_npz(const std::string& path, Module& module, const TorchNames& names = {});

/// Writes to_torch_state_dict(module) as an .npz, atomically (save_npz).
void save_torch_npz(const std::string& path, const Module& module, const TorchNames& names = {});

}  // namespace zg::nn
