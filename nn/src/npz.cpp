// .npy encoding/decoding and .npz archives through libzip.
#include "zerograd/nn/npz.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>

#include <fcntl.h>
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

}  // namespace

void testing_hooks::fail_next_save_at_entry(int entry) { fail_at_entry = entry; }

std::string encode_npy(const Tensor<float>& a) { return encode(a, "<f4"); }
std::string encode_npy(const Tensor<double>& a) { return encode(a, "<f8"); }

NpyArray decode_npy(const std::string& bytes, const std::string& what) {
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
  if (header_len > bytes.size() - header_start)
    bad(what, header_start, "npy header of " + std::to_string(header_len) + " bytes runs past the end (" +
                                std::to_string(bytes.size()) + " bytes)");
  const std::string h = bytes.substr(header_start, header_len);

  NpyArray out;
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
  const std::size_t item = out.dtype == "<f4" ? 4 : 8;
  const std::size_t data_start = header_start + header_len;
  const std::size_t have = bytes.size() - data_start;
  if (have != count * item)
    bad(what, data_start, "npy data holds " + std::to_string(have) + " bytes, shape needs " +
                              std::to_string(count * item));
  out.values.resize(count);
  for (std::size_t i = 0; i < count; ++i) {
    if (item == 4) {
      float v;
      std::memcpy(&v, bytes.data() + data_start + 4 * i, 4);
      out.values[i] = v;
    } else {
      std::memcpy(&out.values[i], bytes.data() + data_start + 8 * i, 8);
    }
  }
  return out;
}

Tensor<float> NpyArray::as_float() const {
  Tensor<float> a = Tensor<float>::from_shape(shape);
  std::transform(values.begin(), values.end(), a.begin(), [](double v) { return static_cast<float>(v); });
  return a;
}

Tensor<double> NpyArray::as_double() const {
  Tensor<double> a = Tensor<double>::from_shape(shape);
  std::copy(values.begin(), values.end(), a.begin());
  return a;
}

void save_npz(const std::string& path, const NamedArrays& arrays) {
  const std::string tmp = path + ".tmp" + std::to_string(::getpid());
  int err = 0;
  zip_t* z = zip_open(tmp.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &err);
  if (!z) throw IOError("save_npz: cannot create '" + tmp + "' (libzip error " + std::to_string(err) + ")");
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
  const int fd = ::open(tmp.c_str(), O_RDONLY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    std::remove(tmp.c_str());
    throw IOError("save_npz: cannot rename '" + tmp + "' to '" + path + "': " + why);
  }
}

NamedNpy load_npz(const std::string& path) {
  int err = 0;
  zip_t* z = zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &err);
  if (!z) {
    zip_error_t e;
    zip_error_init_with_code(&e, err);
    const std::string why = zip_error_strerror(&e);
    zip_error_fini(&e);
    throw IOError("load_npz: cannot open '" + path + "' as a zip archive: " + why);
  }
  std::unique_ptr<zip_t, void (*)(zip_t*)> guard(z, [](zip_t* a) { zip_discard(a); });
  NamedNpy out;
  const zip_int64_t n = zip_get_num_entries(z, 0);
  for (zip_int64_t i = 0; i < n; ++i) {
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(z, static_cast<zip_uint64_t>(i), 0, &st) != 0 || !(st.valid & ZIP_STAT_NAME) ||
        !(st.valid & ZIP_STAT_SIZE))
      throw IOError("load_npz: '" + path + "': entry " + std::to_string(i) + " cannot be read");
    std::string name = st.name;
    const std::string what = "load_npz: '" + path + "' entry '" + name + "'";
    if (name.size() < 4 || name.compare(name.size() - 4, 4, ".npy") != 0)
      throw IOError(what + ": not an .npy file");
    if (st.size > (std::uint64_t{1} << 32)) throw IOError(what + ": claims an implausible size of " + std::to_string(st.size) + " bytes");
    std::string bytes(static_cast<std::size_t>(st.size), '\0');
    zip_file_t* f = zip_fopen_index(z, static_cast<zip_uint64_t>(i), 0);
    if (!f) throw IOError(what + ": cannot open: " + zip_strerror(z));
    const zip_int64_t got = bytes.empty() ? 0 : zip_fread(f, bytes.data(), bytes.size());
    const bool failed = got < 0 || static_cast<std::uint64_t>(got) != st.size;
    const std::string why = failed ? zip_file_strerror(f) : "";
    zip_fclose(f);
    if (failed)
      throw IOError(what + ": read " + std::to_string(got < 0 ? 0 : got) + " of " + std::to_string(st.size) +
                    " bytes (" + why + ")");
    name.resize(name.size() - 4);
    out.emplace_back(name, decode_npy(bytes, what));
  }
  return out;
}

}  // namespace zg::nn
