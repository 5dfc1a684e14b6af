#pragma once
// The command lines of the examples and benchmarks, on CLI11 compiled once.
//
// Note [One CLI11]: CLI11 2.1 (Debian's libcli11-dev) is header-only, and
// what a program uses of it is compiled again in every program: about 7 s
// of one core at -O3, which a precompiled header does not remove (it is
// code generation, not parsing: 6.3 s with one, 6.6 s without). Through
// this facade, which names only what the examples and benchmarks use, with
// CLI11's names and behaviour (help, errors, exit codes), cli.cpp is the
// one file that compiles CLI11 (11 s), and those 30 files compile in 170 s
// of one core instead of 424 s.
#include <cstddef>
#include <deque>
#include <memory>
#include <string>
#include <vector>

namespace CLI {
class App;
class Option;
class Validator;
}  // namespace CLI

namespace zg::examples::cli {

/// A check of an option's value (CLI11's validators): Range, IsMember,
/// PositiveNumber, NonNegativeNumber, ExistingFile.
class Validator {
 public:
  explicit Validator(std::shared_ptr<const CLI::Validator> v) : v_(std::move(v)) {}
  const CLI::Validator& get() const { return *v_; }

 private:
  std::shared_ptr<const CLI::Validator> v_;
};

Validator Range(int min, int max);                  ///< min <= value <= max
Validator Range(std::size_t min, std::size_t max);  ///< min <= value <= max
Validator Range(double min, double max);            ///< min <= value <= max
Validator IsMember(std::vector<std::string> choices);  ///< one of choices
extern const Validator PositiveNumber;     ///< > 0
extern const Validator NonNegativeNumber;  ///< >= 0
extern const Validator ExistingFile;       ///< names a file that exists

/// One option of an App; the calls chain as CLI11's do.
class Option {
 public:
  explicit Option(CLI::Option* o) : o_(o) {}
  Option* capture_default_str();     ///< show the default in --help
  Option* check(const Validator& v);  ///< reject values v rejects
  Option* delimiter(char c);          ///< a list option also splits on c
  Option* group(const std::string& name);  ///< "" hides it from --help

 private:
  CLI::Option* o_;
};

/// A program's command line (or one subcommand of it).
class App {
 public:
  explicit App(const std::string& description = "");
  ~App();
  App(const App&) = delete;
  App& operator=(const App&) = delete;

  /// An option setting `value`; T is a number, a string or a vector of them.
  template <class T>
  Option* add_option(const std::string& name, T& value, const std::string& help = "");
  Option* add_flag(const std::string& name, bool& value, const std::string& help = "");
  App* add_subcommand(const std::string& name, const std::string& description);
  App* require_subcommand(int n);
  std::size_t count(const std::string& name) const;  ///< times the option was given
  bool parsed() const;                               ///< (a subcommand) was given
  /// Parses the command line: -1 to go on, or the exit code after --help or
  /// an error (printed as CLI11 prints them).
  int parse(int argc, const char* const* argv);
  explicit App(CLI::App* sub);  ///< (a subcommand: add_subcommand makes it)

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace zg::examples::cli

namespace cli = zg::examples::cli;

// CLI11's CLI11_PARSE: parse, or return from main with CLI11's exit code.
#define ZG_CLI_PARSE(app, argc, argv)                                             \
  do {                                                                             \
    if (const int zg_cli_exit = (app).parse((argc), (argv)); zg_cli_exit >= 0) \
      return zg_cli_exit;                                                          \
  } while (0)
