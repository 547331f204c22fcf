// Constructed models by name, and saving one in the Hugging Face layout with its zoo.json. The
// builders live in core/zoo_construct_{sink,massive,copy}.cpp.
#include "core/zoo/zoo_construct.h"

#include <filesystem>

#include "core/model/model_save.h"

namespace fs = std::filesystem;

namespace ms {

const std::vector<std::string>& constructed_model_names() {
  static const std::vector<std::string> kNames = {"sink", "massive", "copy"};
  return kNames;
}

Result<ConstructedModel> build_constructed_model(const std::string& name) {
  return guard([&]() -> ConstructedModel {
    if (name == "sink") return build_sink_model();
    if (name == "massive") return build_massive_model();
    if (name == "copy") return build_copy_model();
    std::string known;
    for (const std::string& n : constructed_model_names()) known += (known.empty() ? "" : ", ") + n;
    fail_usage("unknown constructed model '" + name + "' (known: " + known + ")");
  });
}

Status save_constructed_model(const ConstructedModel& m, const std::string& out_dir, bool overwrite) {
  return guard([&] {
    if (out_dir.empty()) fail_usage("construct: no output folder given");
    std::error_code ec;
    const bool exists = fs::exists(out_dir, ec);
    if (exists && !fs::is_directory(out_dir, ec))
      fail_usage(out_dir + ": exists and is not a folder");
    if (exists && !fs::is_empty(out_dir, ec) && !overwrite)
      fail_usage(out_dir + ": folder exists and is not empty (use --force to replace it)");
    Status st = save_model_hf(m.config, m.weights, out_dir, {{"zoo.json", m.zoo.dump(2) + "\n"}},
                              /*overwrite=*/exists);
    if (!st) throw InputError(st.error().message, st.error().code);
  });
}

Status construct_model(const std::string& name, const std::string& out_dir, bool overwrite) {
  Result<ConstructedModel> m = build_constructed_model(name);
  if (!m) return m.error();
  return save_constructed_model(*m, out_dir, overwrite);
}

}  // namespace ms
