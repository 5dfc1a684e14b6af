// The thread pool behind detail::parallel_for and the zg::set_num_threads
// setting (see Note [Threads] in parallel.hpp).
//
// Note [Pool]: the pool runs one job at a time, like an OpenMP parallel
// region: the caller publishes the job and bumps `epoch_`, every worker runs
// chunks until none is left and reports in, and the caller returns only when
// all workers have reported. So a worker never sees a half-published job and
// no job outlives the caller's stack frame. Workers spin for a short while
// after a job (training runs parallel kernels back to back) and then sleep on
// a condition variable.
#include "zerograd/parallel.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <pthread.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "zerograd/error.hpp"
#include "zerograd/threads.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define ZG_CPU_RELAX() _mm_pause()
#else
#define ZG_CPU_RELAX() std::this_thread::yield()
#endif

namespace zg::detail {

void set_blas_threads(int n);  // blas.cpp

namespace {

thread_local bool inside_chunk = false;

// Marks this thread as running chunks, so loops nested in them run serially.
struct ChunkScope {
  bool previous = inside_chunk;
  ChunkScope() { inside_chunk = true; }
  ~ChunkScope() { inside_chunk = previous; }
};

class Pool {
 public:
  explicit Pool(int threads) {
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { work(); });
  }
  ~Pool() { retire(); }
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // Waits for the job in flight, then stops and joins the workers. A retired
  // pool runs nothing: run() returns false and its caller runs the chunks
  // itself. Idempotent.
  void retire() {
    std::lock_guard<std::mutex> busy(busy_);
    if (retired_) return;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
    retired_ = true;
  }

  // Runs the job across the pool; false, without running anything, when the
  // pool is busy with another user thread's job or retired.
  bool run(std::size_t chunks, const std::function<void(std::size_t)>& fn) {
    std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
    if (!busy.owns_lock() || retired_) return false;
    job_ = &fn;
    chunks_ = chunks;
    next_.store(0);
    reported_.store(0);
    error_ = nullptr;
    epoch_.fetch_add(1);  // seq_cst, paired with the workers' sleeping_ count
    if (sleeping_.load() > 0) {
      std::lock_guard<std::mutex> lock(mutex_);
      wake_.notify_all();
    }
    run_chunks();
    for (unsigned spins = 0; reported_.load(std::memory_order_acquire) != workers_.size(); ++spins)
      if (spins < 4096) ZG_CPU_RELAX();
      else std::this_thread::yield();
    job_ = nullptr;
    if (error_) std::rethrow_exception(error_);
    return true;
  }

 private:
  void run_chunks() {
    ChunkScope scope;
    for (std::size_t k; (k = next_.fetch_add(1)) < chunks_;) {
      try {
        (*job_)(k);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex_);
        if (!error_) error_ = std::current_exception();
      }
    }
  }

  void work() {
    std::uint64_t seen = 0;
    for (;;) {
      // Spin about 200 microseconds for the next job before sleeping.
      const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(200);
      for (unsigned spins = 0; epoch_.load(std::memory_order_acquire) == seen; ++spins) {
        ZG_CPU_RELAX();
        if ((spins & 63) == 0 && std::chrono::steady_clock::now() > until) break;
      }
      if (epoch_.load() == seen) {
        std::unique_lock<std::mutex> lock(mutex_);
        sleeping_.fetch_add(1);
        wake_.wait(lock, [&] { return stop_ || epoch_.load() != seen; });
        sleeping_.fetch_sub(1);
        if (stop_) return;
      }
      seen = epoch_.load();
      run_chunks();
      reported_.fetch_add(1, std::memory_order_release);
    }
  }

  std::vector<std::thread> workers_;
  std::mutex busy_;  // held by the thread whose job the pool is running, and by retire()
  bool retired_ = false;  // guarded by busy_
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::atomic<std::uint64_t> epoch_{0};
  std::atomic<int> sleeping_{0};
  const std::function<void(std::size_t)>* job_ = nullptr;
  std::size_t chunks_ = 0;
  std::atomic<std::size_t> next_{0};
  std::atomic<std::size_t> reported_{0};
  std::mutex error_mutex_;
  std::exception_ptr error_;
};

int cores() { return static_cast<int>(std::max(1u, std::thread::hardware_concurrency())); }

struct Setting {
  std::atomic<int> threads{0};
  // Leaked on purpose: workers may still be asleep in it at process exit.
  std::atomic<Pool*> pool{nullptr};
  // Pools replaced by set_num_threads: retired (workers joined) but never
  // freed, since another thread may still hold one it looked up just
  // before; it finds it retired and runs its chunks itself.
  std::vector<std::unique_ptr<Pool>> retired;
  std::mutex mutex;  // guards changes of the setting, not each parallel loop
};

Setting* the_setting = nullptr;  // for the fork handler, which must not run setting()'s initialiser

// Note [One thread team] in parallel.hpp.
std::atomic<TeamRunner> team_runner{nullptr};
std::atomic<bool> forked_child{false};

// A forked child has no worker threads: it forgets the parent's pool (its
// memory is abandoned, not freed: the workers it counts do not exist) and
// makes a new one on first use. libgomp's threads do not survive fork
// either, and a parallel region in the child would wait for them forever:
// the child's loops stay on the pool.
void forget_pool_in_child() {
  if (the_setting) the_setting->pool.store(nullptr);
  team_runner.store(nullptr);
  forked_child.store(true);
}

Setting& setting() {
  static Setting* s = [] {
    auto* fresh = new Setting;
    fresh->threads = cores();
    set_blas_threads(1);
    the_setting = fresh;
    pthread_atfork(nullptr, nullptr, forget_pool_in_child);
    return fresh;
  }();
  return *s;
}

Pool& pool() {
  Setting& s = setting();
  Pool* p = s.pool.load(std::memory_order_acquire);
  if (p) return *p;
  std::lock_guard<std::mutex> lock(s.mutex);
  if (!s.pool.load()) s.pool.store(new Pool(s.threads), std::memory_order_release);
  return *s.pool.load();
}

// Note [malloc]: glibc hands out blocks over 128 KB to 32 MB with mmap at
// first, then from the heap, and gives the heap's free top back to the
// kernel once it exceeds twice that size. Training frees and reallocates
// the same multi-megabyte arrays every step, so memory went back to the
// kernel and every step page-faulted it in again, zero-filled: a 100x4320
// @ 4320x100 matmul forward + backward took 2.0 ms instead of 1.0 ms at two
// threads (1.1 million page faults in 1,280 steps, 6,000 with this). So
// zerograd raises both thresholds once, at start-up: blocks under 64 MB come
// from the heap and up to 256 MB of free heap stay mapped. Peak memory is
// unchanged; the resident size after a peak stays up.
//
// It also turns glibc's fastbins off (M_MXFAST = 0). A graph is millions of
// small blocks; freed into fastbins they are never merged, and the next
// graph was built from blocks scattered over the whole heap: a second
// 1,000,000-op chain in one process took 3 to 4 times as long as the first
// (forward 0.26 -> 0.61 -> 0.92 s). Freed blocks now merge as they are freed
// and each chain runs like the first (0.26, 0.16, 0.16 s); one scalar op
// forward went from 229 to 140 ns, backward from 168 to 194 ns (merging is
// done while freeing). Small blocks are still recycled by the per-thread
// cache (tcache) in front of the bins.
//
// ZEROGRAD_MALLOC_TUNING=0 in the environment leaves glibc's defaults alone.
struct MallocTuning {
  MallocTuning() {
#if defined(__GLIBC__)
    const char* env = std::getenv("ZEROGRAD_MALLOC_TUNING");
    if (env && std::string(env) == "0") return;
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    mallopt(M_MXFAST, 0);
#endif
  }
};
const MallocTuning malloc_tuning;

std::mutex team_busy;  // one job at a time on the team, as on the pool

struct TeamJob {
  TeamJob(const std::function<void(std::size_t)>& f, std::size_t n) : fn(&f), chunks(n) {}
  const std::function<void(std::size_t)>* fn;
  std::size_t chunks;
  std::atomic<std::size_t> next{0};
  std::mutex error_mutex;
  std::exception_ptr error;
};

// What each of the team's threads runs: chunks until none is left. Nothing
// may be thrown through the runner's frames, so errors are kept for the caller.
void team_body(void* arg) {
  TeamJob& job = *static_cast<TeamJob*>(arg);
  ChunkScope scope;
  for (std::size_t k; (k = job.next.fetch_add(1, std::memory_order_relaxed)) < job.chunks;) {
    try {
      (*job.fn)(k);
    } catch (...) {
      std::lock_guard<std::mutex> lock(job.error_mutex);
      if (!job.error) job.error = std::current_exception();
    }
  }
}

}  // namespace

void run_loops_on(TeamRunner runner) {
  setting();  // registers the fork handler
  if (runner && forked_child.load()) return;  // a forked child keeps the pool
  team_runner.store(runner, std::memory_order_release);
}
TeamRunner loops_runner() { return team_runner.load(std::memory_order_acquire); }

bool in_parallel_region() { return inside_chunk; }

std::size_t chunk_count(std::size_t n, std::size_t grain) {
  if (inside_chunk) return 1;
  const std::size_t threads = static_cast<std::size_t>(setting().threads);
  if (threads <= 1 || n < 2 * std::max<std::size_t>(grain, 1)) return 1;
  return std::min(threads, n / std::max<std::size_t>(grain, 1));
}

void parallel_chunks(std::size_t chunks, const std::function<void(std::size_t)>& fn) {
  if (chunks <= 1 || inside_chunk) {
    for (std::size_t k = 0; k < chunks; ++k) fn(k);
    return;
  }
  if (const TeamRunner runner = team_runner.load(std::memory_order_acquire)) {
    std::unique_lock<std::mutex> busy(team_busy, std::try_to_lock);
    if (busy.owns_lock()) {
      TeamJob job(fn, chunks);
      const auto threads = static_cast<unsigned>(std::min<std::size_t>(chunks, std::size_t(setting().threads)));
      runner(threads, team_body, &job);
      if (job.error) std::rethrow_exception(job.error);
      return;
    }
  } else if (pool().run(chunks, fn)) {
    return;
  }
  // Another user thread's job holds the pool or team: run the same chunks here, in order.
  ChunkScope scope;
  for (std::size_t k = 0; k < chunks; ++k) fn(k);
}

}  // namespace zg::detail

namespace zg {

void set_num_threads(int n) {
  // Retiring the pool waits for the job in flight: from inside that job it
  // would wait for itself.
  if (detail::in_parallel_region())
    throw Error("set_num_threads: called from inside a parallel loop; call it between operations");
  detail::Setting& s = detail::setting();
  const int wanted = n <= 0 ? detail::cores() : n;
  std::lock_guard<std::mutex> lock(s.mutex);
  if (wanted == s.threads) return;
  // The old pool finishes the job in flight and stops; a new pool starts on
  // first use. Its memory is kept (Setting::retired).
  if (detail::Pool* old = s.pool.exchange(nullptr)) {
    old->retire();
    s.retired.emplace_back(old);
  }
  s.threads = wanted;
}

int num_threads() { return detail::setting().threads; }

}  // namespace zg
