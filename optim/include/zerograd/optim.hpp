#pragma once
/// @file
/// Optimizers, their hooks and learning-rate schedules: `#include <zerograd/optim.hpp>`
#include "zerograd/optim/adagrad.hpp"
#include "zerograd/optim/adam.hpp"
#include "zerograd/optim/adamw.hpp"
#include "zerograd/optim/lr_scheduler.hpp"
#include "zerograd/optim/momentum.hpp"
#include "zerograd/optim/nesterov.hpp"
#include "zerograd/optim/optimizer.hpp"
#include "zerograd/optim/rmsprop.hpp"
#include "zerograd/optim/sgd.hpp"

/// @namespace zg::optim
/// Optimizers (SGD, Momentum, Nesterov, AdaGrad, RMSprop, Adam, AdamW), the
/// hooks they apply before each update (gradient clipping, weight decay) and
/// learning-rate schedules.
