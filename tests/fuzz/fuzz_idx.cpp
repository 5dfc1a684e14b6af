// libFuzzer target: read_idx on arbitrary bytes (plain or gzip). Anything but
// a zg::Error or a correct array is a finding.
#include <cstdint>
#include <cstdio>
#include <string>

#include <unistd.h>

#include <zerograd/nn/data.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string path = "/tmp/zg_fuzz_idx_" + std::to_string(::getpid());
  if (FILE* f = std::fopen(path.c_str(), "wb")) {
    std::fwrite(data, 1, size, f);
    std::fclose(f);
  }
  try {
    const auto a = zg::nn::data::read_idx(path);
    std::size_t count = 1;
    for (auto d : a.shape) count *= d;
    if (count != a.values.size()) __builtin_trap();
  } catch (const zg::Error&) {
  }
  return 0;
}
