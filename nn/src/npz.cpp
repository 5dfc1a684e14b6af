// .npy encoding/decoding and .npz archives through libzip.
#include "zerograd/nn/npz.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <filesystem>
#include <memory>
#include <optional>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#include <xtensor/xmanipulation.hpp>

#include "zerograd/error.hpp"

namespace zg::nn {
namespace {

const char kMagic[] = "\x93NUMPY";

template <class T>
std::string encode(const Tensor<T>& a, const char* descr) {
  std::string header = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': (";
  for (std::size_t d = 0; d < a.dimension(); ++d) header += std::to_string(a.shape()[d]) + ", ";
  if (a.dimension() > 1) header.resize(header.size() - 1);  // (2, 3) but (2,)
  if (a.dimension() > 0 && a.dimension() != 1) header.back() = ')';
  else header += ")";
  if (a.dimension() == 1) {  // "(4, )" -> "(4,)"
    header.erase(header.size() - 2, 1);
  }
  header += ", }";
  // Magic (6) + version (2) + length (2) + header + '\n', padded to 64 bytes.
  const std::size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  std::string out(kMagic, 6);
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>((header.size() >> 8) & 0xff);
  out += header;
  const auto* bytes = reinterpret_cast<const char*>(a.data());
  out.append(bytes, a.size() * sizeof(T));
  return out;
}

// Where an .npy header's dict starts and how many bytes it has, read from
// the magic, version and length fields (the first 10 or 12 bytes); nullopt
// when bytes do not start like a version 1-3 .npy file.
struct NpyPrefix {
  std::size_t start, length;
};
std::optional<NpyPrefix> npy_prefix(const std::string& bytes) {
  if (bytes.size() < 10 || bytes.compare(0, 6, kMagic, 6) != 0) return std::nullopt;
  const auto u8 = [&](std::size_t i) { return static_cast<std::size_t>(static_cast<unsigned char>(bytes[i])); };
  if (u8(6) == 1) return NpyPrefix{10, u8(8) | (u8(9) << 8)};
  if ((u8(6) == 2 || u8(6) == 3) && bytes.size() >= 12)
    return NpyPrefix{12, u8(8) | (u8(9) << 8) | (u8(10) << 16) | (u8(11) << 24)};
  return std::nullopt;
}

[[noreturn]] void bad(const std::string& what, std::size_t offset, const std::string& why) {
  throw IOError(what + ": byte " + std::to_string(offset) + ": " + why);
}

// Finds `'key':` in the header dict and returns the offset just after it.
std::size_t find_key(const std::string& h, const std::string& key, const std::string& what, std::size_t base) {
  const std::size_t k = h.find("'" + key + "'");
  if (k == std::string::npos) bad(what, base, "npy header has no '" + key + "' entry");
  std::size_t p = h.find(':', k);
  if (p == std::string::npos) bad(what, base + k, "npy header: ':' missing after '" + key + "'");
  ++p;
  while (p < h.size() && h[p] == ' ') ++p;
  return p;
}

// The dtypes an .npy may hold, as numpy names them (one byte order each).
const char kDtypes[] =
    "float '<f4' '<f8', int '|i1' '<i2' '<i4' '<i8', unsigned '|u1' '<u2' '<u4' '<u8', bool '|b1'; "
    "'>' for big-endian";

// Reads numpy's descr ("<f4", ">i8", "|u1", ...) into h; false if unsupported.
bool parse_dtype(const std::string& d, NpyHeader& h) {
  if (d.size() != 3 || (d[0] != '<' && d[0] != '>' && d[0] != '|')) return false;
  const char kind = d[1];
  const std::size_t item = d[2] >= '0' && d[2] <= '9' ? std::size_t(d[2] - '0') : 0;
  const bool known = (kind == 'f' && (item == 4 || item == 8)) || ((kind == 'i' || kind == 'u') &&
                     (item == 1 || item == 2 || item == 4 || item == 8)) || (kind == 'b' && item == 1);
  if (!known || (d[0] == '|') != (item == 1)) return false;  // numpy writes '|' exactly for single bytes
  h.kind = kind;
  h.item = item;
  h.big_endian = d[0] == '>';
  return true;
}

// The largest .npy header read (numpy itself refuses headers over 10000
// bytes by default): a bigger one is damage, not an array.
constexpr std::size_t kMaxHeader = 1 << 16;

std::string zip_words(int code, int sys_errno) {
  zip_error_t e;
  zip_error_init_with_code(&e, code);
  std::string why = zip_error_strerror(&e);
  zip_error_fini(&e);
  if (sys_errno != 0 && why.find(std::strerror(sys_errno)) == std::string::npos)
    why += std::string(" (") + std::strerror(sys_errno) + ")";
  return why;
}

// Note [Saving]: the archive is built in memory, then written to ONE
// temporary file per target, "<path>.tmp" beside it, while holding an
// exclusive flock on it: fsync, rename over path, fsync the directory. A
// save killed midway leaves at most that one file, which the next save to
// path truncates and reuses; two processes saving to the same path take
// turns instead of writing into each other's temporary. A file lock, not a
// process id, decides who owns it, so this holds across PID namespaces and
// machines sharing the directory, and never deletes another save's file.
// Every failure (disk full, EIO on fsync) is reported, and the old
// checkpoint is replaced only after the new one is on disk.

// Opens and locks path's temporary. After waiting for the lock the file may
// have been renamed over path by the save that held it: then the name
// points elsewhere and the lock is taken again on the new file.
int lock_temporary(const std::string& tmp, const std::string& path) {
  for (;;) {
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
      throw IOError("save_npz: cannot create the temporary file '" + tmp + "' for '" + path +
                    "': " + std::strerror(errno));
    int rc;
    while ((rc = ::flock(fd, LOCK_EX)) != 0 && errno == EINTR) {
    }
    struct stat held {}, named {};
    if (rc == 0 && ::fstat(fd, &held) == 0 && ::stat(tmp.c_str(), &named) == 0 && held.st_ino == named.st_ino &&
        held.st_dev == named.st_dev)
      return fd;
    const int e = errno;
    ::close(fd);
    if (rc != 0) throw IOError("save_npz: cannot lock '" + tmp + "': " + std::strerror(e));
  }
}

// Writes all of bytes to fd, or says why not.
std::string write_all(int fd, const std::string& bytes) {
  for (std::size_t done = 0; done < bytes.size();) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n < 0 ? std::strerror(errno) : "the disk took no more bytes";
    done += static_cast<std::size_t>(n);
  }
  return "";
}

// The .npz bytes of arrays: a zip of name.npy entries, stored.
std::string npz_bytes(const std::string& path, const NamedArrays& arrays) {
  zip_error_t error;
  zip_error_init(&error);
  zip_source_t* buffer = zip_source_buffer_create(nullptr, 0, 0, &error);
  if (!buffer) throw IOError("save_npz: '" + path + "': " + zip_error_strerror(&error));
  zip_source_keep(buffer);  // still needed after zip_close, to read the archive back
  const auto free_buffer = std::unique_ptr<zip_source_t, void (*)(zip_source_t*)>(buffer, zip_source_free);
  zip_t* z = zip_open_from_source(buffer, ZIP_TRUNCATE, &error);
  if (!z) throw IOError("save_npz: '" + path + "': " + zip_error_strerror(&error));
  std::vector<std::string> blobs;  // libzip reads the buffers at zip_close
  blobs.reserve(arrays.size());
  for (const auto& [name, array] : arrays) {
    blobs.push_back(encode_npy(array));
    zip_source_t* src = zip_source_buffer(z, blobs.back().data(), blobs.back().size(), 0);
    const zip_int64_t idx = src ? zip_file_add(z, (name + ".npy").c_str(), src, ZIP_FL_ENC_UTF_8) : -1;
    if (idx < 0) {
      const std::string why = zip_strerror(z);
      if (src) zip_source_free(src);
      zip_discard(z);
      throw IOError("save_npz: '" + path + "': cannot add '" + name + "': " + why);
    }
    zip_set_file_compression(z, static_cast<zip_uint64_t>(idx), ZIP_CM_STORE, 0);
  }
  if (zip_close(z) != 0) {
    const std::string why = zip_strerror(z);
    zip_discard(z);
    throw IOError("save_npz: '" + path + "': building the archive failed: " + why);
  }
  zip_stat_t st;
  zip_stat_init(&st);
  std::string out;
  if (zip_source_stat(buffer, &st) == 0 && (st.valid & ZIP_STAT_SIZE) && zip_source_open(buffer) == 0) {
    out.resize(static_cast<std::size_t>(st.size));
    const zip_int64_t got = out.empty() ? 0 : zip_source_read(buffer, out.data(), st.size);
    zip_source_close(buffer);
    if (got == static_cast<zip_int64_t>(st.size)) return out;
  }
  throw IOError("save_npz: '" + path + "': cannot read the archive back from memory");
}

// What is wrong with saving to path, before anything is written; "" if nothing.
std::string save_path_problem(const std::string& path) {
  namespace fs = std::filesystem;
  if (path.empty()) return "the path is empty";
  const fs::path p(path);
  if (!p.has_filename()) return "the path names a directory, not a file";
  const fs::path parent = p.parent_path().empty() ? fs::path(".") : p.parent_path();
  std::error_code ec;
  const fs::file_status s = fs::status(parent, ec);
  if (s.type() == fs::file_type::not_found) return "the directory '" + parent.string() + "' does not exist";
  if (ec) return "cannot reach the directory '" + parent.string() + "': " + ec.message();
  if (s.type() != fs::file_type::directory) return "'" + parent.string() + "' is not a directory";
  if (::access(parent.c_str(), W_OK | X_OK) != 0)
    return "cannot write in the directory '" + parent.string() + "': " + std::strerror(errno);
  if (fs::is_directory(p, ec)) return "'" + path + "' is a directory";
  return "";
}

}  // namespace

std::string encode_npy(const Tensor<float>& a) { return encode(a, "<f4"); }
std::string encode_npy(const Tensor<double>& a) { return encode(a, "<f8"); }

std::size_t NpyHeader::data_bytes() const {
  std::size_t n = item_size();
  for (std::size_t d : shape) n *= d;
  return n;
}

NpyHeader decode_npy_header(const std::string& bytes, const std::string& what) {
  if (bytes.size() < 10 || bytes.compare(0, 6, kMagic, 6) != 0) bad(what, 0, "not an .npy array (bad magic)");
  const unsigned major = static_cast<unsigned char>(bytes[6]);
  if (major < 1 || major > 3) bad(what, 6, "unsupported npy version " + std::to_string(major));
  const std::optional<NpyPrefix> prefix = npy_prefix(bytes);
  if (!prefix) bad(what, bytes.size(), "truncated npy header");
  const std::size_t header_start = prefix->start, header_len = prefix->length;
  if (header_len > kMaxHeader)
    bad(what, 8, "npy header of " + std::to_string(header_len) + " bytes is larger than " +
                     std::to_string(kMaxHeader));
  if (header_len > bytes.size() - header_start)
    bad(what, header_start, "npy header of " + std::to_string(header_len) + " bytes runs past the end (" +
                                std::to_string(bytes.size()) + " bytes)");
  const std::string h = bytes.substr(header_start, header_len);

  NpyHeader out;
  out.data_offset = header_start + header_len;
  std::size_t p = find_key(h, "descr", what, header_start);
  if (p >= h.size() || (h[p] != '\'' && h[p] != '"')) bad(what, header_start + p, "npy descr is not a string");
  const std::size_t q = h.find(h[p], p + 1);
  if (q == std::string::npos) bad(what, header_start + p, "npy descr string is not closed");
  out.dtype = h.substr(p + 1, q - p - 1);
  if (!parse_dtype(out.dtype, out))
    bad(what, header_start + p, "dtype '" + out.dtype + "' is not supported (" + kDtypes + ")");

  p = find_key(h, "fortran_order", what, header_start);
  if (h.compare(p, 4, "True") == 0) out.fortran_order = true;
  else if (h.compare(p, 5, "False") != 0) bad(what, header_start + p, "npy fortran_order is neither True nor False");

  p = find_key(h, "shape", what, header_start);
  if (p >= h.size() || h[p] != '(') bad(what, header_start + p, "npy shape is not a tuple");
  ++p;
  std::size_t count = 1;
  while (true) {
    while (p < h.size() && (h[p] == ' ' || h[p] == ',')) ++p;
    if (p >= h.size()) bad(what, header_start + p, "npy shape tuple is not closed");
    if (h[p] == ')') break;
    if (h[p] < '0' || h[p] > '9') bad(what, header_start + p, "npy shape holds a non-integer");
    std::size_t dim = 0;
    while (p < h.size() && h[p] >= '0' && h[p] <= '9') {
      const std::size_t digit = static_cast<std::size_t>(h[p] - '0');
      if (dim > (std::numeric_limits<std::uint32_t>::max() - digit) / 10)
        bad(what, header_start + p, "npy dimension is too large");
      dim = dim * 10 + digit;
      ++p;
    }
    if (dim != 0 && count > std::numeric_limits<std::uint32_t>::max() / dim)
      bad(what, header_start + p, "npy shape has too many elements");
    count *= dim;
    out.shape.push_back(dim);
  }
  return out;
}

NpyArray decode_npy(const std::string& bytes, const std::string& what) {
  NpyArray out;
  out.header = decode_npy_header(bytes, what);
  const NpyHeader& h = out.header;
  if (h.dtype != "<f4" && h.dtype != "<f8")
    bad(what, 0, "dtype '" + h.dtype + "' is not supported here (float32 '<f4' or float64 '<f8')");
  if (h.fortran_order) bad(what, 0, "Fortran-order arrays are not supported here");
  const std::size_t have = bytes.size() - h.data_offset;
  if (have != h.data_bytes())
    bad(what, h.data_offset, "npy data holds " + std::to_string(have) + " bytes, shape needs " +
                                 std::to_string(h.data_bytes()));
  const char* data = bytes.data() + h.data_offset;
  if (h.dtype == "<f4") {
    out.f4 = Tensor<float>::from_shape(h.shape);
    if (have) std::memcpy(out.f4.data(), data, have);
  } else {
    out.f8 = Tensor<double>::from_shape(h.shape);
    if (have) std::memcpy(out.f8.data(), data, have);
  }
  return out;
}

namespace {
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "npy_to_float reads little-endian values in place");

// The n values of type T at data (byte-swapped first when big), as floats.
template <class T>
void convert(const char* data, std::size_t n, bool big, float* out) {
  for (std::size_t i = 0; i < n; ++i) {
    char b[sizeof(T)];
    std::memcpy(b, data + i * sizeof(T), sizeof(T));
    if (big) std::reverse(b, b + sizeof(T));
    T v;
    std::memcpy(&v, b, sizeof(T));
    out[i] = static_cast<float>(v);
  }
}

void convert_any(const NpyHeader& h, const char* data, std::size_t n, float* out) {
  const bool big = h.big_endian;
  switch (h.kind * 16 + int(h.item)) {
    case 'f' * 16 + 4: return convert<float>(data, n, big, out);
    case 'f' * 16 + 8: return convert<double>(data, n, big, out);
    case 'i' * 16 + 1: return convert<std::int8_t>(data, n, big, out);
    case 'i' * 16 + 2: return convert<std::int16_t>(data, n, big, out);
    case 'i' * 16 + 4: return convert<std::int32_t>(data, n, big, out);
    case 'i' * 16 + 8: return convert<std::int64_t>(data, n, big, out);
    case 'u' * 16 + 1: return convert<std::uint8_t>(data, n, big, out);
    case 'u' * 16 + 2: return convert<std::uint16_t>(data, n, big, out);
    case 'u' * 16 + 4: return convert<std::uint32_t>(data, n, big, out);
    case 'u' * 16 + 8: return convert<std::uint64_t>(data, n, big, out);
    default:  // 'b' (parse_dtype admits nothing else): numpy writes 0 or 1, read any nonzero byte as true
      for (std::size_t i = 0; i < n; ++i) out[i] = data[i] != 0 ? 1.0f : 0.0f;
  }
}
}  // namespace

Tensor<float> npy_to_float(const NpyHeader& h, const char* data, const std::string& what) {
  try {
    // A Fortran-order array of shape S is the C-order array of shape
    // reversed(S), transposed.
    Shape stored = h.shape;
    if (h.fortran_order) std::reverse(stored.begin(), stored.end());
    Tensor<float> out = Tensor<float>::from_shape(stored);
    convert_any(h, data, out.size(), out.data());
    if (h.fortran_order && out.dimension() > 1) {
      Tensor<float> c = xt::transpose(out);
      return c;
    }
    return out;
  } catch (const std::bad_alloc&) {
    bad(what, h.data_offset, "cannot allocate " + std::to_string(h.data_bytes() / h.item * sizeof(float)) +
                                 " bytes for the float32 array of shape " + shape_str(h.shape));
  }
}

namespace {
struct FileHandle {
  std::FILE* f;
  ~FileHandle() { std::fclose(f); }
};

// Reads exactly n bytes at the file's position; "" on success, else why not.
std::string read_file_bytes(std::FILE* f, char* out, std::size_t n) {
  const std::size_t got = n ? std::fread(out, 1, n, f) : 0;
  if (got == n) return "";
  if (std::ferror(f)) return std::string("read error: ") + std::strerror(errno ? errno : EIO);
  return "the file ends after " + std::to_string(got) + " of " + std::to_string(n) + " bytes";
}
}  // namespace

Tensor<float> load_npy(const std::string& path) {
  const std::string what = "load_npy: '" + path + "'";
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw IOError(what + " is a directory, not a file");
  const std::uintmax_t file_bytes = std::filesystem::file_size(path, ec);
  errno = 0;
  std::FILE* f = ec ? nullptr : std::fopen(path.c_str(), "rb");
  if (!f) throw IOError("load_npy: cannot open '" + path + "': " + (ec ? ec.message() : std::strerror(errno)));
  FileHandle close{f};
  // Magic, version and length first; then exactly the header they declare.
  std::string bytes(static_cast<std::size_t>(std::min<std::uintmax_t>(file_bytes, 12)), '\0');
  std::string why = read_file_bytes(f, bytes.data(), bytes.size());
  if (!why.empty()) bad(what, 0, why);
  const std::optional<NpyPrefix> p = npy_prefix(bytes);
  if (p && p->length <= kMaxHeader && p->start + p->length > file_bytes)
    bad(what, p->start, "npy header of " + std::to_string(p->length) + " bytes runs past the end of the " +
                            std::to_string(file_bytes) + "-byte file");
  if (p && p->length <= kMaxHeader && p->start + p->length > bytes.size()) {
    const std::size_t have = bytes.size();
    bytes.resize(p->start + p->length);
    why = read_file_bytes(f, bytes.data() + have, bytes.size() - have);
    if (!why.empty()) bad(what, have, why);
  }  // otherwise decode_npy_header says what is wrong
  const NpyHeader h = decode_npy_header(bytes, what);
  if (file_bytes - h.data_offset != h.data_bytes())
    bad(what, h.data_offset, "npy data holds " + std::to_string(file_bytes - h.data_offset) + " bytes, shape " +
                                 shape_str(h.shape) + " of " + h.dtype + " needs " + std::to_string(h.data_bytes()));
  std::string raw;
  try {
    raw.resize(h.data_bytes());
  } catch (const std::bad_alloc&) {
    bad(what, h.data_offset, "cannot allocate the " + std::to_string(h.data_bytes()) + " bytes the header declares");
  }
  why = read_file_bytes(f, raw.data(), raw.size());
  if (!why.empty()) bad(what, h.data_offset, why);
  return npy_to_float(h, raw.data(), what);
}

Tensor<float> NpyArray::as_float() const {
  if (header.dtype == "<f4") return f4;
  Tensor<float> a = Tensor<float>::from_shape(header.shape);
  std::transform(f8.begin(), f8.end(), a.begin(), [](double v) { return static_cast<float>(v); });
  return a;
}

Tensor<double> NpyArray::as_double() const {
  if (header.dtype == "<f8") return f8;
  Tensor<double> a = Tensor<double>::from_shape(header.shape);
  std::copy(f4.begin(), f4.end(), a.begin());
  return a;
}

void save_npz(const std::string& path, const NamedArrays& arrays) {
  const std::string problem = save_path_problem(path);
  if (!problem.empty()) throw IOError("save_npz: cannot save to '" + path + "': " + problem);
  const std::string bytes = npz_bytes(path, arrays);  // Note [Saving]
  const std::string tmp = path + ".tmp";
  const int fd = lock_temporary(tmp, path);
  // While locked: on failure the temporary goes, so nothing is left behind.
  const auto fail = [&](const std::string& why) {
    ::unlink(tmp.c_str());
    ::close(fd);
    throw IOError("save_npz: '" + path + "': " + why + "; the previous file, if any, is unchanged");
  };
  if (::ftruncate(fd, 0) != 0) fail("cannot truncate '" + tmp + "': " + std::strerror(errno));
  const std::string write_error = write_all(fd, bytes);
  if (!write_error.empty()) fail("writing '" + tmp + "' failed: " + write_error);
  if (::fsync(fd) != 0) fail("flushing '" + tmp + "' to disk failed: " + std::strerror(errno));
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    fail("cannot rename '" + tmp + "' to '" + path + "': " + std::strerror(errno));
  ::close(fd);  // releases the lock; the file is path now
  // The rename is durable only once the directory entry is on disk.
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  const std::string dir = parent.empty() ? "." : parent.string();
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  const bool synced = dfd >= 0 && ::fsync(dfd) == 0;
  const int e = errno;
  if (dfd >= 0) ::close(dfd);
  if (!synced)
    throw IOError("save_npz: '" + path + "' was written, but syncing the directory '" + dir +
                  "' failed: " + std::strerror(e) + "; a power loss now could lose the rename");
}

struct NpzReader::Archive {
  zip_t* z = nullptr;
  ~Archive() {
    if (z) zip_discard(z);
  }
};

NpzReader::NpzReader(std::string path) : path_(std::move(path)), zip_(std::make_unique<Archive>()) {
  int err = 0;
  errno = 0;
  zip_->z = zip_open(path_.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &err);
  if (!zip_->z) throw IOError("load_npz: cannot open '" + path_ + "' as a zip archive: " + zip_words(err, errno));
  const zip_int64_t n = zip_get_num_entries(zip_->z, 0);
  for (zip_int64_t i = 0; i < n; ++i) {
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(zip_->z, static_cast<zip_uint64_t>(i), 0, &st) != 0 || !(st.valid & ZIP_STAT_NAME) ||
        !(st.valid & ZIP_STAT_SIZE))
      throw IOError("load_npz: '" + path_ + "': entry " + std::to_string(i) + " cannot be read");
    std::string name = st.name;
    if (name.size() < 4 || name.compare(name.size() - 4, 4, ".npy") != 0)
      throw IOError("load_npz: '" + path_ + "' entry '" + name + "': not an .npy file");
    name.resize(name.size() - 4);
    const std::uint64_t compressed = (st.valid & ZIP_STAT_COMP_SIZE) ? st.comp_size : st.size;
    members_.push_back({name, st.size, static_cast<std::uint64_t>(i), compressed});
  }
}

NpzReader::~NpzReader() = default;

namespace {
// Reads exactly n bytes of an open member; "" on success, else the cause.
std::string read_member(zip_file_t* f, char* out, std::uint64_t n) {
  std::uint64_t got = 0;
  while (got < n) {
    const zip_int64_t r = zip_fread(f, out + got, n - got);
    if (r < 0) return zip_file_strerror(f);
    if (r == 0) return "it ends after " + std::to_string(got) + " of " + std::to_string(n) + " bytes";
    got += static_cast<std::uint64_t>(r);
  }
  return "";
}

struct FileCloser {
  zip_file_t* f;
  ~FileCloser() { zip_fclose(f); }
};
}  // namespace

NpyHeader NpzReader::header(const Member& m) {
  const std::string what = "load_npz: '" + path_ + "' entry '" + m.name + ".npy'";
  zip_file_t* f = zip_fopen_index(zip_->z, m.index, 0);
  if (!f) throw IOError(what + ": cannot open: " + zip_strerror(zip_->z));
  FileCloser close{f};
  // Magic, version and length first; then exactly the header they declare.
  std::string bytes(static_cast<std::size_t>(std::min<std::uint64_t>(m.size, 12)), '\0');
  std::string why = read_member(f, bytes.data(), bytes.size());
  if (!why.empty()) throw IOError(what + ": " + why);
  const std::optional<NpyPrefix> p = npy_prefix(bytes);
  if (p && p->length <= kMaxHeader && p->start + p->length <= m.size && p->start + p->length > bytes.size()) {
    const std::size_t have = bytes.size();
    bytes.resize(p->start + p->length);
    why = read_member(f, bytes.data() + have, bytes.size() - have);
    if (!why.empty()) throw IOError(what + ": " + why);
  }  // otherwise decode_npy_header says what is wrong
  NpyHeader h = decode_npy_header(bytes, what);
  if (m.size - h.data_offset != h.data_bytes())
    bad(what, h.data_offset, "npy data holds " + std::to_string(m.size - h.data_offset) + " bytes, shape " +
                                 shape_str(h.shape) + " needs " + std::to_string(h.data_bytes()));
  return h;
}

Tensor<float> NpzReader::read_float(const Member& m, const NpyHeader& h) {
  const std::string what = "load_npz: '" + path_ + "' entry '" + m.name + ".npy'";
  if (h.dtype != "<f4") throw IOError(what + ": dtype '" + h.dtype + "' is not float32 ('<f4')");
  if (h.fortran_order) throw IOError(what + ": a Fortran-order array (checkpoints are C order)");
  zip_file_t* f = zip_fopen_index(zip_->z, m.index, 0);
  if (!f) throw IOError(what + ": cannot open: " + zip_strerror(zip_->z));
  FileCloser close{f};
  std::string skip(h.data_offset, '\0');
  std::string why = read_member(f, skip.data(), skip.size());
  Tensor<float> out = Tensor<float>::from_shape(h.shape);
  if (why.empty()) why = read_member(f, reinterpret_cast<char*>(out.data()), h.data_bytes());
  if (!why.empty()) throw IOError(what + ": " + why);
  // libzip checks the CRC-32 only when a read reaches the member's end: ask
  // for one byte more, which must find the end and pass the check.
  char extra;
  const zip_int64_t r = zip_fread(f, &extra, 1);
  if (r < 0) throw IOError(what + ": " + zip_file_strerror(f) + " (the member is damaged)");
  if (r > 0) throw IOError(what + ": data continues past the declared " + std::to_string(m.size) + " bytes");
  return out;
}

Tensor<float> NpzReader::read_as_float(const Member& m, const NpyHeader& h) {
  const std::string what = "load_npz: '" + path_ + "' entry '" + m.name + ".npy'";
  // Deflate inflates at most 1032:1 (stored members not at all), so a
  // declared size beyond that is damage, refused before allocating it.
  if (m.size / 1032 > m.compressed + 1024)
    bad(what, 0, "declares " + std::to_string(m.size) + " bytes, more than its " + std::to_string(m.compressed) +
                     " compressed bytes can hold");
  zip_file_t* f = zip_fopen_index(zip_->z, m.index, 0);
  if (!f) throw IOError(what + ": cannot open: " + zip_strerror(zip_->z));
  FileCloser close{f};
  std::string bytes;
  try {
    bytes.resize(h.data_offset + h.data_bytes());
  } catch (const std::bad_alloc&) {
    bad(what, h.data_offset, "cannot allocate the " + std::to_string(h.data_bytes()) + " bytes the header declares");
  }
  const std::string why = read_member(f, bytes.data(), bytes.size());
  if (!why.empty()) bad(what, 0, why);
  char extra;  // as in read_float: reaching the end checks the CRC-32
  const zip_int64_t r = zip_fread(f, &extra, 1);
  if (r < 0) bad(what, bytes.size(), zip_file_strerror(f) + std::string(" (the member is damaged)"));
  if (r > 0) bad(what, bytes.size(), "data continues past the declared " + std::to_string(m.size) + " bytes");
  return npy_to_float(h, bytes.data() + h.data_offset, what);
}

}  // namespace zg::nn
