// TransformerLens hook point names: get_act_name, glob matching and axis layout.
#include "hooks/hook_names.h"

#include <cstdlib>
#include <string>

namespace ms {
namespace {

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string_view expand_alias(std::string_view name) {
  if (name == "a") return "attn";
  if (name == "m") return "mlp";
  if (name == "b") return "";
  if (name == "mlp_pre") return "pre";
  if (name == "mlp_post") return "post";
  return name;
}

}  // namespace

std::string get_act_name(std::string_view name, int layer, std::string_view layer_type) {
  if (name.find("hook_") != std::string_view::npos) return std::string(name);
  name = expand_alias(name);
  std::string n(name);
  const std::string block = layer >= 0 ? "blocks." + std::to_string(layer) + "." : "";

  if (n == "embed" || n == "pos_embed" || n == "tokens") return "hook_" + n;
  if (n == "resid_pre" || n == "resid_mid" || n == "resid_post" || n == "attn_out" ||
      n == "mlp_out" || n == "attn_in" || n == "q_input" || n == "k_input" || n == "v_input" ||
      n == "mlp_in")
    return block + "hook_" + n;
  if (n == "q" || n == "k" || n == "v" || n == "z" || n == "rot_q" || n == "rot_k" ||
      n == "result" || n == "pattern" || n == "attn_scores" || n == "attn")
    return block + "attn.hook_" + (n == "attn" ? std::string("pattern") : n);
  if (n == "pre" || n == "post" || n == "pre_linear" || n == "mid")
    return block + "mlp.hook_" + n;
  if (n == "scale" || n == "normalized") {
    std::string lt = layer_type.empty() ? (layer >= 0 ? "ln1" : "ln_final") : std::string(layer_type);
    if (lt == "ln_final") return "ln_final.hook_" + n;
    return block + lt + ".hook_" + n;
  }
  return block + "hook_" + n;
}

bool glob_match(std::string_view pattern, std::string_view name) {
  size_t p = 0, s = 0, star_p = std::string_view::npos, star_s = 0;
  while (s < name.size()) {
    if (p < pattern.size() && pattern[p] == '[') {
      size_t close = pattern.find(']', p + 1);
      if (close != std::string_view::npos) {
        bool negate = p + 1 < close && (pattern[p + 1] == '!' || pattern[p + 1] == '^');
        bool hit = false;
        for (size_t i = p + 1 + (negate ? 1 : 0); i < close; ++i) {
          if (i + 2 < close && pattern[i + 1] == '-') {
            hit |= name[s] >= pattern[i] && name[s] <= pattern[i + 2];
            i += 2;
          } else {
            hit |= name[s] == pattern[i];
          }
        }
        if (hit != negate) {
          p = close + 1;
          ++s;
          continue;
        }
      }
    } else if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == name[s])) {
      ++p;
      ++s;
      continue;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star_p = p++;
      star_s = s;
      continue;
    }
    if (star_p == std::string_view::npos) return false;
    p = star_p + 1;
    s = ++star_s;
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

int hook_layer(std::string_view name) {
  if (name.substr(0, 7) != "blocks.") return -1;
  return std::atoi(std::string(name.substr(7)).c_str());
}

HookAxes hook_axes(std::string_view name) {
  HookAxes axes;
  if (ends_with(name, "attn.hook_pattern") || ends_with(name, "attn.hook_attn_scores")) {
    axes.head = 1;
    axes.pos = 2;
  } else if (ends_with(name, "attn.hook_q") || ends_with(name, "attn.hook_k") ||
             ends_with(name, "attn.hook_v") || ends_with(name, "attn.hook_z") ||
             ends_with(name, "attn.hook_result") || ends_with(name, "attn.hook_rot_q") ||
             ends_with(name, "attn.hook_rot_k")) {
    axes.head = 2;
  }
  return axes;
}

}  // namespace ms
