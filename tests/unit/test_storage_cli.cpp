// The storage commands through the real binary: runs list/show/delete, compare, report in every
// format, --force and atomic output, --db / MECHSCOPE_DB / XDG_DATA_HOME, and exit 3 for bad files.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/io/npy.h"
#include "report/report.h"
#include "tests/support/test_support.h"
#include "tests/unit/test_storage_fixtures.h"

namespace fs = std::filesystem;

namespace ms {
namespace {

using test::run_mechscope;

class StorageCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir = new std::string(test::temp_dir("storage-cli"));
    db = new std::string(*dir + "/runs.db");
    auto d = Database::open(*db);
    ASSERT_TRUE(d.ok()) << d.error().message;
    int64_t model = (*d)->register_model(test::demo_model()).value();
    int64_t other = (*d)->register_model(test::demo_model("sha256:ffff")).value();
    a = (*d)->store_run(test::demo_spec(model), test::demo_results(4, 8, 0)).value();
    RunResults after = test::demo_results(4, 8, 0);
    after.scores[0].values[1 * 8 + 2] = 0.05;  // the sink head ablated: the biggest difference
    after.links.push_back({0, "masked-from", a});
    b = (*d)->store_run(test::demo_spec(other), after).value();
    c = (*d)->store_run(test::demo_spec(model, "heads"), test::demo_results(4, 8, 5, "<script>alert(1)</script>")).value();
  }
  static void TearDownTestSuite() {
    if (const char* keep = std::getenv("MECHSCOPE_KEEP_DB"))  // for a person to look at
      fs::copy_file(*db, keep, fs::copy_options::overwrite_existing);
  }
  static std::string* dir;
  static std::string* db;
  static int64_t a, b, c;
};
std::string* StorageCli::dir = nullptr;
std::string* StorageCli::db = nullptr;
int64_t StorageCli::a = 0, StorageCli::b = 0, StorageCli::c = 0;

std::string id(int64_t v) { return std::to_string(v); }

TEST_F(StorageCli, RunsListAndShow) {
  auto r = run_mechscope({"runs", "--db", *db});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("sinks"), std::string::npos);
  EXPECT_NE(r.out.find("3 run(s)"), std::string::npos) << r.out;
  r = run_mechscope({"runs", "list", "--db", *db, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.size(), 3u);
  EXPECT_EQ(j[2]["id"], a);
  EXPECT_EQ(j[2]["kind"], "sinks");
  EXPECT_EQ(j[2]["status"], "done");
  EXPECT_EQ(j[2]["counts"]["scores"], 4 * 4 * 8);
  EXPECT_EQ(j[2]["params"]["threshold"], 0.3);
  r = run_mechscope({"runs", "list", "--db", *db, "--kind", "heads", "--json"});
  EXPECT_EQ(nlohmann::json::parse(r.out).size(), 1u);

  r = run_mechscope({"runs", "show", id(b), "--db", *db});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("sink_rate: 4 x 8"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("masked-from run " + id(a)), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("attn.L1.H2"), std::string::npos);
  r = run_mechscope({"runs", "show", id(a), "--db", *db, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["run"]["command"], test::demo_spec(1).command);
  EXPECT_EQ(j["model"]["content_hash"], "sha256:0123abcd");
  EXPECT_EQ(j["metrics"].size(), 4u);
  EXPECT_EQ(j["metrics"][3]["metric"], "sink_rate");
  EXPECT_EQ(j["metrics"][3]["argmax"]["layer"], 1);
  EXPECT_EQ(j["metrics"][3]["argmax"]["head"], 2);
  EXPECT_EQ(j["inputs"][0]["tokens"][0], "<|endoftext|>");
  EXPECT_EQ(j["tensors"][0]["shape"], nlohmann::json({10, 10}));
  EXPECT_EQ(j["circuits"][0]["edges"], 7);

  r = run_mechscope({"runs", "show", "999", "--db", *db});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("no run 999"), std::string::npos) << r.err;
  r = run_mechscope({"runs", "show", "--db", *db});
  EXPECT_EQ(r.exit_code, 2);
  r = run_mechscope({"runs", "show", "x1", "--db", *db});
  EXPECT_EQ(r.exit_code, 2);
  r = run_mechscope({"runs", "frobnicate", "--db", *db});
  EXPECT_EQ(r.exit_code, 2);
}

TEST_F(StorageCli, DeleteRun) {
  std::string copy = *dir + "/copy.db";
  {
    auto d = Database::open(copy);
    ASSERT_TRUE(d.ok());
    ASSERT_TRUE((*d)->store_run({"sinks"}, test::demo_results()).ok());
    ASSERT_TRUE((*d)->store_run({"heads"}, test::demo_results()).ok());
  }
  auto r = run_mechscope({"runs", "delete", "1", "--db", copy});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("deleted run 1"), std::string::npos);
  r = run_mechscope({"runs", "list", "--db", copy, "--json"});
  nlohmann::json j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["id"], 2);
  r = run_mechscope({"runs", "delete", "1", "--db", copy, "--json"});
  EXPECT_EQ(r.exit_code, 2);
}

TEST_F(StorageCli, CompareBiggestDifferenceFirst) {
  // Runs a and b are of two different models (other weights, same shape): refused unless asked.
  auto r = run_mechscope({"compare", "--db", *db, id(a), id(b), "--json"});
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.err.find("two different models"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--across-models"), std::string::npos) << r.err;
  r = run_mechscope({"compare", "--db", *db, id(a), id(b), "--json", "--across-models"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["same_model"], false);
  EXPECT_NE(j["note"].get<std::string>().find("matched by layer.head"), std::string::npos);
  ASSERT_EQ(j["metrics"].size(), 4u);
  nlohmann::json sink;
  for (const auto& m : j["metrics"])
    if (m["metric"] == "sink_rate") sink = m;
  ASSERT_FALSE(sink.is_null());
  EXPECT_EQ(sink["n_common"], 32);
  EXPECT_EQ(sink["heads"][0]["layer"], 1);
  EXPECT_EQ(sink["heads"][0]["head"], 2);
  EXPECT_DOUBLE_EQ(sink["heads"][0]["a"].get<double>(), 0.97);
  EXPECT_DOUBLE_EQ(sink["heads"][0]["b"].get<double>(), 0.05);
  EXPECT_DOUBLE_EQ(sink["heads"][0]["diff"].get<double>(), 0.05 - 0.97);
  EXPECT_DOUBLE_EQ(sink["max_abs_diff"].get<double>(), 0.92);
  for (const auto& m : j["metrics"])
    if (m["metric"] != "sink_rate") {
      EXPECT_EQ(m["max_abs_diff"], 0.0);
      EXPECT_DOUBLE_EQ(m["pearson"].get<double>(), 1.0);
    }
  r = run_mechscope({"compare", "--db", *db, id(a), id(b), "--metric", "sink_rate", "--top", "3", "--across-models"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("sink_rate: 32 heads in both"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("-0.92"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("note: run"), std::string::npos) << r.out;
  r = run_mechscope({"compare", "--db", *db, id(a), id(b), "--metric", "nope", "--across-models"});
  EXPECT_EQ(r.exit_code, 2);
  r = run_mechscope({"compare", "--db", *db, id(a), "77"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("no run 77"), std::string::npos);
}

TEST_F(StorageCli, ReportCsvAndJsonLongFormat) {
  std::string csv = *dir + "/scores.csv";
  auto r = run_mechscope({"report", "--db", *db, "--run", id(a) + "," + id(b), "--format", "csv", "--out", csv});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream in(test::read_file(csv));
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "run,metric,layer,head,value");
  int rows = 0;
  RunResults want = test::demo_results(4, 8, 0);
  while (std::getline(in, line)) {
    ++rows;
    std::istringstream f(line);
    std::string run, metric, layer, head, value;
    std::getline(f, run, ',');
    std::getline(f, metric, ',');
    std::getline(f, layer, ',');
    std::getline(f, head, ',');
    std::getline(f, value, ',');
    if (run == id(a) && metric == "induction_score") {  // values read back exactly
      EXPECT_EQ(std::strtod(value.c_str(), nullptr), want.scores[2].at(std::stoi(layer), std::stoi(head)));
    }
  }
  EXPECT_EQ(rows, 2 * 4 * 32);

  std::string json = *dir + "/scores.json";
  r = run_mechscope({"report", "--db", *db, "--run", id(a), "--format", "json", "--out", json});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(test::read_file(json));
  ASSERT_EQ(j.size(), 4u * 32u);
  EXPECT_EQ(j[0].size(), 5u);
  for (const auto& row : j)
    if (row["metric"] == "sink_rate" && row["layer"] == 1 && row["head"] == 2) {
      EXPECT_EQ(row["value"], 0.97);
    }
  EXPECT_EQ(j[0]["run"], a);
}

TEST_F(StorageCli, ReportNpyTensorsReadBack) {
  std::string out = *dir + "/npy";
  auto r = run_mechscope({"report", "--db", *db, "--run", id(a), "--format", "npy", "--out", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  RunResults want = test::demo_results(4, 8, 0);
  Result<at::Tensor> attn = read_npy(out + "/run" + id(a) + "_attn.L1.H2.npy");
  ASSERT_TRUE(attn.ok()) << attn.error().message;
  EXPECT_TRUE(at::equal(*attn, want.tensors[0].tensor));
  Result<at::Tensor> sink = read_npy(out + "/run" + id(a) + "_scores_sink_rate.npy");
  ASSERT_TRUE(sink.ok()) << sink.error().message;
  EXPECT_EQ(sink->sizes(), (at::IntArrayRef{4, 8}));
  EXPECT_EQ(sink->scalar_type(), at::kDouble);
  EXPECT_EQ((*sink)[1][2].item<double>(), 0.97);
  nlohmann::json manifest = nlohmann::json::parse(test::read_file(out + "/manifest.json"));
  EXPECT_EQ(manifest.size(), 6u);  // 4 metrics + 2 tensors
  r = run_mechscope({"report", "--db", *db, "--run", id(a), "--format", "npy", "--out", out});
  EXPECT_EQ(r.exit_code, 2) << "a non-empty folder needs --force";
  r = run_mechscope({"report", "--db", *db, "--run", id(a), "--format", "npy", "--out", out, "--force"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(StorageCli, ReportMarkdownWithPngsBeside) {
  std::string md = *dir + "/md/report.md";
  fs::create_directories(*dir + "/md");
  auto r = run_mechscope({"report", "--db", *db, "--run", id(c), "--format", "md", "--out", md, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json files = nlohmann::json::parse(r.out)["files"];
  EXPECT_EQ(files[0], md);
  EXPECT_EQ(files.size(), 1u + 4u + 2u);  // the text, 4 metric heatmaps, 2 tensor heatmaps
  std::string text = test::read_file(md);
  for (size_t i = 1; i < files.size(); ++i) {
    std::string png = files[i].get<std::string>();
    EXPECT_EQ(fs::path(png).parent_path(), fs::path(md).parent_path());
    EXPECT_EQ(test::read_file(png).substr(1, 3), "PNG");
    EXPECT_NE(text.find("](" + fs::path(png).filename().string() + ")"), std::string::npos) << png;
  }
  EXPECT_NE(text.find("```\n<script>alert(1)</script>\n```"), std::string::npos) << "prompts are fenced";
  EXPECT_EQ(text.find("<script>alert(1)</script>|"), std::string::npos);
  EXPECT_NE(text.find("| 1 | 2 | 0.97 |"), std::string::npos) << text;
}

TEST_F(StorageCli, ReportHtmlEscapesAndEmbeds) {
  std::string html = *dir + "/report.html";
  auto r = run_mechscope({"report", "--db", *db, "--run", id(a) + "," + id(c), "--format", "html", "--out", html});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string page = test::read_file(html);
  EXPECT_NE(page.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_EQ(page.find("<script"), std::string::npos);
  EXPECT_EQ(page.find("http://"), std::string::npos);
  EXPECT_EQ(page.find("https://"), std::string::npos);
  EXPECT_NE(page.find("data:image/png;base64,"), std::string::npos);
  EXPECT_NE(page.find("&lt;|endoftext|&gt;"), std::string::npos);
  EXPECT_NE(page.find(html_escape(test::demo_spec(1).command)), std::string::npos) << "the reproducing command";
  EXPECT_NE(page.find("sha256:0123abcd"), std::string::npos);
  EXPECT_NE(page.find("Circuit: ioi"), std::string::npos);
}

TEST_F(StorageCli, ReportHtmlShrinksLongAttention) {
  std::string big = *dir + "/big.db";
  {
    auto d = Database::open(big);
    ASSERT_TRUE(d.ok());
    RunResults r;
    r.inputs.push_back(test::demo_input(0, "long", 1000));
    r.tensors.push_back({"attn.long", test::demo_attention(1000), "{\"kind\":\"attention\",\"input\":0}"});
    ASSERT_TRUE((*d)->store_run({"sinks"}, r).ok());
  }
  std::string html = *dir + "/big.html";
  auto r = run_mechscope({"report", "--db", big, "--run", "1", "--format", "html", "--out", html});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string page = test::read_file(html);
  EXPECT_NE(page.find("shown as means of 4 x 4 blocks"), std::string::npos);
  EXPECT_LT(page.size(), 2u << 20);
}

TEST_F(StorageCli, OutputIsNeverOverwrittenWithoutForce) {
  std::string out = *dir + "/exists.html";
  test::write_file(out, "precious");
  auto r = run_mechscope({"report", "--db", *db, "--run", id(a), "--format", "html", "--out", out});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--force"), std::string::npos) << r.err;
  EXPECT_EQ(test::read_file(out), "precious");
  // A failed export (a missing run) leaves the old file and no temporary files.
  r = run_mechscope({"report", "--db", *db, "--run", "404", "--format", "html", "--out", out, "--force"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(test::read_file(out), "precious");
  r = run_mechscope({"report", "--db", *db, "--run", id(a), "--format", "html", "--out", out, "--force"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(test::read_file(out).find("<!DOCTYPE html>"), std::string::npos);
  for (const auto& e : fs::directory_iterator(*dir))
    EXPECT_EQ(e.path().filename().string().find(".exists.html."), std::string::npos) << e.path();
  r = run_mechscope({"report", "--db", *db, "--run", "1,x", "--format", "html", "--out", out});
  EXPECT_EQ(r.exit_code, 2);
  r = run_mechscope({"report", "--db", *db, "--run", "1", "--format", "pdf", "--out", out});
  EXPECT_EQ(r.exit_code, 2);
}

TEST_F(StorageCli, BadDatabaseFilesExitThree) {
  std::string junk = *dir + "/junk.db";
  test::write_file(junk, std::string(8192, 'j'));
  std::string newer = *dir + "/newer.db";
  {
    auto d = Database::open(newer);
    ASSERT_TRUE(d.ok());
  }
  {
    sqlite3* h = nullptr;
    ASSERT_EQ(sqlite3_open(newer.c_str(), &h), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(h, "PRAGMA user_version = 42", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(h);
  }
  std::string newer_before = test::read_file(newer);
  auto nr = run_mechscope({"runs", "--db", newer});
  EXPECT_EQ(nr.exit_code, 3);
  EXPECT_NE(nr.err.find("newer than this mechscope supports"), std::string::npos) << nr.err;
  EXPECT_EQ(test::read_file(newer), newer_before);
  std::string before = test::read_file(junk);
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"runs", "--db", junk},
           {"runs", "show", "1", "--db", junk},
           {"compare", "--db", junk, "1", "2"},
           {"report", "--db", junk, "--run", "1", "--format", "html", "--out", *dir + "/x.html"}}) {
    auto r = run_mechscope(args);
    EXPECT_EQ(r.exit_code, 3) << args[0] << ": " << r.err;
    EXPECT_NE(r.err.find(junk), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("not a valid mechscope database"), std::string::npos) << r.err;
  }
  EXPECT_EQ(test::read_file(junk), before);
  EXPECT_FALSE(fs::exists(*dir + "/x.html"));
  auto r = run_mechscope({"runs", "show", "1", "--db", *dir + "/absent.db"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("no such database"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(*dir + "/absent.db"));
}

TEST_F(StorageCli, DatabaseLocationFromEnvironment) {
  const char* keep = std::getenv("MECHSCOPE_DB");
  const char* keep_xdg = std::getenv("XDG_DATA_HOME");
  std::string saved = keep ? keep : "", saved_xdg = keep_xdg ? keep_xdg : "";
  ::setenv("MECHSCOPE_DB", db->c_str(), 1);
  auto r = run_mechscope({"runs", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out).size(), 3u);
  r = run_mechscope({"runs", "--json", "--db", *dir + "/nothing-here.db"});  // the flag wins
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "[]\n");
  ::unsetenv("MECHSCOPE_DB");
  std::string xdg = test::temp_dir("xdg");
  ::setenv("XDG_DATA_HOME", xdg.c_str(), 1);
  r = run_mechscope({"runs"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(xdg + "/mechscope/mechscope.db"), std::string::npos) << r.out;
  if (keep) ::setenv("MECHSCOPE_DB", saved.c_str(), 1);
  if (keep_xdg) ::setenv("XDG_DATA_HOME", saved_xdg.c_str(), 1);
  else ::unsetenv("XDG_DATA_HOME");
}

}  // namespace
}  // namespace ms
