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

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

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

int fail_at_entry = -1;

// A zip source that serves half of its bytes and then fails: an injected
// write failure in the middle of an archive.
struct FailingSource {
  const std::string* bytes;
  std::size_t offset = 0;
  zip_error_t error;
};

zip_int64_t failing_read(void* state, void* data, zip_uint64_t len, zip_source_cmd_t cmd) {
  auto* s = static_cast<FailingSource*>(state);
  switch (cmd) {
    case ZIP_SOURCE_OPEN: s->offset = 0; return 0;
    case ZIP_SOURCE_READ: {
      const std::size_t half = s->bytes->size() / 2;
      if (s->offset >= half) {
        zip_error_set(&s->error, ZIP_ER_WRITE, EIO);
        return -1;
      }
      const std::size_t n = std::min<std::size_t>(len, half - s->offset);
      std::memcpy(data, s->bytes->data() + s->offset, n);
      s->offset += n;
      return static_cast<zip_int64_t>(n);
    }
    case ZIP_SOURCE_CLOSE: return 0;
    case ZIP_SOURCE_STAT: {
      auto* st = static_cast<zip_stat_t*>(data);
      zip_stat_init(st);
      st->size = s->bytes->size();
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

// Where save_npz writes before the rename: beside path, named for path and
// this process, so an earlier save that was killed can be recognised.
std::string temp_prefix(const std::string& path) { return path + ".tmp"; }

// Removes temporaries of earlier saves to path whose process no longer
// exists (a save killed before its rename). A live process's is kept.
void remove_stale_temporaries(const std::filesystem::path& path) {
  namespace fs = std::filesystem;
  const fs::path dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  const std::string prefix = temp_prefix(path.filename().string());
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    // "<path>.tmp<pid>", or libzip's own "<path>.tmp<pid>.XXXXXX" that zip_close renames.
    const std::string rest = name.substr(prefix.size());
    const std::string digits = rest.substr(0, rest.find('.'));
    if (digits.empty() || digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) continue;
    const long pid = std::stol(digits);
    if (pid == ::getpid() || pid <= 0) continue;
    if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
      std::error_code ignored;
      fs::remove(it->path(), ignored);
    }
  }
}

void fsync_path(const std::string& p, int flags) {
  const int fd = ::open(p.c_str(), flags);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
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

void testing_hooks::fail_next_save_at_entry(int entry) { fail_at_entry = entry; }

std::string encode_npy(const Tensor<float>& a) { return encode(a, "<f4"); }
std::string encode_npy(const Tensor<double>& a) { return encode(a, "<f8"); }

std::size_t NpyHeader::data_bytes() const {
  std::size_t n = item_size();
  for (std::size_t d : shape) n *= d;
  return n;
}

NpyHeader decode_npy_header(const std::string& bytes, const std::string& what) {
  if (bytes.size() < 10 || bytes.compare(0, 6, kMagic, 6) != 0) bad(what, 0, "not an .npy array (bad magic)");
  const auto u8 = [&](std::size_t i) { return static_cast<std::size_t>(static_cast<unsigned char>(bytes[i])); };
  const std::size_t major = u8(6);
  std::size_t header_len = 0, header_start = 0;
  if (major == 1) {
    header_len = u8(8) | (u8(9) << 8);
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) bad(what, bytes.size(), "truncated npy header");
    header_len = u8(8) | (u8(9) << 8) | (u8(10) << 16) | (u8(11) << 24);
    header_start = 12;
  } else {
    bad(what, 6, "unsupported npy version " + std::to_string(major));
  }
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
  if (out.dtype != "<f4" && out.dtype != "<f8")
    bad(what, header_start + p, "dtype '" + out.dtype + "' is not supported (float32 '<f4' or float64 '<f8')");

  p = find_key(h, "fortran_order", what, header_start);
  if (h.compare(p, 5, "False") != 0) bad(what, header_start + p, "Fortran-order arrays are not supported");

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
  remove_stale_temporaries(path);
  const std::string tmp = temp_prefix(path) + std::to_string(::getpid());
  int err = 0;
  errno = 0;
  zip_t* z = zip_open(tmp.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &err);
  if (!z) throw IOError("save_npz: cannot create the temporary file '" + tmp + "': " + zip_words(err, errno));
  std::vector<std::string> blobs;  // libzip reads the buffers at zip_close
  blobs.reserve(arrays.size());
  auto fail = [&](const std::string& why) {
    zip_discard(z);
    std::remove(tmp.c_str());
    throw IOError("save_npz: '" + path + "': " + why);
  };
  const int failing = fail_at_entry;
  fail_at_entry = -1;
  for (const auto& [name, array] : arrays) {
    blobs.push_back(encode_npy(array));
    zip_source_t* src = nullptr;
    if (static_cast<int>(blobs.size()) - 1 == failing) {
      auto* state = new FailingSource{&blobs.back(), 0, {}};
      zip_error_init(&state->error);
      src = zip_source_function(z, failing_read, state);
    } else {
      src = zip_source_buffer(z, blobs.back().data(), blobs.back().size(), 0);
    }
    if (!src) fail("cannot buffer '" + name + "'");
    const zip_int64_t idx = zip_file_add(z, (name + ".npy").c_str(), src, ZIP_FL_ENC_UTF_8);
    if (idx < 0) {
      zip_source_free(src);
      fail("cannot add '" + name + "': " + zip_strerror(z));
    }
    zip_set_file_compression(z, static_cast<zip_uint64_t>(idx), ZIP_CM_STORE, 0);
  }
  if (zip_close(z) != 0) {
    const std::string why = zip_strerror(z);
    zip_discard(z);
    std::remove(tmp.c_str());
    throw IOError("save_npz: writing '" + tmp + "' failed: " + why);
  }
  fsync_path(tmp, O_RDONLY);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    std::remove(tmp.c_str());
    throw IOError("save_npz: cannot rename '" + tmp + "' to '" + path + "': " + why);
  }
  // The rename is durable only once the directory entry is on disk.
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  fsync_path(parent.empty() ? "." : parent.string(), O_RDONLY | O_DIRECTORY);
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
    members_.push_back({name, st.size, static_cast<std::uint64_t>(i)});
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
  if (bytes.size() >= 10 && bytes.compare(0, 6, kMagic, 6) == 0) {
    const auto u8 = [&](std::size_t i) { return static_cast<std::size_t>(static_cast<unsigned char>(bytes[i])); };
    std::size_t len = u8(8) | (u8(9) << 8), start = 10;
    if (u8(6) >= 2 && bytes.size() >= 12) len |= (u8(10) << 16) | (u8(11) << 24), start = 12;
    if (len <= kMaxHeader && start + len <= m.size) {
      const std::size_t have = bytes.size();
      bytes.resize(start + len);
      why = read_member(f, bytes.data() + have, bytes.size() - have);
      if (!why.empty()) throw IOError(what + ": " + why);
    }
  }
  NpyHeader h = decode_npy_header(bytes, what);
  if (m.size - h.data_offset != h.data_bytes())
    bad(what, h.data_offset, "npy data holds " + std::to_string(m.size - h.data_offset) + " bytes, shape " +
                                 shape_str(h.shape) + " needs " + std::to_string(h.data_bytes()));
  return h;
}

Tensor<float> NpzReader::read_float(const Member& m, const NpyHeader& h) {
  const std::string what = "load_npz: '" + path_ + "' entry '" + m.name + ".npy'";
  if (h.dtype != "<f4") throw IOError(what + ": dtype '" + h.dtype + "' is not float32 ('<f4')");
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

}  // namespace zg::nn
