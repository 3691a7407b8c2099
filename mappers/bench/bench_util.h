#pragma once
// Shared by the mappers benchmarks (hl7v2_bench, mapping_bench): reading a sample file whole and
// timing repeated passes over the same input.
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace medicus::bench {

inline std::string readFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Repeats `pass` (which returns a value folded into `sink`, so the work is not optimised away) for at
// least `seconds`, and returns units_per_pass * passes / elapsed seconds.
template <typename Fn>
double unitsPerSecond(double seconds, std::size_t units_per_pass, Fn&& pass, std::size_t& sink) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  std::size_t passes = 0;
  double elapsed = 0;
  do {
    sink += pass();
    ++passes;
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  } while (elapsed < seconds);
  return static_cast<double>(units_per_pass) * static_cast<double>(passes) / elapsed;
}

}  // namespace medicus::bench
