// Feature cards of "sae-features" runs in the reports: HTML cards (the example windows with each
// token's activation as background intensity, the histogram as inline SVG bars, density, logit
// effects), Markdown sections, and long-format JSON rows (density and maximum per feature).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "core/tokenizer/token_label.h"
#include "report/report_common.h"

namespace ms::report {
namespace {

std::string esc(const std::string& s) { return html_escape(s); }

// The cards a report shows: every card up to kMaxCards, else the kMaxCards firing most often.
std::vector<const FeatureCard*> shown(const Bundle& b, size_t* hidden) {
  std::vector<const FeatureCard*> v;
  for (const FeatureCard& c : b.features) v.push_back(&c);
  *hidden = 0;
  if (v.size() > kMaxCards) {
    std::stable_sort(v.begin(), v.end(), [](auto* a, auto* c) { return a->n_firing > c->n_firing; });
    *hidden = v.size() - kMaxCards;
    v.resize(kMaxCards);
  }
  return v;
}

std::string density_text(const FeatureCard& c) {
  std::string s = "density " + fmt(c.density());
  if (c.n_firing > 0) s += " (log10 " + fmt(c.log10_density()) + ")";
  return s + ", fired at " + fmt_count(c.n_firing) + " of " + fmt_count(c.n_tokens) + " positions, max " + fmt(c.max_act);
}

std::string histogram_svg(const FeatureCard& c) {
  const int n = static_cast<int>(c.histogram.size());
  if (n == 0 || c.n_firing == 0) return "<div class=\"sub\">never fired</div>";
  const int w = std::max(2, 240 / n), h = 60, pad = 14;
  const int64_t top = *std::max_element(c.histogram.begin(), c.histogram.end());
  std::string s = "<svg width=\"" + std::to_string(n * w + 8) + "\" height=\"" + std::to_string(h + pad + 4) +
                  "\" role=\"img\" aria-label=\"activation histogram\">";
  for (int i = 0; i < n; ++i) {
    const int bh = top > 0 ? static_cast<int>(std::lround(static_cast<double>(h) * static_cast<double>(c.histogram[static_cast<size_t>(i)]) / static_cast<double>(top))) : 0;
    const double lo = c.hist_max * i / n, hi = c.hist_max * (i + 1) / n;
    s += "<rect x=\"" + std::to_string(4 + i * w) + "\" y=\"" + std::to_string(h - bh) + "\" width=\"" +
         std::to_string(std::max(1, w - 1)) + "\" height=\"" + std::to_string(bh) + "\" fill=\"#e36209\"><title>[" +
         fmt(lo) + ", " + fmt(hi) + "): " + std::to_string(c.histogram[static_cast<size_t>(i)]) + "</title></rect>";
  }
  s += "<text x=\"4\" y=\"" + std::to_string(h + pad) + "\">0</text><text x=\"" + std::to_string(n * w + 4) + "\" y=\"" +
       std::to_string(h + pad) + "\" text-anchor=\"end\">" + esc(fmt(c.hist_max)) + "</text></svg>";
  return s;
}

std::string logits_table(const char* title, const std::vector<LogitEffect>& v) {
  std::string s = "<table><tr><th colspan=\"2\">" + std::string(title) + "</th></tr>";
  for (const LogitEffect& e : v)
    s += "<tr><td><span class=\"tok\">" + esc(e.token) + "</span></td><td class=\"n\">" + esc(fmt(e.value)) + "</td></tr>";
  return s + "</table>";
}

std::string example_html(const FeatureExample& e, float max_act) {
  std::string s = "<div class=\"fex\"><span class=\"sub\">" + esc(fmt(e.activation)) + "</span> ";
  for (size_t i = 0; i < e.token_ids.size(); ++i) {
    const float a = i < e.acts.size() ? e.acts[i] : 0.0f;
    const double alpha = max_act > 0 ? std::clamp(static_cast<double>(a) / max_act, 0.0, 1.0) : 0.0;
    char bg[64];
    std::snprintf(bg, sizeof bg, "rgba(227,98,9,%.3f)", alpha);
    const bool at = static_cast<int64_t>(i) + e.window_start == e.position;
    const std::string label = i < e.tokens.size() ? e.tokens[i] : token_id_label(e.token_ids[i]);
    s += "<span class=\"tok" + std::string(at ? " at" : "") + "\" style=\"background:" + bg + "\" title=\"" +
         esc(fmt(a)) + "\">" + esc(label) + "</span>";
  }
  return s + " <span class=\"sub\">prompt " + std::to_string(e.prompt) + ", position " + std::to_string(e.position) +
         "</span></div>";
}

std::string md(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '|' || c == '`' || c == '*' || c == '_' || c == '[' || c == ']' || c == '\\') out += '\\';
    out += c == '\n' ? ' ' : c;
  }
  return out;
}

}  // namespace

void features_html(std::string& s, const Bundle& b) {
  if (b.features.empty()) return;
  size_t hidden = 0;
  std::vector<const FeatureCard*> cards = shown(b, &hidden);
  s += "<h3>Feature cards</h3>";
  if (hidden > 0)
    s += "<div class=\"sub\">the " + std::to_string(kMaxCards) + " features firing most often of " +
         std::to_string(b.features.size()) + "; the others are in the database</div>";
  for (const FeatureCard* c : cards) {
    s += "<div class=\"fcard\" id=\"run-" + std::to_string(b.run.id) + "-feature-" + std::to_string(c->feature) +
         "\"><h4>Feature " + std::to_string(c->feature) + "</h4><div class=\"sub\">" + esc(density_text(*c)) +
         "</div><div class=\"figs\"><figure>" + histogram_svg(*c) +
         "<figcaption>activations &gt; 0</figcaption></figure>";
    if (!c->top_logits.empty())
      s += logits_table("promotes", c->top_logits) + logits_table("suppresses", c->bottom_logits);
    s += "</div>";
    for (const FeatureExample& e : c->examples) s += example_html(e, c->max_act);
    s += "</div>";
  }
}

std::string features_markdown(const Bundle& b) {
  if (b.features.empty()) return "";
  size_t hidden = 0;
  std::vector<const FeatureCard*> cards = shown(b, &hidden);
  std::string s = "\n### Feature cards of run " + std::to_string(b.run.id) + "\n\n";
  if (hidden > 0) s += "The " + std::to_string(kMaxCards) + " features firing most often of " + std::to_string(b.features.size()) + ".\n\n";
  for (const FeatureCard* c : cards) {
    s += "#### Feature " + std::to_string(c->feature) + "\n\n" + md(density_text(*c)) + "\n\n";
    if (!c->top_logits.empty()) {
      std::string up, down;
      for (const LogitEffect& e : c->top_logits) up += " `" + e.token + "` " + fmt(e.value);
      for (const LogitEffect& e : c->bottom_logits) down += " `" + e.token + "` " + fmt(e.value);
      s += "- promotes:" + up + "\n- suppresses:" + down + "\n";
    }
    s += "- histogram over [0, " + fmt(c->hist_max) + "): " + nlohmann::json(c->histogram).dump() + "\n\n";
    if (!c->examples.empty()) s += "| activation | context (**example token**) |\n|---:|---|\n";
    for (const FeatureExample& e : c->examples) {
      std::string ctx;
      for (size_t i = 0; i < e.tokens.size(); ++i) {
        const bool at = static_cast<int64_t>(i) + e.window_start == e.position;
        ctx += at ? "**" + md(e.tokens[i]) + "**" : md(e.tokens[i]);
      }
      s += "| " + fmt(e.activation) + " | " + ctx + " |\n";
    }
    s += "\n";
  }
  return s;
}

void features_json(std::string& s, bool& first, const Bundle& b) {
  for (const FeatureCard& c : b.features)
    for (const auto& [metric, v] : {std::pair<const char*, double>{"feature_density", c.density()},
                                    std::pair<const char*, double>{"feature_max_act", c.max_act}}) {
      s += first ? "\n" : ",\n";
      first = false;
      s += "{\"run\":" + std::to_string(b.run.id) + ",\"metric\":\"" + metric + "\",\"feature\":" +
           std::to_string(c.feature) + ",\"value\":" + (std::isfinite(v) ? fmt_exact(v) : "null") + "}";
    }
}

}  // namespace ms::report
