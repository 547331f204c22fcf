// TransformerLens hook point names: the get_act_name() helper, glob matching for name filters,
// and which axes of a hook's activation hold positions and heads.
#pragma once

#include <string>
#include <string_view>

namespace ms {

// TransformerLens' utils.get_act_name: ("pattern", 3) -> "blocks.3.attn.hook_pattern",
// ("resid_pre", 0) -> "blocks.0.hook_resid_pre", ("normalized", 2, "ln1") ->
// "blocks.2.ln1.hook_normalized", ("embed") -> "hook_embed", ("normalized", -1, "ln_final") ->
// "ln_final.hook_normalized". Short aliases: "a" attn, "m" mlp, "q", "k", "v", "z", "pre", "post".
// A name that already contains "hook_" is returned unchanged.
std::string get_act_name(std::string_view name, int layer = -1, std::string_view layer_type = "");

// Shell-style glob on hook names: '*' any run of characters (dots included), '?' one character,
// "[abc]" a class. A pattern without wildcards matches only the exact name.
bool glob_match(std::string_view pattern, std::string_view name);

// The layer a hook name belongs to ("blocks.3.attn.hook_q" -> 3), or -1 for top-level points.
int hook_layer(std::string_view name);

// Axis layout of a hook's activation, following TransformerLens' shapes:
// [batch, pos, head, d] for hook_q/k/v/z/result/rot_q/rot_k; [batch, head, query_pos, key_pos]
// for hook_attn_scores/hook_pattern; [batch, pos, d] otherwise.
struct HookAxes {
  int pos = 1;    // the (query) position axis
  int head = -1;  // the head axis, -1 when the activation has none
};
HookAxes hook_axes(std::string_view name);

}  // namespace ms
