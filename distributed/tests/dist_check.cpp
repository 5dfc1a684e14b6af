// Checks of zerograd::distributed, run under mpirun by run_check.sh: one
// mode per check. Each prints what it measured and exits 0, or names what
// went wrong and ends the whole job non-zero (ProcessGroup::abort).
#include <mpi.h>
#include <unistd.h>

#include <cmath>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>

#include <zerograd/distributed.hpp>
#include <zerograd/zerograd.hpp>

using namespace zg;
namespace data = zg::nn::data;
namespace dist = zg::distributed;

namespace {

constexpr std::uint64_t kShuffleSeed = 5;

struct Failure : Error {
  using Error::Error;
};
void expect(bool ok, const std::string& what) {
  if (!ok) throw Failure(what);
}

// Random images and labels (the same on every rank): a quick stand-in for Fashion-MNIST.
data::TensorDataset synthetic(std::size_t n) {
  Generator gen(7);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  data::TensorDataset set;
  set.images = Tensor<float>::from_shape({n, 1, 28, 28});
  for (float& v : set.images) v = u(gen);
  set.labels = Tensor<float>::from_shape({n});
  for (std::size_t i = 0; i < n; ++i) set.labels(i) = float(gen() % 10);
  return set;
}

bool flat(const std::string& model) { return model != "simple-cnn"; }

std::shared_ptr<nn::Module> make_model(const std::string& model, std::size_t hidden = 50) {
  zg::manual_seed(1);
  if (model == "two-layer") return nn::models::two_layer_net(784, hidden, 10);
  if (model == "simple-cnn") return nn::models::simple_conv_net();
  throw ValueError("dist_check: unknown model " + model);
}

// The train command's defaults: SGD at 0.1 on MLPs, 0.01 on CNNs; Adam at 0.001.
std::unique_ptr<optim::Optimizer> make_optimizer(const std::string& name, const std::vector<Variable>& params,
                                                 const std::string& model = "two-layer") {
  if (name == "sgd") return std::make_unique<optim::SGD>(params, model == "simple-cnn" ? 0.01f : 0.1f);
  if (name == "adam") return std::make_unique<optim::Adam>(params, 0.001f);
  throw ValueError("dist_check: unknown optimizer " + name);
}

struct Run {
  std::vector<double> losses;  // of the global batch, per step
  nn::NamedArrays params;
};

Variable loss_of(nn::Module& m, data::DataLoader& loader) {
  data::DataLoader::Batch b;
  if (!loader.next(b)) {
    loader.reset();
    loader.next(b);
  }
  return nn::functional::softmax_cross_entropy(m(b.x), b.t);
}

// One process, the whole global batch: the reference. With micro > 1,
// `micro` batches of `batch` accumulate into each step; each loss is scaled
// by `scale` before backward.
Run run_single(const std::string& model, const std::string& opt, const data::TensorDataset& set, std::size_t batch,
               std::size_t steps, std::size_t micro = 1, double scale = 1) {
  auto m = make_model(model);
  auto o = make_optimizer(opt, m->parameters(), model);
  data::DataLoader::Options options{batch, true, false, flat(model)};
  options.shuffle_seed = kShuffleSeed;
  data::DataLoader loader(set, options);
  Run run;
  for (std::size_t s = 0; s < steps; ++s) {
    double total = 0;
    for (std::size_t k = 0; k < micro; ++k) {
      Variable loss = loss_of(*m, loader);
      total += loss.item();
      (scale == 1 ? loss : loss * scale).backward();
    }
    o->step();
    o->zero_grad();
    run.losses.push_back(total / double(micro));
  }
  run.params = m->state();
  return run;
}

// One process doing the ranks' arithmetic: each global batch as `parts`
// consecutive slices (rank r's share is slice r), each slice's mean loss
// scaled by 1/parts before backward, the gradients accumulated. Scaling by
// a power of two commutes with rounding, so this matches DDP's average of
// the ranks' gradients to the last bits where BLAS sums the same way.
Run run_split(const std::string& model, const std::string& opt, const data::TensorDataset& set, std::size_t batch,
              std::size_t steps, std::size_t parts) {
  return run_single(model, opt, set, batch / parts, steps, parts, 1.0 / double(parts));
}

// Every rank its share of the same global batch, gradients averaged by DDP.
// With micro > 1, the first micro - 1 backward passes run under no_sync().
Run run_ddp(dist::ProcessGroup& g, const std::string& model, const std::string& opt, const data::TensorDataset& set,
            std::size_t batch, std::size_t steps, dist::DdpOptions ddp_options = {}, std::size_t micro = 1,
            std::size_t* buckets = nullptr) {
  dist::DistributedDataParallel ddp(make_model(model), ddp_options, g);
  if (buckets) *buckets = ddp.bucket_count();
  auto o = make_optimizer(opt, ddp.module().parameters(), model);
  data::DataLoader loader(set, dist::data_parallel_options(g, set, batch, kShuffleSeed, {0, true, false, flat(model)}));
  Run run;
  for (std::size_t s = 0; s < steps; ++s) {
    double total = 0;
    for (std::size_t k = 0; k < micro; ++k) {
      Variable loss = loss_of(ddp.module(), loader);
      total += loss.item();
      if (k + 1 < micro) {
        auto no_sync = ddp.no_sync();
        loss.backward();
        ddp.finish_gradient_sync();  // does nothing under no_sync
      } else {
        loss.backward();
      }
    }
    ddp.finish_gradient_sync();
    o->step();
    o->zero_grad();
    g.all_reduce_sum(&total, 1);
    run.losses.push_back(total / double(micro) / g.size());
  }
  run.params = ddp.module().state();
  return run;
}

double rel(double a, double b) { return std::abs(a - b) / std::max(std::abs(b), 1e-12); }

// Worst per-step relative loss difference; the parameters' difference
// ||a - b|| / ||b|| (2-norm) over the whole model, which is what the test
// bounds, and the worst single parameter's, reported: a max-pool or ReLU
// that flips on a last-bit difference moves a small tensor (conv1.weight
// is 750 of SimpleConvNet's 433,890 values) by more than the rest.
struct Difference {
  double loss = 0, model = 0, param = 0;
  std::string worst;
};
Difference compare(const Run& a, const Run& b) {
  expect(a.losses.size() == b.losses.size() && a.params.size() == b.params.size(), "runs of different lengths");
  Difference d;
  for (std::size_t i = 0; i < a.losses.size(); ++i) d.loss = std::max(d.loss, rel(a.losses[i], b.losses[i]));
  double all_diff = 0, all_norm = 1e-300;
  for (std::size_t p = 0; p < a.params.size(); ++p) {
    const auto& x = a.params[p].second;
    const auto& y = b.params[p].second;
    expect(a.params[p].first == b.params[p].first && x.shape() == y.shape(), "different parameters");
    double diff = 0, norm = 1e-300;
    for (std::size_t i = 0; i < x.size(); ++i) {
      const double e = double(x.data()[i]) - double(y.data()[i]);
      diff += e * e;
      norm += double(y.data()[i]) * double(y.data()[i]);
    }
    all_diff += diff;
    all_norm += norm;
    const double r = std::sqrt(diff / norm);
    if (r >= d.param) {
      d.param = r;
      d.worst = a.params[p].first;
    }
  }
  d.model = std::sqrt(all_diff / all_norm);
  return d;
}

std::ostream& operator<<(std::ostream& out, const Difference& d) {
  return out << std::scientific << std::setprecision(2) << "worst loss rel diff " << d.loss
             << ", parameters rel diff " << d.model << " (worst single parameter " << d.param << ", " << d.worst << ")";
}

bool same_bits(const Run& a, const Run& b) {
  if (a.losses != b.losses || a.params.size() != b.params.size()) return false;
  for (std::size_t p = 0; p < a.params.size(); ++p) {
    const auto& x = a.params[p].second;
    const auto& y = b.params[p].second;
    if (x.shape() != y.shape() || std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) != 0) return false;
  }
  return true;
}

// A digest of the parameters' bits, to compare ranks.
std::uint64_t digest(const nn::NamedArrays& arrays) {
  std::uint64_t h = 1469598103934665603ull;
  for (const auto& [name, a] : arrays) {
    const auto* p = reinterpret_cast<const unsigned char*>(a.data());
    for (std::size_t i = 0; i < a.size() * sizeof(float); ++i) h = (h ^ p[i]) * 1099511628211ull;
  }
  return h;
}

// The first n Fashion-MNIST images when the data set is installed (the
// test command installs it), else random ones.
data::TensorDataset fashion_head(std::size_t n, std::string& which) {
  const std::string dir = data::default_data_dir();
  if (!std::filesystem::exists(dir)) {
    which = "random images";
    return synthetic(n);
  }
  which = "Fashion-MNIST";
  return data::load_idx_dataset(dir, true).head(n);
}

void equivalence(dist::ProcessGroup& g, const std::string& model, const std::string& opt) {
  // Note [Equivalence in float32]: 2 processes are compared with 1 twice.
  // - With one process doing the ranks' arithmetic (run_split), to 1e-5:
  //   this is what DDP promises, and it holds for every optimizer.
  // - With one process on the whole batch of 100, as a user would train.
  //   Sums over two halves of a batch round differently from one sum in the
  //   last bits (5e-8 in the first loss). Under SGD that stays there (1e-8
  //   in the parameters after 50 steps). Adam normalises each element's
  //   step, and on SimpleConvNet it lets the difference grow about 1.3x per
  //   step once the loss falls fast (measured with OpenBLAS's Haswell
  //   kernels: 5e-8 at step 5, 1e-5 at step 19, 1e-4 at step 38 of a 40-step
  //   run). Under Adam this comparison is bounded at 1e-5 for the first 10
  //   steps and at 1e-2 after 50; a wrong average fails both comparisons
  //   (checked by summing instead of averaging in ddp.cpp).
  const std::size_t steps = 50, batch = 100;
  std::string which;
  const auto set = fashion_head(batch * steps, which);
  // Every rank computes the references (rank 0 alone uses them): a rank
  // waiting in a collective meanwhile would count against the deadline, and
  // under the sanitizers the two references take about 45 s.
  const Run single = run_single(model, opt, set, batch, steps);
  const Run split = run_split(model, opt, set, batch, steps, std::size_t(g.size()));
  const Run ddp = run_ddp(g, model, opt, set, batch, steps);
  g.check_same(digest(ddp.params), "digest of the parameters after training (ranks out of step)");
  if (!g.is_main()) return;
  const auto d = compare(ddp, single);
  const auto s = compare(ddp, split);
  double early = 0;
  for (std::size_t i = 0; i < 10; ++i) early = std::max(early, rel(ddp.losses[i], single.losses[i]));
  std::cout << "equivalence " << model << " " << opt << ": " << steps << " steps, global batch " << batch << " of " << which << ", "
            << g.size() << " processes vs 1 process doing their arithmetic: " << s << "\n  vs 1 process on the whole batch: " << d
            << "; worst loss rel diff in the first 10 steps " << early << "\n";
  expect(s.loss <= 1e-5 && s.model <= 1e-5, "2 processes differ by more than 1e-5 from 1 process doing their arithmetic");
  const bool adam = opt == "adam";
  const double bound = adam ? 1e-2 : 1e-5;
  expect(early <= 1e-5 && d.loss <= bound && d.model <= bound,
         "2 processes differ from 1 process on the whole batch by more than " + std::to_string(bound));
}

void repeat(dist::ProcessGroup& g) {
  const auto set = synthetic(400);
  const Run a = run_ddp(g, "simple-cnn", "adam", set, 20, 20);
  const Run b = run_ddp(g, "simple-cnn", "adam", set, 20, 20);
  expect(same_bits(a, b), "rank " + std::to_string(g.rank()) + ": the repeated run differs in its bits");
  g.check_same(digest(a.params), "digest of the parameters (ranks out of step)");
  if (g.is_main()) std::cout << "repeat: 20 Adam steps of SimpleConvNet on " << g.size() << " processes, twice: same bits\n";
}

// DdpOptions averaging by `reduction`, with buckets of about `bytes`.
dist::DdpOptions reduced_by(dist::GradientReduction reduction, std::size_t bytes = dist::DdpOptions{}.bucket_bytes) {
  return {bytes, reduction};
}
// The bucket path.
dist::DdpOptions all_reduce(std::size_t bytes = dist::DdpOptions{}.bucket_bytes) {
  return reduced_by(dist::GradientReduction::all_reduce, bytes);
}

void buckets(dist::ProcessGroup& g) {
  const auto set = synthetic(400);
  std::size_t one_count = 0, many_count = 0;
  const Run one = run_ddp(g, "simple-cnn", "adam", set, 20, 10, all_reduce(), 1, &one_count);
  // 64 KB: conv weight and biases in one bucket, affine1.weight (1.7 MB) alone, ...
  const Run many = run_ddp(g, "simple-cnn", "adam", set, 20, 10, all_reduce(64 << 10), 1, &many_count);
  std::size_t each_count = 0;
  const Run each = run_ddp(g, "two-layer", "sgd", set, 20, 10, all_reduce(1), 1, &each_count);
  const Run each_one = run_ddp(g, "two-layer", "sgd", set, 20, 10, all_reduce());
  expect(one_count == 1, "the default bucket size gave " + std::to_string(one_count) + " buckets");
  expect(many_count >= 3, "64 KB buckets gave only " + std::to_string(many_count) + " buckets");
  expect(each_count == 4, "1-byte buckets gave " + std::to_string(each_count) + " buckets for 4 parameters");
  expect(same_bits(one, many) && same_bits(each, each_one), "several buckets differ from one bucket");
  // The parameters' post-accumulate-grad hooks start every bucket inside backward.
  dist::DistributedDataParallel ddp(make_model("simple-cnn"), all_reduce(64 << 10), g);
  data::DataLoader loader(set, dist::data_parallel_options(g, set, 20, kShuffleSeed, {0, true, false, false}));
  loss_of(ddp.module(), loader).backward();
  const std::size_t started = ddp.buckets_started();
  ddp.finish_gradient_sync();
  expect(started == ddp.bucket_count(),
         std::to_string(started) + " of " + std::to_string(ddp.bucket_count()) + " buckets started during backward");
  expect(ddp.buckets_started() == 0, "finish_gradient_sync() left buckets marked started");
  if (g.is_main())
    std::cout << "buckets: SimpleConvNet in " << many_count << " buckets == 1 bucket, TwoLayerNet in " << each_count
              << " == 1, bit for bit; " << started << " of " << many_count << " buckets started inside backward\n";
}

// Both of Note [Two ways to average]: through the shared-memory window and through
// all-reduce buckets, the same bits with 2 ranks (a + b == b + a), also
// with micro-batches under no_sync(); automatic picks the window here.
void reductions(dist::ProcessGroup& g) {
  const auto set = synthetic(400);
  const dist::DdpOptions window = reduced_by(dist::GradientReduction::shared_memory);
  const Run cnn_window = run_ddp(g, "simple-cnn", "adam", set, 20, 10, window);
  const Run cnn_buckets = run_ddp(g, "simple-cnn", "adam", set, 20, 10, all_reduce(64 << 10));
  const Run mlp_window = run_ddp(g, "two-layer", "adam", set, 20, 10, window, 2);
  const Run mlp_buckets = run_ddp(g, "two-layer", "adam", set, 20, 10, all_reduce(), 2);
  if (g.size() == 2) {
    expect(same_bits(cnn_window, cnn_buckets), "SimpleConvNet: the window and all-reduce buckets differ");
    expect(same_bits(mlp_window, mlp_buckets), "TwoLayerNet with no_sync: the window and all-reduce buckets differ");
  }
  g.check_same(digest(cnn_window.params), "digest of the parameters after training through the window");
  dist::DistributedDataParallel automatic(make_model("two-layer"), {}, g);
  expect(automatic.reduction() == dist::GradientReduction::shared_memory && automatic.bucket_count() == 0,
         std::string("automatic picked ") + dist::to_string(automatic.reduction()) + " on one machine");
  if (g.is_main())
    std::cout << "reductions: " << (g.size() == 2 ? "shared_memory == all_reduce bit for bit" : "bits compared only with 2 ranks")
              << " (SimpleConvNet, and TwoLayerNet with no_sync); automatic picks shared_memory on one machine\n";
}

void accumulate(dist::ProcessGroup& g) {
  const auto set = synthetic(400);
  Run single;
  if (g.is_main()) single = run_single("two-layer", "adam", set, 20, 10, 2);
  const Run ddp = run_ddp(g, "two-layer", "adam", set, 20, 10, {}, 2);
  if (!g.is_main()) return;
  const auto d = compare(ddp, single);
  std::cout << "no_sync: 10 steps of 2 micro-batches vs 1 process: " << d << "\n";
  expect(d.loss <= 1e-5 && d.model <= 1e-5, "accumulation under no_sync differs from one process");
}

// Two Linears; rank 0 never uses the second.
struct Partly : nn::Module {
  Partly(bool use_second) : use_second(use_second) {
    a = register_module("a", std::make_shared<nn::Linear>(4, 4));
    b = register_module("b", std::make_shared<nn::Linear>(4, 4));
  }
  Variable forward(const Variable& x) override { return use_second ? (*b)((*a)(x)) : (*a)(x); }
  std::string type_name() const override { return "Partly"; }
  bool use_second;
  std::shared_ptr<nn::Linear> a, b;
};

void unused(dist::ProcessGroup& g) {
  for (auto reduction : {dist::GradientReduction::shared_memory, dist::GradientReduction::all_reduce}) {
    auto m = std::make_shared<Partly>(g.rank() != 0);
    dist::DistributedDataParallel ddp(m, reduced_by(reduction), g);
    Variable x(Tensor<float>(xt::ones<float>({3, 4})));
    sum(ddp(x)).backward();
    Tensor<float> local_b = g.rank() != 0 ? m->b->weight.grad().data() : Tensor<float>(xt::zeros<float>({4, 4}));
    expect(g.rank() == 0 ? !m->b->weight.grad().defined() : true, "rank 0 should have no gradient for b before the sync");
    ddp.finish_gradient_sync();
    for (const auto& p : m->parameters()) expect(p.grad().defined(), "a parameter has no gradient after the sync");
    std::vector<float> mine(local_b.begin(), local_b.end());
    g.all_reduce_sum(mine.data(), mine.size());
    // The mean to float rounding: with 3 or more ranks the reductions sum in
    // another order, and scale by 1/N, than this check does.
    const auto& got = m->b->weight.grad().data();
    for (std::size_t i = 0; i < got.size(); ++i) {
      const float mean = mine[i] / float(g.size());
      expect(std::abs(got.data()[i] - mean) <= 1e-6f * std::max(1.0f, std::abs(mean)),
             std::string(dist::to_string(reduction)) + ": b's gradient is not the mean with zeros for rank 0");
    }
    g.check_same(digest(nn::NamedArrays{{"b", m->b->weight.grad().data()}}), "b's gradient");
  }
  if (g.is_main()) std::cout << "unused: a parameter without a gradient on rank 0 counts as zeros (both reductions)\n";
}

// Run with OMPI_MCA_osc_sm_backing_directory naming no directory: there is
// no room for a window, so automatic takes the buckets and shared_memory
// is an error naming the directory.
void no_window(dist::ProcessGroup& g) {
  dist::DistributedDataParallel automatic(make_model("two-layer"), {}, g);
  expect(automatic.reduction() == dist::GradientReduction::all_reduce && automatic.bucket_count() == 1,
         std::string("automatic picked ") + dist::to_string(automatic.reduction()) + " without room for a window");
  std::string message;
  try {
    dist::DistributedDataParallel window(make_model("two-layer"), reduced_by(dist::GradientReduction::shared_memory), g);
  } catch (const ValueError& e) {
    message = e.what();
  }
  expect(message.find("shared_memory needs 636160 bytes in /nonexistent/zerograd-window") != std::string::npos,
         "shared_memory without room: '" + message + "'");
  if (g.is_main()) std::cout << "no_window: automatic takes all_reduce; shared_memory says: " << message << "\n";
}

// A DDP destroyed at exit after ProcessGroup::world() (so after
// MPI_Finalize): its window is left alone, not freed through a finalized MPI.
std::unique_ptr<dist::DistributedDataParallel> kept_until_exit;

void outlive(dist::ProcessGroup& g) {
  kept_until_exit = std::make_unique<dist::DistributedDataParallel>(make_model("two-layer"), dist::DdpOptions{}, g);
  Variable x(Tensor<float>(xt::ones<float>({2, 784})));
  sum((*kept_until_exit)(x)).backward();
  kept_until_exit->finish_gradient_sync();
  expect(kept_until_exit->reduction() == dist::GradientReduction::shared_memory, "outlive: not through the window");
  if (g.is_main()) std::cout << "outlive: a DDP destroyed after MPI_Finalize\n";
}

// Rows [begin, begin + n) of a (N, ...) tensor.
Tensor<double> rows(const Tensor<double>& t, std::size_t begin, std::size_t n) {
  std::vector<std::size_t> shape(t.shape().begin(), t.shape().end());
  const std::size_t per = t.size() / shape[0];
  shape[0] = n;
  Tensor<double> out = Tensor<double>::from_shape(shape);
  std::copy(t.data() + begin * per, t.data() + (begin + n) * per, out.data());
  return out;
}

double max_diff(const Tensor<double>& a, const Tensor<double>& b) {
  expect(a.shape() == b.shape(), "shapes differ: " + shape_str(a.shape()) + " vs " + shape_str(b.shape()));
  double d = 0;
  for (std::size_t i = 0; i < a.size(); ++i) d = std::max(d, std::abs(a.data()[i] - b.data()[i]));
  return d;
}

// SyncBatchNorm on each rank's slice == BatchNorm over the global batch, in
// float64: outputs, input gradients, gamma/beta gradients (summed over
// ranks) and running statistics; for (N, C, H, W) and (N, F), with ranks
// holding batches of different sizes too. Then the float module: running
// statistics equal on every rank.
void sync_bn(dist::ProcessGroup& g) {
  Generator gen(11);
  std::normal_distribution<double> normal(0.0, 1.0);
  auto random = [&](Shape shape) {
    Tensor<double> t = Tensor<double>::from_shape(shape);
    for (double& v : t) v = 2.0 + 3.0 * normal(gen);
    return t;
  };
  double worst = 0;
  for (const Shape& shape : {Shape{9, 3, 2, 2}, Shape{9, 5}}) {
    const std::size_t n = shape[0], c = shape[1];
    const Tensor<double> x_all = random(shape), w_all = random(shape), gamma0 = random({c}), beta0 = random({c});
    // rank r of 2 takes rows [0, 4) or [4, 9): uneven on purpose
    const std::size_t begin = g.rank() == 0 ? 0 : 4, count = g.rank() == 0 ? 4 : n - 4;
    expect(g.size() == 2, "sync_bn runs on 2 processes");
    Variable64 x(x_all), gamma(gamma0), beta(beta0);
    Variable64 rm(Tensor<double>(xt::zeros<double>({c}))), rv(Tensor<double>(xt::ones<double>({c})));
    for (auto* v : {&x, &gamma, &beta}) v->requires_grad_();
    Variable64 y = nn::functional::batch_norm(x, gamma, beta, rm, rv, true, 0.1, 1e-5);
    sum(y * Variable64(w_all)).backward();

    Variable64 xl(rows(x_all, begin, count)), gl(gamma0), bl(beta0);
    Variable64 rml(Tensor<double>(xt::zeros<double>({c}))), rvl(Tensor<double>(xt::ones<double>({c})));
    for (auto* v : {&xl, &gl, &bl}) v->requires_grad_();
    Variable64 yl = dist::sync_batch_norm(xl, gl, bl, rml, rvl, true, 0.1, 1e-5, g);
    sum(yl * Variable64(rows(w_all, begin, count))).backward();
    Tensor<double> dgamma = gl.grad().data(), dbeta = bl.grad().data();
    g.all_reduce_sum(dgamma.data(), dgamma.size());
    g.all_reduce_sum(dbeta.data(), dbeta.size());
    const double d[] = {max_diff(yl.data(), rows(y.data(), begin, count)),
                        max_diff(xl.grad().data(), rows(x.grad().data(), begin, count)),
                        max_diff(dgamma, gamma.grad().data()), max_diff(dbeta, beta.grad().data()),
                        max_diff(rml.data(), rm.data()), max_diff(rvl.data(), rv.data())};
    for (double v : d) worst = std::max(worst, v);
  }
  g.all_reduce_sum(&worst, 1);
  expect(worst <= 1e-10, "SyncBatchNorm differs from BatchNorm over the global batch by " + std::to_string(worst));

  zg::manual_seed(3);
  auto bn = std::make_shared<dist::SyncBatchNorm>(4, 0.1, 1e-5, g);
  Generator local(100 + std::uint64_t(g.rank()));  // different data on each rank
  Tensor<float> xs = Tensor<float>::from_shape({6, 4, 3, 3});
  for (float& v : xs) v = float(normal(local));
  sum((*bn)(Variable(xs))).backward();
  g.check_same(digest(bn->state()), "digest of SyncBatchNorm's running statistics (ranks differ)");
  if (g.is_main())
    std::cout << std::scientific << std::setprecision(2)
              << "sync_bn: SyncBatchNorm on batches of 4 and 5 vs BatchNorm on 9, float64: worst difference " << worst
              << " (outputs, input/gamma/beta gradients, running statistics); running statistics equal on every rank\n";
}

// A model with SyncBatchNorm trained on 2 processes == the same model with
// BatchNorm1d on 1 process over the global batch: SyncBatchNorm's
// all-reduces in backward interleave with DDP's bucket all-reduces started
// from the hooks (1 KB buckets: one per parameter).
std::shared_ptr<nn::Module> bn_net(bool sync, dist::ProcessGroup& g) {
  zg::manual_seed(4);
  auto net = std::make_shared<nn::Sequential>();
  net->add(std::make_shared<nn::Linear>(784, 40));
  if (sync) net->add(std::make_shared<dist::SyncBatchNorm>(40, 0.1, 1e-5, g));
  else net->add(std::make_shared<nn::BatchNorm1d>(40));
  net->add(std::make_shared<nn::ReLU>());
  net->add(std::make_shared<nn::Linear>(40, 10));
  return net;
}

void sync_bn_training(dist::ProcessGroup& g) {
  const std::size_t steps = 30, batch = 100;
  std::string which;
  const auto set = fashion_head(steps * batch, which);
  Run single;
  if (g.is_main()) {
    auto m = bn_net(false, g);
    optim::SGD o(m->parameters(), 0.1f);
    data::DataLoader::Options options{batch, true, false, true};
    options.shuffle_seed = kShuffleSeed;
    data::DataLoader loader(set, options);
    for (std::size_t s = 0; s < steps; ++s) {
      Variable loss = loss_of(*m, loader);
      single.losses.push_back(loss.item());
      loss.backward();
      o.step();
      o.zero_grad();
    }
    single.params = m->state();  // parameters and running statistics
  }
  dist::DistributedDataParallel ddp(bn_net(true, g), all_reduce(1024), g);
  optim::SGD o(ddp.module().parameters(), 0.1f);
  data::DataLoader loader(set, dist::data_parallel_options(g, set, batch, kShuffleSeed, {0, true, false, true}));
  Run run;
  for (std::size_t s = 0; s < steps; ++s) {
    Variable loss = loss_of(ddp.module(), loader);
    double l = loss.item();
    loss.backward();
    ddp.finish_gradient_sync();
    o.step();
    o.zero_grad();
    g.all_reduce_sum(&l, 1);
    run.losses.push_back(l / g.size());
  }
  run.params = ddp.module().state();
  g.check_same(digest(run.params), "digest of parameters and running statistics (ranks differ)");
  if (!g.is_main()) return;
  const auto d = compare(run, single);
  std::cout << "sync_bn_training: Linear-SyncBatchNorm-ReLU-Linear, " << steps << " SGD steps on " << g.size()
            << " processes vs BatchNorm1d on 1 (" << ddp.bucket_count() << " buckets): " << d << "\n";
  expect(d.loss <= 1e-5 && d.model <= 1e-5, "SyncBatchNorm training differs from BatchNorm on one process");
}

// Runs f, which must throw E on every rank with a message containing `text`.
template <class E, class F>
void expect_error_everywhere(dist::ProcessGroup& g, const std::string& text, F&& f) {
  std::string message;
  try {
    f();
  } catch (const E& e) {
    message = e.what();
  }
  expect(message.find(text) != std::string::npos,
         "rank " + std::to_string(g.rank()) + ": expected an error containing '" + text + "', got '" + message + "'");
  std::cout << "rank " << g.rank() << " error: " << message << "\n";
  g.barrier();
}

void mismatch(dist::ProcessGroup& g) {
  expect_error_everywhere<ShapeError>(g, "parameter 'affine1.weight' (784, 50) float32 on rank 0 but "
                                         "parameter 'affine1.weight' (784, 60) float32 on rank 1",
                                      [&] { dist::DistributedDataParallel ddp(make_model("two-layer", g.rank() ? 60 : 50), {}, g); });
}

void uneven(dist::ProcessGroup& g) {
  const auto set = synthetic(200);
  const auto mine = g.rank() == 1 ? set.head(199) : set;
  expect_error_everywhere<ValueError>(g, "training samples: 200 on rank 0 but 199 on rank 1",
                                      [&] { dist::data_parallel_options(g, mine, 20, 1); });
  expect_error_everywhere<ValueError>(g, "the global batch of 21 does not divide into 2",
                                      [&] { dist::data_parallel_options(g, set, 21, 1); });
}

// Rank 1 dies (SIGKILL), throws, or hangs (sleeps far past the deadline) at
// step 3 of a training run.
void fault(dist::ProcessGroup& g, const std::string& how) {
  const auto set = synthetic(400);
  dist::DistributedDataParallel ddp(make_model("two-layer"), {}, g);
  auto o = make_optimizer("sgd", ddp.module().parameters());
  data::DataLoader loader(set, dist::data_parallel_options(g, set, 20, 1, {0, true, false, true}));
  for (int step = 0; step < 100000; ++step) {
    if (g.rank() == 1 && step == 3) {
      if (how == "kill") raise(SIGKILL);
      if (how == "hang") sleep(1000);
      throw ValueError("a failure planted at step 3 of rank 1");
    }
    loss_of(ddp.module(), loader).backward();
    ddp.finish_gradient_sync();
    o->step();
    o->zero_grad();
  }
}

// The value MPI itself holds for the libnbc all-reduce algorithm (MPI_T),
// against what the test's environment leads zerograd to expect: 1 (ring)
// from zerograd's defaults, the user's own OMPI_MCA_ value, or 0 (OpenMPI's
// "ignore") under ZEROGRAD_MPI_DEFAULTS=0. Note [OpenMPI defaults].
void openmpi_defaults(dist::ProcessGroup& g, int expected) {
  int provided = 0, index = -1, count = 0, value = -1;
  expect(MPI_T_init_thread(MPI_THREAD_SINGLE, &provided) == MPI_SUCCESS, "MPI_T_init_thread failed");
  expect(MPI_T_cvar_get_index("coll_libnbc_iallreduce_algorithm", &index) == MPI_SUCCESS,
         "MPI_T has no variable coll_libnbc_iallreduce_algorithm");
  MPI_T_cvar_handle handle;
  expect(MPI_T_cvar_handle_alloc(index, nullptr, &handle, &count) == MPI_SUCCESS && count == 1, "MPI_T_cvar_handle_alloc");
  expect(MPI_T_cvar_read(handle, &value) == MPI_SUCCESS, "MPI_T_cvar_read");
  MPI_T_cvar_handle_free(&handle);
  MPI_T_finalize();
  const auto settings = dist::openmpi_settings();
  if (g.is_main())
    for (const auto& s : settings) std::cout << s << "\n";
  expect(value == expected, "coll_libnbc_iallreduce_algorithm is " + std::to_string(value) + " in MPI, expected " +
                                std::to_string(expected));
  expect(settings.size() == 2 && settings[0].rfind("OMPI_MCA_coll_libnbc_iallreduce_algorithm=", 0) == 0,
         "openmpi_settings() lists " + std::to_string(settings.size()) + " settings");
  const char* vader = std::getenv("OMPI_MCA_btl_vader_single_copy_mechanism");
  const char* off = std::getenv("ZEROGRAD_MPI_DEFAULTS");
  if (!(off && std::string(off) == "0"))
    expect(vader != nullptr, "OMPI_MCA_btl_vader_single_copy_mechanism was not set before MPI_Init");
  std::cout << "rank " << g.rank() << ": coll_libnbc_iallreduce_algorithm = " << value << std::endl;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  zg::set_num_threads(1);
  try {
    auto& g = dist::ProcessGroup::world();
    try {
      if (mode == "equivalence" && argc == 4) equivalence(g, argv[2], argv[3]);
      else if (mode == "repeat") repeat(g);
      else if (mode == "buckets") buckets(g);
      else if (mode == "reductions") reductions(g);
      else if (mode == "outlive") outlive(g);
      else if (mode == "no_window") no_window(g);
      else if (mode == "no_sync") accumulate(g);
      else if (mode == "unused") unused(g);
      else if (mode == "sync_bn") sync_bn(g);
      else if (mode == "sync_bn_training") sync_bn_training(g);
      else if (mode == "mismatch") mismatch(g);
      else if (mode == "uneven") uneven(g);
      else if (mode == "openmpi_defaults" && argc == 3) openmpi_defaults(g, std::stoi(argv[2]));
      else if (mode == "kill" || mode == "throw" || mode == "hang") fault(g, mode);
      else throw ValueError("usage: dist_check equivalence MODEL OPTIMIZER | repeat | buckets | reductions | outlive | no_window | no_sync | unused | sync_bn | sync_bn_training | "
                            "mismatch | uneven | openmpi_defaults EXPECTED | kill | throw | hang");
      g.barrier();
    } catch (const std::exception& e) {
      std::cerr << "dist_check " << mode << ": rank " << g.rank() << ": " << e.what() << std::endl;
      g.abort(1);
    }
  } catch (const std::exception& e) {
    std::cerr << "dist_check " << mode << ": " << e.what() << std::endl;
    return 2;
  }
  return 0;
}
