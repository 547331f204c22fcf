// A head named by (layer, head), written "L.H" as the CLI, zoo.json and reports write it. Shared
// by every analysis that selects, ranks or ablates heads; HeadRef::parse is the one reader of
// "L.H" and "L.H,L.H,..." lists.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ms {

struct HeadRef {
  int64_t layer = 0, head = 0;
  std::string name() const { return std::to_string(layer) + "." + std::to_string(head); }
  bool operator==(const HeadRef& o) const { return layer == o.layer && head == o.head; }
  bool operator!=(const HeadRef& o) const { return !(*this == o); }
  bool operator<(const HeadRef& o) const { return layer != o.layer ? layer < o.layer : head < o.head; }

  // "L.H" (two non-negative whole numbers, spaces around allowed); false when malformed.
  static bool parse(const std::string& text, HeadRef* out) {
    size_t b = text.find_first_not_of(" \t"), e = text.find_last_not_of(" \t");
    if (b == std::string::npos) return false;
    const std::string s = text.substr(b, e - b + 1);
    size_t dot = s.find('.');
    if (dot == std::string::npos || dot == 0 || dot + 1 == s.size()) return false;
    auto whole = [](const std::string& d, int64_t* v) {
      if (d.empty() || d.size() > 9 || d.find_first_not_of("0123456789") != std::string::npos) return false;
      *v = std::stoll(d);
      return true;
    };
    HeadRef h;
    if (!whole(s.substr(0, dot), &h.layer) || !whole(s.substr(dot + 1), &h.head)) return false;
    *out = h;
    return true;
  }

  // "L.H,L.H,..." -> heads; "" when fine, else the message naming the bad item. With n_layers and
  // n_heads > 0, heads outside the model are refused too.
  static std::string parse_list(const std::string& text, std::vector<HeadRef>* out, int64_t n_layers = 0,
                                int64_t n_heads = 0) {
    out->clear();
    size_t start = 0;
    while (start <= text.size()) {
      size_t comma = text.find(',', start);
      std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      HeadRef h;
      if (!parse(item, &h)) return "'" + item + "' is not LAYER.HEAD (e.g. 3.5)";
      if (n_layers > 0 && n_heads > 0 && (h.layer >= n_layers || h.head >= n_heads))
        return item + " is outside the model's " + std::to_string(n_layers) + " layers x " + std::to_string(n_heads) +
               " heads";
      out->push_back(h);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    return "";
  }
};

}  // namespace ms
