// DistributedDataParallel: model check and broadcast, then gradients
// averaged through a shared-memory window or in all-reduced buckets
// (Notes [Gradient buckets] and [Two ways to average] in ddp.hpp).
#include "zerograd/distributed/ddp.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <sstream>

#include <sys/statvfs.h>

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
  // all_reduce
  std::vector<Bucket> buckets;
  std::vector<MPI_Request> requests;  // one per bucket
  std::vector<std::size_t> bucket_of;  // per parameter
  std::size_t next_launch = 0;         // buckets launch in index order
  // shared_memory
  MPI_Comm window_comm = MPI_COMM_NULL;  // the window's own: its creation and freeing
  MPI_Win window = MPI_WIN_NULL;
  std::vector<float*> segments;  // each rank's, by rank: two halves of `floats`
  std::vector<std::size_t> offset;     // per parameter, in a half
  std::size_t floats = 0;
  std::size_t half = 0;  // which half this iteration writes
  // both
  std::vector<bool> ready;  // per parameter, this iteration
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

// grad = (parts[0] + parts[1] + ...) * scale, each of n floats, summed in
// this order. A block at a time, so the passes over it stay in L1.
void set_mean_grad(const Variable& p, const std::vector<const float*>& parts, float scale) {
  Tensor<float> g = Tensor<float>::from_shape(p.data().shape());
  float* d = g.data();
  const std::size_t n = g.size();
  constexpr std::size_t kBlock = 2048;
  for (std::size_t j0 = 0; j0 < n; j0 += kBlock) {
    const std::size_t m = std::min(kBlock, n - j0);
    float* out = d + j0;
    std::copy(parts[0] + j0, parts[0] + j0 + m, out);
    for (std::size_t r = 1; r < parts.size(); ++r) {
      const float* in = parts[r] + j0;
      for (std::size_t j = 0; j < m; ++j) out[j] += in[j];
    }
    for (std::size_t j = 0; j < m; ++j) out[j] *= scale;
  }
  p.set_grad(Variable(std::move(g)));
}

// Where OpenMPI keeps a shared-memory window's file: /dev/shm unless the
// user moved it (mpirun passes --mca settings to the ranks this way too).
std::string window_directory() {
  const char* dir = std::getenv("OMPI_MCA_osc_sm_backing_directory");
  return dir && *dir ? dir : "/dev/shm";
}

// A container may allow only 64 MB on /dev/shm, and a file that outgrows
// its tmpfs is a SIGBUS, not an error. So the window is used only where it
// takes at most half of the free space there.
bool window_fits(std::size_t bytes) {
  struct statvfs fs;
  if (statvfs(window_directory().c_str(), &fs) != 0) return false;
  return bytes <= std::size_t(fs.f_bavail) * std::size_t(fs.f_frsize) / 2;
}

}  // namespace

const char* to_string(GradientReduction r) {
  switch (r) {
    case GradientReduction::automatic: return "automatic";
    case GradientReduction::shared_memory: return "shared_memory";
    case GradientReduction::all_reduce: return "all_reduce";
  }
  return "?";
}

DistributedDataParallel::DistributedDataParallel(std::shared_ptr<nn::Module> module, DdpOptions options,
                                                 ProcessGroup& group)
    : module_(std::move(module)), group_(group), options_(options), reduction_(options.reduction),
      state_(std::make_unique<State>()) {
  if (!module_) throw ValueError("DistributedDataParallel: the module is null");
  if (options_.bucket_bytes == 0) throw ValueError("DistributedDataParallel: bucket_bytes must be positive");
  const bool one_machine = group_.local_size() == group_.size();
  if (reduction_ == GradientReduction::shared_memory && !one_machine)
    throw ValueError("DistributedDataParallel: reduction shared_memory needs every rank on one machine, but " +
                     std::to_string(group_.local_size()) + " of the " + std::to_string(group_.size()) +
                     " ranks run on this one (use all_reduce or automatic)");
  check_same_model();
  params_ = module_->parameters();
  if (reduction_ != GradientReduction::all_reduce) {
    std::size_t floats = 0;
    for (const auto& p : params_) floats += p.size();
    const std::size_t bytes = 2 * floats * sizeof(float) * std::size_t(group_.size());
    // Every rank must take the same way: it fits only where it fits for all.
    const auto fits = group_.all_gather(std::uint64_t(one_machine && window_fits(bytes)));
    const bool all_fit = std::find(fits.begin(), fits.end(), 0) == fits.end();
    if (reduction_ == GradientReduction::shared_memory && !all_fit)
      throw ValueError("DistributedDataParallel: reduction shared_memory needs " + std::to_string(bytes) +
                       " bytes in " + window_directory() +
                       " (OpenMPI's osc_sm_backing_directory), at most half of its free space on every rank (use "
                       "all_reduce or automatic)");
    reduction_ = all_fit ? GradientReduction::shared_memory : GradientReduction::all_reduce;
  }
  for (auto& v : params_) group_.broadcast(v.data().data(), v.data().size(), 0);
  for (auto& [name, v] : module_->named_buffers()) group_.broadcast(v.data().data(), v.data().size(), 0);
  state_->ready.assign(params_.size(), false);
  if (reduction_ == GradientReduction::shared_memory) make_window();
  else make_buckets();
  // Each parameter reports itself ready as soon as backward has finished its
  // gradient, so its copy (and its bucket's all-reduce) overlaps the rest of backward.
  hooks_ = std::make_unique<Hooks>();
  for (std::size_t i = 0; i < params_.size(); ++i)
    hooks_->handles.push_back(params_[i].register_post_accumulate_grad_hook([this, i](const Variable&) { gradient_ready(i); }));
}

void DistributedDataParallel::make_buckets() {
  State& s = *state_;
  s.bucket_of.resize(params_.size());
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
}

void DistributedDataParallel::make_window() {
  State& s = *state_;
  for (const auto& p : params_) {
    s.offset.push_back(s.floats);
    s.floats += p.size();
  }
  detail::check(MPI_Comm_dup(group_.impl().comm, &s.window_comm), "MPI_Comm_dup (gradient window)");
  MPI_Info info;
  MPI_Info_create(&info);
  MPI_Info_set(info, "alloc_shared_noncontig", "true");  // each rank's segment on its own pages
  float* mine = nullptr;
  const int rc = MPI_Win_allocate_shared(MPI_Aint(2 * std::max<std::size_t>(s.floats, 1) * sizeof(float)),
                                         int(sizeof(float)), info, s.window_comm, &mine, &s.window);
  MPI_Info_free(&info);
  detail::check(rc, "MPI_Win_allocate_shared (gradient window)");
  for (int r = 0; r < group_.size(); ++r) {
    MPI_Aint bytes = 0;
    int unit = 0;
    float* base = nullptr;
    detail::check(MPI_Win_shared_query(s.window, r, &bytes, &unit, &base), "MPI_Win_shared_query");
    s.segments.push_back(base);
  }
  // One passive epoch for the window's life: loads and stores need no
  // other MPI call than MPI_Win_sync around each barrier.
  detail::check(MPI_Win_lock_all(MPI_MODE_NOCHECK, s.window), "MPI_Win_lock_all");
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
  // Freeing the window is collective. A rank unwinding from an error, or
  // whose partners do not come to the barrier in time, leaves it to
  // MPI_Abort or MPI_Finalize rather than wait in MPI_Win_free for ranks
  // that may never call it.
  State& s = *state_;
  int finalized = 0;
  MPI_Finalized(&finalized);  // a DDP that outlives ProcessGroup::world()
  if (s.window == MPI_WIN_NULL || finalized || std::uncaught_exceptions() > 0) return;
  try {
    MPI_Request r;
    detail::check(MPI_Ibarrier(s.window_comm, &r), "MPI_Ibarrier");
    detail::wait(group_, r, "freeing the gradient window");
  } catch (const std::exception&) {
    return;
  }
  MPI_Win_unlock_all(s.window);
  MPI_Win_free(&s.window);
  MPI_Comm_free(&s.window_comm);
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
  const Variable& p = params_[index];
  float* dst = nullptr;
  State::Bucket* b = nullptr;
  if (reduction_ == GradientReduction::shared_memory) {
    dst = s.segments[std::size_t(group_.rank())] + s.half * s.floats + s.offset[index];
  } else {
    b = &s.buckets[s.bucket_of[index]];
    const std::size_t slot = std::size_t(std::find(b->params.begin(), b->params.end(), index) - b->params.begin());
    dst = b->buffer.data() + b->offsets[slot];
  }
  const Variable g = p.grad();
  if (!g.defined()) {
    std::fill(dst, dst + p.size(), 0.0f);
  } else {
    if (g.shape() != p.shape())
      throw ShapeError("DistributedDataParallel: parameter " + std::to_string(index) + " is " + shape_str(p.shape()) +
                       " but its gradient is " + shape_str(g.shape()));
    std::copy(g.data().data(), g.data().data() + p.size(), dst);
  }
  if (!b) return;
  --b->pending;
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
  if (reduction_ == GradientReduction::shared_memory) wait_for_window();
  else wait_for_buckets();
  std::fill(s.ready.begin(), s.ready.end(), false);
}

void DistributedDataParallel::wait_for_buckets() {
  State& s = *state_;
  const auto t0 = std::chrono::steady_clock::now();
  for (std::size_t b = 0; b < s.buckets.size(); ++b)
    detail::wait(group_, s.requests[b], "the all-reduce of gradient bucket " + std::to_string(b));
  last_wait_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const float scale = 1.0f / float(group_.size());
  for (auto& b : s.buckets) {
    for (std::size_t i = 0; i < b.params.size(); ++i)
      set_mean_grad(params_[b.params[i]], {b.buffer.data() + b.offsets[i]}, scale);
    b.pending = b.params.size();
  }
  s.next_launch = 0;
}

void DistributedDataParallel::wait_for_window() {
  State& s = *state_;
  const auto t0 = std::chrono::steady_clock::now();
  MPI_Win_sync(s.window);  // this rank's stores before the barrier
  group_.barrier();
  MPI_Win_sync(s.window);  // the others' stores after it
  last_wait_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const float scale = 1.0f / float(group_.size());
  std::vector<const float*> parts(s.segments.size());
  for (std::size_t k = 0; k < params_.size(); ++k) {
    for (std::size_t r = 0; r < parts.size(); ++r) parts[r] = s.segments[r] + s.half * s.floats + s.offset[k];
    set_mean_grad(params_[k], parts, scale);
  }
  s.half ^= 1;
}

std::size_t DistributedDataParallel::bucket_count() const { return state_->buckets.size(); }

std::vector<std::size_t> DistributedDataParallel::bucket(std::size_t b) const { return state_->buckets.at(b).params; }

}  // namespace zg::distributed
