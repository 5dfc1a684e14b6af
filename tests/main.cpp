// The test runner: doctest's own main, after one line saying which BLAS
// kernels this run uses (results may differ in the last bits between them).
// Not while listing test cases: CMake's test discovery reads that output.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <cstring>

#include <zerograd/threads.hpp>

int main(int argc, char** argv) {
  bool listing = false;
  for (int i = 1; i < argc; ++i) listing = listing || std::strncmp(argv[i], "--list", 6) == 0 || std::strncmp(argv[i], "-l", 2) == 0;
  if (!listing) std::printf("zerograd tests on %s\n", zg::blas_info().c_str());
  return doctest::Context(argc, argv).run();
}
