#pragma once
// zerograd's nn: modules, layers, functional ops, init, checkpoints.
#include "zerograd/nn/checkpoint.hpp"
#include "zerograd/nn/conv.hpp"
#include "zerograd/nn/data.hpp"
#include "zerograd/nn/functional.hpp"
#include "zerograd/nn/gradcheck.hpp"
#include "zerograd/nn/init.hpp"
#include "zerograd/nn/layers.hpp"
#include "zerograd/nn/models.hpp"
#include "zerograd/nn/module.hpp"
#include "zerograd/nn/npz.hpp"
#include "zerograd/nn/torch_interop.hpp"
#include "zerograd/nn/transforms.hpp"
