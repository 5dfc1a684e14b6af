// DistributedDataParallel: model check and broadcast, gradient buckets
// all-reduced with MPI_Iallreduce (Note [Gradient buckets] in ddp.hpp).
#include "zerograd/distributed/ddp.hpp"

#include <algorithm>
#include <chrono>
#include <sstream>

#include "mpi_detail.hpp"

namespace zg::distributed {

struct DistributedDataParallel::Hooks {
  std::vector<HookHandle> handles;
};

struct DistributedDataParallel::State {
  struct Bucket {
    std::vector<std::size_t> params;   // indices into params_
    std::vector<std::size_t> offsets;  // where each starts in buffer
    std::vector<float> buffer;
    std::size_t pending = 0;  // parameters not yet reported ready
  };
  std::vector<Bucket> buckets;
  std::vector<MPI_Request> requests;  // one per bucket
  std::vector<std::size_t> bucket_of;  // per parameter
  std::vector<bool> ready;             // per parameter, this iteration
  std::size_t next_launch = 0;         // buckets launch in index order
};

namespace {

// One line per parameter and buffer: what must agree across ranks.
std::vector<std::string> describe(const nn::Module& m) {
  std::vector<std::string> lines;
  for (const auto& [name, v] : m.named_parameters()) lines.push_back("parameter '" + name + "' " + shape_str(v.shape()) + " float32");
  for (const auto& [name, v] : m.named_buffers()) lines.push_back("buffer '" + name + "' " + shape_str(v.shape()) + " float32");
  return lines;
}

std::string join(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  return s;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> lines;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

}  // namespace

DistributedDataParallel::DistributedDataParallel(std::shared_ptr<nn::Module> module, DdpOptions options,
                                                 ProcessGroup& group)
    : module_(std::move(module)), group_(group), options_(options), state_(std::make_unique<State>()) {
  if (!module_) throw ValueError("DistributedDataParallel: the module is null");
  if (options_.bucket_bytes == 0) throw ValueError("DistributedDataParallel: bucket_bytes must be positive");
  check_same_model();
  params_ = module_->parameters();
  for (auto& v : params_) group_.broadcast(v.data().data(), v.data().size(), 0);
  for (auto& [name, v] : module_->named_buffers()) group_.broadcast(v.data().data(), v.data().size(), 0);

  State& s = *state_;
  s.bucket_of.resize(params_.size());
  s.ready.assign(params_.size(), false);
  for (std::size_t k = params_.size(); k-- > 0;) {
    const std::size_t bytes = params_[k].size() * sizeof(float);
    if (s.buckets.empty() || (!s.buckets.back().params.empty() &&
                              (s.buckets.back().buffer.size() * sizeof(float) + bytes > options_.bucket_bytes)))
      s.buckets.emplace_back();
    auto& b = s.buckets.back();
    b.params.push_back(k);
    b.offsets.push_back(b.buffer.size());
    b.buffer.resize(b.buffer.size() + params_[k].size());
    s.bucket_of[k] = s.buckets.size() - 1;
  }
  for (auto& b : s.buckets) b.pending = b.params.size();
  s.requests.assign(s.buckets.size(), MPI_REQUEST_NULL);
  // Each parameter reports itself ready as soon as backward has finished its
  // gradient, so the first buckets' all-reduce overlaps the rest of backward.
  hooks_ = std::make_unique<Hooks>();
  for (std::size_t i = 0; i < params_.size(); ++i)
    hooks_->handles.push_back(params_[i].register_post_accumulate_grad_hook([this, i](const Variable&) { gradient_ready(i); }));
}

std::size_t DistributedDataParallel::buckets_started() const { return state_->next_launch; }

DistributedDataParallel::~DistributedDataParallel() {
  if (hooks_)
    for (auto& h : hooks_->handles) h.remove();
  // A bucket still in flight (an exception between backward and the sync):
  // MPI writes into its buffer until it completes, so wait for it, and if
  // that fails keep the buffers alive rather than free memory MPI may write.
  for (auto& r : state_->requests) {
    if (r == MPI_REQUEST_NULL) continue;
    try {
      detail::wait(group_, r, "an unfinished gradient all-reduce");
    } catch (const std::exception&) {
      state_.release();
      return;
    }
  }
}

void DistributedDataParallel::check_same_model() {
  const auto mine = describe(*module_);
  const auto all = group_.all_gather(join(mine));
  const auto reference = split(all[0]);
  for (int r = 1; r < group_.size(); ++r) {
    const auto other = split(all[std::size_t(r)]);
    const std::size_t n = std::max(reference.size(), other.size());
    for (std::size_t i = 0; i < n; ++i) {
      const std::string a = i < reference.size() ? reference[i] : "nothing";
      const std::string b = i < other.size() ? other[i] : "nothing";
      if (a != b)
        throw ShapeError("DistributedDataParallel: the ranks' models differ at entry " + std::to_string(i) + ": " + a +
                         " on rank 0 but " + b + " on rank " + std::to_string(r) +
                         " (every rank must build the same model)");
    }
  }
}

void DistributedDataParallel::gradient_ready(std::size_t index) {
  if (!sync_) return;
  State& s = *state_;
  if (index >= params_.size())
    throw ValueError("DistributedDataParallel::gradient_ready: parameter " + std::to_string(index) + " of " +
                     std::to_string(params_.size()));
  if (s.ready[index])
    throw ValueError("DistributedDataParallel: parameter " + std::to_string(index) +
                     " got a second gradient before finish_gradient_sync(); accumulate micro-batches under no_sync()");
  s.ready[index] = true;
  auto& b = s.buckets[s.bucket_of[index]];
  const std::size_t slot = std::size_t(std::find(b.params.begin(), b.params.end(), index) - b.params.begin());
  float* dst = b.buffer.data() + b.offsets[slot];
  const Variable& p = params_[index];
  const Variable g = p.grad();
  if (!g.defined()) {
    std::fill(dst, dst + p.size(), 0.0f);
  } else {
    if (g.shape() != p.shape())
      throw ShapeError("DistributedDataParallel: parameter " + std::to_string(index) + " is " + shape_str(p.shape()) +
                       " but its gradient is " + shape_str(g.shape()));
    std::copy(g.data().data(), g.data().data() + p.size(), dst);
  }
  --b.pending;
  launch_ready_buckets();
  // MPI moves a non-blocking collective on only inside MPI calls.
  detail::poke(s.requests.data(), int(s.next_launch));
}

void DistributedDataParallel::launch_ready_buckets() {
  State& s = *state_;
  while (s.next_launch < s.buckets.size() && s.buckets[s.next_launch].pending == 0) {
    auto& b = s.buckets[s.next_launch];
    detail::check(MPI_Iallreduce(MPI_IN_PLACE, b.buffer.data(), int(b.buffer.size()), MPI_FLOAT, MPI_SUM,
                                 group_.impl().comm, &s.requests[s.next_launch]),
                  "MPI_Iallreduce (gradient bucket)");
    ++s.next_launch;
  }
}

void DistributedDataParallel::finish_gradient_sync() {
  if (!sync_) return;
  State& s = *state_;
  for (std::size_t k = params_.size(); k-- > 0;)
    if (!s.ready[k]) gradient_ready(k);
  const auto t0 = std::chrono::steady_clock::now();
  for (std::size_t b = 0; b < s.buckets.size(); ++b)
    detail::wait(group_, s.requests[b], "the all-reduce of gradient bucket " + std::to_string(b));
  last_wait_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const float scale = 1.0f / float(group_.size());
  for (auto& b : s.buckets) {
    for (std::size_t i = 0; i < b.params.size(); ++i) {
      const Variable& p = params_[b.params[i]];
      Tensor<float> g = Tensor<float>::from_shape(p.data().shape());
      const float* src = b.buffer.data() + b.offsets[i];
      for (std::size_t j = 0; j < g.size(); ++j) g.data()[j] = src[j] * scale;
      p.set_grad(Variable(std::move(g)));
    }
    b.pending = b.params.size();
  }
  std::fill(s.ready.begin(), s.ready.end(), false);
  s.next_launch = 0;
}

std::size_t DistributedDataParallel::bucket_count() const { return state_->buckets.size(); }

std::vector<std::size_t> DistributedDataParallel::bucket(std::size_t b) const { return state_->buckets.at(b).params; }

}  // namespace zg::distributed
