// The train-lm example as a user runs it, on the first 20000 characters of
// Debian's fortunes with a tiny model: the loss beats the unigram baseline,
// metrics and plot are written, --resume continues the run bit for bit,
// sampling continues the prompt, and bad input gets a clear error.
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>

#include <sys/wait.h>
#include <unistd.h>

#include <zerograd/zerograd.hpp>

#include "testing.hpp"

#ifdef ZG_TRAIN_LM_EXE
using namespace zg;
namespace fs = std::filesystem;

namespace {

const char* const kFortunes = "/usr/share/games/fortunes";
// A model small enough that an epoch over 18000 characters takes a fraction
// of a second, with a learning rate that gets it below the baseline in two.
const std::string kTiny = " --data " + std::string(kFortunes) +
                          " --limit-chars 20000 --embed 16 --hidden 64 --layers 1 --batch-size 16 --bptt 32"
                          " --lr 0.01 --threads 1 --seed 5 ";

using Run = zg::testing::ProgramRun;
using zg::testing::check_same_checkpoint;
using zg::testing::read_text;

Run train_lm(const std::string& args) { return zg::testing::run_program(std::string(ZG_TRAIN_LM_EXE) + " " + args); }

// The numbers after `label` on every line of log that has it.
std::vector<double> numbers_after(const std::string& log, const std::string& label) {
  std::vector<double> v;
  for (std::size_t at = log.find(label); at != std::string::npos; at = log.find(label, at + 1))
    v.push_back(std::stod(log.substr(at + label.size())));
  return v;
}

std::size_t code_points(const std::string& s) {
  std::size_t n = 0;
  for (unsigned char ch : s) n += (ch & 0xc0) != 0x80;
  return n;
}

bool have_fortunes() {
  if (fs::is_directory(kFortunes)) return true;
  MESSAGE("no " << kFortunes << ": install Debian's fortunes package (scripts/install-deps.sh)");
  return false;
}

}  // namespace

TEST_CASE("train-lm: two epochs beat the unigram baseline, write metrics and a plot, and sample from the checkpoint") {
  REQUIRE(have_fortunes());
  const fs::path dir = zg::testing::empty_dir("train_lm");
  const Run r = train_lm(kTiny + "--epochs 2 --out " + dir.string());
  CAPTURE(r.out);
  CAPTURE(r.err);
  REQUIRE(r.status == 0);
  const auto baseline = numbers_after(r.out, "unigram baseline (entropy of the training characters): ");
  const auto val = numbers_after(r.out, ", validation loss ");
  REQUIRE(baseline.size() == 1);
  REQUIRE(val.size() == 2);
  CHECK(baseline[0] > 2.5);  // English text: about 3.2 nats per character
  CHECK(std::isfinite(val[1]));
  CHECK(val[1] < val[0]);
  CHECK(val[1] < baseline[0]);
  CHECK(r.out.find("sample: ") != std::string::npos);
  const std::string csv = read_text(dir / "metrics.csv");
  CAPTURE(csv);
  CHECK(csv.rfind("epoch,train_loss,val_loss,seconds\n1,", 0) == 0);
  CHECK(csv.find("\n2,") != std::string::npos);
  if (std::system("command -v gnuplot >/dev/null 2>&1") == 0) CHECK(fs::file_size(dir / "loss.png") > 1000);

  SUBCASE("--sample prints the prompt and N characters after it, and nothing else") {
    const Run s = train_lm("--load " + (dir / "checkpoint.npz").string() + " --sample 120 --prompt 'The ' --threads 1");
    CAPTURE(s.err);
    REQUIRE(s.status == 0);
    CHECK(s.out.rfind("The ", 0) == 0);
    CHECK(code_points(s.out) == 4 + 120);
  }
  SUBCASE("a prompt character outside the vocabulary is an error naming it") {
    const Run s = train_lm("--load " + (dir / "checkpoint.npz").string() + " --sample 10 --prompt 'snow\xe2\x98\x83'");
    CHECK(s.status == 1);
    CHECK(s.err.find("--prompt: the character '\xe2\x98\x83' (U+2603) is not in the model's vocabulary of ") !=
          std::string::npos);
    CHECK(s.out.empty());
  }
  SUBCASE("temperature 0 is an error") {
    const Run s = train_lm("--load " + (dir / "checkpoint.npz").string() + " --sample 10 --temperature 0");
    CHECK(s.status == 1);
    CHECK(s.err.find("--temperature must be > 0") != std::string::npos);
  }
}

TEST_CASE("train-lm: stopped in the middle of an epoch, --resume continues the same run bit for bit") {
  REQUIRE(have_fortunes());
  const fs::path dir = zg::testing::empty_dir("train_lm_resume");
  // Dropout draws from the generator, so the saved generator matters too.
  const std::string common = kTiny + "--dropout 0.1 ";
  REQUIRE(train_lm(common + "--epochs 2 --out " + (dir / "straight").string()).status == 0);
  const Run stop = train_lm(common + "--epochs 2 --stop-after 40 --out " + (dir / "split").string());
  CAPTURE(stop.err);
  REQUIRE(stop.status == 130);
  const Run r = train_lm(common + "--epochs 1 --resume " + (dir / "split" / "checkpoint.npz").string() + " --out " +
                         (dir / "split").string());
  CAPTURE(r.out);
  CAPTURE(r.err);
  REQUIRE(r.status == 0);
  CHECK(std::regex_search(r.out, std::regex("resumed from .* after epoch 1 and [0-9]+ steps of epoch 2")));
  check_same_checkpoint(dir / "split" / "checkpoint.npz", dir / "straight" / "checkpoint.npz");
}

TEST_CASE("train-lm: --model gru trains, checkpoints and samples (the state has no c)") {
  REQUIRE(have_fortunes());
  const fs::path dir = zg::testing::empty_dir("train_lm_gru");
  const Run r = train_lm(kTiny + "--model gru --epochs 1 --stop-after 20 --out " + dir.string());
  CAPTURE(r.err);
  REQUIRE(r.status == 130);
  CHECK(zg::testing::checkpoint_entries(dir / "checkpoint.npz").count("train.state.h") == 1);
  CHECK(zg::testing::checkpoint_entries(dir / "checkpoint.npz").count("train.state.c") == 0);
  std::string resume = kTiny + "--model gru --epochs 1 --resume " + (dir / "checkpoint.npz").string() + " --out " + dir.string();
#ifdef ZG_TRAIN_WITH_ONNX
  const fs::path onnx = dir / "gru.onnx";  // any length: one ONNX GRU node, not the steps unrolled
  resume += " --export-onnx " + onnx.string();
#endif
  const Run resumed = train_lm(resume);
  CAPTURE(resumed.err);
  CHECK(resumed.status == 0);
#ifdef ZG_TRAIN_WITH_ONNX
  CHECK(resumed.out.find("onnx: " + onnx.string() + " (opset 17, token ids \"input\" (batch, sequence) -> logits") !=
        std::string::npos);
  CHECK(read_text(onnx).find("linear_before_reset") != std::string::npos);
#endif
  const Run s = train_lm("--load " + (dir / "checkpoint.npz").string() + " --sample 30 --threads 1");
  CHECK(s.status == 0);
  CHECK(code_points(s.out) == 30);
}

TEST_CASE("train-lm: --model gpt learns, resumes bit for bit without a carried state, samples past its block") {
  REQUIRE(have_fortunes());
  const fs::path dir = zg::testing::empty_dir("train_lm_gpt");
  const std::string gpt = kTiny + "--model gpt --heads 2 --dropout 0.1 ";
#ifdef ZG_TRAIN_WITH_ONNX
  const fs::path onnx = dir / "gpt.onnx";  // --export-onnx on the same run: no extra training
  const Run r = train_lm(gpt + "--epochs 2 --out " + (dir / "straight").string() + " --export-onnx " + onnx.string());
#else
  const Run r = train_lm(gpt + "--epochs 2 --out " + (dir / "straight").string());
#endif
  CAPTURE(r.out);
  CAPTURE(r.err);
  REQUIRE(r.status == 0);
#ifdef ZG_TRAIN_WITH_ONNX
  CHECK(r.out.find("onnx: " + onnx.string() + " (opset 17, token ids \"input\" (batch, ") != std::string::npos);
  CHECK(read_text(onnx).find("wte.weight") != std::string::npos);
#endif
  const auto baseline = numbers_after(r.out, "unigram baseline (entropy of the training characters): ");
  const auto val = numbers_after(r.out, ", validation loss ");
  REQUIRE(val.size() == 2);
  CHECK(val[1] < val[0]);
  CHECK(val[1] < baseline.at(0));
  const Run stop = train_lm(gpt + "--epochs 2 --stop-after 40 --out " + (dir / "split").string());
  REQUIRE(stop.status == 130);
  CHECK(zg::testing::checkpoint_entries(dir / "split" / "checkpoint.npz").count("train.state.h") == 0);
  const Run resumed = train_lm(gpt + "--epochs 1 --resume " + (dir / "split" / "checkpoint.npz").string() +
                               " --out " + (dir / "split").string());
  CAPTURE(resumed.err);
  REQUIRE(resumed.status == 0);
  check_same_checkpoint(dir / "split" / "checkpoint.npz", dir / "straight" / "checkpoint.npz");
  // A prompt longer than the block of 32: the model reads its last 32 characters.
  const std::string prompt(40, 'e');
  const Run s = train_lm("--load " + (dir / "straight" / "checkpoint.npz").string() + " --sample 50 --prompt '" +
                         prompt + "' --threads 1");
  CAPTURE(s.err);
  REQUIRE(s.status == 0);
  CHECK(s.out.rfind(prompt, 0) == 0);
  CHECK(code_points(s.out) == 40 + 50);
}

TEST_CASE("train-lm: a directory without text is a clear error") {
  const fs::path dir = zg::testing::empty_dir("train_lm_empty");
  std::ofstream(dir / "index.dat", std::ios::binary) << std::string("\0\0\0\2binary", 10);
  const Run r = train_lm("--data " + dir.string() + " --out " + (dir / "out").string());
  CHECK(r.status == 1);
  CHECK(r.err.find("train-lm: --data: '" + dir.string() + "' holds no text files (UTF-8, no NUL bytes); skipped 1") !=
        std::string::npos);
}
#endif
