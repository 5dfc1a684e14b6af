// The thread pool (autograd/include/zerograd/parallel.hpp) and the kernels that use it:
// the same results at 1, 2 and 3 threads, every chunk run exactly once,
// exceptions carried back to the caller, nested loops run serially.
#include <array>
#include <atomic>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include <zerograd/zerograd.hpp>

#include "zerograd/parallel.hpp"
#include "testing.hpp"

using namespace zg;
namespace F = zg::nn::functional;

namespace {

// Sets the thread count for one scope.
struct Threads {
  explicit Threads(int n) : before(num_threads()) { set_num_threads(n); }
  ~Threads() { set_num_threads(before); }
  int before;
};

Variable random(const Shape& shape, unsigned seed) {
  Tensor<float> t = Tensor<float>::from_shape(shape);
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.f, 1.f);
  for (auto& v : t) v = dist(gen);
  return Variable(std::move(t));
}

// Forward and all gradients of a small conv net step, as one flat list.
std::vector<float> conv_step() {
  Variable x = random({9, 3, 12, 12}, 1), W = random({5, 3, 3, 3}, 2), b = random({5}, 3);
  Variable W2 = random({5 * 6 * 6, 300}, 4), t(Tensor<float>(xt::zeros<float>({9})));
  for (auto* v : {&x, &W, &b, &W2}) v->requires_grad_();
  Variable h = F::max_pool2d(zg::relu(F::conv2d(x, W, b, 1, 1)), 2, 2, 0);
  Variable y = zg::matmul(zg::reshape(h, {9, 5 * 6 * 6}), W2);
  Variable loss = F::softmax_cross_entropy(y, t) + zg::sum(F::avg_pool2d(h, 2, 2, 0));
  loss.backward();
  std::vector<float> out{loss.item()};
  for (const Variable& v : {x, W, b, W2})
    for (float g : v.grad().data()) out.push_back(g);
  return out;
}

// DeepConvNet-like: 16 channels in and out, the shapes oneDNN takes.
std::vector<float> conv16_step() {
  Variable x = random({4, 16, 10, 10}, 5), W = random({16, 16, 3, 3}, 6), b = random({16}, 7);
  for (auto* v : {&x, &W, &b}) v->requires_grad_();
  Variable h = F::max_pool2d(zg::relu(F::conv2d(x, W, b, 1, 1)), 2, 2, 0);
  Variable loss = zg::sum(h * h);
  loss.backward();
  std::vector<float> out{loss.item()};
  for (const Variable& v : {x, W, b})
    for (float g : v.grad().data()) out.push_back(g);
  return out;
}

// A team of std::threads, counting its jobs and the threads it started.
std::atomic<int> team_jobs{0}, team_threads{0};
void counting_team(unsigned threads, void (*body)(void*), void* arg) {
  team_jobs.fetch_add(1);
  std::vector<std::thread> others;
  for (unsigned i = 1; i < threads; ++i) {
    team_threads.fetch_add(1);
    others.emplace_back([=] { body(arg); });
  }
  body(arg);
  for (auto& t : others) t.join();
}

// Puts back the runner a test found.
struct RunnerRestore {
  detail::TeamRunner before = detail::loops_runner();
  ~RunnerRestore() { detail::run_loops_on(before); }
};

}  // namespace

TEST_CASE("run_loops_on: the loops run on the team installed, every chunk once, errors carried back, nested loops serial") {
  Threads two(2);
  RunnerRestore restore;
  detail::run_loops_on(counting_team);
  CHECK((detail::loops_runner() == &counting_team));
  team_jobs = 0;
  team_threads = 0;
  std::vector<std::atomic<int>> runs(7);
  std::atomic<int> nested_threads_seen{0};
  detail::parallel_chunks(runs.size(), [&](std::size_t k) {
    runs[k].fetch_add(1);
    CHECK(detail::in_parallel_region());
    // A loop inside a chunk runs on the calling thread, not on a new team.
    const auto me = std::this_thread::get_id();
    detail::parallel_chunks(3, [&](std::size_t) {
      if (std::this_thread::get_id() != me) nested_threads_seen.fetch_add(1);
    });
  });
  for (const auto& r : runs) CHECK(r.load() == 1);
  CHECK(team_jobs.load() == 1);
  CHECK(team_threads.load() == 1);  // 2 threads: the caller and one more
  CHECK(nested_threads_seen.load() == 0);
  CHECK_THROWS_WITH_AS(detail::parallel_chunks(4, [](std::size_t k) {
                         if (k == 2) throw std::runtime_error("chunk 2 failed");
                       }),
                       "chunk 2 failed", std::runtime_error);
  CHECK(team_jobs.load() == 2);
  // The same results as on the pool, bit for bit.
  const std::vector<float> on_team = conv_step();
  CHECK(team_jobs.load() > 2);
  detail::run_loops_on(nullptr);
  const int jobs = team_jobs.load();
  CHECK(conv_step() == on_team);
  CHECK(team_jobs.load() == jobs);
}

TEST_CASE("after a oneDNN convolution the loops run on libgomp's threads, with the pool's results") {
  Threads two(2);
  RunnerRestore restore;
  detail::run_loops_on(nullptr);
  const std::vector<float> first = conv16_step();
#ifdef ZG_TEST_WITH_DNNL
  const char* conv = std::getenv("ZEROGRAD_CONV");
  if (!(conv && std::string(conv) == "im2col")) CHECK((detail::loops_runner() != nullptr));
#endif
  // The second run has its loops on the team from the start.
  CHECK(conv16_step() == first);
}

TEST_CASE("parallel_chunks runs every chunk exactly once, on more than one thread") {
  Threads two(2);
  for (std::size_t chunks : {1u, 2u, 3u, 7u}) {
    std::vector<std::atomic<int>> runs(chunks);
    detail::parallel_chunks(chunks, [&](std::size_t k) { runs[k].fetch_add(1); });
    for (std::size_t k = 0; k < chunks; ++k) CHECK(runs[k].load() == 1);
  }
  // chunk_begin tiles [0, n) without gaps or overlaps.
  for (std::size_t n : {0u, 1u, 5u, 100u, 101u})
    for (std::size_t c : {1u, 2u, 3u}) {
      CHECK(detail::chunk_begin(n, c, 0) == 0);
      CHECK(detail::chunk_begin(n, c, c) == n);
      for (std::size_t k = 0; k < c; ++k) CHECK(detail::chunk_begin(n, c, k) <= detail::chunk_begin(n, c, k + 1));
    }
  CHECK(detail::chunk_count(1000, 10) == 2);
  CHECK(detail::chunk_count(19, 10) == 1);  // fewer than two grains: no split
}

TEST_CASE("parallel_for covers the range once, nested loops run serially, errors reach the caller") {
  Threads two(2);
  std::vector<int> seen(1000, 0);
  std::atomic<int> nested_chunks{0};
  detail::parallel_for(seen.size(), 10, [&](std::size_t b, std::size_t e) {
    CHECK(detail::in_parallel_region());
    detail::parallel_for(100, 1, [&](std::size_t, std::size_t) { nested_chunks.fetch_add(1); });
    for (std::size_t i = b; i < e; ++i) ++seen[i];
  });
  for (int s : seen) CHECK(s == 1);
  CHECK(nested_chunks.load() == 2);  // one serial inner loop per outer chunk
  CHECK_FALSE(detail::in_parallel_region());

  const auto fail = [] {
    detail::parallel_chunks(4, [](std::size_t k) {
      if (k == 3) throw std::runtime_error("chunk 3 failed");
    });
  };
  CHECK_THROWS_WITH_AS(fail(), "chunk 3 failed", std::runtime_error);
  // The pool still works after an exception.
  std::atomic<int> after{0};
  detail::parallel_chunks(2, [&](std::size_t) { after.fetch_add(1); });
  CHECK(after.load() == 2);
}

TEST_CASE("set_num_threads: n <= 0 means one per core, the setting is reported back") {
  const int before = num_threads();
  set_num_threads(3);
  CHECK(num_threads() == 3);
  set_num_threads(0);
  CHECK(num_threads() >= 1);
  set_num_threads(before);
  CHECK(num_threads() == before);
}

TEST_CASE("conv, pooling, ReLU, reductions and split GEMMs agree at 1, 2 and 3 threads") {
  std::vector<float> one, two, three;
  {
    Threads t(1);
    one = conv_step();
  }
  {
    Threads t(2);
    two = conv_step();
    CHECK(conv_step() == two);  // deterministic for a given setting
  }
  {
    Threads t(3);
    three = conv_step();
  }
  REQUIRE(one.size() == two.size());
  REQUIRE(one.size() == three.size());
  for (std::size_t i = 0; i < one.size(); ++i) {
    CAPTURE(i);
    // Only the order of additions in sums over samples changes.
    CHECK(two[i] == doctest::Approx(one[i]).epsilon(1e-4).scale(1e-3));
    CHECK(three[i] == doctest::Approx(one[i]).epsilon(1e-4).scale(1e-3));
  }
}

TEST_CASE("a large GEMM split into row and column blocks: the product to BLAS's rounding, repeatable") {
  // Note [BLAS tolerance] in testing.hpp: a block of C need not be computed
  // with the whole product's arithmetic (OpenBLAS's Haswell and Zen kernels
  // differ in the last bits, its SkylakeX ones do not), so the split product
  // is checked against the exact one with a tolerance from K, not bit for
  // bit. What zerograd promises is that the same thread count repeats.
  // Shapes: split by rows, by columns, and both transposed.
  for (const auto& mkn : std::vector<std::array<std::size_t, 3>>{{200, 300, 40}, {20, 300, 400}, {129, 257, 65}}) {
    const std::size_t M = mkn[0], K = mkn[1], N = mkn[2];
    CAPTURE(M);
    Variable a = random({M, K}, 5), b = random({K, N}, 6);
    Variable at = zg::transpose(a), bt = zg::transpose(b);
    Threads t(2);
    const Tensor<float> split = zg::matmul(a, b).data(), split_t = zg::matmul(at, bt, true, true).data();
    zg::testing::check_product(split, a.data(), b.data(), false, false);
    zg::testing::check_product(split_t, at.data(), bt.data(), true, true);
    CHECK(zg::matmul(a, b).data() == split);
    CHECK(zg::matmul(at, bt, true, true).data() == split_t);
  }
}

TEST_CASE("two user threads using the pool at once both get the exact single-caller result") {
  Threads t(2);
  const std::vector<float> alone = conv_step();
  std::vector<float> a, b;
  std::thread first([&] { a = conv_step(); });
  std::thread second([&] { b = conv_step(); });
  first.join();
  second.join();
  // The thread that finds the pool busy runs the same chunks itself, in order.
  CHECK(a == alone);
  CHECK(b == alone);
}

TEST_CASE("a forked child makes a pool of its own instead of waiting for the parent's workers") {
  Threads t(2);
  RunnerRestore restore;
  // With a team runner too (libgomp's, once a oneDNN convolution ran): its
  // threads are gone in the child as well.
  detail::run_loops_on(counting_team);
  const std::vector<float> before = conv_step();  // the parent's pool exists now
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::alarm(30);  // a hang becomes a failure, not a stuck test run
    const bool on_pool = detail::loops_runner() == nullptr;
    detail::run_loops_on(counting_team);  // ignored in a forked child
    const bool same = conv_step() == before;
    std::_Exit(same && on_pool && detail::loops_runner() == nullptr ? 0 : 1);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("set_num_threads while another thread runs parallel loops: every loop completes, exactly") {
  Threads restore(2);
  std::atomic<bool> done{false};
  std::atomic<int> wrong{0};
  std::thread user([&] {
    for (int round = 0; round < 400; ++round) {
      std::array<std::atomic<int>, 16> runs{};
      detail::parallel_chunks(runs.size(), [&](std::size_t k) { runs[k].fetch_add(1); });
      for (const auto& r : runs)
        if (r.load() != 1) wrong.fetch_add(1);
    }
    done = true;
  });
  // The pool the user thread is running on is replaced again and again.
  for (int i = 0; !done; ++i) set_num_threads(1 + i % 3);
  user.join();
  CHECK(wrong.load() == 0);
}

TEST_CASE("set_num_threads from inside a parallel loop is an error, not a deadlock") {
  Threads restore(2);
  std::atomic<int> refused{0};
  detail::parallel_chunks(4, [&](std::size_t) {
    try {
      set_num_threads(1);
    } catch (const Error& e) {
      if (std::string(e.what()).find("inside a parallel loop") != std::string::npos) refused.fetch_add(1);
    }
  });
  CHECK(refused.load() == 4);
  CHECK(num_threads() == 2);
}
