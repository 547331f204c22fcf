// The trained `induction` zoo model the circuit and SAE tests read, trained once per ctest run.
#pragma once

#include <string>

namespace ms::test {

// Training steps of the CI-size induction model (the recipe trains 6,000).
constexpr int kInductionZooSteps = 4000;

// The trained `induction` zoo model at CI size (recipe seed 1, kInductionZooSteps steps, the
// recipe's one thread): the folder ctest's `zoo_induction_fixture` test wrote
// (MECHSCOPE_TEST_INDUCTION_ZOO), so the tests that read it do not each train it; without that
// folder (a test binary run by hand) it is trained here into a temporary folder, the same weights
// bit for bit. Once per process.
std::string induction_zoo_dir();

}  // namespace ms::test
