#pragma once
// Checkpoints: a module's parameters and buffers (and optionally an
// optimizer's state) in one .npz that numpy.load reads.
#include <functional>
#include <string>

#include "zerograd/nn/module.hpp"
#include "zerograd/nn/npz.hpp"

namespace zg::nn {

// Writes module.state() plus `extra` (e.g. optimizer.state_dict()) to path
// atomically: the previous checkpoint survives any failure.
void save_checkpoint(const std::string& path, const Module& module, const NamedArrays& extra = {});

// Reads path and loads it into module. Names, shapes and dtypes (float32) are
// checked first; on any problem nothing is changed and the error lists every
// problem. Entries that are not the module's go to load_extra (e.g. an
// optimizer's load_state_dict); if it throws, the module is restored to what
// it held before, so a failed load leaves everything as it was.
void load_checkpoint(const std::string& path, Module& module,
                     const std::function<void(const NamedArrays&)>& load_extra = {});

}  // namespace zg::nn
