#ifdef ZEROGRAD_HAVE_DNNL

#include "kernels/onednn_runtime.hpp"

#include <memory>

#include "zerograd/parallel.hpp"
#include "zerograd/threads.hpp"

// libgomp, oneDNN's thread runtime. GOMP_parallel is the call GCC makes for
// `#pragma omp parallel` (libgomp's ABI since GCC 4.9); calling it directly
// needs no -fopenmp, which under clang would bring LLVM's libomp as a
// second OpenMP runtime beside oneDNN's libgomp.
extern "C" void omp_set_num_threads(int);
extern "C" void GOMP_parallel(void (*fn)(void*), void* data, unsigned num_threads, unsigned flags);

namespace zg::nn::onednn {
namespace {

// zerograd's parallel loops on libgomp's threads (Note [One thread team] in
// zerograd/parallel.hpp).
void libgomp_team(unsigned threads, void (*body)(void*), void* arg) { GOMP_parallel(body, arg, threads, 0); }

}  // namespace

dnnl::engine& engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

// One buffer per thread for the blocked copies and oneDNN's scratchpad of
// the call running now, grown to the largest call: the buffers are dead
// between calls, and keeping one set per cached shape added 95 MB to
// DeepConvNet's peak memory (275 to 370 MB).
char* arena(std::size_t bytes) {
  struct Free {
    void operator()(char* p) const { ::operator delete(p, std::align_val_t(64)); }
  };
  thread_local std::unique_ptr<char, Free> buf;
  thread_local std::size_t size = 0;
  if (bytes > size) {
    buf.reset();
    size = 0;
    buf.reset(static_cast<char*>(::operator new(bytes, std::align_val_t(64))));
    size = bytes;
  }
  return buf.get();
}

void use_onednn_threads() {
  if (zg::detail::loops_runner() != &libgomp_team) zg::detail::run_loops_on(libgomp_team);
  omp_set_num_threads(zg::num_threads());
}

dnnl::stream& stream() {
  thread_local dnnl::stream s(engine());
  return s;
}

}  // namespace zg::nn::onednn

#endif
