#pragma once
/// @file
/// Data-parallel training on MPI: `#include <zerograd/distributed.hpp>` and
/// link zerograd::distributed (built when MPI is found).
#include "zerograd/distributed/data.hpp"
#include "zerograd/distributed/ddp.hpp"
#include "zerograd/distributed/process_group.hpp"
#include "zerograd/distributed/sync_batch_norm.hpp"

/// @namespace zg::distributed
/// Data-parallel training over processes started by mpirun: ProcessGroup,
/// DistributedDataParallel, DistributedSampler and SyncBatchNorm.
