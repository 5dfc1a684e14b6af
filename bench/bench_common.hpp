#pragma once
// What the workload benchmarks (mlp_epoch, simple_cnn, op_overhead,
// deep_chain) share: a clock, medians, resident memory from /proc and the
// --threads convention (0 = run 1 and 2 threads, one JSON line each).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include <sys/resource.h>

namespace zg::bench {

using Clock = std::chrono::steady_clock;

// Mean seconds per call of fn over reps calls.
inline double seconds(const std::function<void()>& fn, int reps) {
  const auto start = Clock::now();
  for (int i = 0; i < reps; ++i) fn();
  return std::chrono::duration<double>(Clock::now() - start).count() / reps;
}

inline double since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// ms per step of each of `repeats` runs of `iterations` steps, after
// `warmup` untimed ones.
template <class Step>
std::vector<double> timed_runs(Step&& step, int warmup, int repeats, int iterations) {
  for (int i = 0; i < warmup; ++i) step();
  std::vector<double> ms;
  for (int r = 0; r < repeats; ++r) {
    const auto start = Clock::now();
    for (int i = 0; i < iterations; ++i) step();
    ms.push_back(since(start) * 1e3 / iterations);
  }
  return ms;
}

inline double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// A field of /proc/self/status in kB ("VmRSS", "VmHWM"); -1 if missing.
inline long proc_status_kb(const char* field) {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  long kb = -1;
  const std::size_t len = std::strlen(field);
  while (std::fgets(line, sizeof line, f))
    if (std::strncmp(line, field, len) == 0 && line[len] == ':') {
      kb = std::strtol(line + len + 1, nullptr, 10);
      break;
    }
  std::fclose(f);
  return kb;
}

inline double rss_mb() { return proc_status_kb("VmRSS") / 1024.0; }

// Peak resident set of the process so far (VmHWM; getrusage as a fallback).
inline double peak_rss_mb() {
  long kb = proc_status_kb("VmHWM");
  if (kb < 0) {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    kb = u.ru_maxrss;
  }
  return kb / 1024.0;
}

// Resets VmHWM to the current RSS (Linux >= 4.0: write 5 to clear_refs), so
// a later peak_rss_mb() measures from here. False if the kernel refused.
inline bool reset_peak_rss() {
  std::FILE* f = std::fopen("/proc/self/clear_refs", "w");
  if (!f) return false;
  const bool ok = std::fputs("5", f) >= 0;
  return std::fclose(f) == 0 && ok;
}

// --threads: 0 means both settings the issue asks for.
inline std::vector<int> thread_settings(int threads) {
  if (threads > 0) return {threads};
  return {1, 2};
}

}  // namespace zg::bench
