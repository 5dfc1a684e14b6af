// Note [One CLI11] in cli.hpp: the one file that compiles CLI11.
#include "cli.hpp"

#include <cstdint>

#include <CLI/CLI.hpp>

namespace zg::examples::cli {

namespace {
template <class V>
Validator wrap(V v) {
  return Validator(std::make_shared<const CLI::Validator>(std::move(v)));
}
}  // namespace

Validator Range(int min, int max) { return wrap(CLI::Range(min, max)); }
Validator Range(std::size_t min, std::size_t max) { return wrap(CLI::Range(min, max)); }
Validator Range(double min, double max) { return wrap(CLI::Range(min, max)); }
Validator IsMember(std::vector<std::string> choices) { return wrap(CLI::IsMember(std::move(choices))); }
const Validator PositiveNumber = wrap(CLI::PositiveNumber);
const Validator NonNegativeNumber = wrap(CLI::NonNegativeNumber);
const Validator ExistingFile = wrap(CLI::ExistingFile);

Option* Option::capture_default_str() {
  o_->capture_default_str();
  return this;
}
Option* Option::check(const Validator& v) {
  o_->check(v.get());
  return this;
}
Option* Option::delimiter(char c) {
  o_->delimiter(c);
  return this;
}
Option* Option::group(const std::string& name) {
  o_->group(name);
  return this;
}

struct App::State {
  std::unique_ptr<CLI::App> owned;  // the program's; a subcommand's belongs to its parent
  CLI::App* app = nullptr;
  std::deque<Option> options;  // deques: the pointers handed out stay valid
  std::deque<App> subcommands;
};

App::App(const std::string& description) : s_(std::make_unique<State>()) {
  s_->owned = std::make_unique<CLI::App>(description);
  s_->app = s_->owned.get();
}
App::App(CLI::App* sub) : s_(std::make_unique<State>()) { s_->app = sub; }
App::~App() = default;

template <class T>
Option* App::add_option(const std::string& name, T& value, const std::string& help) {
  return &s_->options.emplace_back(s_->app->add_option(name, value, help));
}
Option* App::add_flag(const std::string& name, bool& value, const std::string& help) {
  return &s_->options.emplace_back(s_->app->add_flag(name, value, help));
}
App* App::add_subcommand(const std::string& name, const std::string& description) {
  return &s_->subcommands.emplace_back(s_->app->add_subcommand(name, description));
}
App* App::require_subcommand(int n) {
  s_->app->require_subcommand(n);
  return this;
}
std::size_t App::count(const std::string& name) const { return s_->app->count(name); }
bool App::parsed() const { return s_->app->parsed(); }
int App::parse(int argc, const char* const* argv) {
  try {
    s_->app->parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return s_->app->exit(e);
  }
  return -1;
}

// What the programs' options are.
template Option* App::add_option(const std::string&, int&, const std::string&);
template Option* App::add_option(const std::string&, unsigned&, const std::string&);
template Option* App::add_option(const std::string&, long&, const std::string&);
template Option* App::add_option(const std::string&, unsigned long&, const std::string&);
template Option* App::add_option(const std::string&, unsigned long long&, const std::string&);
template Option* App::add_option(const std::string&, float&, const std::string&);
template Option* App::add_option(const std::string&, double&, const std::string&);
template Option* App::add_option(const std::string&, std::string&, const std::string&);
template Option* App::add_option(const std::string&, std::vector<std::size_t>&, const std::string&);
template Option* App::add_option(const std::string&, std::vector<int>&, const std::string&);
template Option* App::add_option(const std::string&, std::vector<double>&, const std::string&);
template Option* App::add_option(const std::string&, std::vector<std::string>&, const std::string&);

}  // namespace zg::examples::cli
