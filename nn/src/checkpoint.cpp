#include "zerograd/nn/checkpoint.hpp"

#include <map>
#include <set>
#include <sstream>

#include "zerograd/error.hpp"

namespace zg::nn {
namespace {

// A dotted path of letters, digits, '_' and '-': what Module and the
// optimizers name things. Refuses "", "a..b", "../x", "/tmp/x", "a/b".
bool plain_name(const std::string& name) {
  if (name.empty() || name.front() == '.' || name.back() == '.') return false;
  char prev = 0;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                    c == '-' || c == '.';
    if (!ok || (c == '.' && prev == '.')) return false;
    prev = c;
  }
  return true;
}

std::string quoted_list(const std::vector<std::string>& names) {
  std::vector<std::string> q;
  for (const auto& n : names) q.push_back(quoted(n));
  return listed(q);
}

// Room for the .npy magic, version, length and the largest header read.
constexpr std::uint64_t kHeaderRoom = 12 + (1 << 16);

}  // namespace

void save_checkpoint(const std::string& path, const Module& module, const NamedArrays& extra) {
  NamedArrays all = module.state();
  all.insert(all.end(), extra.begin(), extra.end());
  save_npz(path, all);
}

LoadResult load_checkpoint(const std::string& path, Module& module,
                           const std::function<void(const NamedArrays&)>& load_extra, const LoadOptions& options) {
  const std::string where = "load_checkpoint: '" + path + "': nothing was loaded: ";
  NamedVariables targets = module.named_parameters();
  for (auto& b : module.named_buffers()) targets.push_back(b);
  std::map<std::string, const Variable*> by_name;
  std::uint64_t module_bytes = 0;
  for (const auto& [name, v] : targets) {
    by_name.emplace(name, &v);
    module_bytes += v.size() * sizeof(float);
  }
  const std::uint64_t extra_limit = options.max_extra_bytes ? options.max_extra_bytes : 2 * module_bytes + (1 << 20);

  // 1. The zip directory only: names and declared sizes. Nothing is inflated.
  NpzReader zip(path);
  std::vector<std::string> problems;
  std::vector<const NpzReader::Member*> mine, extra;
  std::set<std::string> seen;
  LoadResult result;
  std::uint64_t extra_bytes = 0;
  for (const auto& m : zip.members()) {
    if (!plain_name(m.name)) {
      problems.push_back("entry " + quoted(m.name + ".npy") + " is not a plain parameter name (a dotted path of letters, digits, '_' "
                         "and '-')");
      continue;
    }
    if (!seen.insert(m.name).second) {
      problems.push_back(quoted(m.name) + " appears twice");
      continue;
    }
    auto it = by_name.find(m.name);
    if (it != by_name.end()) {
      const std::uint64_t need = it->second->size() * sizeof(float);
      if (m.size > need + kHeaderRoom)
        problems.push_back(quoted(m.name) + " declares " + std::to_string(m.size) + " bytes, the module's float32 " +
                           shape_str(it->second->shape()) + " array needs " + std::to_string(need) + " and a header");
      else
        mine.push_back(&m);
    } else if (load_extra && (!options.extra_names || options.extra_names(m.name))) {
      extra_bytes = m.size > UINT64_MAX - extra_bytes ? UINT64_MAX : extra_bytes + m.size;  // no wrap-around
      extra.push_back(&m);
    } else {
      result.unexpected.push_back(m.name);
    }
  }
  if (extra_bytes > extra_limit)
    problems.push_back("the entries that are not the module's declare " + std::to_string(extra_bytes) +
                       " bytes in all, more than the limit of " + std::to_string(extra_limit) +
                       " (LoadOptions::max_extra_bytes)");
  for (const auto& [name, v] : targets)
    if (!seen.count(name)) result.missing.push_back(name);
  if (options.strict) {
    if (!result.unexpected.empty())
      problems.push_back("unexpected entries " + quoted_list(result.unexpected) + " (not in " + module.type_name() +
                         (load_extra ? " and not taken by load_extra" : "") +
                         "; LoadOptions::strict = false skips them)");
    for (const auto& name : result.missing) problems.push_back(quoted(name) + " is missing");
  }
  auto fail_if_problems = [&] {
    if (problems.empty()) return;
    throw ValueError(where + listed(problems, "; "));
  };

  // 2. Each wanted member's .npy header (bounded above): dtype and shape.
  std::vector<NpyHeader> headers;
  // Reads m's header; false (and a problem noted) unless it is float32.
  const auto float32_header = [&](const NpzReader::Member& m) {
    headers.push_back(zip.header(m));
    if (headers.back().dtype == "<f4" && !headers.back().fortran_order) return true;
    problems.push_back("'" + m.name + "' is " + headers.back().dtype +
                       (headers.back().fortran_order ? " in Fortran order" : "") + ", expected float32 ('<f4') in C order");
    return false;
  };
  for (const auto* m : mine) {
    const Variable& v = *by_name.at(m->name);
    if (float32_header(*m) && headers.back().shape != v.shape())
      problems.push_back("'" + m->name + "' has shape " + shape_str(headers.back().shape) + ", the module expects " +
                         shape_str(v.shape()));
  }
  for (const auto* m : extra) {
    if (extra_bytes > extra_limit) break;  // refused above; reading headers would cost up to what they declare
    float32_header(*m);
  }
  fail_if_problems();

  // 3. The data, each array inflated once into its own new array, CRC-checked.
  std::vector<Tensor<float>> values;
  for (std::size_t i = 0; i < mine.size(); ++i) values.push_back(zip.read_float(*mine[i], headers[i]));
  NamedArrays extras;
  for (std::size_t i = 0; i < extra.size(); ++i)
    extras.emplace_back(extra[i]->name, zip.read_float(*extra[i], headers[mine.size() + i]));

  // 4. Commit; a failing load_extra puts the module back as it was.
  NamedArrays before;
  for (std::size_t i = 0; i < mine.size(); ++i) {
    Variable v = *by_name.at(mine[i]->name);
    before.emplace_back(mine[i]->name, std::move(v.data()));
    v.data() = std::move(values[i]);
  }
  if (load_extra) {
    try {
      load_extra(extras);
    } catch (...) {
      for (auto& [name, a] : before) {
        Variable v = *by_name.at(name);
        v.data() = std::move(a);
      }
      throw;
    }
  }
  return result;
}

Tensor<float> encode_generator(const Generator& gen) {
  std::ostringstream text;
  text << gen;
  std::istringstream in(text.str());
  std::vector<std::uint64_t> words;
  for (std::uint64_t w; in >> w;) words.push_back(w);
  Tensor<float> out = Tensor<float>::from_shape({words.size() * 4});
  for (std::size_t i = 0; i < words.size(); ++i)
    for (std::size_t k = 0; k < 4; ++k) out(4 * i + k) = float((words[i] >> (16 * k)) & 0xffff);
  return out;
}

void decode_generator(const Tensor<float>& a, Generator& gen, const std::string& key) {
  const std::size_t words = Generator::state_size + 1;  // the state and its position
  if (a.dimension() != 1 || a.size() != 4 * words)
    throw ValueError("decode_generator: '" + key + "' has shape " + shape_str(a.shape()) + ", a generator state is (" +
                     std::to_string(4 * words) + ")");
  std::ostringstream text;
  for (std::size_t i = 0; i < words; ++i) {
    std::uint64_t w = 0;
    for (std::size_t k = 0; k < 4; ++k) {
      const float part = a(4 * i + k);
      if (!(part >= 0 && part <= 65535 && part == float(std::uint64_t(part))))
        throw ValueError("decode_generator: '" + key + "' element " + std::to_string(4 * i + k) +
                         " is not a 16-bit part");
      w |= std::uint64_t(part) << (16 * k);
    }
    text << (i ? " " : "") << w;
  }
  std::istringstream in(text.str());
  Generator restored;
  if (!(in >> restored)) throw ValueError("decode_generator: '" + key + "' is not a generator state");
  gen = restored;
}

}  // namespace zg::nn
