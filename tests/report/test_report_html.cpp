// The HTML report renders: written by the real binary from a database of synthetic runs, opened
// in headless Chromium (Debian `chromium`) without network, screenshotted, and checked for the
// heatmap images (viridis pixels) and for prompts shown as escaped text, never as markup.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <thread>

#include "report/png.h"
#include "tests/support/test_support.h"
#include "tests/unit/test_storage_fixtures.h"

namespace fs = std::filesystem;

namespace ms {
namespace {

std::string find_on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream ss(path ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    fs::path p = fs::path(dir) / name;
    if (::access(p.c_str(), X_OK) == 0) return p.string();
  }
  return "";
}

// Runs chromium headless to screenshot url into png; returns its exit code (-1: timed out).
int screenshot(const std::string& chromium, const std::string& url, const std::string& png,
               const std::string& profile, const std::string& log) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::setpgid(0, 0);
    std::vector<std::string> args = {chromium, "--headless", "--no-sandbox", "--disable-gpu",
                                     "--hide-scrollbars", "--no-first-run", "--disable-extensions",
                                     "--user-data-dir=" + profile, "--screenshot=" + png,
                                     "--window-size=1200,1600", url};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  for (int waited = 0; waited < 1200; ++waited) {  // up to 120 s
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ::kill(-pid, SIGKILL);
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  return -1;
}

TEST(ReportHtml, RendersInHeadlessChromium) {
  std::string dir = test::temp_dir("report-html");
  std::string db_path = dir + "/runs.db";
  std::string xss = "<script>alert(1)</script>";
  int64_t run = 0, hostile = 0;
  {
    auto db = Database::open(db_path);
    ASSERT_TRUE(db.ok()) << db.error().message;
    int64_t model = (*db)->register_model(test::demo_model("sha256:feed", 24, 16)).value();
    run = (*db)->store_run(test::demo_spec(model), test::demo_results(24, 16, 0)).value();
    RunResults r = test::demo_results(24, 16, 1, xss);
    r.inputs[0].tokens[1] = "<img src=x onerror=alert(2)>";
    RunSpec spec = test::demo_spec(model, "heads");
    spec.params_json = "{\"note\":\"" + std::string("</code><script>alert(3)</script>") + "\"}";
    hostile = (*db)->store_run(spec, r).value();
  }
  std::string html = dir + "/report.html";
  auto res = test::run_mechscope({"report", "--db", db_path, "--run", std::to_string(run) + "," + std::to_string(hostile),
                                  "--format", "html", "--out", html});
  ASSERT_EQ(res.exit_code, 0) << res.err;
  std::string page = test::read_file(html);

  // Escaping: the hostile strings appear as text, never as markup.
  EXPECT_NE(page.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  // (a token label: its spaces are drawn visible, token_display)
  EXPECT_NE(page.find("&lt;img\u00b7src=x\u00b7onerror=alert(2)&gt;"), std::string::npos);
  EXPECT_NE(page.find("&lt;/code&gt;&lt;script&gt;alert(3)&lt;/script&gt;"), std::string::npos);
  EXPECT_EQ(page.find("<script"), std::string::npos);
  EXPECT_EQ(page.find("<img"), std::string::npos);
  // Self-contained: nothing fetched from anywhere.
  EXPECT_EQ(page.find("http:"), std::string::npos);
  EXPECT_EQ(page.find("https:"), std::string::npos);
  EXPECT_EQ(page.find("src=\""), std::string::npos);
  EXPECT_NE(page.find("href=\"data:image/png;base64,"), std::string::npos);

  std::string chromium = find_on_path("chromium");
  if (chromium.empty()) GTEST_SKIP() << "chromium is not installed (Debian package `chromium`); render check skipped";
  std::string png = dir + "/shot.png", log = dir + "/chromium.log";
  int rc = screenshot(chromium, "file://" + html, png, dir + "/profile", log);
  ASSERT_EQ(rc, 0) << "chromium failed (" << rc << "): " << test::read_file(log);
  ASSERT_TRUE(fs::exists(png)) << test::read_file(log);
  if (const char* keep = std::getenv("MECHSCOPE_KEEP_SCREENSHOT")) {  // for a person to look at
    fs::copy_file(png, keep, fs::copy_options::overwrite_existing);
    fs::copy_file(html, std::string(keep) + ".html", fs::copy_options::overwrite_existing);
  }

  RgbImage shot = decode_png(test::read_file(png));
  const int w = shot.width, h = shot.height;
  const uint8_t* px = shot.pixels.data();
  EXPECT_EQ(w, 1200);
  EXPECT_EQ(h, 1600);
  int64_t colourful = 0, purple = 0, yellow = 0, red = 0, blue = 0;
  for (int64_t i = 0; i < static_cast<int64_t>(w) * h; ++i) {
    int r = px[3 * i], g = px[3 * i + 1], b = px[3 * i + 2];
    int hi = std::max({r, g, b}), lo = std::min({r, g, b});
    if (hi - lo > 50) ++colourful;                          // neither white nor grey
    if (r < 0x60 && g < 0x40 && b > 0x50 && b < 0xa0) ++purple;  // viridis low end
    if (r > 0xa0 && g > 0xc0 && b < 0x60) ++yellow;         // viridis high end
    if (r > 0xb0 && g < 0x80 && b < 0x80) ++red;            // diverging, positive
    if (b > 0xa0 && r < 0x70) ++blue;                       // diverging, negative
  }
  std::printf("screenshot %s: %lld colourful pixels (viridis purple %lld, yellow %lld; diverging red %lld, blue %lld)\n",
              png.c_str(), static_cast<long long>(colourful), static_cast<long long>(purple),
              static_cast<long long>(yellow), static_cast<long long>(red), static_cast<long long>(blue));
  EXPECT_GT(colourful, 40000) << "the heatmaps did not render";
  EXPECT_GT(purple, 500);
  EXPECT_GT(yellow, 50);
  EXPECT_GT(red + blue, 500) << "the signed (dla) heatmap did not render";
}

}  // namespace
}  // namespace ms
