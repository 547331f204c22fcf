// The registry of architecture families: every family file under core/model/arch/ defines
// arch_family_<file name>(), and CMake lists those files in arch_families.inc (core/CMakeLists.txt).
#include <algorithm>

#include "core/model/arch/arch_spec.h"

namespace ms {

#define MS_ARCH_FAMILY(name) std::vector<const ArchSpec*> arch_family_##name();
#include "arch_families.inc"
#undef MS_ARCH_FAMILY

const std::vector<const ArchSpec*>& arch_registry() {
  static const std::vector<const ArchSpec*> all = [] {
    std::vector<const ArchSpec*> v;
#define MS_ARCH_FAMILY(name) for (const ArchSpec* a : arch_family_##name()) v.push_back(a);
#include "arch_families.inc"
#undef MS_ARCH_FAMILY
    std::sort(v.begin(), v.end(),
              [](const ArchSpec* a, const ArchSpec* b) { return a->model_type < b->model_type; });
    return v;
  }();
  return all;
}

const ArchSpec* find_arch(const std::string& model_type) {
  for (const ArchSpec* a : arch_registry())
    if (a->model_type == model_type) return a;
  return nullptr;
}

const ArchSpec* find_arch_gguf(const std::string& gguf_arch) {
  if (gguf_arch.empty()) return nullptr;
  for (const ArchSpec* a : arch_registry())
    if (a->gguf_arch == gguf_arch) return a;
  return nullptr;
}

std::string arch_names(const std::string& last_sep, bool gguf) {
  std::vector<std::string> names;
  for (const ArchSpec* a : arch_registry())
    if (!gguf) names.push_back(a->model_type);
    else if (!a->gguf_arch.empty()) names.push_back(a->gguf_arch);
  std::string out;
  for (size_t i = 0; i < names.size(); ++i)
    out += (i == 0 ? "" : i + 1 == names.size() ? last_sep : ", ") + names[i];
  return out;
}

}  // namespace ms
