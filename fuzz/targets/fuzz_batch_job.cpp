// Fuzz target: a TOML batch job file, read and validated (load_job) and expanded into work items,
// as `mechscope batch` does before running anything. Its folder holds model/config.json (the
// bundled default model's config), prompts.txt, needles.jsonl and task.jsonl (the bundled ones)
// for the job to refer to.
#include <filesystem>

#include "app/batch/batch_job.h"
#include "fuzz/fuzz_support.h"

MECHSCOPE_FUZZ_TARGET(batch_job) {
  using namespace ms;
  namespace fs = std::filesystem;
  static const bool ready = [] {
    std::error_code ec;
    fs::create_directories(fuzz::scratch_dir() + "/model", ec);
    fs::copy_file(fuzz::source_path("resources/models/default/config.json"),
                  fuzz::scratch_dir() + "/model/config.json", fs::copy_options::overwrite_existing, ec);
    for (auto [from, to] : {std::pair{"resources/prompts/batch-example.txt", "prompts.txt"},
                            std::pair{"resources/needles/default-model.jsonl", "needles.jsonl"},
                            std::pair{"resources/tasks/default-induction.jsonl", "task.jsonl"}})
      fs::copy_file(fuzz::source_path(from), fuzz::scratch_dir() + "/" + to, fs::copy_options::overwrite_existing, ec);
    return !ec;
  }();
  if (!ready) std::abort();
  const std::string path = fuzz::write_file("job.toml", {reinterpret_cast<const char*>(data), size});
  fuzz::expect_input_errors_only([&] {
    app::batch::Job job = app::batch::load_job(path);
    (void)app::batch::shard_items(app::batch::expand_items(job), 0, 2);
  }, "load_job");
}
