// Writes the seed corpora for the fuzzers: valid IDX files (plain and gzip)
// and valid .npz checkpoints. Usage: make_seeds <idx-dir> <npz-dir>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <zlib.h>

#include <zerograd/nn.hpp>

namespace {
std::string idx(const std::vector<std::uint32_t>& dims) {
  std::string out = {0, 0, 8, static_cast<char>(dims.size())};
  std::size_t count = 1;
  for (auto d : dims) {
    for (int s = 24; s >= 0; s -= 8) out += static_cast<char>((d >> s) & 0xff);
    count *= d;
  }
  for (std::size_t i = 0; i < count; ++i) out += static_cast<char>(i * 37 % 256);
  return out;
}
void write(const std::filesystem::path& p, const std::string& bytes) {
  FILE* f = std::fopen(p.c_str(), "wb");
  std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
}
void write_gz(const std::filesystem::path& p, const std::string& bytes) {
  gzFile f = gzopen(p.c_str(), "wb");
  gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(f);
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: make_seeds <idx-dir> <npz-dir>\n");
    return 2;
  }
  std::filesystem::create_directories(argv[1]);
  std::filesystem::create_directories(argv[2]);
  const std::filesystem::path i = argv[1], n = argv[2];
  write(i / "labels", idx({7}));
  write(i / "images", idx({3, 4, 5}));
  write_gz(i / "images.gz", idx({2, 6, 6}));
  write_gz(i / "labels.gz", idx({10}));
  zg::manual_seed(1);
  zg::nn::Linear model(3, 2);
  zg::nn::save_checkpoint((n / "linear.npz").string(), model);
  zg::nn::save_checkpoint((n / "with_extra.npz").string(), model, {{"optimizer.step", zg::Tensor<float>(3.f)}});
  zg::nn::MLP mlp(2, {3}, 2);
  zg::nn::save_checkpoint((n / "mlp.npz").string(), mlp);
  return 0;
}
