// The workbench under Xvfb: `mechscope gui --view NAME --screenshot` on the constructed sink model,
// checked pixel by pixel against the model's attention read through another path (hook_pattern).
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "core/base/colormap.h"
#include "core/features/sae.h"
#include "core/features/sae_save.h"
#include "core/model/model.h"
#include "hooks/hook_registry.h"
#include "storage/database.h"
#include "report/png.h"
#include "tests/support/constructed_zoo.h"
#include "tests/support/test_support.h"

namespace {

const char* kPrompt = "0 5 9 13 1 17 21 25 29 1 33 37 41 45";  // <bos>, <delim> at 4 and 9

struct Shot {
  ms::RgbImage img;
  float x = 0, y = 0, cw = 0, ch = 0;
  int rows = 0, cols = 0;
  std::string out;
};

const std::string& sink_dir() { return ms::test::constructed_zoo_dir("sink"); }

Shot shoot(std::vector<std::string> args) {
  std::string png = ms::test::temp_dir("gui-shot") + "/shot.png";
  std::vector<std::string> a = {"gui", "--screenshot", png, "--size", "1000x700"};
  a.insert(a.end(), args.begin(), args.end());
  if (std::find(args.begin(), args.end(), "--db") == args.end()) {  // never the user's database
    a.push_back("--db");
    a.push_back(ms::test::temp_dir("gui-shot-db") + "/m.db");
  }
  auto r = ms::test::run_mechscope(a);
  EXPECT_EQ(r.exit_code, 0) << r.err << r.out;
  Shot s;
  s.out = r.out;
  if (r.exit_code != 0) return s;
  s.img = ms::decode_png(ms::test::read_file(png));
  // MECHSCOPE_GUI_SHOTS=DIR keeps every screenshot (named after the view) to look at.
  if (const char* keep = std::getenv("MECHSCOPE_GUI_SHOTS"); keep && *keep) {
    std::string name = "shot";
    for (size_t i = 0; i + 1 < args.size(); ++i)
      if (args[i] == "--view") name = args[i + 1];
    for (size_t i = 0; i + 1 < args.size(); ++i)
      if (args[i] == "--head") name += "_L" + args[i - 1] + "H" + args[i + 1];  // "--layer L --head H"
    ms::test::write_file(std::string(keep) + "/" + name + ".png", ms::test::read_file(png));
  }
  auto p = r.out.find("heatmap: ");
  if (p != std::string::npos)
    std::sscanf(r.out.c_str() + p, "heatmap: x=%f y=%f cell_w=%f cell_h=%f rows=%d cols=%d", &s.x, &s.y, &s.cw, &s.ch,
                &s.rows, &s.cols);
  return s;
}

ms::Rgb pixel(const ms::RgbImage& img, int x, int y) {
  const uint8_t* p = img.pixels.data() + (static_cast<size_t>(y) * img.width + x) * 3;
  return {p[0], p[1], p[2]};
}
ms::Rgb cell(const Shot& s, int r, int c) {
  return pixel(s.img, static_cast<int>(s.x + (c + 0.5f) * s.cw), static_cast<int>(s.y + (r + 0.5f) * s.ch));
}
int max_channel_diff(ms::Rgb a, ms::Rgb b) {
  return std::max({std::abs(a.r - b.r), std::abs(a.g - b.g), std::abs(a.b - b.b)});
}
size_t distinct_colours(const ms::RgbImage& img) {
  std::set<uint32_t> s;
  for (size_t i = 0; i + 2 < img.pixels.size(); i += 3)
    s.insert(uint32_t(img.pixels[i]) << 16 | uint32_t(img.pixels[i + 1]) << 8 | img.pixels[i + 2]);
  return s.size();
}

// The pattern of one head through the hook point (the GUI reads the attention observer instead).
std::vector<float> hook_pattern(int layer, int head, int* n) {
  auto m = ms::Model::load(sink_dir());
  EXPECT_TRUE(m.ok()) << m.error().message;
  std::vector<int32_t> ids;
  std::istringstream in(kPrompt);
  for (int v; in >> v;) ids.push_back(v);
  ms::HookRegistry reg;
  at::Tensor pat;
  reg.add_forward("blocks." + std::to_string(layer) + ".attn.hook_pattern", [&](const at::Tensor& a, const ms::HookContext&) {
    pat = a.select(0, 0).select(0, head).to(at::kFloat).contiguous().clone();  // (query, key)
    return at::Tensor();
  });
  ms::ForwardOptions o;
  o.hooks = &reg;
  (*m)->forward((*m)->tokens_tensor(ids), o);
  *n = static_cast<int>(ids.size());
  return std::vector<float>(pat.data_ptr<float>(), pat.data_ptr<float>() + pat.numel());
}

TEST(GuiScreenshot, FirstTokenSinkHeadFirstColumnIsHottestAndColoursMatchThePattern) {
  Shot s = shoot({"--model", sink_dir(), "--view", "attention", "--layer", "0", "--head", "1", "--scale", "linear",
                  "--prompt", kPrompt});
  ASSERT_EQ(s.img.width, 1000);
  ASSERT_EQ(s.img.height, 700);
  EXPECT_GT(distinct_colours(s.img), 50u);
  ASSERT_EQ(s.rows, 14);
  ASSERT_EQ(s.cols, 14);
  ASSERT_GT(s.cw, 10);
  int n = 0;
  std::vector<float> p = hook_pattern(0, 1, &n);
  ASSERT_EQ(n, 14);
  float mx = *std::max_element(p.begin(), p.end());
  int worst = 0;
  for (int r = 1; r < n; ++r) {
    int lum0 = 0;
    for (int c = 0; c <= r; ++c) {
      ms::Rgb got = cell(s, r, c);
      ms::Rgb want = ms::colormap_at(ms::Colormap::kViridis, p[r * n + c] / mx);
      worst = std::max(worst, max_channel_diff(got, want));
      int lum = got.r * 3 + got.g * 6 + got.b;
      if (c == 0) lum0 = lum;
      else EXPECT_GT(lum0, lum) << "row " << r << " col " << c;
    }
    // Future keys are masked: drawn dark grey, not as attention 0.
    if (r + 1 < n) {
      EXPECT_LE(max_channel_diff(cell(s, r, r + 1), ms::Rgb{40, 40, 40}), 2);
    }
  }
  std::printf("max channel difference against colormap(hook_pattern / max): %d\n", worst);
  EXPECT_LE(worst, 6);
}

TEST(GuiScreenshot, SinkClippedScaleLiftsTheHiddenSinkOfHead1_2) {
  // Head 1.2 puts its attention on the <delim> keys (positions 4 and 9). With the sink-clipped
  // scale the range ends at the largest weight outside column 0, so the first column saturates and
  // the delimiter columns stand out.
  Shot s = shoot({"--model", sink_dir(), "--view", "attention", "--layer", "1", "--head", "2", "--scale", "sink-clipped",
                  "--prompt", kPrompt});
  ASSERT_EQ(s.rows, 14);
  int n = 0;
  std::vector<float> p = hook_pattern(1, 2, &n);
  float hi = 0;
  for (int r = 0; r < n; ++r)
    for (int c = 1; c <= r; ++c) hi = std::max(hi, p[r * n + c]);
  int worst = 0;
  for (int r = 0; r < n; ++r)
    for (int c = 0; c <= r; ++c) {
      ms::Rgb want = ms::colormap_at(ms::Colormap::kViridis, std::min(1.0f, p[r * n + c] / hi));
      worst = std::max(worst, max_channel_diff(cell(s, r, c), want));
    }
  EXPECT_LE(worst, 6);
  for (int r = 10; r < 14; ++r) {  // both delimiters visible: each about half the attention
    EXPECT_GT(cell(s, r, 9).g, cell(s, r, 5).g + 60) << "row " << r;
    EXPECT_GT(cell(s, r, 4).g, cell(s, r, 5).g + 60) << "row " << r;
  }
}

TEST(GuiScreenshot, EveryViewRendersSomething) {
  // A database with a run that holds head scores and a circuit, for Runs, Head grid and Circuit.
  std::string db_path = ms::test::temp_dir("gui-db") + "/m.db";
  int64_t run = 0;
  {
    auto db = ms::Database::open(db_path);
    ASSERT_TRUE(db.ok()) << db.error().message;
    ms::RunResults res;
    ms::HeadScores hs{"sink_mass", 2, 4, {0.1, 0.9, 0.1, 0.1, 0.9, 0.2, 0.05, 0.9}};
    res.scores.push_back(hs);
    ms::Circuit c;
    c.name = "test circuit";
    c.nodes = {{"embed", "embed", -1, -1, 1.0}, {"a0.1", "head", 0, 1, 0.8}, {"a1.0", "head", 1, 0, 0.6},
               {"logits", "logits", 2, -1, 1.0}};
    c.edges = {{0, 1, 0.9}, {1, 2, 0.5}, {2, 3, 0.7}, {0, 3, -0.2}};
    res.circuits.push_back(c);
    auto r = (*db)->store_run(ms::RunSpec("circuit"), res);
    ASSERT_TRUE(r.ok()) << r.error().message;
    run = *r;
  }
  for (std::string v : {"model", "prompt", "text", "heads", "lens", "runs", "circuit", "analyses"}) {
    Shot s = shoot({"--model", sink_dir(), "--db", db_path, "--run", std::to_string(run), "--view", v});
    ASSERT_EQ(s.img.width, 1000) << v;
    EXPECT_GT(distinct_colours(s.img), 30u) << v;
  }
}

// The Contributions window (a corrupted prompt and an ablated head: three rows per position and
// the head grid with its colour bar) and the Activations window (a hook point as a heatmap).
TEST(GuiScreenshot, ContributionsAndActivationsWindowsRender) {
  Shot c = shoot({"--model", sink_dir(), "--view", "contributions", "--corrupted", "0 7 11 13 1 17 21 25 29 1 33 37 41 45",
                  "--ablate", "1.0"});
  ASSERT_EQ(c.img.width, 1000);
  EXPECT_GT(distinct_colours(c.img), 30u);
  for (const char* hook : {"blocks.0.hook_resid_post", "blocks.1.attn.hook_z"}) {
    Shot a = shoot({"--model", sink_dir(), "--view", "activations", "--hook", hook});
    ASSERT_EQ(a.img.width, 1000) << hook;
    EXPECT_GT(distinct_colours(a.img), 30u) << hook;
  }
}

TEST(GuiScreenshot, BadModelAndViewAreReported) {
  auto r = ms::test::run_mechscope({"gui", "--model", sink_dir(), "--view", "nope", "--screenshot", "/tmp/x.png"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("attention"), std::string::npos) << r.err;
  std::string empty = ms::test::temp_dir("gui-empty");
  r = ms::test::run_mechscope({"gui", "--model", empty, "--view", "attention", "--screenshot", empty + "/x.png"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find(empty), std::string::npos) << r.err;
}

TEST(GuiScreenshot, WithoutADisplayTheGuiFailsCleanlyAndTheCliStillWorks) {
  std::string display = std::getenv("DISPLAY") ? std::getenv("DISPLAY") : "";
  ::unsetenv("DISPLAY");
  auto r = ms::test::run_mechscope({"gui", "--model", sink_dir(), "--view", "attention", "--screenshot", "/tmp/never.png"});
  auto info = ms::test::run_mechscope({"info", "--model", sink_dir()});
  auto usage = ms::test::run_mechscope({"gui", "--model", sink_dir(), "--view", "nope", "--screenshot", "/tmp/never.png"});
  if (!display.empty()) ::setenv("DISPLAY", display.c_str(), 1);
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("DISPLAY"), std::string::npos) << r.err;
  EXPECT_EQ(usage.exit_code, 2) << usage.err;  // usage errors do not need a display
  EXPECT_EQ(info.exit_code, 0) << info.err;
}

// A model with a real tokenizer: the bundled default model when this checkout has it, else a random
// GPT-2 with the reference GPT-2 tokenizer (../shared/reference), else "" (skip).
std::string tokenizer_model() {
  std::string dir = ms::test::source_dir() + "/resources/models/default";
  if (std::ifstream(dir + "/config.json")) return dir;
  std::string ref = ms::test::reference_dir();
  if (ref.empty() || !std::ifstream(ref + "/gpt2-tokenizer/encoder.json")) return "";
  dir = ms::test::temp_dir("gui-tok") + "/gpt2";
  auto r = ms::test::run_mechscope({"zoo", "random", "--arch", "gpt2", "--d-vocab", "50257", "--init-std", "0.2", "--out", dir});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ms::test::write_file(dir + "/vocab.json", ms::test::read_file(ref + "/gpt2-tokenizer/encoder.json"));
  ms::test::write_file(dir + "/merges.txt", ms::test::read_file(ref + "/gpt2-tokenizer/vocab.bpe"));
  return dir;
}

TEST(GuiScreenshot, TokenizerModelPromptAndAttention) {
  // Real text through a tokenizer: the prompt window renders without error, and every visible
  // attention cell is a viridis colour.
  std::string dir = tokenizer_model();
  if (dir.empty()) GTEST_SKIP() << "no default model and no reference GPT-2 tokenizer";
  Shot p = shoot({"--model", dir, "--view", "prompt", "--prompt", "The cat sat on the mat because"});
  ASSERT_EQ(p.img.width, 1000);
  EXPECT_GT(distinct_colours(p.img), 30u);
  EXPECT_EQ(p.out.find("prompt error"), std::string::npos) << p.out;
  Shot a = shoot({"--model", dir, "--view", "attention", "--layer", "0", "--head", "0", "--prompt",
                  "The cat sat on the mat because"});
  ASSERT_GT(a.rows, 2);
  EXPECT_EQ(a.rows, a.cols);
  if (dir.find("/gpt2") != std::string::npos) {
    EXPECT_EQ(a.rows, 7);  // GPT-2 BPE: one token per word
  }
  for (int r = 0; r < a.rows; ++r)
    for (int c = 0; c <= r; ++c) {
      ms::Rgb got = cell(a, r, c);
      int best = 255;  // distance to the nearest colour of the map
      for (int i = 0; i <= 1000; ++i) best = std::min(best, max_channel_diff(got, ms::colormap_at(ms::Colormap::kViridis, i / 1000.0)));
      EXPECT_LE(best, 3) << "cell " << r << "," << c;
    }
}

TEST(GuiScreenshot, LaunchedSinksAnalysisIsStoredAsTheCliStoresIt) {
  // The Analyses window's task (launched with --launch) against `mechscope sinks` on the same ids.
  std::string dir = ms::test::temp_dir("gui-launch");
  Shot s = shoot({"--model", sink_dir(), "--db", dir + "/gui.db", "--view", "runs", "--launch", "sinks", "--prompt", kPrompt});
  ASSERT_EQ(s.img.width, 1000);
  std::string ids = kPrompt;
  for (char& c : ids)
    if (c == ' ') c = ',';
  auto cli = ms::test::run_mechscope({"sinks", "--model", sink_dir(), "--tokens", ids, "--db", dir + "/cli.db"});
  ASSERT_EQ(cli.exit_code, 0) << cli.err;
  auto gui_db = ms::Database::open(dir + "/gui.db");
  auto cli_db = ms::Database::open(dir + "/cli.db");
  ASSERT_TRUE(gui_db.ok() && cli_db.ok());
  auto g = (*gui_db)->list_runs();
  auto c = (*cli_db)->list_runs();
  ASSERT_TRUE(g.ok() && c.ok());
  ASSERT_EQ(g->size(), 1u);
  ASSERT_EQ(c->size(), 1u);
  EXPECT_EQ((*g)[0].run.spec.kind, "sinks");
  EXPECT_EQ((*g)[0].run.status, ms::RunStatus::kDone);
  EXPECT_EQ((*g)[0].n_inputs, 1);
  for (std::string metric : {"sink_rate", "alpha0", "sink_mass", "hidden_sinks"}) {
    auto a = (*gui_db)->get_head_scores((*g)[0].run.id, metric);
    auto b = (*cli_db)->get_head_scores((*c)[0].run.id, metric);
    ASSERT_TRUE(a.ok() && b.ok()) << metric;
    ASSERT_EQ(a->values.size(), b->values.size());
    for (size_t i = 0; i < a->values.size(); ++i) EXPECT_NEAR(a->values[i], b->values[i], 1e-9) << metric << " " << i;
  }
  // By construction heads 0.1, 1.0 and 1.3 are first-token sinks: sink_rate 1 there, 0 elsewhere.
  auto rate = (*gui_db)->get_head_scores((*g)[0].run.id, "sink_rate");
  for (int l = 0; l < 2; ++l)
    for (int h = 0; h < 4; ++h)
      EXPECT_EQ(rate->at(l, h), (l == 0 && h == 1) || (l == 1 && (h == 0 || h == 3)) ? 1.0 : 0.0) << l << "." << h;
}

}  // namespace

// The Features window with an SAE for the default model (written here, random weights): it loads,
// the window draws its token/feature table; an SAE whose width does not fit the model is refused
// with the loader's message (exit 3).
TEST(GuiScreenshot, FeaturesWindowLoadsAnSaeAndRefusesOneThatDoesNotFit) {
  const std::string model = ms::test::source_dir() + "/resources/models/default";
  ms::Sae sae;
  sae.cfg.arch = ms::SaeArch::kStandard;
  sae.cfg.d_in = sae.cfg.d_out = 128;
  sae.cfg.d_sae = 32;
  sae.cfg.hook_name = "blocks.1.hook_resid_post";
  at::manual_seed(2);
  sae.w.W_enc = at::randn({128, 32}) * 0.3;
  sae.w.b_enc = at::zeros({32});
  sae.w.W_dec = at::randn({32, 128}) * 0.3;
  sae.w.b_dec = at::zeros({128});
  const std::string dir = ms::test::temp_dir("gui-sae") + "/sae";
  ASSERT_TRUE(ms::save_sae(sae, dir).ok());
  Shot s = shoot({"--model", model, "--view", "features", "--sae", dir});
  ASSERT_GT(s.img.width, 0);
  EXPECT_GT(distinct_colours(s.img), 20u);
  auto bad = ms::test::run_mechscope({"gui", "--model", model, "--view", "features", "--sae",
                                      ms::test::fixtures_dir() + "/sae/standard", "--screenshot",
                                      ms::test::temp_dir("gui-sae-bad") + "/x.png", "--db",
                                      ms::test::temp_dir("gui-sae-bad-db") + "/m.db"});
  EXPECT_EQ(bad.exit_code, 3) << bad.out << bad.err;
  EXPECT_NE(bad.err.find("could not be loaded"), std::string::npos) << bad.err;
}
