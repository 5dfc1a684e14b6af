// .npz checkpoints: bit-exact round trip, numpy interoperability, and clear
// errors (with the module untouched) for damaged or mismatched files.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include <zerograd/nn.hpp>

#include "testing.hpp"

using namespace zg;
using zg::testing::message_of;
namespace fs = std::filesystem;

namespace {

fs::path temp_dir() {
  fs::path dir = fs::temp_directory_path() / ("zerograd_ckpt_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir;
}

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << bytes;
}

bool same_state(const nn::Module& a, const nn::Module& b) {
  auto sa = a.state(), sb = b.state();
  if (sa.size() != sb.size()) return false;
  for (std::size_t i = 0; i < sa.size(); ++i)
    if (sa[i].first != sb[i].first || sa[i].second != sb[i].second) return false;
  return true;
}

std::shared_ptr<nn::MLP> model(unsigned seed) {
  zg::manual_seed(seed);
  nn::MLPOptions o;
  o.batch_norm = true;
  return std::make_shared<nn::MLP>(3, std::vector<std::size_t>{4}, 2, o);
}

}  // namespace

TEST_CASE("checkpoint round trip is bit-exact, with extra entries") {
  const fs::path path = temp_dir() / "roundtrip.npz";
  auto a = model(1), b = model(2);
  a->forward(Variable(Tensor<float>(xt::ones<float>({4, 3}))));  // move running stats
  REQUIRE_FALSE(same_state(*a, *b));
  nn::NamedArrays extra = {{"optimizer.step", Tensor<float>(7.f)}};
  nn::save_checkpoint(path.string(), *a, extra);
  nn::NamedArrays got;
  nn::load_checkpoint(path.string(), *b, [&](const nn::NamedArrays& rest) { got = rest; });
  CHECK(same_state(*a, *b));
  REQUIRE(got.size() == 1);
  CHECK(got[0].first == "optimizer.step");
  CHECK(got[0].second() == 7.f);
}

TEST_CASE("npy encoding matches numpy's format and decodes back") {
  Tensor<float> a = {{1.5f, -2.f, 3.f}, {4.f, 5.f, 6.25f}};
  const std::string bytes = nn::encode_npy(a);
  CHECK(bytes.substr(1, 5) == "NUMPY");
  CHECK((bytes.size() - a.size() * 4) % 64 == 0);  // header padded to 64 bytes
  CHECK(bytes.find("'shape': (2, 3)") != std::string::npos);
  CHECK(nn::encode_npy(Tensor<float>({1.f, 2.f})).find("'shape': (2,)") != std::string::npos);
  CHECK(nn::encode_npy(Tensor<float>(1.f)).find("'shape': ()") != std::string::npos);
  auto back = nn::decode_npy(bytes, "test");
  CHECK(back.as_float() == a);
}

TEST_CASE("numpy reads our checkpoints and we read numpy's") {
  const char* python = "/usr/bin/python3";
  if (std::system((std::string(python) + " -c 'import numpy' 2>/dev/null").c_str()) != 0) {
    MESSAGE("python3-numpy is not installed: skipped");
    return;
  }
  const fs::path dir = temp_dir();
  auto a = model(3);
  nn::save_checkpoint((dir / "ours.npz").string(), *a);
  // numpy checks a value, then writes its own file (compressed) with doubled weights.
  const std::string script =
      "import numpy as np\n"
      "d = np.load('" + (dir / "ours.npz").string() + "')\n"
      "assert d['fc0.weight'].dtype == np.float32 and d['fc0.weight'].shape == (3, 4)\n"
      "assert d['bn0.running_var'].tolist() == [1, 1, 1, 1]\n"
      "np.savez_compressed('" + (dir / "theirs.npz").string() + "', **{k: d[k] * 2 for k in d.files})\n";
  write_bytes(dir / "script.py", script);
  REQUIRE(std::system((std::string(python) + " " + (dir / "script.py").string()).c_str()) == 0);
  auto b = model(4);
  nn::load_checkpoint((dir / "theirs.npz").string(), *b);
  CHECK(b->named_parameters()[0].second.data() == a->named_parameters()[0].second.data() * 2.f);
}

TEST_CASE("damaged or mismatched checkpoints: clear errors, module unchanged") {
  const fs::path dir = temp_dir();
  auto a = model(5);
  const fs::path good = dir / "good.npz";
  nn::save_checkpoint(good.string(), *a);
  const std::string bytes = read_bytes(good);
  auto b = model(6);
  auto before = b->state();
  auto unchanged = [&] {
    auto now = b->state();
    for (std::size_t i = 0; i < now.size(); ++i)
      if (now[i].second != before[i].second) return false;
    return true;
  };

  SUBCASE("truncated") {
    for (std::size_t cut : {std::size_t{0}, std::size_t{10}, bytes.size() / 2, bytes.size() - 5}) {
      CAPTURE(cut);
      write_bytes(dir / "cut.npz", bytes.substr(0, cut));
      CHECK(message_of<IOError>([&] { nn::load_checkpoint((dir / "cut.npz").string(), *b); }).find("load_npz") == 0);
      CHECK(unchanged());
    }
  }
  SUBCASE("corrupted bytes") {
    std::string bad = bytes;
    for (std::size_t i = 40; i < bad.size(); i += 97) bad[i] = static_cast<char>(bad[i] ^ 0x5a);
    write_bytes(dir / "bad.npz", bad);
    CHECK_THROWS_AS(nn::load_checkpoint((dir / "bad.npz").string(), *b), Error);
    CHECK(unchanged());
  }
  SUBCASE("not a zip at all") {
    write_bytes(dir / "text.npz", "hello");
    CHECK(message_of<IOError>([&] { nn::load_checkpoint((dir / "text.npz").string(), *b); })
              .find("cannot open") != std::string::npos);
  }
  SUBCASE("missing file") {
    CHECK(message_of<IOError>([&] { nn::load_checkpoint((dir / "nope.npz").string(), *b); })
              .find("nope.npz") != std::string::npos);
  }
  SUBCASE("shape mismatch names every problem") {
    zg::manual_seed(1);
    nn::MLP other(5, {4}, 2);
    nn::save_checkpoint((dir / "other.npz").string(), other);
    const std::string msg = message_of<ValueError>([&] { nn::load_checkpoint((dir / "other.npz").string(), *b); });
    CHECK(msg.find("'fc0.weight' has shape (5, 4), the module expects (3, 4)") != std::string::npos);
    CHECK(msg.find("'bn0.gamma' is missing") != std::string::npos);
    CHECK(unchanged());
  }
  SUBCASE("an extra loader that throws leaves the module unchanged") {
    CHECK_THROWS(nn::load_checkpoint(good.string(), *b, [](const nn::NamedArrays&) { throw ValueError("no"); }));
    CHECK(unchanged());
  }
}

TEST_CASE("a failed save keeps the previous checkpoint intact") {
  const fs::path dir = temp_dir();
  const fs::path path = dir / "keep.npz";
  auto a = model(7);
  nn::save_checkpoint(path.string(), *a);
  const std::string before = read_bytes(path);
  // The temp file cannot be created inside a path whose parent is a file.
  CHECK_THROWS_AS(nn::save_checkpoint((path / "sub.npz").string(), *a), IOError);
  CHECK(read_bytes(path) == before);
  auto b = model(8);
  nn::load_checkpoint(path.string(), *b);
  CHECK(same_state(*a, *b));
}
