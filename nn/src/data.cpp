// IDX reading through zlib (gzip or plain), TensorDataset, the spiral data set.
#include "zerograd/nn/data.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <random>

#include <zlib.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "zerograd/nn/npz.hpp"
#include "zerograd/parallel.hpp"

namespace zg::nn::data {
namespace {

[[noreturn]] void bad(const std::string& path, std::size_t offset, const std::string& why) {
  throw IOError("read_idx: '" + path + "': byte " + std::to_string(offset) + ": " + why);
}

std::string hex_byte(unsigned v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02x", v & 0xffu);
  return buf;
}

// Why the last gzread failed or ended early: the OS's error, zlib's, or
// that the file ends there (a truncated gzip trailer included).
std::string read_failure(gzFile f, int saved_errno, const std::string& ends) {
  int code = Z_OK;
  std::string msg = gzerror(f, &code);
  const std::size_t colon = msg.rfind(": ");  // zlib prefixes the path
  if (colon != std::string::npos) msg = msg.substr(colon + 2);
  if (code == Z_ERRNO) return std::string("read error: ") + std::strerror(saved_errno ? saved_errno : EIO);
  if (code == Z_BUF_ERROR) return "the gzip stream is truncated (" + msg + ")";
  if (code != Z_OK) return "decompression failed: " + msg;
  return ends;
}

// Reads exactly n bytes (gzread inflates gzip and passes plain files through);
// "" on success, else the cause.
std::string read_exact(gzFile f, void* out, std::size_t n, const std::string& ends) {
  auto* p = static_cast<unsigned char*>(out);
  while (n > 0) {
    const unsigned chunk = static_cast<unsigned>(std::min<std::size_t>(n, 1u << 30));
    errno = 0;
    const int got = gzread(f, p, chunk);
    if (got <= 0) return read_failure(f, errno, ends);
    p += got;
    n -= static_cast<std::size_t>(got);
  }
  return "";
}

std::string find_file(const std::string& dir, const std::string& stem) {
  for (const char* ext : {".gz", ""}) {
    const auto p = std::filesystem::path(dir) / (stem + ext);
    if (std::filesystem::exists(p)) return p.string();
  }
  throw IOError("load_idx_dataset: neither '" + stem + ".gz' nor '" + stem + "' is in '" + dir + "'");
}

}  // namespace

IdxArray read_idx(const std::string& path, std::size_t max_bytes) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw IOError("read_idx: '" + path + "' is a directory, not a file");
  errno = 0;
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw IOError("read_idx: cannot open '" + path + "': " + std::strerror(errno ? errno : ENOENT));
  struct Close {
    gzFile f;
    ~Close() { gzclose(f); }
  } close{f};
  unsigned char magic[4];
  std::string why = read_exact(f, magic, 4, "file ends inside the 4-byte magic number");
  if (!why.empty()) bad(path, 0, why);
  if (magic[0] != 0 || magic[1] != 0) bad(path, 0, "bad magic number (an IDX file starts with two zero bytes)");
  if (magic[2] != 0x08) bad(path, 2, "element type " + hex_byte(magic[2]) + " is not unsigned byte (0x08)");
  const std::size_t dims = magic[3];
  if (dims < 1 || dims > 4) bad(path, 3, "dimension count " + std::to_string(dims) + " is not 1 to 4");
  IdxArray out;
  std::size_t count = 1;
  for (std::size_t d = 0; d < dims; ++d) {
    unsigned char b[4];
    why = read_exact(f, b, 4, "file ends inside dimension " + std::to_string(d));
    if (!why.empty()) bad(path, 4 + 4 * d, why);
    const std::size_t n = (std::size_t{b[0]} << 24) | (std::size_t{b[1]} << 16) | (std::size_t{b[2]} << 8) | b[3];
    if (n == 0 || n > (1u << 28)) bad(path, 4 + 4 * d, "implausible dimension " + std::to_string(n));
    if (count > max_bytes / n)
      bad(path, 4 + 4 * d, "the header declares more than the limit of " + std::to_string(max_bytes) +
                               " bytes (read_idx's max_bytes)");
    count *= n;
    out.shape.push_back(n);
  }
  const std::size_t header = 4 + 4 * dims;
  // The buffer is reserved once and never grows past what the header
  // declares; a file too small to hold that (deflate expands at most
  // 1032:1) is refused before any of it is allocated.
  std::error_code size_error;
  const std::uintmax_t file_bytes = std::filesystem::file_size(path, size_error);
  if (!size_error && file_bytes < std::uintmax_t(count) / 1032)
    bad(path, header, "the header declares " + std::to_string(count) + " bytes, more than a " +
                          std::to_string(file_bytes) + "-byte file can hold even gzip-compressed");
  try {
    out.values.reserve(count);
  } catch (const std::bad_alloc&) {
    bad(path, header, "cannot allocate the " + std::to_string(count) + " bytes the header declares");
  }
  std::size_t got = 0;
  while (got < count) {
    const std::size_t chunk = std::min<std::size_t>(count - got, std::size_t{1} << 20);
    out.values.resize(got + chunk);
    errno = 0;
    const int r = gzread(f, out.values.data() + got, static_cast<unsigned>(chunk));
    if (r <= 0) {
      out.values.resize(got);
      bad(path, header + got,
          read_failure(f, errno, "data ends after " + std::to_string(got) + " of " + std::to_string(count) + " bytes"));
    }
    got += static_cast<std::size_t>(r);
  }
  out.values.resize(got);
  // Reading on to the end checks the gzip trailer (CRC-32 and length).
  unsigned char extra;
  errno = 0;
  const int r = gzread(f, &extra, 1);
  if (r > 0) bad(path, header + count, "data continues past the " + std::to_string(count) + " bytes the header declares");
  why = read_failure(f, errno, "");
  if (!why.empty()) bad(path, header + count, why);
  return out;
}

const char* default_data_dir() { return "/usr/share/datasets/fashion-mnist"; }

namespace {
TensorDataset load_idx_files(const std::string& dir, bool train, std::size_t max_bytes) {
  const std::string prefix = train ? "train" : "t10k";
  const std::string images_path = find_file(dir, prefix + "-images-idx3-ubyte");
  const std::string labels_path = find_file(dir, prefix + "-labels-idx1-ubyte");
  IdxArray images = read_idx(images_path, max_bytes);
  IdxArray labels = read_idx(labels_path, max_bytes);
  if (images.shape.size() != 3)
    throw IOError("load_idx_dataset: '" + images_path + "' holds a " + std::to_string(images.shape.size()) +
                  "-d array, images need 3 dimensions (N, H, W)");
  if (labels.shape.size() != 1)
    throw IOError("load_idx_dataset: '" + labels_path + "' holds a " + std::to_string(labels.shape.size()) +
                  "-d array, labels need 1 dimension");
  if (images.shape[0] != labels.shape[0])
    throw IOError("load_idx_dataset: " + std::to_string(images.shape[0]) + " images in '" + images_path + "' but " +
                  std::to_string(labels.shape[0]) + " labels in '" + labels_path + "'");
  TensorDataset d;
  d.images = Tensor<float>::from_shape({images.shape[0], 1, images.shape[1], images.shape[2]});
  std::transform(images.values.begin(), images.values.end(), d.images.begin(),
                 [](std::uint8_t v) { return static_cast<float>(v) / 255.0f; });
  d.labels = Tensor<float>::from_shape({labels.shape[0]});
  std::size_t max_label = 0;
  for (std::size_t i = 0; i < labels.values.size(); ++i) {
    d.labels(i) = labels.values[i];
    max_label = std::max<std::size_t>(max_label, labels.values[i]);
  }
  d.classes = std::max<std::size_t>(10, max_label + 1);
  return d;
}
}  // namespace

TensorDataset load_idx_dataset(const std::string& dir, bool train, std::size_t max_bytes) {
  TensorDataset d = load_idx_files(dir, train, max_bytes);
#if defined(__GLIBC__)
  // The raw bytes and the buffers they grew through are free now; zerograd
  // keeps freed heap memory mapped (Note [malloc] in autograd/src/kernels/parallel.cpp),
  // so give these 50-250 MB back to the kernel once, here.
  malloc_trim(0);
#endif
  return d;
}

namespace {
const NpzReader::Member& find_member(const NpzReader& zip, const std::string& key) {
  std::vector<std::string> names;
  for (const auto& m : zip.members()) {
    if (m.name == key) return m;
    names.push_back(quoted(m.name));
  }
  throw IOError("load_npz_dataset: '" + zip.path() + "' has no member '" + key + ".npy' (it holds " +
                (names.empty() ? std::string("nothing") : listed(names)) + ")");
}

// Labels are class indices: whole numbers in [0, 2^24), where float counts exactly.
std::size_t check_labels(const Tensor<float>& y, const std::string& what, const NpyHeader& h) {
  float top = -1;
  for (std::size_t i = 0; i < y.size(); ++i) {
    const float v = y.data()[i];
    if (!(v >= 0 && v < 16777216.f) || v != std::floor(v))
      throw IOError(what + ": byte " + std::to_string(h.data_offset + i * h.item_size()) + ": label " +
                    std::to_string(v) + " at index " + std::to_string(i) + " is not a class index (a whole number >= 0)");
    top = std::max(top, v);
  }
  return static_cast<std::size_t>(top + 1);
}
}  // namespace

TensorDataset load_npz_dataset(const std::string& path, const std::string& x_key, const std::string& y_key) {
  NpzReader zip(path);
  const NpzReader::Member& xm = find_member(zip, x_key);
  const NpzReader::Member& ym = find_member(zip, y_key);
  const NpyHeader xh = zip.header(xm), yh = zip.header(ym);
  const std::string where = "load_npz_dataset: '" + path + "'";
  const std::string x_what = where + " entry '" + x_key + ".npy'", y_what = where + " entry '" + y_key + ".npy'";
  if (xh.shape.size() < 2)
    throw IOError(x_what + ": byte " + std::to_string(xh.data_offset) + ": x of shape " + shape_str(xh.shape) +
                  " is not (N, ...) with at least 2 dimensions");
  if (yh.shape.size() != 1 || yh.shape[0] != xh.shape[0])
    throw IOError(y_what + ": byte " + std::to_string(yh.data_offset) + ": y of shape " + shape_str(yh.shape) +
                  " is not one label per sample of x " + shape_str(xh.shape));
  TensorDataset d;
  d.images = zip.read_as_float(xm, xh);
  if (xh.dtype == "|u1") d.images /= 255.0f;
  d.labels = zip.read_as_float(ym, yh);
  d.classes = check_labels(d.labels, y_what, yh);
  return d;
}

TensorDataset::TensorDataset(Tensor<float> images_, Tensor<float> labels_, std::size_t classes_)
    : images(std::move(images_)), labels(std::move(labels_)), classes(classes_) {
  check("TensorDataset");
}

void TensorDataset::check(const std::string& op) const {
  if (labels.dimension() != 1 || images.dimension() == 0 || images.shape()[0] != labels.size())
    throw ValueError(op + ": images of shape " + shape_str(images.shape()) + " and labels of shape " +
                     shape_str(labels.shape()) + " do not hold one label per image (want (N, ...) and (N))");
}

Example TensorDataset::get(std::size_t i) const {
  if (i >= size())
    throw ValueError("TensorDataset::get: index " + std::to_string(i) + " is out of range for " +
                     std::to_string(size()) + " samples");
  check("TensorDataset::get");
  const std::size_t per = images.size() / size();
  Example e{Tensor<float>::from_shape(Shape(images.shape().begin() + 1, images.shape().end())),
            Tensor<float>::from_shape(Shape{})};
  std::copy(images.data() + i * per, images.data() + (i + 1) * per, e.x.data());
  e.target() = labels(i);
  return e;
}

TensorDataset TensorDataset::slice(std::size_t begin, std::size_t end) const {
  end = std::min(end, size());
  begin = std::min(begin, end);
  TensorDataset d;
  d.classes = classes;
  auto shape = images.shape();
  const std::size_t per = size() ? images.size() / size() : 0;
  std::vector<std::size_t> s(shape.begin(), shape.end());
  s[0] = end - begin;
  d.images = Tensor<float>::from_shape(s);
  std::copy(images.data() + begin * per, images.data() + end * per, d.images.data());
  d.labels = Tensor<float>::from_shape({end - begin});
  std::copy(labels.data() + begin, labels.data() + end, d.labels.data());
  return d;
}

TensorDataset TensorDataset::head(std::size_t n) const { return slice(0, n); }

Tensor<float> flatten_images(const Tensor<float>& images) {
  Tensor<float> out = images;
  const std::size_t n = images.shape()[0];
  out.reshape({n, n ? images.size() / n : 0});
  return out;
}

Tensor<float> one_hot(const Tensor<float>& labels, std::size_t classes) {
  Tensor<float> out = xt::zeros<float>({labels.size(), classes});
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const float l = labels.data()[i];
    if (!(l >= 0 && l < float(classes)))
      throw ValueError("one_hot: label " + std::to_string(l) + " at index " + std::to_string(i) +
                       " is not in [0, " + std::to_string(classes) + ")");
    out(i, static_cast<std::size_t>(l)) = 1.0f;
  }
  return out;
}

TensorDataset spiral(std::size_t per_class, std::size_t classes, std::uint64_t seed) {
  Generator gen(seed);
  std::normal_distribution<double> noise(0.0, 1.0);
  TensorDataset d;
  d.classes = classes;
  const std::size_t n = per_class * classes;
  d.images = Tensor<float>::from_shape({n, 2});
  d.labels = Tensor<float>::from_shape({n});
  for (std::size_t c = 0; c < classes; ++c) {
    for (std::size_t i = 0; i < per_class; ++i) {
      const double rate = double(i) / double(per_class);
      const double radius = rate;
      const double theta = double(c) * 4.0 + 4.0 * rate + noise(gen) * 0.2;
      const std::size_t k = c * per_class + i;
      d.images(k, 0) = static_cast<float>(radius * std::sin(theta));
      d.images(k, 1) = static_cast<float>(radius * std::cos(theta));
      d.labels(k) = static_cast<float>(c);
    }
  }
  return d;
}

}  // namespace zg::nn::data
