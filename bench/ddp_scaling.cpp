// Data-parallel scaling: SimpleConvNet + Adam lr 0.001 on Fashion-MNIST, global
// batch 100, one thread per process, run under mpirun by bench/ddp_scaling.
// This program prints one JSON line for its world size. With 2 processes
// each repetition runs four phases back to back, so that they see the same
// machine (this one is a VM whose speed drifts by 20% within minutes):
//   one         rank 0 alone trains its own copy at batch 100 (no DDP) while
//               rank 1 sleeps in a barrier: 1 process x 1 thread;
//   sync        both train through DistributedDataParallel, 50 per rank, with
//               its default reduction (shared memory on one machine);
//   all_reduce  the same with GradientReduction::all_reduce (buckets);
//   no_sync     the same with gradients kept local (compute alone).
// Each phase's time is the slowest rank's mean over the repetition's
// iterations; the line gives the medians over repetitions, the median of
// the per-repetition ratios one / (2 x sync) as the paired efficiency (and
// the same for all_reduce), the time finish_gradient_sync waited for the
// other ranks, and one all-reduce of all the gradients (433,890 floats)
// measured alone. With 1 process only the phase "one" runs.
#include <iostream>
#include <sstream>

#include "cli.hpp"

#include <zerograd/distributed.hpp>
#include <zerograd/zerograd.hpp>

#include "bench_common.hpp"

using namespace zg;
namespace dist = zg::distributed;

int main(int argc, char** argv) {
  int iterations = 50, repeats = 9, warmup = 5;
  std::size_t batch = 100, bucket_kb = 25 << 10;
  std::string data_dir = nn::data::default_data_dir();
  cli::App app{"ddp_scaling: SimpleConvNet + Adam, global batch 100, 1 thread per process (run by bench/ddp_scaling)"};
  app.add_option("--iterations", iterations, "Steps per repetition")->capture_default_str();
  app.add_option("--repeats", repeats, "Timed repetitions")->capture_default_str();
  app.add_option("--warmup", warmup, "Untimed steps first")->capture_default_str();
  app.add_option("--batch", batch, "Global batch")->capture_default_str();
  app.add_option("--bucket-kb", bucket_kb, "DDP bucket size in KB (default: DdpOptions' 25 MB, one bucket here;\n"
                                          "1024 puts affine1.weight, ready first, in a bucket of its own)")
      ->capture_default_str();
  app.add_option("--data", data_dir, "Fashion-MNIST directory")->capture_default_str();
  ZG_CLI_PARSE(app, argc, argv);
  try {
    auto& g = dist::ProcessGroup::world();
    zg::set_num_threads(1);
    const auto train = nn::data::load_idx_dataset(data_dir, true);
    // The single-process baseline: its own model, Adam and loader, batch 100.
    zg::manual_seed(1);
    auto alone = nn::models::simple_conv_net();
    optim::Adam alone_adam(alone->parameters(), 0.001f);
    nn::data::DataLoader alone_loader(train, {batch, true, false, false});
    // One data-parallel copy of the model per reduction, each with its own Adam and loader.
    struct Replica {
      Replica(dist::ProcessGroup& g, const nn::data::TensorDataset& train, std::size_t batch, dist::DdpOptions options)
          : ddp(model(), options, g),
            adam(ddp.module().parameters(), 0.001f),
            loader(train, dist::data_parallel_options(g, train, batch, 1, {0, true, false, false})) {}
      static std::shared_ptr<nn::Module> model() {
        zg::manual_seed(1);
        return nn::models::simple_conv_net();
      }
      dist::DistributedDataParallel ddp;
      optim::Adam adam;
      nn::data::DataLoader loader;
    };
    Replica sync_replica(g, train, batch, {bucket_kb << 10});
    Replica all_reduce_replica(g, train, batch, {bucket_kb << 10, dist::GradientReduction::all_reduce});
    nn::data::DataLoader::Batch b;
    auto next = [&](nn::data::DataLoader& l) {
      if (!l.next(b)) {
        l.reset();
        l.next(b);
      }
    };
    double waited = 0;
    enum Phase { kOne, kSync, kAllReduce, kNoSync };
    auto step = [&](Phase phase) {
      if (phase == kOne) {
        next(alone_loader);
        nn::functional::softmax_cross_entropy((*alone)(b.x), b.t).backward();
        alone_adam.step();
        alone_adam.zero_grad();
        return;
      }
      Replica& r = phase == kAllReduce ? all_reduce_replica : sync_replica;
      next(r.loader);
      Variable loss = nn::functional::softmax_cross_entropy(r.ddp(b.x), b.t);
      if (phase == kNoSync) {
        auto local = r.ddp.no_sync();
        loss.backward();
      } else {
        loss.backward();
        r.ddp.finish_gradient_sync();
        if (phase == kSync) waited += r.ddp.last_wait_seconds();
      }
      r.adam.step();
      r.adam.zero_grad();
    };
    // One repetition of a phase: each rank's mean, then the slowest (the job
    // is as fast as it). In phase one rank 0 works and the others wait.
    auto timed = [&](Phase phase) {
      g.barrier();
      const auto t0 = bench::Clock::now();
      if (phase != kOne || g.is_main())
        for (int i = 0; i < iterations; ++i) step(phase);
      double t = bench::since(t0) * 1e3 / iterations;
      std::vector<double> all(std::size_t(g.size()), 0.0);
      all[std::size_t(g.rank())] = phase == kOne && !g.is_main() ? 0.0 : t;
      g.all_reduce_sum(all.data(), all.size());
      return *std::max_element(all.begin(), all.end());
    };
    const bool paired = g.size() > 1;
    for (int i = 0; i < warmup; ++i) {
      if (g.is_main()) step(kOne);
      if (paired) {
        step(kSync);
        step(kAllReduce);
      }
    }
    waited = 0;
    std::vector<double> one, sync, all_reduce, local, ratio, ratio_all_reduce;
    for (int r = 0; r < repeats; ++r) {
      one.push_back(timed(kOne));
      if (!paired) continue;
      sync.push_back(timed(kSync));
      all_reduce.push_back(timed(kAllReduce));
      local.push_back(timed(kNoSync));
      ratio.push_back(one.back() / (double(g.size()) * sync.back()));
      ratio_all_reduce.push_back(one.back() / (double(g.size()) * all_reduce.back()));
    }
    const double wait_ms = paired ? waited * 1e3 / (repeats * iterations) : 0.0;
    std::size_t floats = 0;
    for (const auto& p : sync_replica.ddp.module().parameters()) floats += p.size();
    std::vector<float> grads(floats, 1.0f);
    std::vector<double> ar;
    for (int r = 0; r < 50; ++r) {
      g.barrier();
      const auto t0 = bench::Clock::now();
      g.all_reduce_sum(grads.data(), grads.size());
      ar.push_back(bench::since(t0) * 1e3);
    }
    if (g.is_main()) {
      const double step_ms = bench::median(paired ? sync : one);
      std::ostringstream j;
      const auto median_or_0 = [&](const std::vector<double>& v) { return paired ? bench::median(v) : 0.0; };
      j << "{\"bench\":\"ddp_scaling\",\"processes\":" << g.size() << ",\"threads_per_process\":1,\"global_batch\":"
        << batch << ",\"reduction\":\"" << dist::to_string(sync_replica.ddp.reduction())
        << "\",\"buckets\":" << all_reduce_replica.ddp.bucket_count() << ",\"gradient_floats\":" << floats
        << ",\"repeats\":" << repeats << ",\"ms_per_step_1_process\":" << bench::median(one)
        << ",\"ms_per_step\":" << step_ms << ",\"samples_per_s\":" << 1e3 * double(batch) / step_ms
        << ",\"ms_per_step_all_reduce\":" << median_or_0(all_reduce) << ",\"ms_per_step_no_sync\":" << median_or_0(local)
        << ",\"efficiency_paired\":" << median_or_0(ratio) << ",\"efficiency_paired_all_reduce\":" << median_or_0(ratio_all_reduce)
        << ",\"ms_waiting_for_ranks\":" << wait_ms << ",\"ms_allreduce_alone\":" << median_or_0(ar) << ",\"openmpi\":[";
      const auto settings = dist::openmpi_settings();
      for (std::size_t i = 0; i < settings.size(); ++i) j << (i ? "," : "") << '"' << settings[i] << '"';
      j << "]}";
      std::cout << j.str() << std::endl;
    }
  } catch (const std::exception& e) {
    std::cerr << "ddp_scaling: " << e.what() << std::endl;
    if (dist::launched_by_mpirun()) dist::ProcessGroup::world().abort(1);
    return 1;
  }
  return 0;
}
