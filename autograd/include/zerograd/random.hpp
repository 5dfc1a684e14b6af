#pragma once
/// @file
/// The one seedable random generator behind init, dropout and data shuffling:
/// with one thread and a fixed seed, a run repeats exactly.
#include <cstdint>
#include <random>

namespace zg {

using Generator = std::mt19937_64;  ///< the random engine: 64-bit Mersenne Twister

/// The process-wide generator (not synchronised: draw from one thread, or give
/// each thread its own Generator).
Generator& generator();
void manual_seed(std::uint64_t seed);  ///< reseeds generator(), as torch.manual_seed

}  // namespace zg
