// Data-parallel scaling: SimpleConvNet + Adam lr 0.001 on Fashion-MNIST, global
// batch 100, one thread per process, run under mpirun by bench/ddp_scaling
// (which runs 1 and then 2 processes and prints the one JSON line). This
// program prints one JSON line for its own world size: milliseconds per
// step (the slowest rank's, median of repetitions), samples per second,
// the same steps with gradients kept local (no_sync: compute alone), the
// time finish_gradient_sync waited for all-reduces, and one all-reduce of
// all the gradients (433,890 floats) measured alone.
#include <iostream>
#include <sstream>

#include <CLI/CLI.hpp>

#include <zerograd/distributed.hpp>
#include <zerograd/zerograd.hpp>

#include "bench_common.hpp"

using namespace zg;
namespace dist = zg::distributed;

int main(int argc, char** argv) {
  int iterations = 50, repeats = 5, warmup = 5;
  std::size_t batch = 100, bucket_kb = 25 << 10;
  std::string data_dir = nn::data::default_data_dir();
  CLI::App app{"ddp_scaling: SimpleConvNet + Adam, global batch 100, 1 thread per process (run by bench/ddp_scaling)"};
  app.add_option("--iterations", iterations, "Steps per repetition")->capture_default_str();
  app.add_option("--repeats", repeats, "Timed repetitions")->capture_default_str();
  app.add_option("--warmup", warmup, "Untimed steps first")->capture_default_str();
  app.add_option("--batch", batch, "Global batch")->capture_default_str();
  app.add_option("--bucket-kb", bucket_kb, "DDP bucket size in KB (default: DdpOptions' 25 MB, one bucket here;\n"
                                          "1024 puts affine1.weight, ready first, in a bucket of its own)")
      ->capture_default_str();
  app.add_option("--data", data_dir, "Fashion-MNIST directory")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    auto& g = dist::ProcessGroup::world();
    zg::set_num_threads(1);
    zg::manual_seed(1);
    const auto train = nn::data::load_idx_dataset(data_dir, true);
    dist::DistributedDataParallel ddp(nn::models::simple_conv_net(), {bucket_kb << 10}, g);
    optim::Adam adam(ddp.module().parameters(), 0.001f);
    nn::data::DataLoader loader(train, dist::data_parallel_options(g, train, batch, 1, {0, true, false, false}));
    nn::data::DataLoader::Batch b;
    double waited = 0;
    auto step = [&](bool sync) {
      if (!loader.next(b)) {
        loader.reset();
        loader.next(b);
      }
      Variable loss = nn::functional::softmax_cross_entropy(ddp(b.x), b.t);
      if (sync) {
        loss.backward();
        ddp.finish_gradient_sync();
        waited += ddp.last_wait_seconds();
      } else {
        auto local = ddp.no_sync();
        loss.backward();
      }
      adam.step();
      adam.zero_grad();
    };
    // Each rank's time, then the slowest: the job is as fast as it.
    auto timed = [&](bool sync) {
      std::vector<double> ms;
      for (int r = 0; r < repeats; ++r) {
        g.barrier();
        const auto t0 = bench::Clock::now();
        for (int i = 0; i < iterations; ++i) step(sync);
        double t = bench::since(t0) * 1e3 / iterations;
        std::vector<double> all(std::size_t(g.size()), 0.0);
        all[std::size_t(g.rank())] = t;
        g.all_reduce_sum(all.data(), all.size());
        ms.push_back(*std::max_element(all.begin(), all.end()));
      }
      return bench::median(ms);
    };
    for (int i = 0; i < warmup; ++i) step(true);
    waited = 0;
    const double step_ms = timed(true);
    const double wait_ms = waited * 1e3 / (repeats * iterations);
    const double local_ms = timed(false);
    std::size_t floats = 0;
    for (const auto& p : ddp.module().parameters()) floats += p.size();
    std::vector<float> grads(floats, 1.0f);
    std::vector<double> ar;
    for (int r = 0; r < 50; ++r) {
      g.barrier();
      const auto t0 = bench::Clock::now();
      g.all_reduce_sum(grads.data(), grads.size());
      ar.push_back(bench::since(t0) * 1e3);
    }
    if (g.is_main()) {
      std::ostringstream j;
      j << "{\"bench\":\"ddp_scaling\",\"processes\":" << g.size() << ",\"threads_per_process\":1,\"global_batch\":"
        << batch << ",\"buckets\":" << ddp.bucket_count() << ",\"gradient_floats\":" << floats
        << ",\"ms_per_step\":" << step_ms << ",\"samples_per_s\":" << 1e3 * double(batch) / step_ms
        << ",\"ms_per_step_no_sync\":" << local_ms << ",\"ms_waiting_for_allreduce\":" << wait_ms
        << ",\"ms_allreduce_alone\":" << (g.size() > 1 ? bench::median(ar) : 0.0) << ",\"openmpi\":[";
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
