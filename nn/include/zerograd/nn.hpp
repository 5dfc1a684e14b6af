#pragma once
/// @file
/// The nn layer in one header: modules, layers, functional ops, init, checkpoints.
#include "zerograd/nn/attention.hpp"
#include "zerograd/nn/checkpoint.hpp"
#include "zerograd/nn/conv.hpp"
#include "zerograd/nn/data.hpp"
#include "zerograd/nn/functional.hpp"
#include "zerograd/nn/gpt.hpp"
#include "zerograd/nn/gradcheck.hpp"
#include "zerograd/nn/init.hpp"
#include "zerograd/nn/layers.hpp"
#include "zerograd/nn/models.hpp"
#include "zerograd/nn/module.hpp"
#include "zerograd/nn/npz.hpp"
#include "zerograd/nn/recurrent.hpp"
#include "zerograd/nn/torch_interop.hpp"
#include "zerograd/nn/transforms.hpp"

/// @namespace zg::nn
/// Modules and layers with PyTorch's names, parameter layouts and
/// semantics: BasicModule and the containers, Linear, convolutions, pooling,
/// normalisation, recurrent layers, attention and Transformers, GPT;
/// checkpoints (.npz) and PyTorch weights; gradcheck over a whole Module.
