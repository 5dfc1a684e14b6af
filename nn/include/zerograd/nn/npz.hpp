#pragma once
/// @file
/// .npy and .npz (numpy) files: what checkpoints are made of, and arrays
/// prepared with numpy (load_npy; load_npz_dataset in data.hpp).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "zerograd/variable.hpp"

namespace zg::nn {

/// The header of an .npy array. dtype is numpy's descr: a byte order ('<'
/// little, '>' big, '|' for single bytes) and one of f4 f8 (float), i1 i2 i4
/// i8 (int), u1 u2 u4 u8 (unsigned), b1 (bool); "<f4", ">i8", "|u1", ...
struct NpyHeader {
  std::string dtype;  ///< numpy's descr, "<f4", ...
  Shape shape;  ///< the dimensions, () for 0-d
  std::size_t data_offset = 0;  ///< bytes before the data
  char kind = 'f';               ///< 'f', 'i', 'u' or 'b'
  std::size_t item = 4;          ///< bytes per element
  bool big_endian = false;  ///< the byte order '>'
  bool fortran_order = false;  ///< column-major data
  std::size_t item_size() const { return item; }  ///< bytes per element
  std::size_t data_bytes() const;  ///< item_size() times the element count
};

/// One decoded array, kept in the type it has on disk.
struct NpyArray {
  NpyHeader header;  ///< the header
  Tensor<float> f4;   ///< when header.dtype == "<f4"
  Tensor<double> f8;  ///< when header.dtype == "<f8"
  Tensor<float> as_float() const;  ///< the values as float32
  Tensor<double> as_double() const;  ///< the values as float64
};

/// Arrays by name, in order: what .npz files and checkpoints hold.
using NamedArrays = std::vector<std::pair<std::string, Tensor<float>>>;

///@{
/// The bytes of a version 1.0 .npy file holding a (little-endian, C order).
std::string encode_npy(const Tensor<float>& a);
std::string encode_npy(const Tensor<double>& a);
///@}
/// Parses the header at the start of `bytes` (which may hold only a prefix of
/// the file): any dtype above, either order; throws zg::IOError naming `what`
/// and the byte offset.
NpyHeader decode_npy_header(const std::string& bytes, const std::string& what);
/// Parses a whole .npy file; throws zg::IOError naming `what` and the byte
/// offset of the problem. Accepts <f4 and <f8, C order.
NpyArray decode_npy(const std::string& bytes, const std::string& what);
/// The `data_bytes()` bytes at data, an array of h's dtype and order, as
/// float32 in C order: big-endian values byte-swapped, Fortran order
/// transposed, bool as 0 and 1, integers rounded to the nearest float. A
/// failed allocation is a zg::IOError naming `what`.
Tensor<float> npy_to_float(const NpyHeader& h, const char* data, const std::string& what);

/// Reads an .npy file of any dtype above as float32 (npy_to_float). The
/// declared shape is checked against the file's size before anything is
/// allocated; every failure is a zg::IOError naming the file and the byte
/// offset.
Tensor<float> load_npy(const std::string& path);

/// Writes arrays as an .npz (zip of name.npy, stored) atomically: to
/// "<path>.tmp" under an exclusive file lock, fsynced, renamed over path,
/// then the directory is fsynced (Note [Saving] in npz.cpp). An existing file
/// is never left damaged; a killed save leaves at most that one temporary,
/// which the next save reuses. Errors (empty path, missing or non-directory
/// parent, a full disk, a failed fsync) are a zg::IOError that says what is
/// wrong.
void save_npz(const std::string& path, const NamedArrays& arrays);

/// An .npz opened for reading. Opening reads only the zip directory: member
/// names and declared sizes, nothing is inflated. header() inflates just a
/// member's .npy header; read() inflates one member straight into the array
/// and checks its CRC-32. Every failure is a zg::IOError naming the file and
/// the member.
class NpzReader {
 public:
  /// One array in the archive, as its directory lists it.
  struct Member {
    std::string name;         ///< without ".npy"
    std::uint64_t size = 0;   ///< declared (inflated) bytes
    std::uint64_t index = 0;  ///< in the archive
    std::uint64_t compressed = 0;  ///< bytes in the archive
  };
  explicit NpzReader(std::string path);  ///< opens path and reads its directory
  ~NpzReader();
  NpzReader(const NpzReader&) = delete;
  NpzReader& operator=(const NpzReader&) = delete;

  const std::string& path() const { return path_; }  ///< the file
  /// Every member; a name not ending in ".npy" is a zg::IOError at open.
  const std::vector<Member>& members() const { return members_; }
  NpyHeader header(const Member& m);  ///< inflates and parses m's .npy header only
  /// The member's float32 data, decoded into the returned array (one copy);
  /// C-order '<f4' only (checkpoints).
  Tensor<float> read_float(const Member& m, const NpyHeader& h);
  /// The member's data of any dtype as float32 (npy_to_float). A member
  /// declaring more bytes than its compressed size can inflate to is refused
  /// before anything is allocated.
  Tensor<float> read_as_float(const Member& m, const NpyHeader& h);

 private:
  std::string path_;
  struct Archive;
  std::unique_ptr<Archive> zip_;
  std::vector<Member> members_;
};

}  // namespace zg::nn
