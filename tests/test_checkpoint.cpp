// .npz checkpoints: bit-exact round trip, numpy interoperability, and clear
// errors (with the module untouched) for damaged or mismatched files.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <filesystem>
#include <fstream>

#include <signal.h>
#include <unistd.h>
#include <zip.h>

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

// A zip member made as libzip reads it: `head`, then `zeros` zero bytes. A
// 256 MiB bomb so costs no memory to write.
struct MemberSource {
  std::string head;
  std::uint64_t zeros = 0, offset = 0;
  zip_error_t error;
};

zip_int64_t member_read(void* state, void* data, zip_uint64_t len, zip_source_cmd_t cmd) {
  auto* s = static_cast<MemberSource*>(state);
  const std::uint64_t total = s->head.size() + s->zeros;
  switch (cmd) {
    case ZIP_SOURCE_OPEN: s->offset = 0; return 0;
    case ZIP_SOURCE_READ: {
      const std::uint64_t n = std::min<std::uint64_t>(len, total - s->offset);
      auto* out = static_cast<char*>(data);
      const std::uint64_t from_head = s->offset < s->head.size() ? std::min<std::uint64_t>(n, s->head.size() - s->offset) : 0;
      std::memcpy(out, s->head.data() + s->offset, from_head);
      std::memset(out + from_head, 0, n - from_head);
      s->offset += n;
      return static_cast<zip_int64_t>(n);
    }
    case ZIP_SOURCE_CLOSE: return 0;
    case ZIP_SOURCE_STAT: {
      auto* st = static_cast<zip_stat_t*>(data);
      zip_stat_init(st);
      st->size = total;
      st->valid |= ZIP_STAT_SIZE;
      return sizeof(zip_stat_t);
    }
    case ZIP_SOURCE_ERROR: return zip_error_to_data(&s->error, data, len);
    case ZIP_SOURCE_FREE: zip_error_fini(&s->error); delete s; return 0;
    case ZIP_SOURCE_SUPPORTS:
      return zip_source_make_command_bitmap(ZIP_SOURCE_OPEN, ZIP_SOURCE_READ, ZIP_SOURCE_CLOSE, ZIP_SOURCE_STAT,
                                            ZIP_SOURCE_ERROR, ZIP_SOURCE_FREE, -1);
    default: zip_error_set(&s->error, ZIP_ER_OPNOTSUPP, 0); return -1;
  }
}

// Adds (or replaces) member `name` of the zip at path: head + zeros bytes,
// deflated (fast level) or stored.
void add_member(const fs::path& path, const std::string& name, const std::string& head, std::uint64_t zeros = 0,
                bool deflate = false) {
  int err = 0;
  zip_t* z = zip_open(path.c_str(), ZIP_CREATE, &err);
  REQUIRE(z);
  auto* state = new MemberSource{head, zeros, 0, {}};
  zip_error_init(&state->error);
  zip_source_t* src = zip_source_function(z, member_read, state);
  REQUIRE(src);
  const zip_int64_t i = zip_file_add(z, name.c_str(), src, ZIP_FL_OVERWRITE);
  REQUIRE(i >= 0);
  zip_set_file_compression(z, static_cast<zip_uint64_t>(i), deflate ? ZIP_CM_DEFLATE : ZIP_CM_STORE, deflate ? 1 : 0);
  REQUIRE(zip_close(z) == 0);
}

// Adds many stored members at once (one zip_close), each holding `bytes`.
void add_members(const fs::path& path, const std::vector<std::string>& names, const std::string& bytes) {
  int err = 0;
  zip_t* z = zip_open(path.c_str(), ZIP_CREATE, &err);
  REQUIRE(z);
  for (const auto& name : names) {
    zip_source_t* src = zip_source_buffer(z, bytes.data(), bytes.size(), 0);
    REQUIRE(src);
    const zip_int64_t i = zip_file_add(z, name.c_str(), src, ZIP_FL_OVERWRITE);
    REQUIRE(i >= 0);
    zip_set_file_compression(z, static_cast<zip_uint64_t>(i), ZIP_CM_STORE, 0);
  }
  REQUIRE(zip_close(z) == 0);
}

void remove_member(const fs::path& path, const std::string& name) {
  int err = 0;
  zip_t* z = zip_open(path.c_str(), 0, &err);
  REQUIRE(z);
  const zip_int64_t i = zip_name_locate(z, name.c_str(), 0);
  REQUIRE(i >= 0);
  REQUIRE(zip_delete(z, static_cast<zip_uint64_t>(i)) == 0);
  REQUIRE(zip_close(z) == 0);
}

// The .npy header numpy writes for a float32 array of n elements.
std::string f4_header(std::uint64_t n) {
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(n) + ",), }";
  dict.append((64 - (10 + dict.size() + 1) % 64) % 64, ' ');
  dict += '\n';
  return std::string("\x93NUMPY\x01\x00", 8) + char(dict.size() & 0xff) + char(dict.size() >> 8) + dict;
}

// Where member name's data starts in a zip's bytes (from its local header).
std::size_t data_offset(const std::string& zip, const std::string& name) {
  const std::size_t at = zip.find(name);
  REQUIRE(at != std::string::npos);
  const std::size_t local = at - 30;
  REQUIRE(zip.compare(local, 4, "PK\x03\x04") == 0);
  const auto u16 = [&](std::size_t i) { return std::size_t(std::uint8_t(zip[i])) | std::size_t(std::uint8_t(zip[i + 1])) << 8; };
  return local + 30 + u16(local + 26) + u16(local + 28);
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

TEST_CASE("load_checkpoint: sizes are bounded before anything is inflated, unwanted members never are") {
  const fs::path dir = temp_dir();
  auto a = model(11), b = model(12);
  const auto before = b->state();
  const fs::path path = dir / "bounded.npz";
  nn::save_checkpoint(path.string(), *a);

  SUBCASE("a 256 MiB deflated bomb beside a good checkpoint: refused at the zip directory") {
    add_member(path, "bomb0.npy", f4_header(std::uint64_t{1} << 26), std::uint64_t{1} << 28, true);
    CHECK(fs::file_size(path) < (std::uint64_t{2} << 20));
    const auto run = testing::run_in_child([&] { nn::load_checkpoint(path.string(), *b); });
    CAPTURE(run.error);
    CHECK(run.error.find("unexpected entries 'bomb0'") != std::string::npos);
    CHECK(run.peak_growth_kb < 20 * 1024);  // inflating it would take 256 MiB at least
    CHECK(b->state() == before);
  }
  SUBCASE("an unexpected member is not inflated, even when skipping it (non-strict)") {
    // Damaged deflate data: inflating it would fail, so a clean load proves it was never read.
    add_member(path, "junk.npy", f4_header(1000), 4000, true);
    std::string bytes = read_bytes(path);
    const std::size_t at = data_offset(bytes, "junk.npy");
    for (std::size_t i = at; i < at + 8; ++i) bytes[i] = static_cast<char>(bytes[i] ^ 0xa5);
    write_bytes(path, bytes);
    nn::LoadOptions lenient;
    lenient.strict = false;
    const auto result = nn::load_checkpoint(path.string(), *b, {}, lenient);
    CHECK(result.unexpected == std::vector<std::string>{"junk"});
    CHECK(result.missing.empty());
    CHECK(same_state(*a, *b));
  }
  SUBCASE("a module entry declaring more than its shape needs is refused before inflating") {
    add_member(path, "fc0.weight.npy", f4_header(std::uint64_t{1} << 25), std::uint64_t{1} << 27, true);
    const auto run = testing::run_in_child([&] { nn::load_checkpoint(path.string(), *b); });
    CAPTURE(run.error);
    CHECK(run.error.find("'fc0.weight' declares 134217856 bytes, the module's float32 (3, 4) array needs 48") !=
          std::string::npos);
    CHECK(run.peak_growth_kb < 20 * 1024);
  }
  SUBCASE("entries for load_extra are bounded in all; the caller can raise the bound") {
    const std::uint64_t n = 1 << 20;  // 4 MiB of float32: over the default for this ~0.2 kB module
    add_member(path, "optimizer.big.npy", f4_header(n), 4 * n, true);
    nn::NamedArrays got;
    auto take = [&](const nn::NamedArrays& rest) { got = rest; };
    const std::string msg = message_of<ValueError>([&] { nn::load_checkpoint(path.string(), *b, take); });
    CHECK(msg.find("declare 4194432 bytes in all, more than the limit of") != std::string::npos);
    CHECK(msg.find("LoadOptions::max_extra_bytes") != std::string::npos);
    CHECK(b->state() == before);
    nn::LoadOptions roomy;
    roomy.max_extra_bytes = 8 << 20;
    nn::load_checkpoint(path.string(), *b, take, roomy);
    REQUIRE(got.size() == 1);
    CHECK(got[0].second.size() == n);
    CHECK(same_state(*a, *b));
  }
  SUBCASE("entries load_extra does not take stay unexpected and uninflated") {
    add_member(path, "optimizer.step.npy", nn::encode_npy(Tensor<float>({0.f, 3.f})));
    add_member(path, "bomb0.npy", f4_header(std::uint64_t{1} << 25), std::uint64_t{1} << 27, true);
    nn::LoadOptions only_optimizer;
    only_optimizer.extra_names = [](const std::string& name) { return name.rfind("optimizer.", 0) == 0; };
    const auto run = testing::run_in_child(
        [&] { nn::load_checkpoint(path.string(), *b, [](const nn::NamedArrays&) {}, only_optimizer); });
    CAPTURE(run.error);
    CHECK(run.error.find("unexpected entries 'bomb0' (not in MLP and not taken by load_extra") != std::string::npos);
    CHECK(run.peak_growth_kb < 20 * 1024);
  }
}

TEST_CASE("load_checkpoint verifies every member's CRC-32") {
  const fs::path dir = temp_dir();
  auto a = model(13), b = model(14);
  const auto before = b->state();
  const fs::path path = dir / "crc.npz";
  SUBCASE("a stored member") { nn::save_checkpoint(path.string(), *a); }
  SUBCASE("a deflated member, as numpy.savez_compressed writes") {
    nn::save_checkpoint(path.string(), *a);
    add_member(path, "fc0.weight.npy", nn::encode_npy(a->state()[0].second), 0, true);
  }
  std::string bytes = read_bytes(path);
  if (bytes.find("fc0.weight.npy") == bytes.rfind("fc0.weight.npy")) FAIL("the member name should be in the local and central headers");
  const std::size_t at = data_offset(bytes, "fc0.weight.npy");
  const std::size_t flip = at + (bytes[at] == '\x93' ? 128 + 5 : 20);  // a data byte, or inside the deflate stream
  bytes[flip] = static_cast<char>(bytes[flip] ^ 0x01);
  write_bytes(path, bytes);
  const std::string msg = message_of<IOError>([&] { nn::load_checkpoint(path.string(), *b); });
  CAPTURE(msg);
  CHECK(msg.find("entry 'fc0.weight.npy'") != std::string::npos);
  CHECK(msg.find(path.string()) != std::string::npos);
  CHECK(b->state() == before);
}

TEST_CASE("load_checkpoint is strict by default, non-strict reports missing and unexpected names") {
  const fs::path dir = temp_dir();
  auto a = model(15), b = model(16);
  const auto before = b->state();
  const fs::path path = dir / "strict.npz";
  nn::save_checkpoint(path.string(), *a);
  nn::LoadOptions lenient;
  lenient.strict = false;

  SUBCASE("an extra parameter is an error listing it and naming the option") {
    add_member(path, "fc9.weight.npy", nn::encode_npy(Tensor<float>::from_shape({2, 2})));
    add_member(path, "fc9.bias.npy", nn::encode_npy(Tensor<float>::from_shape({2})));
    const std::string msg = message_of<ValueError>([&] { nn::load_checkpoint(path.string(), *b); });
    CHECK(msg.find("unexpected entries 'fc9.weight', 'fc9.bias'") != std::string::npos);
    CHECK(msg.find("strict = false") != std::string::npos);
    CHECK(b->state() == before);
    const auto result = nn::load_checkpoint(path.string(), *b, {}, lenient);
    CHECK(result.unexpected == std::vector<std::string>{"fc9.weight", "fc9.bias"});
    CHECK(same_state(*a, *b));
  }
  SUBCASE("20,000 unexpected entries and a 60 KB name: the message names a few and counts the rest") {
    std::vector<std::string> names{std::string(60000, 'a') + ".npy"};
    for (int i = 0; i < 20000; ++i) names.push_back("u" + std::to_string(i) + ".npy");
    const std::string bytes = nn::encode_npy(Tensor<float>::from_shape({1}));
    add_members(path, names, bytes);
    const std::string msg = message_of<ValueError>([&] { nn::load_checkpoint(path.string(), *b); });
    CAPTURE(msg.substr(0, 600));
    CHECK(msg.size() < 1500);
    CHECK(msg.find("unexpected entries '" + std::string(80, 'a') + "...' (60000 characters), 'u0', 'u1', 'u2', "
                   "'u3', and 19996 more") != std::string::npos);
    CHECK(msg.find("strict = false") != std::string::npos);
    CHECK(b->state() == before);
  }
  SUBCASE("a missing entry: an error, or reported while the rest loads") {
    remove_member(path, "bn0.running_var.npy");
    const std::string msg = message_of<ValueError>([&] { nn::load_checkpoint(path.string(), *b); });
    CHECK(msg.find("'bn0.running_var' is missing") != std::string::npos);
    CHECK(b->state() == before);
    const auto result = nn::load_checkpoint(path.string(), *b, {}, lenient);
    CHECK(result.missing == std::vector<std::string>{"bn0.running_var"});
    const auto now = b->state();
    for (std::size_t i = 0; i < now.size(); ++i) {
      CAPTURE(now[i].first);
      CHECK(now[i].second == (now[i].first == "bn0.running_var" ? before : a->state())[i].second);
    }
  }
  SUBCASE("names that are not plain parameter paths are refused in both modes") {
    for (const std::string name : {"../evil.npy", "/tmp/evil.npy", "a/b.npy", "fc0..weight.npy", ".npy", ".x.npy"}) {
      CAPTURE(name);
      const fs::path p = dir / "evil.npz";
      fs::copy_file(path, p, fs::copy_options::overwrite_existing);
      add_member(p, name, nn::encode_npy(Tensor<float>::from_shape({4})));
      for (bool strict : {true, false}) {
        nn::LoadOptions o;
        o.strict = strict;
        const std::string msg = message_of<ValueError>([&] { nn::load_checkpoint(p.string(), *b, {}, o); });
        CHECK(msg.find("entry '" + name + "' is not a plain parameter name") != std::string::npos);
        CHECK(b->state() == before);
      }
    }
  }
  SUBCASE("another architecture that holds every needed name is still refused") {
    zg::manual_seed(1);
    nn::MLPOptions o;
    o.batch_norm = true;
    nn::MLP bigger(3, {4, 4}, 2, o);
    auto state = bigger.state();
    for (auto& [name, arr] : state)  // make the shared names fit b
      for (const auto& [bname, barr] : b->state())
        if (name == bname) arr = barr;
    nn::save_npz(path.string(), state);
    const std::string msg = message_of<ValueError>([&] { nn::load_checkpoint(path.string(), *b); });
    CAPTURE(msg);
    CHECK(msg.find("unexpected entries 'bn1.gamma', 'bn1.beta', 'fc2.weight', 'fc2.bias'") != std::string::npos);
    CHECK(b->state() == before);
  }
}

namespace {
std::vector<fs::path> temporaries(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().find(".tmp") != std::string::npos) out.push_back(e.path());
  return out;
}
}  // namespace

TEST_CASE("save_checkpoint: a bad path is refused in words before anything is written") {
  const fs::path dir = zg::testing::empty_dir("ckpt_paths");
  auto a = model(17);
  write_bytes(dir / "file", "x");
  struct Case {
    std::string path, words;
  };
  for (const Case& c : {Case{"", "the path is empty"},
                        Case{(dir / "file" / "ck.npz").string(), "'" + (dir / "file").string() + "' is not a directory"},
                        Case{(dir / "nope" / "ck.npz").string(), "the directory '" + (dir / "nope").string() + "' does not exist"},
                        Case{dir.string(), "is a directory"}, Case{dir.string() + "/", "names a directory"}}) {
    CAPTURE(c.path);
    const std::string msg = message_of<IOError>([&] { nn::save_checkpoint(c.path, *a); });
    CHECK(msg.find("save_npz: cannot save to '" + c.path + "': ") == 0);
    CHECK(msg.find(c.words) != std::string::npos);
    CHECK(msg.find("libzip error") == std::string::npos);
  }
  std::size_t entries = 0;
  for (const auto& e : fs::directory_iterator(dir)) entries += e.path().filename() != "file";
  CHECK(entries == 0);
}

TEST_CASE("save_checkpoint: saves killed midway leave at most one temporary file") {
  const fs::path dir = zg::testing::empty_dir("ckpt_killed");
  const fs::path path = dir / "ck.npz";
  zg::manual_seed(18);
  nn::MLP big(512, {1024}, 512);  // ~8 MB: each save takes a few milliseconds
  nn::save_checkpoint(path.string(), big);
  std::size_t most = 0;
  for (int kill = 0; kill < 12; ++kill) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      for (;;) nn::save_checkpoint(path.string(), big);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(15 + 7 * kill));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    REQUIRE(WIFSIGNALED(status));
    most = std::max(most, temporaries(dir).size());
  }
  CAPTURE(most);
  CHECK(most <= 1);
  zg::manual_seed(19);
  nn::MLP other(512, {1024}, 512);
  nn::load_checkpoint(path.string(), other);
  CHECK(other.state()[0].second == big.state()[0].second);
  nn::save_checkpoint(path.string(), big);  // a later save clears the dead one's temporary
  CHECK(temporaries(dir).empty());
}
