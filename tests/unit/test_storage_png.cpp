// Colormaps (core/base/colormap.h) and PNG encoding (report/png.h): known colours at the ends and
// the middle, the value scales, heatmap rasterisation, and PNGs that decode back to the pixels.

#include <gtest/gtest.h>

#include <cmath>

#include "core/base/colormap.h"
#include "report/png.h"
#include "report/report.h"

namespace ms {
namespace {

void expect_rgb(Rgb c, int r, int g, int b) {
  EXPECT_EQ(c.r, r);
  EXPECT_EQ(c.g, g);
  EXPECT_EQ(c.b, b);
}

TEST(Colormap, KnownColours) {
  expect_rgb(colormap_at(Colormap::kViridis, 0.0), 0x44, 0x01, 0x54);
  expect_rgb(colormap_at(Colormap::kViridis, 0.5), 0x21, 0x91, 0x8c);
  expect_rgb(colormap_at(Colormap::kViridis, 1.0), 0xfd, 0xe7, 0x25);
  expect_rgb(colormap_at(Colormap::kViridis, -3.0), 0x44, 0x01, 0x54);  // clamped
  expect_rgb(colormap_at(Colormap::kViridis, NAN), 0x9a, 0x9a, 0x9a);
  expect_rgb(colormap_at(Colormap::kDiverging, 0.5), 0xf7, 0xf7, 0xf7);  // zero is near white
  Rgb lo = colormap_at(Colormap::kDiverging, 0.0), hi = colormap_at(Colormap::kDiverging, 1.0);
  EXPECT_GT(lo.b, lo.r);  // negative: blue
  EXPECT_GT(hi.r, hi.b);  // positive: red
  // Monotone lightness along viridis (the property that makes it readable in grey).
  double last = -1;
  for (int i = 0; i <= 20; ++i) {
    Rgb c = colormap_at(Colormap::kViridis, i / 20.0);
    double y = 0.2126 * c.r + 0.7152 * c.g + 0.0722 * c.b;
    EXPECT_GT(y, last) << i;
    last = y;
  }
}

TEST(Colormap, Scales) {
  ColorScale v = color_scale_for({0.2, 0.5, NAN, 0.9});
  EXPECT_EQ(v.map, Colormap::kViridis);
  EXPECT_DOUBLE_EQ(v.lo, 0.2);
  EXPECT_DOUBLE_EQ(v.hi, 0.9);
  EXPECT_DOUBLE_EQ(v.normalize(0.9), 1.0);
  ColorScale d = color_scale_for({-0.5, 2.0});
  EXPECT_EQ(d.map, Colormap::kDiverging);
  EXPECT_DOUBLE_EQ(d.lo, -2.0);
  EXPECT_DOUBLE_EQ(d.hi, 2.0);
  EXPECT_DOUBLE_EQ(d.normalize(0.0), 0.5);
  EXPECT_EQ(color_scale_for({0.1, 0.3}, true).map, Colormap::kDiverging);
  ColorScale flat = color_scale_for({1.0, 1.0});
  EXPECT_DOUBLE_EQ(flat.normalize(1.0), 0.0);  // a constant map is drawn, not divided by zero
}

TEST(Colormap, HeatmapImage) {
  ColorScale s = color_scale_for({0.0, 1.0});
  RgbImage img = heatmap_image({0.0, 1.0, NAN, 0.5, 0.25, 0.75}, 2, 3, s, 4, 5, true);
  ASSERT_EQ(img.width, 12);
  ASSERT_EQ(img.height, 10);
  auto at = [&](int x, int y) {
    const uint8_t* p = &img.pixels[(static_cast<size_t>(y) * img.width + x) * 3];
    return Rgb{p[0], p[1], p[2]};
  };
  expect_rgb(at(0, 0), 0x44, 0x01, 0x54);     // row 0, col 0: min
  expect_rgb(at(4, 0), 0xfd, 0xe7, 0x25);     // row 0, col 1: max
  expect_rgb(at(8, 0), 0x9a, 0x9a, 0x9a);     // NaN
  expect_rgb(at(3, 0), 255, 255, 255);        // the gap between cells
  expect_rgb(at(0, 5), 0x21, 0x91, 0x8c);     // row 1, col 0: 0.5
  RgbImage bar = colorbar_image(s, 3, 11);
  expect_rgb(Rgb{bar.pixels[0], bar.pixels[1], bar.pixels[2]}, 0xfd, 0xe7, 0x25);  // top: hi
}

TEST(Png, EncodesAndDecodes) {
  RgbImage img = heatmap_image({0.0, 0.3, 0.6, 1.0}, 2, 2, color_scale_for({0.0, 1.0}), 7, 3);
  std::string png = encode_png(img);
  ASSERT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  RgbImage back = decode_png(png);
  EXPECT_EQ(back.width, img.width);
  EXPECT_EQ(back.height, img.height);
  EXPECT_EQ(back.pixels, img.pixels);
  EXPECT_THROW(decode_png("not a png"), std::runtime_error);
  EXPECT_EQ(png_data_uri(img).rfind("data:image/png;base64,iVBORw0KGgo", 0), 0u);
  EXPECT_THROW(encode_png(RgbImage{}), std::runtime_error);
}

TEST(Png, Base64) {
  EXPECT_EQ(base64(""), "");
  EXPECT_EQ(base64("f"), "Zg==");
  EXPECT_EQ(base64("fo"), "Zm8=");
  EXPECT_EQ(base64("foo"), "Zm9v");
  EXPECT_EQ(base64("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64(std::string("\xff\x00\x80", 3)), "/wCA");
}

TEST(Report, HtmlEscape) {
  EXPECT_EQ(html_escape("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;");
  EXPECT_EQ(html_escape("plain ü"), "plain ü");
}

}  // namespace
}  // namespace ms
