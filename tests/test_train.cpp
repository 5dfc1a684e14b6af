// The train example as a user runs it, on a small generated IDX data set: a
// non-finite loss stops the run with the last good checkpoint intact, resume
// continues the same run bit for bit, Ctrl-C and SIGTERM stop cleanly, and
// each model trains with the book's optimizer by default.
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <zerograd/zerograd.hpp>

#include "testing.hpp"

#ifdef ZG_TRAIN_EXE
using namespace zg;
namespace fs = std::filesystem;

namespace {

fs::path work_dir() {
  const fs::path d = fs::temp_directory_path() / ("zerograd_train_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}

using zg::testing::read_text;

// n 28x28 images of class i % 10: a bright 2-pixel-wide column at 2 + 2 * class, plus noise.
void write_idx_pair(const fs::path& dir, const std::string& prefix, std::uint32_t n) {
  std::string images = {0, 0, 8, 3}, labels = {0, 0, 8, 1};
  for (std::uint32_t d : {n, 28u, 28u})
    for (int s = 24; s >= 0; s -= 8) images += static_cast<char>((d >> s) & 0xff);
  for (int s = 24; s >= 0; s -= 8) labels += static_cast<char>((n >> s) & 0xff);
  std::uint32_t x = 7;
  for (std::uint32_t i = 0; i < n; ++i) {
    const std::uint32_t cls = i % 10;
    labels += static_cast<char>(cls);
    for (int r = 0; r < 28; ++r)
      for (int c = 0; c < 28; ++c) {
        x = x * 1664525u + 1013904223u;
        const bool on = c == int(2 + 2 * cls) || c == int(3 + 2 * cls);
        images += static_cast<char>(on ? 200 + (x >> 29) : (x >> 27));
      }
  }
  std::ofstream(dir / (prefix + "-images-idx3-ubyte"), std::ios::binary) << images;
  std::ofstream(dir / (prefix + "-labels-idx1-ubyte"), std::ios::binary) << labels;
}

const fs::path& data_dir() {
  static const fs::path d = [] {
    const fs::path p = work_dir() / "data";
    fs::create_directories(p);
    write_idx_pair(p, "train", 300);
    write_idx_pair(p, "t10k", 100);
    return p;
  }();
  return d;
}

struct Run {
  int status = -1;  // the exit status, or 128 + signal
  std::string log;  // stdout and stderr
};

Run train(const std::string& args) {
  const fs::path log = work_dir() / "log.txt";
  const std::string cmd = std::string(ZG_TRAIN_EXE) + " --data " + data_dir().string() + " --threads 1 " + args +
                          " >" + log.string() + " 2>&1";
  const int raw = std::system(cmd.c_str());
  Run r;
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
  r.log = read_text(log);
  return r;
}

}  // namespace

TEST_CASE("train: a non-finite loss stops the run and the last good checkpoint survives") {
  const fs::path dir = zg::testing::empty_dir("train_nan");
  const std::string ck = (dir / "ck.npz").string(), out = " --out " + (dir / "out").string();
  REQUIRE(train("--model two-layer --epochs 1 --save " + ck + out).status == 0);
  const std::string good = read_text(ck);
  SUBCASE("by default: an error naming the epoch and step, non-zero status") {
    const Run r = train("--model two-layer --resume " + ck + " --lr 1e30 --epochs 2 --save " + ck + out);
    CAPTURE(r.log);
    CHECK(r.status == 1);
    CHECK(r.log.find("train: epoch 2/3, step ") != std::string::npos);
    CHECK(r.log.find("the loss is ") != std::string::npos);
    CHECK(r.log.find("The checkpoint " + ck + " keeps the last good epoch") != std::string::npos);
  }
  SUBCASE("with --allow-nonfinite the run goes on, but no checkpoint is written from NaN parameters") {
    const Run r = train("--model two-layer --resume " + ck + " --lr 1e30 --epochs 2 --allow-nonfinite --save " + ck + out);
    CAPTURE(r.log);
    CHECK(r.status == 1);
    CHECK(r.log.find("not saving " + ck + ": '") != std::string::npos);
  }
  CHECK(read_text(ck) == good);
}

TEST_CASE("train: --resume continues the run bit for bit and appends to metrics.csv") {
  const fs::path dir = zg::testing::empty_dir("train_resume");
  auto p = [&](const char* name) { return (dir / name).string(); };
  const std::string common = "--model two-layer --seed 3 ";
  REQUIRE(train(common + "--epochs 2 --save " + p("straight.npz") + " --out " + p("o1")).status == 0);
  const auto straight = zg::testing::checkpoint_entries(p("straight.npz"));
  REQUIRE(straight.count("affine1.weight"));
  if (std::system("command -v gnuplot >/dev/null 2>&1") == 0)  // whole epochs on the x axis, not 0.5, 1.5
    for (const char* plot : {"loss.gp", "accuracy.gp"})
      CHECK(read_text(dir / "o1" / plot).find("set xtics 1\n") != std::string::npos);

  SUBCASE("after a whole epoch") {
    REQUIRE(train(common + "--epochs 1 --save " + p("split.npz") + " --out " + p("o2")).status == 0);
    const Run r = train(common + "--resume " + p("split.npz") + " --epochs 1 --save " + p("split.npz") + " --out " + p("o2"));
    REQUIRE(r.status == 0);
    CHECK(r.log.find("resumed from " + p("split.npz") + " after epoch 1") != std::string::npos);
  }
  SUBCASE("after a stop in the middle of an epoch") {
    // 300 samples, batches of 100: the stop comes after step 1 of epoch 2.
    const Run stop = train(common + "--epochs 2 --stop-after 4 --save " + p("split.npz") + " --out " + p("o2"));
    REQUIRE(stop.status == 130);
    const Run r = train(common + "--resume " + p("split.npz") + " --epochs 1 --save " + p("split.npz") + " --out " + p("o2"));
    REQUIRE(r.status == 0);
    CHECK(r.log.find("after epoch 1 and 1 steps of epoch 2") != std::string::npos);
  }
  const auto split = zg::testing::checkpoint_entries(p("split.npz"));
  REQUIRE(split.size() == straight.size());
  for (const auto& [name, a] : straight) {
    CAPTURE(name);
    REQUIRE(split.count(name));
    CHECK(split.at(name) == a);  // exact
  }
  const std::string csv = read_text(dir / "o2" / "metrics.csv");
  CAPTURE(csv);
  CHECK(csv.rfind("epoch,train_loss,test_loss,test_accuracy,seconds\n1,", 0) == 0);
  CHECK(csv.find("\n2,") != std::string::npos);
}

TEST_CASE("train: a deep-cnn run (Dropout draws from the generator) stopped mid-epoch resumes bit for bit") {
  const fs::path dir = zg::testing::empty_dir("train_resume_dropout");
  auto p = [&](const char* name) { return (dir / name).string(); };
  const std::string common = "--model deep-cnn --seed 4 ";
  REQUIRE(train(common + "--epochs 2 --save " + p("straight.npz") + " --out " + p("o1")).status == 0);
  REQUIRE(train(common + "--epochs 2 --stop-after 4 --save " + p("split.npz") + " --out " + p("o2")).status == 130);
  REQUIRE(train(common + "--resume " + p("split.npz") + " --epochs 1 --save " + p("split.npz") + " --out " + p("o2")).status == 0);
  const auto straight = zg::testing::checkpoint_entries(p("straight.npz")), split = zg::testing::checkpoint_entries(p("split.npz"));
  REQUIRE(split.size() == straight.size());
  for (const auto& [name, a] : straight) {
    CAPTURE(name);
    REQUIRE(split.count(name));
    CHECK(split.at(name) == a);
  }
}

TEST_CASE("train: Ctrl-C and SIGTERM stop cleanly with a checkpoint, metrics, plots and how to resume") {
  const fs::path dir = zg::testing::empty_dir("train_stop");
  const std::string ck = (dir / "ck.npz").string();
  SUBCASE("SIGINT in the middle of an epoch") {
    const Run r = train("--model two-layer --epochs 3 --stop-after 2 --save " + ck + " --out " + (dir / "out").string());
    CAPTURE(r.log);
    CHECK(r.status == 130);
    CHECK(r.log.find("train: stopped by SIGINT at epoch 0.67; continue with the same options and --resume " + ck) !=
          std::string::npos);
    CHECK(fs::exists(ck));
    const std::string csv = read_text(dir / "out" / "metrics.csv");
    CHECK(csv.find("\n0.6666") != std::string::npos);
    if (std::system("command -v gnuplot >/dev/null 2>&1") == 0) {
      CHECK(fs::exists(dir / "out" / "loss.png"));
      CHECK(fs::exists(dir / "out" / "accuracy.png"));
    }
  }
  SUBCASE("SIGTERM from outside, while training runs") {
    const fs::path log = dir / "term.txt";
    const std::string cmd = "exec " + std::string(ZG_TRAIN_EXE) + " --data " + data_dir().string() +
                            " --threads 1 --model two-layer --epochs 1000 --save " + ck + " --out " +
                            (dir / "out").string() + " >" + log.string() + " 2>&1";
    const char* argv[] = {"sh", "-c", cmd.c_str(), nullptr};
    pid_t pid = 0;
    REQUIRE(::posix_spawn(&pid, "/bin/sh", nullptr, nullptr, const_cast<char* const*>(argv), environ) == 0);
    for (int i = 0; i < 200 && read_text(log).find("epoch 2:") == std::string::npos; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    ::kill(pid, SIGTERM);
    int raw = 0;
    ::waitpid(pid, &raw, 0);
    const std::string text = read_text(log);
    CAPTURE(text);
    REQUIRE(WIFEXITED(raw));
    CHECK(WEXITSTATUS(raw) == 143);
    CHECK(text.find("train: stopped by SIGTERM at epoch ") != std::string::npos);
    CHECK(fs::exists(ck));
  }
}

TEST_CASE("train: with no --optimizer each model trains with the book's optimizer") {
  const fs::path dir = work_dir() / "defaults";
  const Run help = train("--help");
  CHECK(help.log.find("sgd for two-layer and mlp, adam for the CNNs") != std::string::npos);
  const Run mlp = train("--model two-layer --epochs 1 --out " + (dir / "a").string());
  CHECK(mlp.log.find("optimizer: SGD, lr 0.1,") != std::string::npos);
  const Run cnn = train("--model simple-cnn --epochs 1 --limit 100 --out " + (dir / "b").string());
  CAPTURE(cnn.log);
  CHECK(cnn.log.find("optimizer: Adam, lr 0.001,") != std::string::npos);
}

TEST_CASE("train: --export-onnx writes the trained model and ten test images with zerograd's outputs") {
  const fs::path dir = work_dir() / "onnx";
  const fs::path model = dir / "model.onnx";
  const Run run = train("--model two-layer --epochs 1 --limit 100 --out " + dir.string() + " --export-onnx " + model.string());
  CAPTURE(run.log);
#ifdef ZG_TRAIN_WITH_ONNX
  REQUIRE(run.status == 0);
  CHECK(run.log.find("onnx: " + model.string() + " (opset 17, input \"input\" (10, 784)") != std::string::npos);
  const std::string bytes = read_text(model);
  CHECK(bytes.find("affine1.weight") != std::string::npos);  // initializers under the parameters' dotted names
  CHECK(bytes.find("affine2.bias") != std::string::npos);
  CHECK(bytes.find("Gemm") != std::string::npos);
  const std::string samples = read_text(model.string() + ".samples.json");
  CHECK(samples.find("\"input_shape\": [10, 784]") != std::string::npos);
  CHECK(samples.find("\"zerograd_output\"") != std::string::npos);
#else
  CHECK(run.status == 1);
  CHECK(run.log.find("built without ONNX") != std::string::npos);
#endif
}
#endif
