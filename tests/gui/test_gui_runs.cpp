// The Runs window's figures, the Attention window's sink-clipped floor and the Circuit window's
// legend: data through the views' functions (run_figures.h, heatmap_data.h), pixels through
// `mechscope gui --view ... --screenshot` under Xvfb with the layout the view reports.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "core/base/colormap.h"
#include "core/model/model.h"
#include "hooks/hook_registry.h"
#include "report/png.h"
#include "storage/database.h"
#include "tests/support/constructed_zoo.h"
#include "tests/support/test_support.h"
#include "views/heatmap_data.h"
#include "views/run_figures.h"

namespace {

struct Shot {
  ms::RgbImage img;
  std::string out;
};

Shot shoot(std::vector<std::string> args, const std::string& name) {
  std::string png = ms::test::temp_dir("gui-runs-shot") + "/shot.png";
  std::vector<std::string> a = {"gui", "--screenshot", png, "--size", "1000x700"};
  a.insert(a.end(), args.begin(), args.end());
  auto r = ms::test::run_mechscope(a);
  EXPECT_EQ(r.exit_code, 0) << r.err << r.out;
  Shot s;
  s.out = r.out;
  if (r.exit_code != 0) return s;
  s.img = ms::decode_png(ms::test::read_file(png));
  if (const char* keep = std::getenv("MECHSCOPE_GUI_SHOTS"); keep && *keep)
    ms::test::write_file(std::string(keep) + "/" + name + ".png", ms::test::read_file(png));
  return s;
}

struct Grid {
  float x = 0, y = 0, cw = 0, ch = 0;
  int rows = 0, cols = 0;
};
// "grid NAME: x=.. y=.. cell_w=.. cell_h=.. rows=.. cols=.." from the view's layout report.
bool find_grid(const std::string& out, const std::string& name, Grid* g) {
  auto p = out.find("grid " + name + ": ");
  if (p == std::string::npos) return false;
  p = out.find(": ", p) + 2;
  return std::sscanf(out.c_str() + p, "x=%f y=%f cell_w=%f cell_h=%f rows=%d cols=%d", &g->x, &g->y, &g->cw, &g->ch,
                     &g->rows, &g->cols) == 6;
}

ms::Rgb pixel(const ms::RgbImage& img, int x, int y) {
  const uint8_t* p = img.pixels.data() + (static_cast<size_t>(y) * img.width + x) * 3;
  return {p[0], p[1], p[2]};
}
int max_channel_diff(ms::Rgb a, ms::Rgb b) {
  return std::max({std::abs(a.r - b.r), std::abs(a.g - b.g), std::abs(a.b - b.b)});
}

TEST(RunFigures, DifferenceGridIsAMinusBWithASymmetricScale) {
  ms::HeadScores a{"m", 2, 3, {0.1, 0.5, 0.9, 0.0, NAN, 0.3}};
  ms::HeadScores b{"m", 2, 3, {0.4, 0.5, 0.2, 0.7, 0.1, NAN}};
  auto d = ms::views::difference_grid(a, b);
  ASSERT_TRUE(d.has_value());
  ASSERT_EQ(d->n_layers, 2);
  ASSERT_EQ(d->n_heads, 3);
  for (size_t i = 0; i < a.values.size(); ++i) {
    if (std::isnan(a.values[i]) || std::isnan(b.values[i])) EXPECT_TRUE(std::isnan(d->values[i])) << i;
    else EXPECT_NEAR(d->values[i], a.values[i] - b.values[i], 1e-12) << i;
  }
  ms::ColorScale s = ms::views::symmetric_scale(d->values);
  EXPECT_EQ(s.map, ms::Colormap::kDiverging);
  EXPECT_NEAR(s.hi, 0.7, 1e-12);  // max |A - B| (0.9 - 0.2 and 0.0 - 0.7)
  EXPECT_NEAR(s.lo, -0.7, 1e-12);
  EXPECT_NEAR(s.normalize(0.0), 0.5, 1e-12);  // zero is the middle (white)
  ms::HeadScores other{"m", 3, 2, a.values};
  EXPECT_FALSE(ms::views::difference_grid(a, other).has_value());
  // A and B share one scale: 0..1 when both are fractions and absolute is asked for.
  ms::ColorScale ab = ms::views::joint_scale(a, b, true);
  EXPECT_EQ(ab.map, ms::Colormap::kViridis);
  EXPECT_DOUBLE_EQ(ab.lo, 0.0);
  EXPECT_DOUBLE_EQ(ab.hi, 1.0);
  ab = ms::views::joint_scale(a, b, false);
  EXPECT_NEAR(ab.lo, 0.0, 1e-12);
  EXPECT_NEAR(ab.hi, 0.9, 1e-12);
}

TEST(HeatmapScale, SinkClippedFloorKeepsAPureSinkHeadDark) {
  // Column 0 holds everything; the largest weight elsewhere is 6e-6. Without a floor the clip
  // would be 6e-6 and those crumbs would fill the colour map.
  const int n = 4;
  std::vector<float> v(n * n, 0.f);
  for (int r = 0; r < n; ++r) {
    for (int c = 1; c <= r; ++c) v[r * n + c] = 6e-6f;
    v[r * n] = 1.f - r * 6e-6f;
  }
  ms::views::HeatRange h = ms::views::heat_range(v.data(), n, n, ms::views::HeatScale::kSinkClipped);
  EXPECT_NEAR(h.hi, ms::views::kSinkFloor, 1e-12);
  EXPECT_TRUE(h.floored);
  EXPECT_NEAR(h.max_rest, 6e-6, 1e-9);
  EXPECT_LT(h.normalize(6e-6), 0.001);
  EXPECT_DOUBLE_EQ(h.normalize(1.0), 1.0);
  // A user floor of 0 gives the old behaviour; a head with real spread is not floored.
  EXPECT_NEAR(ms::views::heat_range(v.data(), n, n, ms::views::HeatScale::kSinkClipped, 0.0).hi, 6e-6, 1e-9);
  ms::views::HeatRange spread = ms::views::sink_clipped_range(0.9, 0.3, ms::views::kSinkFloor);
  EXPECT_NEAR(spread.hi, 0.3, 1e-12);
  EXPECT_FALSE(spread.floored);
  // From a prepared heatmap (what the Attention window uses) with another floor.
  auto prep = ms::views::prepare_heatmap(v.data(), n, n);
  EXPECT_NEAR(prep->ranges[static_cast<int>(ms::views::HeatScale::kSinkClipped)].hi, ms::views::kSinkFloor, 1e-12);
  EXPECT_NEAR(ms::views::sink_clipped_range(prep->max_all, prep->max_rest, 0.2).hi, 0.2, 1e-12);
}

// A run holding a retrieval-style accuracy grid (lengths x depths), a curve and a 4-D tensor.
int64_t store_tensor_run(const std::string& db_path, const std::vector<double>& acc) {
  auto db = ms::Database::open(db_path);
  EXPECT_TRUE(db.ok()) << db.error().message;
  ms::RunResults res;
  res.tensors.push_back({"accuracy", at::tensor(acc, at::kDouble).reshape({3, 4}),
                         R"({"kind":"grid","axes":["length","depth"],"lengths":[32,48,64],"depths":[0,0.33,0.67,1],"unit":"% correct"})"});
  res.tensors.push_back({"sink_rate_curve", at::linspace(0, 1, 20, at::kDouble), R"({"kind":"curve","x":"key position","y":"sink rate %"})"});
  res.tensors.push_back({"first_alpha", at::zeros({2, 2, 2, 3}), R"({"kind":"alpha"})"});
  auto r = (*db)->store_run(ms::RunSpec("retrieval"), res);
  EXPECT_TRUE(r.ok()) << r.error().message;
  return r.ok() ? *r : 0;
}

TEST(RunFigures, StoredTensorsBecomeGridsAndCurvesWithTheirAxes) {
  std::string db_path = ms::test::temp_dir("gui-runs-fig") + "/m.db";
  std::vector<double> acc = {0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 0.55};
  int64_t run = store_tensor_run(db_path, acc);
  auto db = ms::Database::open(db_path);
  ASSERT_TRUE(db.ok());
  auto tensors = (*db)->list_tensors(run);
  ASSERT_TRUE(tensors.ok());
  int seen = 0;
  for (const ms::TensorInfo& t : *tensors) {
    std::string why;
    auto f = ms::views::tensor_figure(**db, run, t, &why);
    if (t.name == "accuracy") {
      ASSERT_TRUE(f.has_value()) << why;
      EXPECT_EQ(f->rank, 2);
      EXPECT_EQ(f->rows, 3);
      EXPECT_EQ(f->cols, 4);
      EXPECT_EQ(f->row_title, "length");
      EXPECT_EQ(f->col_title, "depth");
      EXPECT_EQ(f->row_labels, (std::vector<std::string>{"32", "48", "64"}));
      EXPECT_EQ(f->col_labels.size(), 4u);
      for (size_t i = 0; i < acc.size(); ++i) EXPECT_NEAR(f->values[i], acc[i], 1e-12);
      ++seen;
    } else if (t.name == "sink_rate_curve") {
      ASSERT_TRUE(f.has_value()) << why;
      EXPECT_EQ(f->rank, 1);
      EXPECT_EQ(f->cols, 20);
      EXPECT_EQ(f->col_title, "key position");
      ++seen;
    } else {
      EXPECT_FALSE(f.has_value());  // 4-D: listed, not drawn
      EXPECT_NE(why.find("4-D"), std::string::npos) << why;
      ++seen;
    }
  }
  EXPECT_EQ(seen, 3);
}

TEST(RunFigures, LongSidesBecomeBlockMeans) {
  std::string db_path = ms::test::temp_dir("gui-runs-big") + "/m.db";
  auto db = ms::Database::open(db_path);
  ASSERT_TRUE(db.ok());
  ms::RunResults res;
  at::Tensor x = at::arange(2000, at::kDouble).reshape({200, 10});
  res.tensors.push_back({"big", x, "{}"});
  auto run = (*db)->store_run(ms::RunSpec("test"), res);
  ASSERT_TRUE(run.ok());
  auto tensors = (*db)->list_tensors(*run);
  ASSERT_TRUE(tensors.ok() && tensors->size() == 1u);
  std::string why;
  auto f = ms::views::tensor_figure(**db, *run, (*tensors)[0], &why);
  ASSERT_TRUE(f.has_value()) << why;
  EXPECT_LE(f->rows, ms::views::kMaxGridSide);
  EXPECT_EQ(f->row_step, 3);  // 200 rows: blocks of 3, the last one partial
  EXPECT_EQ(f->rows, 67);
  EXPECT_EQ(f->cols, 10);
  EXPECT_NEAR(f->values[0], (0 + 10 + 20) / 3.0, 1e-9);       // rows 0..2 of column 0
  EXPECT_NEAR(f->values[66 * 10 + 9], (1989 + 1999) / 2.0, 1e-9);  // rows 198..199 of column 9
}

TEST(GuiRuns, RunsWindowDrawsAStoredGridInItsColours) {
  std::string db_path = ms::test::temp_dir("gui-runs-shot-db") + "/m.db";
  std::vector<double> acc = {0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 0.55};
  int64_t run = store_tensor_run(db_path, acc);
  Shot s = shoot({"--db", db_path, "--run", std::to_string(run), "--view", "runs"}, "runs_tensor");
  ASSERT_EQ(s.img.width, 1000);
  Grid g;
  ASSERT_TRUE(find_grid(s.out, "tensor accuracy", &g)) << s.out;
  ASSERT_EQ(g.rows, 3);
  ASSERT_EQ(g.cols, 4);
  ASSERT_GT(g.cw, 4);
  ASSERT_GT(g.ch, 4);
  int worst = 0;
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 4; ++c) {
      int px = static_cast<int>(g.x + (c + 0.5f) * g.cw), py = static_cast<int>(g.y + (r + 0.5f) * g.ch);
      ASSERT_TRUE(px >= 0 && px < s.img.width && py >= 0 && py < s.img.height) << px << "," << py;
      // Values in [0, 1]: the absolute 0..1 scale by default.
      ms::Rgb want = ms::colormap_at(ms::Colormap::kViridis, acc[r * 4 + c]);
      worst = std::max(worst, max_channel_diff(pixel(s.img, px, py), want));
    }
  std::printf("max channel difference against viridis(value): %d\n", worst);
  EXPECT_LE(worst, 6);
}

const std::string& sink_dir() { return ms::test::constructed_zoo_dir("sink"); }

TEST(GuiRuns, SinkClippedScaleDoesNotStretchAPureSinkHead) {
  // Head 0.1 of the constructed sink model is a first-token sink: outside column 0 its weights are
  // tiny. With the floor they stay at the dark end of the map instead of filling it.
  const char* prompt = "0 5 9 13 1 17 21 25 29 1 33 37 41 45";
  Shot s = shoot({"--model", sink_dir(), "--db", ms::test::temp_dir("gui-runs-sink-db") + "/m.db", "--view", "attention",
                  "--layer", "0", "--head", "1", "--scale", "sink-clipped", "--prompt", prompt},
                 "attention_sink_floor");
  auto p = s.out.find("heatmap: ");
  ASSERT_NE(p, std::string::npos) << s.out;
  Grid g;
  ASSERT_EQ(std::sscanf(s.out.c_str() + p, "heatmap: x=%f y=%f cell_w=%f cell_h=%f rows=%d cols=%d", &g.x, &g.y, &g.cw,
                        &g.ch, &g.rows, &g.cols), 6);
  ASSERT_EQ(g.rows, 14);
  // The pattern through the hook point, for the largest weight outside column 0.
  auto m = ms::Model::load(sink_dir());
  ASSERT_TRUE(m.ok());
  std::vector<int32_t> ids;
  std::istringstream in(prompt);
  for (int v; in >> v;) ids.push_back(v);
  ms::HookRegistry reg;
  at::Tensor pat;
  reg.add_forward("blocks.0.attn.hook_pattern", [&](const at::Tensor& a, const ms::HookContext&) {
    pat = a.select(0, 0).select(0, 1).to(at::kFloat).contiguous().clone();
    return at::Tensor();
  });
  ms::ForwardOptions o;
  o.hooks = &reg;
  (*m)->forward((*m)->tokens_tensor(ids), o);
  const int n = 14;
  float rest = 0;
  for (int r = 1; r < n; ++r)
    for (int c = 1; c <= r; ++c) rest = std::max(rest, pat[r][c].item<float>());
  std::printf("largest weight outside column 0: %.3g\n", rest);
  ASSERT_LT(rest, 0.01) << "head 0.1 is no longer a pure sink: the test's premise changed";
  const ms::Rgb dark = ms::colormap_at(ms::Colormap::kViridis, 0.0);
  int brightest = 0;
  for (int r = 1; r < n; ++r) {
    ms::Rgb c0 = pixel(s.img, static_cast<int>(g.x + 0.5f * g.cw), static_cast<int>(g.y + (r + 0.5f) * g.ch));
    EXPECT_GT(c0.r + c0.g, 300) << "row " << r << ": the sink column saturates (yellow)";
    for (int c = 1; c <= r; ++c) {
      ms::Rgb got = pixel(s.img, static_cast<int>(g.x + (c + 0.5f) * g.cw), static_cast<int>(g.y + (r + 0.5f) * g.ch));
      brightest = std::max(brightest, max_channel_diff(got, dark));
    }
  }
  std::printf("largest channel difference from viridis(0) outside column 0: %d\n", brightest);
  // rest / 0.05 of the map at most (< 0.2): viridis(0.2) is about 40 levels from viridis(0).
  EXPECT_LE(brightest, 45);
}

TEST(GuiRuns, CircuitWindowHasALegendLayerColumnsAndFaithfulness) {
  std::string db_path = ms::test::temp_dir("gui-runs-circ") + "/m.db";
  int64_t run = 0;
  {
    auto db = ms::Database::open(db_path);
    ASSERT_TRUE(db.ok());
    ms::RunResults res;
    ms::Circuit c;
    c.name = "ioi";
    c.nodes = {{"embed", "embed", -1, -1, 1.0}, {"a0.1", "head", 0, 1, 0.8}, {"m0", "mlp", 0, -1, 0.3},
               {"a1.0", "head", 1, 0, 0.6}, {"a2.2", "head", 2, 2, 0.4}, {"logits", "logits", 3, -1, 1.0}};
    c.edges = {{0, 1, 0.9}, {1, 3, 0.5}, {2, 3, -0.3}, {0, 4, 0.4}, {3, 5, 0.7}, {4, 5, 0.2}, {0, 5, -0.2}};
    c.meta_json = R"({"faithfulness":0.8125,"faithfulness_normalized":0.75,"metric_circuit":1.3,"metric_clean":1.6,)"
                  R"("edge_targets":["a0.1<q>|a0.1<k>","a1.0<v>","a1.0<k>","a2.2<q>","logits","logits","logits"],)"
                  R"("edge_target_scores":[[0.5,0.4],[0.5],[-0.3],[0.4],[0.7],[0.2],[-0.2]]})";
    res.circuits.push_back(c);
    auto r = (*db)->store_run(ms::RunSpec("circuit"), res);
    ASSERT_TRUE(r.ok());
    run = *r;
  }
  Shot s = shoot({"--db", db_path, "--run", std::to_string(run), "--view", "circuit"}, "circuit_legend");
  ASSERT_EQ(s.img.width, 1000);
  EXPECT_NE(s.out.find("faithfulness 0.812"), std::string::npos) << s.out;
  EXPECT_NE(s.out.find("nodes: 6"), std::string::npos) << s.out;
  float x = 0, y = 0, w = 0, h = 0;
  auto p = s.out.find("legend: ");
  ASSERT_NE(p, std::string::npos) << s.out;
  ASSERT_EQ(std::sscanf(s.out.c_str() + p, "legend: x=%f y=%f w=%f h=%f", &x, &y, &w, &h), 4);
  ASSERT_GT(w, 200);
  // The legend's swatches: positive (blue) and negative (red) edges, head (green) and mlp nodes.
  auto count = [&](ms::Rgb want) {
    int n = 0;
    for (int yy = static_cast<int>(y); yy < static_cast<int>(y + h) && yy < s.img.height; ++yy)
      for (int xx = static_cast<int>(x); xx < static_cast<int>(x + w) && xx < s.img.width; ++xx)
        n += max_channel_diff(pixel(s.img, xx, yy), want) <= 4;
    return n;
  };
  EXPECT_GT(count({90, 150, 255}), 20);
  EXPECT_GT(count({255, 110, 90}), 20);
  EXPECT_GT(count({60, 110, 70}), 20);
  EXPECT_GT(count({110, 80, 50}), 20);
}


TEST(GuiRuns, ComparisonDrawsAAndBAndTheirDifference) {
  std::string db_path = ms::test::temp_dir("gui-runs-cmp") + "/m.db";
  ms::HeadScores a{"sink_mass", 2, 4, {0.1, 0.9, 0.1, 0.1, 0.9, 0.2, 0.05, 0.9}};
  ms::HeadScores b{"sink_mass", 2, 4, {0.3, 0.8, 0.1, 0.6, 0.2, 0.2, 0.45, 0.0}};
  int64_t ra = 0, rb = 0;
  {
    auto db = ms::Database::open(db_path);
    ASSERT_TRUE(db.ok());
    ms::RunResults res;
    res.scores.push_back(a);
    auto r = (*db)->store_run(ms::RunSpec("sinks"), res);
    ASSERT_TRUE(r.ok());
    ra = *r;
    res.scores = {b};
    r = (*db)->store_run(ms::RunSpec("sinks"), res);
    ASSERT_TRUE(r.ok());
    rb = *r;
  }
  Shot s = shoot({"--db", db_path, "--run", std::to_string(ra), "--compare", std::to_string(rb), "--view", "runs"},
                 "runs_compare");
  ASSERT_EQ(s.img.width, 1000);
  auto d = ms::views::difference_grid(a, b);
  ASSERT_TRUE(d.has_value());
  ms::ColorScale diff_scale = ms::views::symmetric_scale(d->values);
  struct Want {
    const char* name;
    const ms::HeadScores* scores;
    ms::ColorScale scale;
  };
  for (const Want& w : {Want{"A", &a, {ms::Colormap::kViridis, 0, 1}}, Want{"B", &b, {ms::Colormap::kViridis, 0, 1}},
                        Want{"A-B", &*d, diff_scale}}) {
    Grid g;
    ASSERT_TRUE(find_grid(s.out, w.name, &g)) << w.name << "\n" << s.out;
    ASSERT_EQ(g.rows, 2);
    ASSERT_EQ(g.cols, 4);
    int worst = 0;
    for (int l = 0; l < 2; ++l)
      for (int h = 0; h < 4; ++h) {
        int px = static_cast<int>(g.x + (h + 0.5f) * g.cw), py = static_cast<int>(g.y + (l + 0.5f) * g.ch);
        ASSERT_TRUE(px >= 0 && px < s.img.width && py >= 0 && py < s.img.height) << w.name;
        ms::Rgb want = ms::colormap_at(w.scale.map, w.scale.normalize(w.scores->at(l, h)));
        worst = std::max(worst, max_channel_diff(pixel(s.img, px, py), want));
      }
    std::printf("grid %s: max channel difference %d\n", w.name, worst);
    EXPECT_LE(worst, 6) << w.name;
  }
}

}  // namespace
