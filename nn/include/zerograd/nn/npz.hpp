#pragma once
// .npy and .npz (numpy) files: what checkpoints are made of.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "zerograd/variable.hpp"

namespace zg::nn {

// The header of an .npy array: "<f4" or "<f8", C order.
struct NpyHeader {
  std::string dtype;
  Shape shape;
  std::size_t data_offset = 0;  // bytes before the data
  std::size_t item_size() const { return dtype == "<f8" ? 8 : 4; }
  std::size_t data_bytes() const;
};

// One decoded array, kept in the type it has on disk.
struct NpyArray {
  NpyHeader header;
  Tensor<float> f4;   // when header.dtype == "<f4"
  Tensor<double> f8;  // when header.dtype == "<f8"
  Tensor<float> as_float() const;
  Tensor<double> as_double() const;
};

using NamedArrays = std::vector<std::pair<std::string, Tensor<float>>>;

// The bytes of a version 1.0 .npy file holding a (little-endian, C order).
std::string encode_npy(const Tensor<float>& a);
std::string encode_npy(const Tensor<double>& a);
// Parses the header at the start of `bytes` (which may hold only a prefix of
// the file); throws zg::IOError naming `what` and the byte offset.
NpyHeader decode_npy_header(const std::string& bytes, const std::string& what);
// Parses a whole .npy file; throws zg::IOError naming `what` and the byte
// offset of the problem. Accepts <f4 and <f8, C order.
NpyArray decode_npy(const std::string& bytes, const std::string& what);

// Writes arrays as an .npz (zip of name.npy, stored) atomically: to
// "<path>.tmp" under an exclusive file lock, fsynced, renamed over path,
// then the directory is fsynced (Note [Saving] in npz.cpp). An existing file
// is never left damaged; a killed save leaves at most that one temporary,
// which the next save reuses. Errors (empty path, missing or non-directory
// parent, a full disk, a failed fsync) are a zg::IOError that says what is
// wrong.
void save_npz(const std::string& path, const NamedArrays& arrays);

// An .npz opened for reading. Opening reads only the zip directory: member
// names and declared sizes, nothing is inflated. header() inflates just a
// member's .npy header; read() inflates one member straight into the array
// and checks its CRC-32. Every failure is a zg::IOError naming the file and
// the member.
class NpzReader {
 public:
  struct Member {
    std::string name;         // without ".npy"
    std::uint64_t size = 0;   // declared (inflated) bytes
    std::uint64_t index = 0;  // in the archive
  };
  explicit NpzReader(std::string path);
  ~NpzReader();
  NpzReader(const NpzReader&) = delete;
  NpzReader& operator=(const NpzReader&) = delete;

  const std::string& path() const { return path_; }
  // Every member; a name not ending in ".npy" is a zg::IOError at open.
  const std::vector<Member>& members() const { return members_; }
  NpyHeader header(const Member& m);
  // The member's float32 data, decoded into the returned array (one copy).
  Tensor<float> read_float(const Member& m, const NpyHeader& h);

 private:
  std::string path_;
  struct Archive;
  std::unique_ptr<Archive> zip_;
  std::vector<Member> members_;
};

}  // namespace zg::nn
