// .npy/.npz arrays written by numpy (tests/fixtures/npy, made by
// make_npy_fixtures.py there): every dtype, byte order and Fortran order;
// load_npz_dataset; hostile headers.
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include <zerograd/zerograd.hpp>

#include "testing.hpp"

using namespace zg;
namespace data = zg::nn::data;
namespace fs = std::filesystem;

namespace {

std::string fixture(const std::string& name) { return (fs::path(ZG_NPY_FIXTURES) / name).string(); }

fs::path scratch(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("zerograd_npy_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d / name;
}

// A version 1.0 .npy file: the header dict, then `data`.
std::string npy_bytes(const std::string& dict, const std::string& data) {
  std::string header = dict;
  header.append((64 - (10 + header.size() + 1) % 64) % 64, ' ');
  header += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  return out + header + data;
}

std::string write(const std::string& name, const std::string& bytes) {
  const fs::path p = scratch(name);
  std::ofstream(p, std::ios::binary) << bytes;
  return p.string();
}

}  // namespace

TEST_CASE("load_npy: every dtype numpy writes, either byte order, as float") {
  const Tensor<float> signed_values = {{-3, 0, 1}, {2, 100, 127}};
  const Tensor<float> unsigned_values = {{0, 1, 2}, {3, 100, 255}};
  for (const char* name : {"f4_le", "f8_le", "i8_le", "i4_le", "i2_le", "i1_byte", "f4_be", "f8_be", "i8_be", "i4_be",
                           "i2_be"}) {
    CAPTURE(name);
    CHECK(nn::load_npy(fixture(std::string(name) + ".npy")) == signed_values);
  }
  for (const char* name : {"u1_byte", "u2_le", "u4_be", "u8_le"}) {
    CAPTURE(name);
    CHECK(nn::load_npy(fixture(std::string(name) + ".npy")) == unsigned_values);
  }
  CHECK(nn::load_npy(fixture("b1_byte.npy")) == Tensor<float>({{0, 1, 1}, {0, 0, 1}}));
}

TEST_CASE("load_npy: Fortran-order arrays come back in C order") {
  for (const char* name : {"f8_fortran.npy", "i4_be_fortran.npy"}) {
    CAPTURE(name);
    const Tensor<float> a = nn::load_npy(fixture(name));
    REQUIRE(a.shape() == Shape{2, 3, 4});
    CHECK(a(1, 2, 3) == 123.f);
    CHECK(a(0, 1, 2) == 12.f);
    CHECK(a.data()[1] == 1.f);  // C order: the last index moves fastest
  }
}

TEST_CASE("load_npy: hostile files are IOErrors naming the file and byte offset") {
  const auto message = [](const std::string& path) { return testing::message_of<IOError>([&] { nn::load_npy(path); }); };
  SUBCASE("a shape larger than the file, refused before allocating it") {
    const std::string p =
        write("big.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000,), }", "12345678"));
    CHECK(message(p) == "load_npy: '" + p + "': byte 128: npy data holds 8 bytes, shape (1000000000) of <f4 needs 4000000000");
    const auto run = testing::run_in_child([&] { nn::load_npy(p); });
    CHECK(run.error.find("needs 4000000000") != std::string::npos);
    CHECK(run.peak_growth_kb < 20 * 1024);
  }
  SUBCASE("negative, overflowing and too many dimensions") {
    CHECK(message(write("neg.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 3), }", "")))
              .find("byte 61: npy shape holds a non-integer") != std::string::npos);
    CHECK(message(write("huge.npy", npy_bytes("{'descr': '<i8', 'fortran_order': False, 'shape': (99999999999,), }", "")))
              .find("npy dimension is too large") != std::string::npos);
    CHECK(message(write("many.npy",
                        npy_bytes("{'descr': '|u1', 'fortran_order': False, 'shape': (65536, 65536, 65536), }", "")))
              .find("npy shape has too many elements") != std::string::npos);
  }
  SUBCASE("bad magic, unknown dtypes, a damaged header, a missing file") {
    const std::string p = write("magic.npy", "\x93NUMPX\x01\x00\x10\x00{}");
    CHECK(message(p) == "load_npy: '" + p + "': byte 0: not an .npy array (bad magic)");
    CHECK(message(write("c8.npy", npy_bytes("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", "12345678")))
              .find("byte 20: dtype '<c8' is not supported (float '<f4' '<f8', int '|i1'") != std::string::npos);
    CHECK(message(write("f4bar.npy", npy_bytes("{'descr': '|f4', 'fortran_order': False, 'shape': (1,), }", "1234")))
              .find("dtype '|f4' is not supported") != std::string::npos);
    CHECK(message(write("fo.npy", npy_bytes("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1,), }", "1234")))
              .find("npy fortran_order is neither True nor False") != std::string::npos);
    CHECK(message(write("short.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", "").substr(0, 30)))
              .find("byte 10: npy header of 118 bytes runs past the end of the 30-byte file") != std::string::npos);
    CHECK(message(scratch("absent.npy").string()).find("load_npy: cannot open '") == 0);
  }
}

TEST_CASE("load_npz_dataset: x and y from numpy's savez and savez_compressed") {
  SUBCASE("byte images are scaled to [0, 1], labels are class indices") {
    const data::TensorDataset d = data::load_npz_dataset(fixture("dataset_u1.npz"));
    REQUIRE(d.images.shape() == Shape{5, 1, 2, 2});
    CHECK(d.images(1, 0, 0, 0) == 48.f / 255.f);
    CHECK(d.labels == Tensor<float>({3, 0, 1, 2, 3}));
    CHECK(d.classes == 4);
    const data::TensorDataset f = data::load_npz_dataset(fixture("dataset_f4.npz"), "images", "labels");
    REQUIRE(f.images.shape() == Shape{5, 4});
    CHECK(f.labels == d.labels);  // big-endian int32 in a compressed archive
    for (std::size_t i = 0; i < 20; ++i) CHECK(f.images.data()[i] == doctest::Approx(d.images.data()[i]).epsilon(1e-6));
  }
  SUBCASE("errors name the file, the member and the byte offset") {
    const auto message = [](const std::string& path, const std::string& x = "x") {
      return testing::message_of<IOError>([&] { data::load_npz_dataset(path, x); });
    };
    const std::string bad = fixture("dataset_bad_labels.npz");
    CHECK(message(bad) == "load_npz_dataset: '" + bad +
                              "' entry 'y.npy': byte 144: label 2.500000 at index 2 is not a class index (a whole number >= 0)");
    CHECK(message(fixture("dataset_mismatch.npz")).find("entry 'y.npy': byte 128: y of shape (4) is not one label per sample of x (5, 1, 2, 2)") !=
          std::string::npos);
    CHECK(message(fixture("dataset_u1.npz"), "z").find("has no member 'z.npy' (it holds 'x', 'y')") != std::string::npos);
    CHECK(message(fixture("f4_le.npy")).find("cannot open '") != std::string::npos);  // not a zip
  }
}

TEST_CASE("decode_npy and checkpoints still take only float32 in C order") {
  const std::string i8 = npy_bytes("{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }", std::string(8, '\0'));
  CHECK_THROWS_WITH_AS(nn::decode_npy(i8, "ckpt"), "ckpt: byte 0: dtype '<i8' is not supported here (float32 '<f4' or float64 '<f8')",
                       IOError);
  const std::string fortran = npy_bytes("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", std::string(16, '\0'));
  CHECK_THROWS_WITH_AS(nn::decode_npy(fortran, "ckpt"), "ckpt: byte 0: Fortran-order arrays are not supported here", IOError);
  const nn::NpyHeader h = nn::decode_npy_header(fortran, "ckpt");
  CHECK(h.fortran_order);
  CHECK(h.item_size() == 4);
}

#ifdef ZG_TRAIN_EXE
TEST_CASE("train --data file.npz: trains on numpy arrays in Keras's mnist.npz layout") {
  const fs::path out = scratch("train_out"), log = scratch("train_log.txt");
  const auto run = [&](const std::string& data) {
    const std::string cmd = std::string(ZG_TRAIN_EXE) + " --data " + data + " --threads 1 --epochs 1 --batch-size 8 --out " +
                            out.string() + " >" + log.string() + " 2>&1";
    const int status = std::system(cmd.c_str());
    std::ifstream in(log);
    return std::make_pair(WIFEXITED(status) ? WEXITSTATUS(status) : -1, std::string(std::istreambuf_iterator<char>(in), {}));
  };
  const auto [status, text] = run(fixture("mnist_like.npz"));
  CAPTURE(text);
  CHECK(status == 0);
  CHECK(text.find("16 training and 8 test images") != std::string::npos);
  CHECK(text.find("epoch 1: train loss ") != std::string::npos);
  const auto [bad_status, bad_text] = run(fixture("dataset_u1.npz"));
  CAPTURE(bad_text);
  CHECK(bad_status == 1);
  CHECK(bad_text.find("has no member 'x_train.npy' (it holds 'x', 'y')") != std::string::npos);
}
#endif
