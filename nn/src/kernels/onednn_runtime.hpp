#pragma once
// What every oneDNN kernel (conv_dnnl.cpp, rnn_dnnl.cpp) shares: the engine,
// the thread's stream and working memory, and running on oneDNN's threads.
// Included only where ZEROGRAD_HAVE_DNNL is defined.
#include <cstddef>
#include <new>
#include <string>

#include <dnnl.hpp>

#include "zerograd/error.hpp"

namespace zg::nn::onednn {

dnnl::engine& engine();  // the CPU engine, made once

// One buffer per thread of at least `bytes`, for the call running now; it
// is reused (and grown) by the thread's next call.
char* arena(std::size_t bytes);

// Sets oneDNN's thread count to zg::num_threads() and runs zerograd's
// parallel loops on libgomp's team (Note [One thread team] in
// zerograd/parallel.hpp): before making or running a primitive.
void use_onednn_threads();

// The thread's stream.
dnnl::stream& stream();

// Runs body(stream, arena of `bytes`) with oneDNN's threads, then waits for
// the stream. oneDNN's errors and a failed allocation become a zg::Error
// naming `what`.
template <class Body>
void on_onednn(const char* what, std::size_t bytes, Body&& body) {
  use_onednn_threads();
  try {
    dnnl::stream& s = stream();
    body(s, arena(bytes));
    s.wait();
  } catch (const dnnl::error& err) {
    throw Error(std::string(what) + " on oneDNN: " + err.what());
  } catch (const std::bad_alloc&) {
    throw Error(std::string(what) + " on oneDNN: cannot allocate " + std::to_string(bytes) + " bytes of working memory");
  }
}

}  // namespace zg::nn::onednn
