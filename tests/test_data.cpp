// IDX files (valid, gzip, truncated, wrong magic, count mismatch), the
// spiral set, transforms and the DataLoader's batching and shuffling.
#include <filesystem>
#include <fstream>
#include <set>

#include <unistd.h>
#include <zlib.h>

#include <zerograd/zerograd.hpp>

#include "testing.hpp"

using namespace zg;
namespace data = zg::nn::data;
namespace fs = std::filesystem;
using zg::testing::message_of;

#if defined(__SANITIZE_ADDRESS__)
#define ZG_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ZG_TEST_ASAN 1
#endif
#endif

namespace {

fs::path dir() {
  const fs::path d = fs::temp_directory_path() / ("zerograd_idx_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}

std::string idx_bytes(const std::vector<std::uint32_t>& dims, std::size_t count_override = SIZE_MAX) {
  std::string out = {0, 0, 8, static_cast<char>(dims.size())};
  std::size_t count = 1;
  for (auto d : dims) {
    for (int s = 24; s >= 0; s -= 8) out += static_cast<char>((d >> s) & 0xff);
    count *= d;
  }
  if (count_override != SIZE_MAX) count = count_override;
  for (std::size_t i = 0; i < count; ++i) out += static_cast<char>(i % 251);
  return out;
}

void write(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary) << bytes;
}

void write_gz(const fs::path& p, const std::string& bytes) {
  gzFile f = gzopen(p.c_str(), "wb");
  gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(f);
}

}  // namespace

TEST_CASE("read_idx: plain and gzip files give the same array") {
  const std::string bytes = idx_bytes({3, 4, 5});
  write(dir() / "a.idx", bytes);
  write_gz(dir() / "a.idx.gz", bytes);
  for (const char* name : {"a.idx", "a.idx.gz"}) {
    CAPTURE(name);
    auto a = data::read_idx((dir() / name).string());
    CHECK(a.shape == std::vector<std::size_t>{3, 4, 5});
    REQUIRE(a.values.size() == 60);
    CHECK(a.values[59] == 59);
  }
}

TEST_CASE("read_idx: damaged files name the file and the byte offset") {
  const fs::path p = dir() / "bad.idx";
  SUBCASE("wrong magic") {
    std::string b = idx_bytes({4});
    b[0] = 1;
    write(p, b);
    CHECK(message_of<IOError>([&] { data::read_idx(p.string()); }).find("byte 0: bad magic number") !=
          std::string::npos);
  }
  SUBCASE("not unsigned bytes") {
    std::string b = idx_bytes({4});
    b[2] = 0x0d;  // float
    write(p, b);
    CHECK(message_of<IOError>([&] { data::read_idx(p.string()); }).find("byte 2: element type") != std::string::npos);
  }
  SUBCASE("truncated data") {
    write(p, idx_bytes({10, 10}, 57));
    const std::string msg = message_of<IOError>([&] { data::read_idx(p.string()); });
    CHECK(msg.find("bad.idx") != std::string::npos);
    CHECK(msg.find("byte 69: data ends after 57 of 100 bytes") != std::string::npos);
  }
  SUBCASE("truncated header") {
    write(p, idx_bytes({10, 10}).substr(0, 6));
    CHECK(message_of<IOError>([&] { data::read_idx(p.string()); }).find("byte 4: file ends inside dimension 0") !=
          std::string::npos);
  }
  SUBCASE("extra bytes") {
    write(p, idx_bytes({4}, 9));
    CHECK(message_of<IOError>([&] { data::read_idx(p.string()); }).find("data continues past") != std::string::npos);
  }
  SUBCASE("truncated gzip") {
    write_gz(p, idx_bytes({50, 50}));
    std::ifstream in(p, std::ios::binary);
    std::string gz((std::istreambuf_iterator<char>(in)), {});
    write(p, gz.substr(0, gz.size() / 2));
    CHECK_THROWS_AS(data::read_idx(p.string()), IOError);
  }
  SUBCASE("missing file") {
    CHECK(message_of<IOError>([&] { data::read_idx((dir() / "nope").string()); }).find("cannot open") !=
          std::string::npos);
  }
}

TEST_CASE("load_idx_dataset: images scaled to [0, 1], counts checked") {
  const fs::path d = dir() / "set";
  fs::create_directories(d);
  write_gz(d / "train-images-idx3-ubyte.gz", idx_bytes({6, 2, 3}));
  write(d / "train-labels-idx1-ubyte", std::string{0, 0, 8, 1, 0, 0, 0, 6, 0, 1, 2, 3, 4, 9});
  auto set = data::load_idx_dataset(d.string(), true);
  CHECK(set.images.shape() == std::vector<std::size_t>{6, 1, 2, 3});
  CHECK(set.images(1, 0, 0, 0) == doctest::Approx(6.0 / 255));
  CHECK(set.labels(5) == 9);
  write(d / "t10k-images-idx3-ubyte", idx_bytes({5, 2, 3}));
  write(d / "t10k-labels-idx1-ubyte", std::string{0, 0, 8, 1, 0, 0, 0, 4, 0, 1, 2, 3});
  CHECK(message_of<IOError>([&] { data::load_idx_dataset(d.string(), false); }).find("5 images in") !=
        std::string::npos);
  CHECK(message_of<IOError>([&] { data::load_idx_dataset((dir() / "empty").string(), true); })
            .find("train-images-idx3-ubyte") != std::string::npos);
}

TEST_CASE("DataLoader: batches cover every sample once per epoch, shuffled with the seed") {
  data::TensorDataset set;
  set.images = Tensor<float>::from_shape({10, 1, 1, 2});
  set.labels = Tensor<float>::from_shape({10});
  for (std::size_t i = 0; i < 10; ++i) {
    set.images(i, 0, 0, 0) = float(i);
    set.images(i, 0, 0, 1) = float(100 + i);
    set.labels(i) = float(i);
  }
  Generator gen(3);
  data::DataLoader loader(set, {4, true, false, true}, gen);
  CHECK(loader.batches_per_epoch() == 3);
  std::vector<float> first_epoch, second_epoch;
  for (auto* epoch : {&first_epoch, &second_epoch}) {
    loader.reset();
    data::DataLoader::Batch b;
    std::vector<std::size_t> sizes;
    while (loader.next(b)) {
      sizes.push_back(b.t.size());
      CHECK(b.x.shape() == Shape{b.t.size(), 2});  // flattened
      for (std::size_t i = 0; i < b.t.size(); ++i) {
        CHECK(b.x.data()(i, 0) == b.t.data()(i));  // images travel with their labels
        CHECK(b.x.data()(i, 1) == 100 + b.t.data()(i));
        epoch->push_back(b.t.data()(i));
      }
    }
    CHECK(sizes == std::vector<std::size_t>{4, 4, 2});
    CHECK(std::set<float>(epoch->begin(), epoch->end()).size() == 10);
  }
  CHECK(first_epoch != second_epoch);  // reshuffled
  std::vector<float> sorted(first_epoch);
  std::sort(sorted.begin(), sorted.end());
  CHECK(first_epoch != sorted);

  data::DataLoader drop(set, {4, false, true, false});
  data::DataLoader::Batch b;
  std::size_t batches = 0;
  while (drop.next(b)) {
    CHECK(b.x.shape() == Shape{4, 1, 1, 2});
    ++batches;
  }
  CHECK(batches == 2);
  CHECK(drop.batches_per_epoch() == 2);
}

TEST_CASE("spiral, one_hot and flatten_images") {
  auto s = data::spiral(50, 3, 7);
  CHECK(s.images.shape() == std::vector<std::size_t>{150, 2});
  CHECK(s.labels(149) == 2);
  CHECK(data::spiral(50, 3, 7).images == s.images);  // seeded
  auto oh = data::one_hot(Tensor<float>({2.f, 0.f}), 3);
  CHECK(oh == Tensor<float>({{0, 0, 1}, {1, 0, 0}}));
  CHECK(message_of<ValueError>([] { data::one_hot(Tensor<float>({3.f}), 3); }).find("one_hot: label 3") == 0);
  CHECK(data::flatten_images(Tensor<float>(xt::ones<float>({2, 1, 3, 3}))).shape() ==
        std::vector<std::size_t>{2, 9});
}

namespace {
std::string gzip_bytes(const std::string& bytes) {
  const fs::path p = dir() / "tmp.gz";
  write_gz(p, bytes);
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}
}  // namespace

TEST_CASE("read_idx: memory is bounded by the declared size and a default limit") {
  SUBCASE("a 16 GiB header in a ~2 MB gzip bomb is refused at the header") {
    const fs::path p = dir() / "bomb16g.idx.gz";
    {
      gzFile f = gzopen(p.c_str(), "wb1");
      const std::string header = {0, 0, 8, 3, 0, 0, 0x40, 0, 0, 0, 4, 0, 0, 0, 4, 0};  // (16384, 1024, 1024)
      gzwrite(f, header.data(), static_cast<unsigned>(header.size()));
      const std::string zeros(1 << 20, '\0');
      for (int i = 0; i < 256; ++i) gzwrite(f, zeros.data(), static_cast<unsigned>(zeros.size()));  // 256 MiB
      gzclose(f);
    }
    const auto run = testing::run_in_child([&] { data::read_idx(p.string()); });
    CAPTURE(run.error);
    CHECK(run.error.find("byte 12: the header declares more than the limit of 536870912 bytes") != std::string::npos);
    CHECK(run.peak_growth_kb < 20 * 1024);
  }
  SUBCASE("the limit can be raised; a file too small for its header is still refused before allocating") {
    const fs::path p = dir() / "small_for_header.idx.gz";
    write_gz(p, idx_bytes({16384, 1024, 1024}, 1000));  // declares 16 GiB, holds 1000 bytes
    const auto run = testing::run_in_child([&] { data::read_idx(p.string(), std::size_t{1} << 36); });
    CAPTURE(run.error);
    CHECK(run.error.find("the header declares 17179869184 bytes, more than a") != std::string::npos);
    CHECK(run.peak_growth_kb < 20 * 1024);
  }
  SUBCASE("an allocation that fails is a zg::IOError, not std::bad_alloc") {
#ifdef ZG_TEST_ASAN
    MESSAGE("skipped under AddressSanitizer: its allocator aborts on an address-space limit instead of throwing");
    return;
#endif
    const fs::path p = dir() / "big.idx.gz";
    {
      gzFile f = gzopen(p.c_str(), "wb1");
      const std::string header = {0, 0, 8, 1, 0x10, 0, 0, 0};  // 256 MiB
      gzwrite(f, header.data(), static_cast<unsigned>(header.size()));
      std::string noise(300 << 10, '\0');  // incompressible: the file could hold 256 MiB
      std::uint32_t x = 1;
      for (char& c : noise) c = static_cast<char>((x = x * 1664525u + 1013904223u) >> 24);
      gzwrite(f, noise.data(), static_cast<unsigned>(noise.size()));
      gzclose(f);
    }
    const auto run = testing::run_in_child([&] {
      rlimit small{std::size_t{128} << 20, std::size_t{128} << 20};
      rlimit now{};
      ::getrlimit(RLIMIT_AS, &now);
      // Leave room for what is mapped already, not for 256 MiB more.
      std::ifstream statm("/proc/self/statm");
      std::size_t pages = 0;
      statm >> pages;
      small.rlim_cur = small.rlim_max = pages * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)) + (std::size_t{128} << 20);
      if (now.rlim_cur != RLIM_INFINITY && now.rlim_cur < small.rlim_cur) small = now;
      ::setrlimit(RLIMIT_AS, &small);
      data::read_idx(p.string());
    });
    CAPTURE(run.error);
    CHECK(run.error.find("not a zg::Error") == std::string::npos);
    CHECK(run.error.find("byte 8: cannot allocate the 268435456 bytes the header declares") != std::string::npos);
    CHECK(run.error.find("read_idx: '" + p.string() + "'") == 0);
  }
}

TEST_CASE("read_idx: failures of reading name their cause") {
  const std::string good = idx_bytes({10, 10});
  SUBCASE("a gzip file whose CRC/length trailer is cut off") {
    const fs::path p = dir() / "trailer.idx.gz";
    const std::string gz = gzip_bytes(good);
    write(p, gz.substr(0, gz.size() - 8));
    const std::string msg = message_of<IOError>([&] { data::read_idx(p.string()); });
    CHECK(msg.find("byte 112: the gzip stream is truncated") != std::string::npos);
  }
  SUBCASE("a bad CRC in the trailer") {
    const fs::path p = dir() / "crc.idx.gz";
    std::string gz = gzip_bytes(good);
    gz[gz.size() - 8] = static_cast<char>(gz[gz.size() - 8] ^ 0xff);
    write(p, gz);
    const std::string msg = message_of<IOError>([&] { data::read_idx(p.string()); });
    CHECK(msg.find("decompression failed: incorrect data check") != std::string::npos);
  }
  SUBCASE("corrupt deflate data on the first read") {
    const fs::path p = dir() / "corrupt.idx.gz";
    std::string gz = gzip_bytes(good);
    for (std::size_t i = 10; i < 20; ++i) gz[i] = static_cast<char>(gz[i] ^ 0x55);
    write(p, gz);
    const std::string msg = message_of<IOError>([&] { data::read_idx(p.string()); });
    CAPTURE(msg);
    CHECK(msg.find("byte 0: decompression failed: ") != std::string::npos);
  }
  SUBCASE("a directory") {
    const fs::path p = dir() / "d.idx";
    fs::create_directories(p);
    CHECK(message_of<IOError>([&] { data::read_idx(p.string()); }).find("is a directory") != std::string::npos);
  }
  SUBCASE("an I/O error from the OS") {
    const std::string msg = message_of<IOError>([&] { data::read_idx("/proc/self/mem"); });
    CHECK(msg.find("byte 0: read error: Input/output error") != std::string::npos);
  }
  SUBCASE("a plain file that ends early still says so") {
    const fs::path p = dir() / "short.idx";
    write(p, std::string{0, 0});
    CHECK(message_of<IOError>([&] { data::read_idx(p.string()); }).find("byte 0: file ends inside the 4-byte magic number") !=
          std::string::npos);
  }
  SUBCASE("element types are printed in hex") {
    const fs::path p = dir() / "type.idx";
    std::string b = idx_bytes({4});
    b[2] = 0x0D;
    write(p, b);
    CHECK(message_of<IOError>([&] { data::read_idx(p.string()); }).find("element type 0x0d is not unsigned byte (0x08)") !=
          std::string::npos);
  }
}
