// The Analyses window's retrieval and head-detector tasks (`mechscope gui --launch`, under Xvfb)
// store the same runs and head scores as `mechscope retrieval` and `mechscope heads` with the same
// parameters, and find the heads the constructed copy model has by design.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <string>
#include <vector>

#include "core/model/model.h"
#include "runs/heads_run.h"
#include "runs/retrieval_run.h"
#include "storage/database.h"
#include "tests/support/test_support.h"

namespace {

const std::string& copy_dir() {
  static std::string dir = [] {
    std::string d = ms::test::temp_dir("gui-copy") + "/copy";
    auto r = ms::test::run_mechscope({"zoo", "construct", "copy", "--out", d});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return d;
  }();
  return dir;
}

// Runs the workbench headless with the Analyses window, launching `launch`, into db.
void launch(const std::string& model, const std::string& db, const std::string& launch) {
  std::string png = ms::test::temp_dir("gui-analyses-shot") + "/shot.png";
  auto r = ms::test::run_mechscope({"gui", "--model", model, "--db", db, "--view", "analyses", "--size", "1000x700",
                                    "--screenshot", png, "--launch", launch});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  if (const char* keep = std::getenv("MECHSCOPE_GUI_SHOTS"); keep && *keep)
    ms::test::write_file(std::string(keep) + "/analyses_" + launch.substr(0, launch.find(' ')) + ".png",
                         ms::test::read_file(png));
}

std::vector<ms::RunSummary> runs(ms::Database& db, const std::string& kind) {
  ms::RunFilter f;
  f.kind = kind;
  auto r = db.list_runs(f);
  EXPECT_TRUE(r.ok()) << r.error().message;
  return r.ok() ? *r : std::vector<ms::RunSummary>{};
}

// Both databases hold one done run of kind with the same params and the same scores of metric.
ms::HeadScores expect_same(ms::Database& gui, ms::Database& cli, const std::string& kind,
                           const std::vector<std::string>& metrics) {
  auto g = runs(gui, kind), c = runs(cli, kind);
  EXPECT_EQ(g.size(), 1u) << kind;
  EXPECT_EQ(c.size(), 1u) << kind;
  if (g.size() != 1 || c.size() != 1) return {};
  EXPECT_EQ(g[0].run.status, ms::RunStatus::kDone);
  EXPECT_EQ(g[0].run.spec.params_json, c[0].run.spec.params_json);
  ms::HeadScores first;
  for (const std::string& m : metrics) {
    auto a = gui.get_head_scores(g[0].run.id, m);
    auto b = cli.get_head_scores(c[0].run.id, m);
    EXPECT_TRUE(a.ok() && b.ok()) << m;
    if (!a.ok() || !b.ok()) continue;
    EXPECT_EQ(a->values.size(), b->values.size()) << m;
    for (size_t i = 0; i < a->values.size() && i < b->values.size(); ++i)
      EXPECT_NEAR(a->values[i], b->values[i], 1e-12) << m << " " << i;
    if (first.values.empty()) first = *a;
  }
  return first;
}

TEST(GuiAnalyses, RetrievalOnTheCopyModelIsStoredAsTheCliStoresIt) {
  std::string dir = ms::test::temp_dir("gui-retrieval");
  launch(copy_dir(), dir + "/gui.db", "retrieval lengths=24,32 depths=3 mask_top=2");
  auto cli = ms::test::run_mechscope({"retrieval", "--model", copy_dir(), "--lengths", "24,32", "--depths", "3",
                                      "--mask-top", "2", "--db", dir + "/cli.db"});
  ASSERT_EQ(cli.exit_code, 0) << cli.err;
  auto g = ms::Database::open(dir + "/gui.db");
  auto c = ms::Database::open(dir + "/cli.db");
  ASSERT_TRUE(g.ok() && c.ok());
  ms::HeadScores s = expect_same(**g, **c, "retrieval", {"retrieval_score"});
  // The copy head 1.0 scores 15/16 by design (docs/retrieval.md); every other head is 0.
  ASSERT_EQ(s.values.size(), 8u);
  for (int l = 0; l < 2; ++l)
    for (int h = 0; h < 4; ++h) EXPECT_NEAR(s.at(l, h), l == 1 && h == 0 ? 0.9375 : 0.0, 1e-12) << l << "." << h;
  // The same item runs (2 lengths x 3 depths x 2 needles, unmasked and masked) and one masked run.
  EXPECT_EQ(runs(**g, "retrieval-item").size(), 24u);
  EXPECT_EQ(runs(**c, "retrieval-item").size(), 24u);
  auto gm = runs(**g, "retrieval-mask"), cm = runs(**c, "retrieval-mask");
  ASSERT_EQ(gm.size(), 1u);
  ASSERT_EQ(cm.size(), 1u);
  EXPECT_EQ(gm[0].run.spec.params_json, cm[0].run.spec.params_json);
  auto ga = (*g)->get_tensor(gm[0].run.id, "accuracy");
  auto ca = (*c)->get_tensor(cm[0].run.id, "accuracy");
  ASSERT_TRUE(ga.ok() && ca.ok());
  EXPECT_TRUE(ga->equal(*ca));
  EXPECT_EQ(ga->max().item<double>(), 0.0);  // the copy needs both masked heads
}

TEST(GuiAnalyses, RetrievalOnTheDefaultModelUsesItsNeedlesAndMatchesTheCli) {
  std::string model = ms::test::source_dir() + "/resources/models/default";
  std::string needles = ms::test::source_dir() + "/resources/needles/default-model.jsonl";
  std::string dir = ms::test::temp_dir("gui-retrieval-default");
  launch(model, dir + "/gui.db", "retrieval lengths=48,64 depths=2");  // needles: the window's default
  auto cli = ms::test::run_mechscope({"retrieval", "--model", model, "--needles", needles, "--lengths", "48,64",
                                      "--depths", "2", "--db", dir + "/cli.db"});
  ASSERT_EQ(cli.exit_code, 0) << cli.err;
  auto g = ms::Database::open(dir + "/gui.db");
  auto c = ms::Database::open(dir + "/cli.db");
  ASSERT_TRUE(g.ok() && c.ok());
  ms::HeadScores s = expect_same(**g, **c, "retrieval", {"retrieval_score"});
  // docs/zoo.md: the default model's retrieval heads are 2.0, 2.2 and 2.3.
  ASSERT_EQ(s.values.size(), 16u);
  for (int h : {0, 2, 3}) EXPECT_GT(s.at(2, h), 0.1) << "2." << h;
}

TEST(GuiAnalyses, HeadDetectorsOnRepeatedTokensMatchTheCliAndFindTheCopyModelsHeads) {
  std::string dir = ms::test::temp_dir("gui-heads");
  launch(copy_dir(), dir + "/gui.db", "heads seq_len=20 n=16 seed=3");
  auto cli = ms::test::run_mechscope({"heads", "--model", copy_dir(), "--seq-len", "20", "--n", "16", "--seed", "3",
                                      "--db", dir + "/cli.db"});
  ASSERT_EQ(cli.exit_code, 0) << cli.err;
  auto g = ms::Database::open(dir + "/gui.db");
  auto c = ms::Database::open(dir + "/cli.db");
  ASSERT_TRUE(g.ok() && c.ok());
  expect_same(**g, **c, "heads", {"previous_token_head", "duplicate_token_head", "induction_head"});
  auto gr = runs(**g, "heads");
  ASSERT_EQ(gr.size(), 1u);
  // By design (docs/zoo-constructed.md): 0.0 attends to the previous token, 1.0 is the induction head.
  auto prev = (*g)->get_head_scores(gr[0].run.id, "previous_token_head");
  auto ind = (*g)->get_head_scores(gr[0].run.id, "induction_head");
  ASSERT_TRUE(prev.ok() && ind.ok());
  EXPECT_GT(prev->at(0, 0), 0.9);
  for (int l = 0; l < 2; ++l)
    for (int h = 0; h < 4; ++h)
      if (l != 1 || h != 0) {
        EXPECT_LT(ind->at(l, h), ind->at(1, 0) - 0.3) << l << "." << h;
      }
}

TEST(GuiAnalyses, HeadDetectorsOnThePromptFindTheInductionHead) {
  // A prompt of the copy model's vocabulary repeated once: only 1.0 attends to the token after the
  // current token's earlier occurrence.
  std::string dir = ms::test::temp_dir("gui-heads-prompt");
  std::string png = ms::test::temp_dir("gui-analyses-shot") + "/p.png";
  auto r = ms::test::run_mechscope({"gui", "--model", copy_dir(), "--db", dir + "/gui.db", "--view", "analyses",
                                    "--screenshot", png, "--prompt", "0 5 9 13 17 21 25 29 5 9 13 17 21 25 29",
                                    "--launch", "heads input=prompt detect=induction,previous"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto g = ms::Database::open(dir + "/gui.db");
  ASSERT_TRUE(g.ok());
  auto gr = runs(**g, "heads");
  ASSERT_EQ(gr.size(), 1u);
  EXPECT_EQ(gr[0].run.status, ms::RunStatus::kDone);
  auto all = (*g)->get_head_scores(gr[0].run.id);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 2u);  // previous and induction only
  auto ind = (*g)->get_head_scores(gr[0].run.id, "induction_head");
  auto prev = (*g)->get_head_scores(gr[0].run.id, "previous_token_head");
  ASSERT_TRUE(ind.ok() && prev.ok());
  EXPECT_GT(prev->at(0, 0), 0.9);
  for (int l = 0; l < 2; ++l)
    for (int h = 0; h < 4; ++h)
      if (l != 1 || h != 0) {
        EXPECT_LT(ind->at(l, h), ind->at(1, 0) - 0.3) << l << "." << h;
      }
}

TEST(GuiAnalyses, CancellingTheTasksStopsAndMarksTheirRuns) {
  // What the window's cancel button sets: the task's cancel flag, read between cells / detectors.
  auto m = ms::Model::load(copy_dir());
  ASSERT_TRUE(m.ok()) << m.error().message;
  auto db = ms::Database::open(ms::test::temp_dir("gui-cancel") + "/c.db");
  ASSERT_TRUE(db.ok());
  std::atomic<bool> cancel{false};
  int64_t seen = 0;
  ms::RunControl control([&](int64_t done, int64_t total) {
    seen = done;
    EXPECT_EQ(total, 12);
    if (done == 5) cancel = true;
  });
  control.follow(&cancel);
  ms::RunSession session(**db, control, {"test"});
  auto r = ms::run_retrieval(session, **m, {{"lengths", {24, 32}}, {"depths", 3}});
  EXPECT_TRUE(r.cancelled);
  EXPECT_EQ(seen, 5);
  EXPECT_EQ(r.cancelled_run, r.run_id);
  auto ret = runs(**db, "retrieval");
  ASSERT_EQ(ret.size(), 1u);
  EXPECT_EQ(ret[0].run.status, ms::RunStatus::kCancelled);
  EXPECT_EQ(runs(**db, "retrieval-item").size(), 5u);  // finished cells are kept

  std::atomic<bool> stop{false};
  ms::RunControl hc([&](int64_t done, int64_t) { stop = done == 1; });
  hc.follow(&stop);
  ms::RunSession hs(**db, hc, {"test"});
  auto h = ms::run_heads(hs, **m, {}, {{"detect", "previous,induction"}, {"seq_len", 10}, {"n", 2}});
  EXPECT_TRUE(h.cancelled);
  EXPECT_EQ(h.scores.size(), 1u);
  auto hr = runs(**db, "heads");
  ASSERT_EQ(hr.size(), 1u);
  EXPECT_EQ(hr[0].run.status, ms::RunStatus::kCancelled);
}

TEST(GuiAnalyses, BadLaunchParametersAreUsageErrors) {
  auto r = ms::test::run_mechscope({"gui", "--model", copy_dir(), "--view", "analyses", "--screenshot",
                                    ms::test::temp_dir("gui-bad") + "/x.png", "--launch", "retrieval depth=3"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("depth=3"), std::string::npos) << r.err;
  for (const char* bad : {"sae-train stepz=3", "sae-features top_k=many"}) {
    auto s = ms::test::run_mechscope({"gui", "--model", copy_dir(), "--view", "analyses", "--screenshot",
                                      ms::test::temp_dir("gui-bad") + "/x.png", "--launch", bad});
    EXPECT_EQ(s.exit_code, 2) << bad;
    EXPECT_NE(s.err.find(std::string(bad).substr(std::string(bad).find(' ') + 1)), std::string::npos) << s.err;
  }
}

}  // namespace
