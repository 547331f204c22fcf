// `mechscope retrieval` end to end on the constructed copy model: finds head 1.0, stores the runs,
// masks the top head and random heads, and --resume re-uses every stored cell.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/support/test_support.h"

namespace ms {
namespace {

using test::run_mechscope;

TEST(RetrievalCli, FindsTheCopyHeadMasksAndResumes) {
  std::string dir = test::temp_dir("retrieval-cli");
  std::string model = dir + "/copy", db = dir + "/runs.db";
  auto z = run_mechscope({"zoo", "construct", "copy", "--out", model});
  ASSERT_EQ(z.exit_code, 0) << z.err;
  std::vector<std::string> args = {"retrieval", "--model", model, "--lengths", "48,120", "--depths", "3",
                                   "--mask-top", "1", "--mask-random", "1", "--seeds", "2", "--db", db, "--json"};
  auto r = run_mechscope(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["tests"], 12);
  EXPECT_EQ(j["accuracy"].get<double>(), 100.0);
  EXPECT_EQ(j["top_heads"][0]["layer"], 1);
  EXPECT_EQ(j["top_heads"][0]["head"], 0);
  EXPECT_GT(j["top_heads"][0]["score"].get<double>(), 0.5);
  EXPECT_EQ(j["retrieval_heads"], "1.0");
  ASSERT_EQ(j["conditions"].size(), 2u);
  EXPECT_GT(j["conditions"][0]["drop"].get<double>(), 50.0);
  EXPECT_EQ(j["resumed_cells"], 0);

  args.push_back("--resume");
  auto again = run_mechscope(args);
  ASSERT_EQ(again.exit_code, 0) << again.err;
  nlohmann::json k = nlohmann::json::parse(again.out);
  EXPECT_EQ(k["resumed_cells"], 12 * 4);  // unmasked, top-1, two random seeds
  EXPECT_EQ(k["top_heads"][0]["score"], j["top_heads"][0]["score"]);
  EXPECT_EQ(k["conditions"][0]["drop"], j["conditions"][0]["drop"]);

  auto text = run_mechscope({"retrieval", "--model", model, "--lengths", "48", "--depths", "2", "--db", db});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("top heads"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("1.0"), std::string::npos);

  auto bad = run_mechscope({"retrieval", "--model", model, "--lengths", "300", "--db", db});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
}

}  // namespace
}  // namespace ms
