// A head named by (layer, head), written "L.H" as the CLI, zoo.json and reports write it. Shared
// by every analysis that selects, ranks or ablates heads.
#pragma once

#include <cstdint>
#include <string>

namespace ms {

struct HeadRef {
  int64_t layer = 0, head = 0;
  std::string name() const { return std::to_string(layer) + "." + std::to_string(head); }
  bool operator==(const HeadRef& o) const { return layer == o.layer && head == o.head; }
  bool operator!=(const HeadRef& o) const { return !(*this == o); }
  bool operator<(const HeadRef& o) const { return layer != o.layer ? layer < o.layer : head < o.head; }
};

}  // namespace ms
