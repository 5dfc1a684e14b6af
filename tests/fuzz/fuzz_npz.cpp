// libFuzzer target: the .npz checkpoint loader on arbitrary bytes, then the
// module loader on whatever parses; the same bytes as an .npz data set and
// as an .npy of any dtype. Anything but a zg::Error is a finding.
#include <cstdint>
#include <cstdio>
#include <string>

#include <unistd.h>

#include <zerograd/nn.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string path = "/tmp/zg_fuzz_npz_" + std::to_string(::getpid()) + ".npz";
  if (FILE* f = std::fopen(path.c_str(), "wb")) {
    std::fwrite(data, 1, size, f);
    std::fclose(f);
  }
  static zg::nn::Linear model(3, 2);
  try {
    zg::nn::load_checkpoint(path, model);
  } catch (const zg::Error&) {
  }
  try {
    zg::nn::data::load_npz_dataset(path);
  } catch (const zg::Error&) {
  }
  try {
    zg::nn::load_npy(path);
  } catch (const zg::Error&) {
  }
  try {
    zg::nn::decode_npy(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
  } catch (const zg::Error&) {
  }
  return 0;
}
