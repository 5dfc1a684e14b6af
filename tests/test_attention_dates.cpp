// The attention_dates example as a user runs it: every date it generates
// reads back, by a reader of its own that knows nothing of the example's
// formats, as the answer it is trained on; the same seed gives the same
// dates; a run stopped within an epoch resumes bit for bit.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <regex>
#include <set>
#include <sstream>

#include "testing.hpp"

#ifdef ZG_ATTENTION_DATES_EXE
namespace fs = std::filesystem;
using zg::testing::ProgramRun;

namespace {

ProgramRun attention_dates(const std::string& args) {
  return zg::testing::run_program(std::string(ZG_ATTENTION_DATES_EXE) + " " + args);
}

const char* const kMonthNames[] = {"january", "february", "march",     "april",   "may",      "june",
                                   "july",    "august",   "september", "october", "november", "december"};
const char* const kDayNames[] = {"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"};

// 1-based index of word among names, by the whole name or its first three
// letters; 0 if none.
int find_name(const std::string& word, const char* const* names, int n) {
  for (int i = 0; i < n; ++i)
    if (word == names[i] || word == std::string(names[i]).substr(0, 3)) return i + 1;
  return 0;
}

// Sakamoto's weekday, 0 = Sunday.
int weekday(int y, int m, int d) {
  static const int t[] = {0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4};
  if (m < 3) y -= 1;
  return (y + y / 4 - y / 100 + y / 400 + t[m - 1] + d) % 7;
}

// The ISO form of a written date, or why it cannot be read: month and
// weekday names, numbers and what separates them, ordinal suffixes that
// must fit the day, a weekday that must fit the date.
std::string read_date(const std::string& written) {
  std::string s;
  for (char ch : written) s += char(std::tolower(static_cast<unsigned char>(ch)));
  std::vector<std::string> numbers;
  std::string separators, ordinal;  // the character before each number but the first
  int month = 0, day_name = 0;
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t start = i;
    if (std::isdigit(static_cast<unsigned char>(s[i]))) {
      while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
      if (!numbers.empty()) separators += s[start - 1];
      numbers.push_back(s.substr(start, i - start));
    } else if (std::isalpha(static_cast<unsigned char>(s[i]))) {
      while (i < s.size() && std::isalpha(static_cast<unsigned char>(s[i]))) ++i;
      const std::string word = s.substr(start, i - start);
      const bool after_digit = start > 0 && std::isdigit(static_cast<unsigned char>(s[start - 1]));
      if (after_digit && (word == "st" || word == "nd" || word == "rd" || word == "th")) ordinal = word;
      else if (int m = find_name(word, kMonthNames, 12); m && !month) month = m;
      else if (int d = find_name(word, kDayNames, 7); d && !day_name) day_name = d;
      else if (word != "the" && word != "of") return "unknown word '" + word + "'";
    } else {
      ++i;
    }
  }
  int y = -1, m = month, d = -1;
  auto year = [](const std::string& n) {
    if (n.size() == 4) return std::stoi(n);
    return n.size() == 2 ? (std::stoi(n) < 70 ? 2000 : 1900) + std::stoi(n) : -1;
  };
  if (month) {
    if (numbers.size() != 2) return "a month name and " + std::to_string(numbers.size()) + " numbers";
    const bool year_first = numbers[0].size() == 4;
    y = year(numbers[year_first ? 0 : 1]);
    d = numbers[year_first ? 1 : 0].size() <= 2 ? std::stoi(numbers[year_first ? 1 : 0]) : -1;
  } else if (numbers.size() == 1 && numbers[0].size() == 8) {
    y = std::stoi(numbers[0].substr(0, 4)), m = std::stoi(numbers[0].substr(4, 2)), d = std::stoi(numbers[0].substr(6));
  } else if (numbers.size() == 3 && separators.size() == 2 && separators[0] == separators[1]) {
    const char sep = separators[0];
    if (numbers[0].size() == 4) y = year(numbers[0]), m = std::stoi(numbers[1]), d = std::stoi(numbers[2]);
    else if (sep == '/') m = std::stoi(numbers[0]), d = std::stoi(numbers[1]), y = year(numbers[2]);
    else if (sep == '.' || sep == ' ') d = std::stoi(numbers[0]), m = std::stoi(numbers[1]), y = year(numbers[2]);
    else return std::string("numbers separated by '") + sep + "' without a 4-digit year first";
  } else {
    return "no month name and numbers " + std::to_string(numbers.size()) + " with separators '" + separators + "'";
  }
  const bool leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
  const int days[] = {31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (y < 1970 || y > 2030 || m < 1 || m > 12 || d < 1 || d > days[m - 1]) return "no such date";
  if (day_name && day_name - 1 != weekday(y, m, d)) return "the wrong weekday";
  if (!ordinal.empty()) {
    const int last = d % 10;
    const std::string want = d / 10 == 1 || last == 0 || last > 3 ? "th" : last == 1 ? "st" : last == 2 ? "nd" : "rd";
    if (ordinal != want) return "the wrong ordinal '" + ordinal + "'";
  }
  char iso[32];
  std::snprintf(iso, sizeof iso, "%04d-%02d-%02d", y, m, d);
  return iso;
}

std::vector<std::pair<std::string, std::string>> lines_of(const std::string& out) {
  std::vector<std::pair<std::string, std::string>> v;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    const std::size_t tab = line.find('\t');
    REQUIRE(tab != std::string::npos);
    v.emplace_back(line.substr(0, tab), line.substr(tab + 1));
  }
  return v;
}

// A written date's form: letters as a, A or Aa by case, digits as 9.
std::string form(const std::string& s) {
  std::string f;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto ch = static_cast<unsigned char>(s[i]);
    const char c = std::isdigit(ch) ? '9' : std::islower(ch) ? 'a' : std::isupper(ch) ? 'A' : char(ch);
    if (f.empty() || c != f.back() || !std::isalnum(ch)) f += c;
  }
  return f;
}

}  // namespace

TEST_CASE("attention_dates: every generated date reads back as its answer, in dozens of forms") {
  const ProgramRun r = attention_dates("--print-data 4000 --seed 7");
  CAPTURE(r.err);
  REQUIRE(r.status == 0);
  const auto dates = lines_of(r.out);
  REQUIRE(dates.size() == 4000);
  std::set<std::string> questions, forms;
  int first_year = 3000, last_year = 0;
  bool upper = false, lower = false, title = false;
  for (const auto& [question, answer] : dates) {
    const std::string q = question, a = answer;  // a lambda cannot capture a binding in C++17
    CAPTURE(q);
    CHECK(read_date(q) == a);
    questions.insert(q);
    forms.insert(form(q));
    first_year = std::min(first_year, std::stoi(a.substr(0, 4)));
    last_year = std::max(last_year, std::stoi(a.substr(0, 4)));
    upper = upper || std::regex_search(q, std::regex("^[^a-z]*[A-Z]{3}[^a-z]*$"));
    lower = lower || std::regex_search(q, std::regex("^[^A-Z]*[a-z]{3}[^A-Z]*$"));
    title = title || std::regex_search(q, std::regex("[A-Z][a-z]"));
  }
  CHECK(questions.size() == dates.size());  // distinct: held-out dates are never trained on
  CHECK(forms.size() >= 40);  // 40 formats in three cases, counted by shape (9 for any number, Aa for a name)
  CHECK(first_year == 1970);
  CHECK(last_year == 2030);
  CHECK(upper);
  CHECK(lower);
  CHECK(title);
}

TEST_CASE("attention_dates: the same seed makes the same dates, another seed others") {
  const ProgramRun a = attention_dates("--print-data 300 --seed 3"), b = attention_dates("--print-data 300 --seed 3"),
                   c = attention_dates("--print-data 300 --seed 4");
  REQUIRE(a.status == 0);
  CHECK(lines_of(a.out).size() == 300);
  CHECK(a.out == b.out);
  CHECK(a.out != c.out);
}

TEST_CASE("attention_dates: stopped in the middle of an epoch, --resume continues the same run bit for bit") {
  const fs::path dir = zg::testing::empty_dir("attention_dates_resume");
  // 360 training dates in batches of 32: 11 steps an epoch.
  const std::string common = "--samples 400 --embed 8 --hidden 16 --batch-size 32 --threads 1 --seed 5 ";
  const ProgramRun straight = attention_dates(common + "--epochs 2 --out " + (dir / "straight").string());
  CAPTURE(straight.err);
  REQUIRE(straight.status == 0);
  CHECK(straight.out.find("epoch 2: train loss ") != std::string::npos);
  if (std::system("command -v gnuplot >/dev/null 2>&1") == 0) {
    CHECK(fs::file_size(dir / "straight" / "accuracy.png") > 1000);
    CHECK(fs::file_size(dir / "straight" / "attention.png") > 1000);
  }
  const ProgramRun stop = attention_dates(common + "--epochs 2 --stop-after 15 --out " + (dir / "split").string());
  CAPTURE(stop.err);
  REQUIRE(stop.status == 130);
  CHECK(stop.err.find("continue with --resume") != std::string::npos);
  const std::string ck = (dir / "split" / "checkpoint.npz").string();
  const ProgramRun r = attention_dates("--threads 1 --epochs 1 --resume " + ck + " --out " + (dir / "split").string());
  CAPTURE(r.out);
  CAPTURE(r.err);
  REQUIRE(r.status == 0);
  CHECK(r.out.find("resumed from " + ck + " after epoch 1 and 4 steps of epoch 2") != std::string::npos);
  zg::testing::check_same_checkpoint(ck, dir / "straight" / "checkpoint.npz");
  const std::string csv = zg::testing::read_text(dir / "split" / "metrics.csv");
  CAPTURE(csv);
  CHECK(std::regex_search(csv, std::regex("^epoch,train_loss,accuracy,seconds\n1,[^\n]*\n1\\.36[0-9]*,[^\n]*\n2,")));

  const ProgramRun other = attention_dates("--hidden 32 --resume " + ck + " --out " + (dir / "other").string());
  CHECK(other.status == 1);
  CHECK(other.err.find("--hidden 32 differs from " + ck + "'s 16: leave it out to resume") != std::string::npos);
}
#endif
