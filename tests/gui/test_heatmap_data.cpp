// Heatmap level of detail and colour scales, and the background task manager (no window needed).
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <random>
#include <thread>

#include "views/heatmap_data.h"
#include "views/task_manager.h"

namespace {
using namespace ms::views;

TEST(HeatmapPyramid, EveryLevelIsTheBruteForceMaxOfItsBlock) {
  const int rows = 37, cols = 301;
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(0, 1);
  std::vector<float> v(rows * cols);
  for (auto& x : v) x = u(rng);
  v[5 * cols + 7] = std::numeric_limits<float>::quiet_NaN();
  auto pyr = build_pyramid(v.data(), rows, cols, 8);
  ASSERT_GE(pyr.size(), 6u);
  EXPECT_LE(pyr.back().rows, 8);
  EXPECT_LE(pyr.back().cols, 8);
  for (const HeatLevel& lv : pyr) {
    EXPECT_EQ(lv.rows, (rows + lv.factor - 1) / lv.factor);
    EXPECT_EQ(lv.cols, (cols + lv.factor - 1) / lv.factor);
    for (int r = 0; r < lv.rows; ++r)
      for (int c = 0; c < lv.cols; ++c) {
        float want = -1;
        for (int i = r * lv.factor; i < std::min(rows, (r + 1) * lv.factor); ++i)
          for (int j = c * lv.factor; j < std::min(cols, (c + 1) * lv.factor); ++j)
            if (!std::isnan(v[i * cols + j])) want = std::max(want, v[i * cols + j]);
        float got = lv.values[r * lv.cols + c];
        if (lv.factor == 1 && r == 5 && c == 7) EXPECT_TRUE(std::isnan(got));
        else ASSERT_EQ(got, want) << "factor " << lv.factor << " cell " << r << "," << c;
      }
  }
}

TEST(HeatmapPyramid, ChoosesTheCoarsestLevelNotFinerThanAPixel) {
  std::vector<float> v(4096 * 4096, 0.5f);
  auto pyr = build_pyramid(v.data(), 4096, 4096);
  ASSERT_EQ(pyr.size(), 5u);  // 4096 .. 256
  EXPECT_EQ(choose_level(pyr, 0.25), 0);   // zoomed in
  EXPECT_EQ(choose_level(pyr, 1.0), 0);
  EXPECT_EQ(choose_level(pyr, 3.9), 1);    // factor 2
  EXPECT_EQ(choose_level(pyr, 4.0), 2);
  EXPECT_EQ(choose_level(pyr, 1000), 4);   // the coarsest there is
}

TEST(HeatmapScale, LinearLogAndSinkClippedRanges) {
  // A first-column sink of 0.9 and the rest at most 0.05.
  std::vector<float> v = {0.9f, 0.05f, 0.05f, 0.9f, 0.02f, 0.08f};
  HeatRange lin = heat_range(v.data(), 2, 3, HeatScale::kLinear);
  EXPECT_DOUBLE_EQ(lin.hi, 0.9f);
  EXPECT_NEAR(lin.normalize(0.45), 0.5, 1e-6);
  HeatRange clip = heat_range(v.data(), 2, 3, HeatScale::kSinkClipped);
  EXPECT_NEAR(clip.hi, 0.08, 1e-6);
  EXPECT_DOUBLE_EQ(clip.normalize(0.9), 1.0);        // the sink saturates
  EXPECT_NEAR(clip.normalize(0.04), 0.5, 1e-6);      // the rest uses the whole map
  HeatRange lg = heat_range(v.data(), 2, 3, HeatScale::kLog);
  EXPECT_NEAR(lg.lo, 0.02, 1e-6);
  EXPECT_NEAR(lg.normalize(std::sqrt(0.02 * 0.9)), 0.5, 1e-6);  // geometric midpoint
  EXPECT_DOUBLE_EQ(lg.normalize(0.0), 0.0);
  HeatScale s;
  EXPECT_TRUE(parse_heat_scale("sink-clipped", &s));
  EXPECT_EQ(s, HeatScale::kSinkClipped);
  EXPECT_FALSE(parse_heat_scale("cubic", &s));
}

TEST(TaskManager, ProgressCancelAndFailure) {
  TaskManager tm;
  int64_t slow = tm.start("slow", [](TaskContext& ctx) {
    for (int i = 0; i < 2000 && !ctx.cancelled(); ++i) {
      ctx.set_progress(i / 2000.0);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ctx.set_status(ctx.cancelled() ? "stopped" : "finished");
  });
  tm.start("bad", [](TaskContext&) { throw std::runtime_error("boom"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  auto snap = tm.snapshot();
  ASSERT_EQ(snap.size(), 2u);
  EXPECT_TRUE(snap[0].running);
  EXPECT_GT(snap[0].progress, 0.0);
  tm.cancel(slow);
  ASSERT_TRUE(tm.wait_idle(5.0));
  snap = tm.snapshot();
  EXPECT_FALSE(snap[0].running);
  EXPECT_EQ(snap[0].status, "stopped");
  EXPECT_LT(snap[0].progress, 0.9);
  EXPECT_TRUE(snap[1].failed);
  EXPECT_EQ(snap[1].error, "boom");
  tm.clear_finished();
  EXPECT_TRUE(tm.snapshot().empty());
}

}  // namespace
