#pragma once
// The one header users include: #include <zerograd/zerograd.hpp>
#include "zerograd/autograd.hpp"
#include "zerograd/viewers.hpp"

// Layers, losses, data and checkpoints; optimizers and schedules.
#include "zerograd/nn.hpp"
#include "zerograd/optim.hpp"
