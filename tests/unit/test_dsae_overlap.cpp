// The discrete-SAE circuit score on hand-made codes: per head, codes seen on positive prompts and
// never on negative ones; the ranking (count, then fraction, then head index); top-n and
// min-unique selection; the silent code when no SAE feature is active.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdio>

#include "core/analysis/circuits/dsae_circuit.h"

namespace ms {
namespace {

TEST(DsaeOverlap, CountsCodesOnlyPositivesHave) {
  // 3 positives then 3 negatives; 4 heads.
  at::Tensor codes = at::tensor({0, 5, 1, 7,   //
                                 0, 6, 2, 7,   //
                                 0, 5, 3, 7,   //
                                 0, 9, 1, 8,   //
                                 0, 9, 4, 9,   //
                                 0, 9, 5, 7}, at::kLong).view({6, 4});
  std::vector<bool> pos = {true, true, true, false, false, false};
  CodeOverlap s = code_overlap(codes, pos);
  // head 0: {0} vs {0}: none; head 1: {5,6} vs {9}: 2 of 3; head 2: {1,2,3} vs {1,4,5}: 2 of 5;
  // head 3: {7} vs {7,8,9}: none.
  EXPECT_EQ(s.unique, (std::vector<int64_t>{0, 2, 2, 0}));
  EXPECT_DOUBLE_EQ(s.fraction[1], 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(s.fraction[2], 2.0 / 5.0);
  EXPECT_DOUBLE_EQ(s.fraction[0], 0.0);
  std::vector<int64_t> rank = rank_heads(s);
  EXPECT_EQ(rank, (std::vector<int64_t>{1, 2, 0, 3}));  // ties on the count go to the larger fraction
  DsaeResult r;
  r.overlap = s;
  r.ranking = rank;
  EXPECT_EQ(dsae_select(r, 0, 1), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(dsae_select(r, 0, 3), (std::vector<int64_t>{}));
  EXPECT_EQ(dsae_select(r, 3, 99), (std::vector<int64_t>{1, 2, 0}));
}

TEST(DsaeOverlap, SilentRowsGetTheExtraCode) {
  CodeSae s;
  s.w_enc = at::tensor({1.0, 0.0, 0.0, 1.0}, at::kDouble).view({2, 2});  // feature f reads x_f
  s.b_enc = at::zeros({2}, at::kDouble);
  at::Tensor x = at::tensor({3.0, 1.0, 0.5, 2.0, -1.0, -1.0}, at::kDouble).view({3, 2});
  at::Tensor c = encode_codes(s, x);
  EXPECT_EQ(c[0].item<int64_t>(), 0);
  EXPECT_EQ(c[1].item<int64_t>(), 1);
  EXPECT_EQ(c[2].item<int64_t>(), 2);  // nothing active: code d_sae
}

TEST(DsaeOverlap, TrainingSeparatesTwoClusters) {
  // Two well-separated clusters never share a code.
  at::Tensor a = at::randn({20, 8}, at::kDouble) * 0.05 + 1.0;
  at::Tensor b = at::randn({20, 8}, at::kDouble) * 0.05;
  b.select(1, 0).add_(-3.0);
  b.select(1, 1).add_(3.0);
  DsaeOptions o;
  o.d_sae = 16;
  for (uint64_t seed : {0u, 1u, 2u}) {
    o.seed = seed;
    CodeSae s = train_code_sae(at::cat({a, b}), o);
    at::Tensor ca = encode_codes(s, a), cb = encode_codes(s, b);
    at::Tensor ua = std::get<0>(at::_unique(ca)), ub = std::get<0>(at::_unique(cb));
    std::printf("seed %llu: %lld and %lld codes\n", static_cast<unsigned long long>(seed),
                static_cast<long long>(ua.numel()), static_cast<long long>(ub.numel()));
    EXPECT_EQ(at::isin(ua, ub).sum().item<int64_t>(), 0) << "seed " << seed;
    EXPECT_LE(ua.numel() + ub.numel(), 6) << "seed " << seed << ": a code per point is no codebook";
  }
}

}  // namespace
}  // namespace ms
