// splitmix64 (Steele, Lea and Flood; the seeding step of xoshiro): one 64-bit output per call,
// advancing the state by the golden-ratio increment. The same stream on every platform; the zoo's
// task RNG and the SAE activation store's shuffles use it.
#pragma once

#include <cstdint>

namespace ms {

inline uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace ms
