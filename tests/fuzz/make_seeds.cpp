// Writes the seed corpora for the fuzzers: valid IDX files (plain and gzip)
// and valid .npz checkpoints, plus one bomb of each kind (~120 kB files that
// inflate to 120 MiB), which a loader that inflates everything or doubles its
// buffer turns into allocations over the fuzzers' -malloc_limit_mb.
// Usage: make_seeds <idx-dir> <npz-dir>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <zip.h>
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
constexpr std::size_t kBombBytes = std::size_t{120} << 20;

// An IDX header declaring (16384, 1024, 1024), then 120 MiB of zeros.
void write_idx_bomb(const std::filesystem::path& p) {
  gzFile f = gzopen(p.c_str(), "wb9");
  const std::string header = {0, 0, 8, 3, 0, 0, 0x40, 0, 0, 0, 4, 0, 0, 0, 4, 0};
  gzwrite(f, header.data(), static_cast<unsigned>(header.size()));
  const std::string zeros(1 << 20, '\0');
  for (std::size_t i = 0; i < (kBombBytes >> 20); ++i) gzwrite(f, zeros.data(), static_cast<unsigned>(zeros.size()));
  gzclose(f);
}

// A valid checkpoint plus a deflated member 'bomb0.npy' of 120 MiB of zeros.
void add_npz_bomb(const std::filesystem::path& p) {
  int err = 0;
  zip_t* z = zip_open(p.c_str(), 0, &err);
  if (!z) return;
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(kBombBytes / 4) + ",), }";
  dict.append((64 - (10 + dict.size() + 1) % 64) % 64, ' ');
  dict += '\n';
  std::string bytes = std::string("\x93NUMPY\x01\x00", 8) + char(dict.size() & 0xff) + char(dict.size() >> 8) + dict;
  bytes.resize(bytes.size() + kBombBytes, '\0');
  zip_source_t* src = zip_source_buffer(z, bytes.data(), bytes.size(), 0);
  const zip_int64_t i = zip_file_add(z, "bomb0.npy", src, 0);
  zip_set_file_compression(z, static_cast<zip_uint64_t>(i), ZIP_CM_DEFLATE, 9);
  zip_close(z);
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
  zg::nn::save_checkpoint((n / "with_bomb.npz").string(), model);
  add_npz_bomb(n / "with_bomb.npz");
  write_idx_bomb(i / "bomb.gz");
  zg::nn::MLP mlp(2, {3}, 2);
  zg::nn::save_checkpoint((n / "mlp.npz").string(), mlp);
  return 0;
}
