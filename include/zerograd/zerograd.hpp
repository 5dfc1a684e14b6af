#pragma once
// The one header users include: #include <zerograd/zerograd.hpp>
#include "zerograd/custom.hpp"
#include "zerograd/dot.hpp"
#include "zerograd/error.hpp"
#include "zerograd/factory.hpp"
#include "zerograd/gradcheck.hpp"
#include "zerograd/html.hpp"
#include "zerograd/ops.hpp"
#include "zerograd/random.hpp"
#include "zerograd/threads.hpp"
#include "zerograd/variable.hpp"

// Layers, losses, data and checkpoints; optimizers and schedules.
#include "zerograd/nn.hpp"
#include "zerograd/optim.hpp"
