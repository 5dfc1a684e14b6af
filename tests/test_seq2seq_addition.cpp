// The seq2seq_addition example as a user runs it: its four models stopped
// within an epoch, or between two models, resume bit for bit.
#include <filesystem>
#include <regex>

#include "testing.hpp"

#ifdef ZG_SEQ2SEQ_ADDITION_EXE
namespace fs = std::filesystem;
using zg::testing::ProgramRun;

namespace {

ProgramRun seq2seq_addition(const std::string& args) {
  return zg::testing::run_program(std::string(ZG_SEQ2SEQ_ADDITION_EXE) + " " + args);
}

}  // namespace

TEST_CASE("seq2seq_addition: stopped within a model's epoch or between models, --resume continues bit for bit") {
  const fs::path dir = zg::testing::empty_dir("seq2seq_addition_resume");
  // 270 training problems in batches of 32: 8 steps per model and epoch, 32 per epoch of the four.
  const std::string common = "--samples 300 --embed 4 --hidden 8 --batch-size 32 --threads 1 --seed 5 ";
  const ProgramRun straight = seq2seq_addition(common + "--epochs 2 --out " + (dir / "straight").string());
  CAPTURE(straight.err);
  REQUIRE(straight.status == 0);
  CHECK(straight.out.find("reversed + peeky  epoch   2: loss ") != std::string::npos);
  const std::string csv = zg::testing::read_text(dir / "straight" / "metrics.csv");
  CAPTURE(csv);
  CHECK(std::regex_search(csv, std::regex("^epoch,plain,reversed,peeky,reversed \\+ peeky\n1,[^\n]*\n2,[^\n]*\n$")));

  // Step 51: the third of peeky's in epoch 2. Step 40: plain's last in
  // epoch 2, so the run stops before reversed's first.
  const std::pair<std::size_t, std::string> stops[] = {
      {51, "after epoch 1 and, in epoch 2, plain, reversed and 3 steps of peeky\n"},
      {40, "after epoch 1 and, in epoch 2, plain\n"}};
  for (const auto& [after, where] : stops) {
    const std::string name = "split" + std::to_string(after), resumed = where;
    CAPTURE(name);
    const ProgramRun stop = seq2seq_addition(common + "--epochs 2 --stop-after " + std::to_string(after) +
                                             " --out " + (dir / name).string());
    CAPTURE(stop.err);
    REQUIRE(stop.status == 130);
    CHECK(stop.err.find("continue with --resume") != std::string::npos);
    const std::string ck = (dir / name / "checkpoint.npz").string();
    const ProgramRun r = seq2seq_addition("--threads 1 --epochs 1 --resume " + ck + " --out " + (dir / name).string());
    CAPTURE(r.out);
    CAPTURE(r.err);
    REQUIRE(r.status == 0);
    CHECK(r.out.find("resumed from " + ck + " " + resumed) != std::string::npos);
    zg::testing::check_same_checkpoint(ck, dir / "straight" / "checkpoint.npz");
    CHECK(zg::testing::read_text(dir / name / "metrics.csv") == csv);  // no timings: the same accuracies, row by row
  }

  const std::string ck = (dir / "straight" / "checkpoint.npz").string();
  const ProgramRun other = seq2seq_addition("--hidden 32 --resume " + ck + " --out " + (dir / "other").string());
  CHECK(other.status == 1);
  CHECK(other.err.find("--hidden 32 differs from " + ck + "'s 8: leave it out to resume") != std::string::npos);
}
#endif
