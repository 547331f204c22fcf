// The Text window (tokens shaded by the pinned token's attention), the Attention window's all-heads
// thumbnail grid and its rotated key labels, under Xvfb on the constructed sink model: the shading
// and the thumbnails are checked against the patterns read through hook_pattern. And clicks through
// the Model window's hook tree, whose Activations window is checked against `forward --cache`.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <sstream>

#include "core/base/colormap.h"
#include "core/io/npy.h"
#include "core/model/model.h"
#include "hooks/hook_registry.h"
#include "report/png.h"
#include "tests/support/constructed_zoo.h"
#include "tests/support/test_support.h"
#include "views/token_text_widget.h"

namespace {

const char* kPrompt = "0 5 9 13 1 17 21 25 29 1 33 37 41 45";  // <bos>, <delim> at 4 and 9
constexpr int kN = 14, kLayers = 2, kHeads = 4;

const std::string& sink_dir() { return ms::test::constructed_zoo_dir("sink"); }

struct Shot {
  ms::RgbImage img;
  std::string out;
};

Shot shoot(std::vector<std::string> args, const std::string& prompt = kPrompt, const std::string& size = "1000x700") {
  std::string png = ms::test::temp_dir("gui-text-shot") + "/shot.png";
  std::vector<std::string> a = {"gui", "--screenshot", png, "--size", size, "--model", sink_dir(), "--prompt", prompt,
                                "--db", ms::test::temp_dir("gui-text-db") + "/m.db"};
  a.insert(a.end(), args.begin(), args.end());
  auto r = ms::test::run_mechscope(a);
  EXPECT_EQ(r.exit_code, 0) << r.err << r.out;
  Shot s;
  s.out = r.out;
  if (r.exit_code == 0) s.img = ms::decode_png(ms::test::read_file(png));
  if (const char* keep = std::getenv("MECHSCOPE_GUI_SHOTS"); keep && *keep) {  // to look at
    std::string name = "text";
    for (const std::string& x : args) name += "_" + x.substr(x.find_first_not_of('-'));
    if (name.size() > 120) name = name.substr(0, 60) + "_" + std::to_string(std::hash<std::string>()(name) % 100000);
    ms::test::write_file(std::string(keep) + "/" + name + ".png", ms::test::read_file(png));
  }
  return s;
}

ms::Rgb pixel(const ms::RgbImage& img, int x, int y) {
  const uint8_t* p = img.pixels.data() + (static_cast<size_t>(y) * img.width + x) * 3;
  return {p[0], p[1], p[2]};
}
int diff(ms::Rgb a, ms::Rgb b) { return std::max({std::abs(a.r - b.r), std::abs(a.g - b.g), std::abs(a.b - b.b)}); }

// Every head's pattern [layer][head][query * kN + key] through the hook point.
const std::vector<std::vector<std::vector<float>>>& patterns() {
  static std::vector<std::vector<std::vector<float>>> all = [] {
    std::vector<std::vector<std::vector<float>>> out(kLayers, std::vector<std::vector<float>>(kHeads));
    auto m = ms::Model::load(sink_dir());
    EXPECT_TRUE(m.ok()) << m.error().message;
    std::vector<int32_t> ids;
    std::istringstream in(kPrompt);
    for (int v; in >> v;) ids.push_back(v);
    ms::HookRegistry reg;
    for (int l = 0; l < kLayers; ++l)
      reg.add_forward("blocks." + std::to_string(l) + ".attn.hook_pattern", [&out, l](const at::Tensor& a, const ms::HookContext&) {
        for (int h = 0; h < kHeads; ++h) {
          at::Tensor p = a.select(0, 0).select(0, h).to(at::kFloat).contiguous();  // (query, key)
          out[l][h].assign(p.data_ptr<float>(), p.data_ptr<float>() + p.numel());
        }
        return at::Tensor();
      });
    ms::ForwardOptions o;
    o.hooks = &reg;
    (*m)->forward((*m)->tokens_tensor(ids), o);
    return out;
  }();
  return all;
}

struct Chip {
  int token = 0;
  float x = 0, y = 0, w = 0, h = 0, value = 0;
};

std::vector<Chip> chips(const std::string& out, int* focus) {
  std::vector<Chip> v;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    Chip c;
    if (std::sscanf(line.c_str(), "chip: token=%d x=%f y=%f w=%f h=%f value=%f", &c.token, &c.x, &c.y, &c.w, &c.h, &c.value) == 6)
      v.push_back(c);
    std::sscanf(line.c_str(), "text: focus=%d", focus);
  }
  return v;
}

// The Text window pinned on `pin` shows `want` (kN weights): the printed weights are the pattern's,
// each chip's fill is token_shade(weight / max) (with `--text-scale absolute`: token_shade(weight)),
// and the most attended token is the most shaded. Returns the hottest chip's fill.
ms::Rgb check_text(const std::vector<std::string>& args, int pin, std::vector<float> want) {
  const bool absolute = std::find(args.begin(), args.end(), "absolute") != args.end();
  for (float& v : want)
    if (std::isnan(v)) v = 0;  // masked: unshaded
  std::vector<std::string> a = {"--view", "text", "--pin-token", std::to_string(pin)};
  a.insert(a.end(), args.begin(), args.end());
  Shot s = shoot(a);
  EXPECT_EQ(s.img.width, 1000);
  if (s.img.width != 1000) return {};
  int focus = -2;
  std::vector<Chip> cs = chips(s.out, &focus);
  EXPECT_EQ(focus, pin);
  EXPECT_NE(s.out.find(absolute ? "scale=absolute" : "scale=row-max"), std::string::npos) << s.out;
  EXPECT_EQ(cs.size(), size_t(kN)) << s.out;
  if (cs.size() != size_t(kN)) return {};
  float mx = 0;
  for (float v : want) mx = std::max(mx, v);
  EXPECT_GT(mx, 0);
  int worst = 0, hottest = 0;
  for (const Chip& c : cs) {
    float w = want[c.token];
    EXPECT_NEAR(std::isnan(c.value) ? 0.f : c.value, w, 1e-4) << "token " << c.token;
    // The chip's left padding, clear of the text and of the focus outline.
    ms::Rgb got = pixel(s.img, static_cast<int>(std::floor(c.x)) + 2, static_cast<int>(c.y + c.h / 2));
    worst = std::max(worst, diff(got, ms::views::token_shade(absolute ? w : w / mx)));
    if (w > want[hottest]) hottest = c.token;
  }
  std::printf("max channel difference against token_shade(weight%s): %d\n", absolute ? "" : " / max", worst);
  EXPECT_LE(worst, 6);
  const Chip& hot = cs[hottest];
  const ms::Rgb hot_fill = pixel(s.img, int(hot.x) + 2, int(hot.y + hot.h / 2));
  if (absolute) return hot_fill;
  // The top-attended token's chip is redder than every chip with at most half its weight.
  const Chip& top = cs[hottest];
  int top_r = pixel(s.img, int(top.x) + 2, int(top.y + top.h / 2)).r;
  for (const Chip& c : cs)
    if (want[c.token] <= mx / 2) EXPECT_GT(top_r, pixel(s.img, int(c.x) + 2, int(c.y + c.h / 2)).r + 40) << c.token;
  return hot_fill;
}

std::vector<float> row(const std::vector<float>& p, int q) { return {p.begin() + q * kN, p.begin() + (q + 1) * kN}; }

TEST(GuiText, PinnedTokenShadesWhatItAttendsToForTheSelectedHead) {
  // Head 0.1 is a first-token sink; head 1.2 attends to the delimiters (positions 4 and 9).
  check_text({"--layer", "0", "--head", "1"}, 10, row(patterns()[0][1], 10));
  check_text({"--layer", "1", "--head", "2"}, 12, row(patterns()[1][2], 12));
}

TEST(GuiText, AveragesOverTheLayerAndOverAllHeads) {
  std::vector<float> layer(kN, 0), all(kN, 0);
  for (int l = 0; l < kLayers; ++l)
    for (int h = 0; h < kHeads; ++h)
      for (int k = 0; k <= 12; ++k) {
        float v = patterns()[l][h][12 * kN + k];
        if (l == 1) layer[k] += v / kHeads;
        all[k] += v / (kHeads * kLayers);
      }
  check_text({"--layer", "1", "--text-heads", "layer"}, 12, layer);
  check_text({"--text-heads", "all"}, 12, all);
}

// The absolute scale shades each chip by its weight against 1: a sharp head (1.2 on the delimiters)
// looks as on the row-max scale, the diffuse mean of every head looks pale.
TEST(GuiText, AbsoluteScaleShadesByTheWeightItself) {
  check_text({"--layer", "1", "--head", "2", "--text-scale", "absolute"}, 12, row(patterns()[1][2], 12));
  std::vector<float> all(kN, 0);
  for (int l = 0; l < kLayers; ++l)
    for (int h = 0; h < kHeads; ++h)
      for (int k = 0; k <= 12; ++k) all[k] += patterns()[l][h][12 * kN + k] / (kHeads * kLayers);
  const float mx = *std::max_element(all.begin(), all.end());
  std::printf("mean of every head, row 12: max weight %.3f\n", mx);
  ms::Rgb pale = check_text({"--text-heads", "all", "--text-scale", "absolute"}, 12, all);
  ms::Rgb full = check_text({"--text-heads", "all", "--text-scale", "row-max"}, 12, all);
  EXPECT_LT(mx, 0.9f);
  EXPECT_GT(full.r, pale.r + 10) << "the diffuse row's hottest chip is paler on the absolute scale";
}

// Pinning a token far down a long prompt (`--pin-token`) scrolls the text so its chip shows.
TEST(GuiText, PinningATokenFarDownScrollsItIntoView) {
  std::string ids;
  for (int i = 0; i < 250; ++i) ids += std::to_string(i == 0 ? 0 : 5 + i % 50) + " ";
  auto view = [](const std::string& out, float* y0, float* y1, float* scroll) {
    auto p = out.find("text: ");
    ASSERT_NE(p, std::string::npos) << out;
    int focus = 0;
    size_t n = 0;
    char scale[32];
    ASSERT_EQ(std::sscanf(out.c_str() + p, "text: focus=%d max=%*f chips=%zu scale=%31s view_y0=%f view_y1=%f scroll=%f", &focus,
                          &n, scale, y0, y1, scroll), 6) << out.substr(p, 200);
  };
  float y0 = 0, y1 = 0, scroll = -1;
  Shot top = shoot({"--view", "text"}, ids, "500x300");
  int focus = -2;
  std::vector<Chip> cs = chips(top.out, &focus);
  ASSERT_FALSE(cs.empty()) << top.out;
  for (const Chip& c : cs) EXPECT_NE(c.token, 245) << "token 245 shows without scrolling: make the prompt longer";
  view(top.out, &y0, &y1, &scroll);
  EXPECT_EQ(scroll, 0);
  Shot pinned = shoot({"--view", "text", "--pin-token", "245"}, ids, "500x300");
  cs = chips(pinned.out, &focus);
  EXPECT_EQ(focus, 245);
  view(pinned.out, &y0, &y1, &scroll);
  std::printf("text view y %.1f..%.1f, scrolled %.1f\n", y0, y1, scroll);
  EXPECT_GT(scroll, 0);
  const Chip* c245 = nullptr;
  for (const Chip& c : cs)
    if (c.token == 245) c245 = &c;
  ASSERT_TRUE(c245) << pinned.out;
  std::printf("pinned chip 245 at y %.1f..%.1f\n", c245->y, c245->y + c245->h);
  EXPECT_GE(c245->y, y0);
  EXPECT_LE(c245->y + c245->h, y1);
  // Its fill is the pinned token's own weight on itself (shaded), outlined as the focus.
  EXPECT_FALSE(std::isnan(c245->value));
}

TEST(GuiText, ReceivedShadesTheQueriesThatAttendToThePinnedToken) {
  std::vector<float> col(kN, NAN);
  for (int q = 4; q < kN; ++q) col[q] = patterns()[1][2][q * kN + 4];
  check_text({"--layer", "1", "--head", "2", "--text-received"}, 4, col);
}

TEST(GuiText, AllHeadsGridShowsEveryHeadOfTheLayerAsThePattern) {
  Shot s = shoot({"--view", "attention", "--layer", "1", "--head", "0", "--attention-grid", "--scale", "linear"});
  ASSERT_EQ(s.img.width, 1000);
  int n = 0, cols = 0;
  float x = 0, y = 0, size = 0, px = 0, py = 0;
  auto p = s.out.find("thumbs: ");
  ASSERT_NE(p, std::string::npos) << s.out;
  ASSERT_EQ(std::sscanf(s.out.c_str() + p, "thumbs: n=%d cols=%d x=%f y=%f size=%f pitch_x=%f pitch_y=%f", &n, &cols, &x, &y,
                        &size, &px, &py), 7);
  EXPECT_EQ(n, kHeads);
  ASSERT_GT(size, 3 * kN);  // every cell at least 3 px
  int worst = 0;
  for (int h = 0; h < n; ++h) {
    const std::vector<float>& pat = patterns()[1][h];
    float mx = *std::max_element(pat.begin(), pat.end());
    float tx = x + (h % cols) * px, ty = y + (h / cols) * py, cell = size / kN;
    for (int q = 0; q < kN; ++q)
      for (int k = 0; k <= q; ++k) {
        ms::Rgb got = pixel(s.img, int(tx + (k + 0.5f) * cell), int(ty + (q + 0.5f) * cell));
        worst = std::max(worst, diff(got, ms::colormap_at(ms::Colormap::kViridis, pat[q * kN + k] / mx)));
      }
  }
  std::printf("thumbnails: max channel difference against viridis(pattern / max): %d\n", worst);
  EXPECT_LE(worst, 6);

  // Clicking head 2's thumbnail (--click: hover, press, release) selects it and shows its heatmap.
  float cx = x + (2 % cols) * px + size / 2, cy = y + (2 / cols) * py + size / 2;
  Shot c = shoot({"--view", "attention", "--layer", "1", "--head", "0", "--attention-grid", "--click",
                  std::to_string(cx) + "," + std::to_string(cy)});
  EXPECT_NE(c.out.find("selected: layer=1 head=2"), std::string::npos) << c.out;
  EXPECT_EQ(c.out.find("thumbs: "), std::string::npos) << c.out;  // back to one head's heatmap
  EXPECT_NE(c.out.find("heatmap: "), std::string::npos) << c.out;
}

TEST(GuiText, ClickingATokenPinsIt) {
  Shot s = shoot({"--view", "text", "--layer", "0", "--head", "1"});
  int focus = -2;
  std::vector<Chip> cs = chips(s.out, &focus);
  EXPECT_EQ(focus, -1);  // nothing pinned, nothing hovered: no shading
  ASSERT_EQ(cs.size(), size_t(kN));
  const Chip& c7 = cs[7];
  Shot c = shoot({"--view", "text", "--layer", "0", "--head", "1", "--click",
                  std::to_string(c7.x + c7.w / 2) + "," + std::to_string(c7.y + c7.h / 2)});
  EXPECT_NE(c.out.find("pinned_token=7"), std::string::npos) << c.out;
  cs = chips(c.out, &focus);
  EXPECT_EQ(focus, 7);
  ASSERT_EQ(cs.size(), size_t(kN));
  for (int k = 0; k < kN; ++k) EXPECT_NEAR(std::isnan(cs[k].value) ? 0.f : cs[k].value, k <= 7 ? patterns()[0][1][7 * kN + k] : 0.f, 1e-4);
}

// Light (label-grey) pixels in [x0, x1) x [y0, y1), with their bounding box.
int light_pixels(const ms::RgbImage& img, int x0, int x1, int y0, int y1, int* bw, int* bh) {
  int n = 0, minx = x1, maxx = x0 - 1, miny = y1, maxy = y0 - 1;
  for (int y = std::max(0, y0); y < std::min(img.height, y1); ++y)
    for (int x = std::max(0, x0); x < std::min(img.width, x1); ++x) {
      ms::Rgb c = pixel(img, x, y);
      if (c.r > 150 && c.g > 150 && c.b > 150) {
        ++n;
        minx = std::min(minx, x), maxx = std::max(maxx, x), miny = std::min(miny, y), maxy = std::max(maxy, y);
      }
    }
  *bw = maxx - minx + 1, *bh = maxy - miny + 1;
  return n;
}

struct Heat {
  float x = 0, y = 0, cw = 0, ch = 0, band = 0;
  int rows = 0, cols = 0, key_labels = 0;
};
Heat heat(const Shot& s) {
  Heat h;
  auto p = s.out.find("heatmap: ");
  EXPECT_NE(p, std::string::npos) << s.out;
  if (p != std::string::npos)
    std::sscanf(s.out.c_str() + p, "heatmap: x=%f y=%f cell_w=%f cell_h=%f rows=%d cols=%d key_labels=%d key_band=%f", &h.x, &h.y,
                &h.cw, &h.ch, &h.rows, &h.cols, &h.key_labels, &h.band);
  return h;
}

TEST(GuiText, KeyLabelsAreRotatedAndThinnedWhenCellsAreSmall) {
  Shot s = shoot({"--view", "attention", "--layer", "0", "--head", "1"});
  Heat h = heat(s);
  ASSERT_EQ(h.cols, kN);
  EXPECT_EQ(h.key_labels, kN);
  ASSERT_GT(h.band, 30);
  int upright = 0;
  for (int c = 0; c < kN; ++c) {  // each column has its label, standing upright (short ones aside)
    int bw = 0, bh = 0;
    int n = light_pixels(s.img, int(h.x + c * h.cw), int(h.x + (c + 1) * h.cw), int(h.y - h.band), int(h.y) - 1, &bw, &bh);
    EXPECT_GT(n, 10) << "column " << c;
    EXPECT_LT(bw, h.cw) << "column " << c;
    upright += bh > bw + 4;
  }
  EXPECT_GE(upright, kN * 2 / 3);
  // 160 tokens in about 600 px: cells of a few pixels get every k-th label ("index token"), not none.
  std::string ids;
  for (int i = 0; i < 160; ++i) ids += std::to_string(i == 0 ? 0 : 5 + i % 50) + " ";
  Shot l = shoot({"--view", "attention", "--layer", "0", "--head", "1"}, ids);
  Heat hl = heat(l);
  ASSERT_EQ(hl.cols, 160);
  ASSERT_LT(hl.cw, 8);
  EXPECT_GE(hl.key_labels, 10);
  EXPECT_LT(hl.key_labels, 160);
  int bw = 0, bh = 0;
  EXPECT_GT(light_pixels(l.img, int(hl.x), int(hl.x + 160 * hl.cw), int(hl.y - hl.band), int(hl.y) - 1, &bw, &bh), 200);
  EXPECT_GT(bw, 160 * hl.cw * 0.8);  // labels across the whole axis
}

// The Model window's hook tree, as drawn last frame (its layout report).
struct HookRow {
  std::string kind, name;
  float x = 0, y = 0, w = 0, h = 0;
  int open = 0, visible = 0;
};
std::vector<HookRow> hook_rows(const std::string& out) {
  std::vector<HookRow> v;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    HookRow r;
    char kind[32], name[256];
    if (std::sscanf(line.c_str(), "hook_row: kind=%31s name=%255s x=%f y=%f w=%f h=%f open=%d visible=%d", kind, name, &r.x, &r.y,
                    &r.w, &r.h, &r.open, &r.visible) == 8) {
      r.kind = kind, r.name = name;
      v.push_back(r);
    }
  }
  return v;
}
const HookRow* find_row(const std::vector<HookRow>& rows, const std::string& name) {
  for (const HookRow& r : rows)
    if (r.name == name && r.visible) return &r;
  return nullptr;
}
std::string click_on(const HookRow& r) { return std::to_string(r.x + std::min(30.f, r.w / 2)) + "," + std::to_string(r.y + r.h / 2); }

// Clicking a hook point in the Model window's tree (the whole workbench, clicked as a user would:
// the "Hook points" header, the block, then the point) caches just that point and opens the
// Activations window on it, whose values equal `mechscope forward --cache` of the same point.
TEST(GuiText, ClickingAHookPointShowsItsActivationAsForwardCacheDoes) {
  std::vector<std::string> clicks;
  auto workbench = [&clicks] {
    std::vector<std::string> a;
    for (const std::string& c : clicks) a.insert(a.end(), {"--click", c});
    return shoot(a, kPrompt, "1600x1200");
  };
  Shot s = workbench();
  EXPECT_EQ(s.out.find("activations: "), std::string::npos) << "no hook point chosen yet";
  std::vector<HookRow> rows = hook_rows(s.out);
  const HookRow* header = find_row(rows, "hook_points");
  ASSERT_TRUE(header) << s.out;
  EXPECT_EQ(header->open, 0);
  clicks.push_back(click_on(*header));
  s = workbench();
  rows = hook_rows(s.out);
  const HookRow* block = find_row(rows, "blocks.1");
  ASSERT_TRUE(block) << s.out;
  EXPECT_EQ(block->kind, "block");
  EXPECT_EQ(block->open, 0);
  clicks.push_back(click_on(*block));
  s = workbench();
  rows = hook_rows(s.out);
  // A point of block 1 on screen: its attention output per head (hook_z) when it shows.
  const HookRow* point = find_row(rows, "blocks.1.attn.hook_z");
  for (const HookRow& r : rows)
    if (!point && r.kind == "point" && r.visible && r.name.rfind("blocks.1.", 0) == 0) point = &r;
  ASSERT_TRUE(point) << s.out;
  const std::string name = point->name;
  clicks.push_back(click_on(*point));
  s = workbench();

  // The Activations window shows that point: its shape and every value.
  auto p = s.out.find("activations: hook=" + name + " ");
  ASSERT_NE(p, std::string::npos) << s.out;
  char shape[64];
  int rows_n = 0, cols_n = 0, col = -1;
  ASSERT_EQ(std::sscanf(s.out.c_str() + p + 19 + name.size(), "shape=%63s rows=%d cols=%d col=%d", shape, &rows_n, &cols_n, &col), 4)
      << s.out.substr(p, 200);
  std::vector<std::vector<double>> shown;
  std::istringstream in(s.out);
  for (std::string line; std::getline(in, line);)
    if (line.rfind("act_row: ", 0) == 0) {
      std::istringstream l(line.substr(9));
      int r = 0;
      l >> r;
      EXPECT_EQ(r, static_cast<int>(shown.size()));
      shown.emplace_back();
      for (double v; l >> v;) shown.back().push_back(v);
    }
  ASSERT_EQ(shown.size(), size_t(kN));
  EXPECT_EQ(rows_n, kN);
  ASSERT_EQ(shown[0].size(), size_t(cols_n));

  // `mechscope forward --cache NAME --dump-dir DIR` on the same tokens.
  std::string tokens = kPrompt;
  std::replace(tokens.begin(), tokens.end(), ' ', ',');
  const std::string dir = ms::test::temp_dir("gui-hook-click");
  auto r = ms::test::run_mechscope({"forward", "--model", sink_dir(), "--tokens", tokens, "--cache", name, "--dump-dir", dir});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  ms::Result<at::Tensor> t = ms::read_npy(dir + "/" + name + ".npy");
  ASSERT_TRUE(t.ok()) << t.error().message;
  std::string want_shape;
  for (int64_t d : t->sizes()) want_shape += (want_shape.empty() ? "" : ",") + std::to_string(d);
  EXPECT_EQ(shape, want_shape);
  at::Tensor flat = (*t)[0].to(at::kDouble).reshape({kN, -1}).contiguous();  // positions x the rest, as shown
  ASSERT_EQ(flat.size(1), cols_n);
  double worst_rel = 0, worst_abs = 0;
  for (int q = 0; q < kN; ++q)
    for (int c = 0; c < cols_n; ++c) {
      double want = flat[q][c].item<double>(), got = shown[q][c];
      worst_abs = std::max(worst_abs, std::fabs(got - want));
      worst_rel = std::max(worst_rel, std::fabs(got - want) / std::max(1.0, std::fabs(want)));
    }
  std::printf("%s shown after the click vs forward --cache: max |difference| %.3g, relative %.3g (tolerance 1e-5)\n",
              name.c_str(), worst_abs, worst_rel);
  EXPECT_LE(worst_rel, 1e-5);
}

// The whole workbench on a 1600x1200 screen, as it first opens: the windows open at start tile the
// area between the menu bar and the status bar without overlapping.
TEST(GuiText, DefaultLayoutTilesTheOpenWindowsWithoutOverlap) {
  Shot s = shoot({}, kPrompt, "1600x1200");
  ASSERT_EQ(s.img.width, 1600);
  struct Win {
    std::string key;
    float x = 0, y = 0, w = 0, h = 0;
  };
  std::vector<Win> wins;
  std::istringstream in(s.out);
  for (std::string line; std::getline(in, line);) {
    Win w;
    char key[64];
    if (std::sscanf(line.c_str(), "window: key=%63s x=%f y=%f w=%f h=%f", key, &w.x, &w.y, &w.w, &w.h) == 5) {
      w.key = key;
      wins.push_back(w);
    }
  }
  std::vector<std::string> keys;
  for (const Win& w : wins) keys.push_back(w.key);
  EXPECT_EQ(keys, (std::vector<std::string>{"model", "prompt", "attention", "text", "heads", "runs", "analyses"})) << s.out;
  float area = 0;
  for (const Win& a : wins) {
    std::printf("%-10s x %6.1f..%6.1f  y %6.1f..%6.1f\n", a.key.c_str(), a.x, a.x + a.w, a.y, a.y + a.h);
    EXPECT_GE(a.x, 0) << a.key;
    EXPECT_GE(a.y, 15) << a.key << " under the menu bar";
    EXPECT_LE(a.x + a.w, 1600.5f) << a.key;
    EXPECT_LE(a.y + a.h, 1200 - 15) << a.key << " above the status bar";
    EXPECT_GE(a.w, 350) << a.key;
    EXPECT_GE(a.h, 250) << a.key;
    area += a.w * a.h;
    for (const Win& b : wins) {
      if (&a == &b) continue;
      float ox = std::min(a.x + a.w, b.x + b.w) - std::max(a.x, b.x), oy = std::min(a.y + a.h, b.y + b.h) - std::max(a.y, b.y);
      EXPECT_FALSE(ox > 1 && oy > 1) << a.key << " overlaps " << b.key << " by " << ox << " x " << oy;
    }
  }
  EXPECT_GT(area, 0.9f * 1600 * 1100) << "the windows fill the screen";
}

}  // namespace
