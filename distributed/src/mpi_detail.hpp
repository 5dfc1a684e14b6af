#pragma once
// What the distributed sources share about MPI; private to distributed/src.
#include <mpi.h>

#include <string>

#include "zerograd/distributed/process_group.hpp"

namespace zg::distributed {

struct ProcessGroup::Impl {
  MPI_Comm comm = MPI_COMM_NULL;
};

namespace detail {

// Throws DistributedError naming the call and MPI's reason unless rc is MPI_SUCCESS.
void check(int rc, const char* call);
// Waits for a request with the group's deadline (Note [Never a hang]),
// driving MPI's progress meanwhile; `what` names the operation in the error.
void wait(ProcessGroup& group, MPI_Request& request, const std::string& what);
// Lets MPI progress outstanding requests without waiting (cheap).
void poke(MPI_Request* requests, int count);

}  // namespace detail
}  // namespace zg::distributed
