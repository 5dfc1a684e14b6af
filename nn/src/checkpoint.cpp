#include "zerograd/nn/checkpoint.hpp"

#include "zerograd/error.hpp"

namespace zg::nn {

void save_checkpoint(const std::string& path, const Module& module, const NamedArrays& extra) {
  NamedArrays all = module.state();
  all.insert(all.end(), extra.begin(), extra.end());
  save_npz(path, all);
}

void load_checkpoint(const std::string& path, Module& module,
                     const std::function<void(const NamedArrays&)>& load_extra) {
  NamedArrays arrays;
  std::string wrong_dtype;
  for (auto& [name, npy] : load_npz(path)) {
    if (npy.dtype != "<f4") wrong_dtype += (wrong_dtype.empty() ? "" : ", ") + name + " (" + npy.dtype + ")";
    arrays.emplace_back(name, npy.as_float());
  }
  if (!wrong_dtype.empty())
    throw DTypeError("load_checkpoint: '" + path + "': nothing was loaded: expected float32 ('<f4') arrays, got " +
                     wrong_dtype);
  // Validate against the module without changing it, then hand the rest on.
  NamedArrays before = module.state();
  NamedArrays extra;
  try {
    extra = module.load_state(arrays);
  } catch (const Error& e) {
    throw ValueError("load_checkpoint: '" + path + "': " + e.what());
  }
  if (load_extra) {
    try {
      load_extra(extra);
    } catch (...) {
      module.load_state(before, true);
      throw;
    }
  }
}

}  // namespace zg::nn
