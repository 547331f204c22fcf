// The Markdown report: text with tables, and the heatmaps as PNG files beside it. Strings from
// models and users are escaped (Markdown punctuation and HTML) or fenced, so they show as text.
#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "core/tokenizer/token_label.h"
#include "report/png.h"
#include "report/report_common.h"

namespace ms::report {
namespace {

// Text in a paragraph or table cell (never at the start of a line): HTML-escaped, and the
// Markdown punctuation that acts mid-line (emphasis, code, links, table cells) backslash-escaped.
std::string md(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\n' || c == '\r') out += ' ';
    else if (c == '&') out += "&amp;";
    else if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (std::string("\\`*_[]|~").find(c) != std::string::npos) (out += '\\') += c;
    else out += c;
  }
  return out;
}

// A fenced block that no backtick run inside the text can close.
std::string fenced(const std::string& text, const std::string& lang = "") {
  size_t run = 0, longest = 0;
  for (char c : text) {
    run = c == '`' ? run + 1 : 0;
    longest = std::max(longest, run);
  }
  std::string fence(std::max<size_t>(3, longest + 1), '`');
  return fence + lang + "\n" + text + "\n" + fence + "\n";
}

class Names {
 public:
  std::string unique(const std::string& base) {
    std::string name = base + ".png";
    for (int i = 2; m_used.count(name); ++i) name = base + "-" + std::to_string(i) + ".png";
    m_used.insert(name);
    return name;
  }

 private:
  std::set<std::string> m_used;
};

}  // namespace

std::vector<OutFile> render_markdown(Database& db, const std::vector<Bundle>& runs, const ReportOptions& opts,
                                     const std::string& stem) {
  std::vector<OutFile> files(1);  // files[0] is the text, filled in at the end
  std::string s;
  Names names;
  s += "# mechscope report\n\n";
  s += md(std::to_string(runs.size()) + " run(s) from " + db.path() + ", mechscope " + MECHSCOPE_VERSION) + "\n";
  for (const Bundle& b : runs) {
    std::string id = std::to_string(b.run.id);
    s += "\n## Run " + id + ": " + md(b.run.spec.kind) + " (" + run_status_name(b.run.status) + ")\n\n";
    s += "| field | value |\n|---|---|\n";
    if (b.model) {
      s += "| model | " + md(b.model->path.empty() ? "(in memory)" : b.model->path) + " (" + md(b.model->architecture) +
           ", " + md(fmt_count(b.model->n_params)) + " parameters) |\n";
      s += "| weights hash | " + md(b.model->content_hash) + " |\n";
    }
    s += "| parameters | " + md(b.run.spec.params_json) + " |\n";
    s += "| mechscope | " + md(b.run.mechscope_version) + " |\n";
    s += "| started | " + md(b.run.started_at) + " |\n| finished | " + md(b.run.finished_at) + " |\n";
    if (!b.run.error.empty()) s += "| error | " + md(b.run.error) + " |\n";
    for (const RunLink& l : b.links)
      s += "| link | run " + std::to_string(l.run_id) + " " + md(l.relation) + " run " +
           std::to_string(l.source_run_id) + " |\n";
    s += "\nReproduce:\n\n" + fenced(b.run.spec.command.empty() ? "(no command recorded)" : b.run.spec.command, "sh");
    for (const HeadScores& h : b.scores) {
      ColorScale scale = scale_for(h);
      int cell = 0;
      std::string png = names.unique(stem + "-run" + id + "-" + file_safe(h.metric));
      files.push_back({png, encode_png(scores_image(h, scale, cell))});
      s += "\n### " + md(h.metric) + "\n\n![" + md(h.metric) + " heatmap](" + png + ")\n\n";
      s += "Rows: layers 0 to " + std::to_string(h.n_layers - 1) + " (top to bottom); columns: heads 0 to " +
           std::to_string(h.n_heads - 1) + "; " +
           (scale.map == Colormap::kViridis ? "viridis, dark purple " : "diverging, blue ") + md(fmt(scale.lo)) +
           (scale.map == Colormap::kViridis ? " to yellow " : " through white (0) to red ") + md(fmt(scale.hi)) +
           ".\n\n";
      s += "| layer | head | " + md(h.metric) + " |\n|---:|---:|---:|\n";
      for (const TopHead& t : top_heads(h, opts.top_k))
        s += "| " + std::to_string(t.layer) + " | " + std::to_string(t.head) + " | " + md(fmt(t.value)) + " |\n";
    }
    if (!b.inputs.empty()) s += "\n### Inputs\n";
    for (const InputRecord& in : b.inputs) {
      s += "\nInput " + std::to_string(in.index) + " (" + std::to_string(in.token_ids.size()) + " tokens):\n\n";
      s += fenced(in.text);
      if (!in.tokens.empty()) {
        std::string toks;
        for (size_t i = 0; i < in.tokens.size(); ++i) toks += (i ? " | " : "") + token_display(in.tokens[i]);
        s += "\nTokens:\n\n" + fenced(toks);
      }
    }
    bool header = false;
    for (const TensorInfo& t : b.tensors) {
      std::optional<Matrix> m = load_matrix(db, b.run.id, t);
      if (!header) s += "\n### Tensors\n\n";
      header = true;
      s += "- " + md(t.name) + ": " + md(t.dtype) + " " + md(nlohmann::json(t.shape).dump()) + ", meta " +
           md(t.meta_json) + "\n";
      if (!m) continue;
      ColorScale scale = color_scale_for(m->values, meta_string(t.meta_json, "kind") == "attribution");
      int cell = std::clamp(560 / std::max(m->rows, m->cols), 3, 28);
      std::string png = names.unique(stem + "-run" + id + "-" + file_safe(t.name));
      files.push_back({png, encode_png(heatmap_image(m->values, m->rows, m->cols, scale, cell, cell, cell >= 14))});
      s += "\n  ![" + md(t.name) + "](" + png + ")\n\n";
    }
    for (const Circuit& c : b.circuits) {
      s += "\n### Circuit: " + md(c.name) + "\n\n| from | to | score |\n|---|---|---:|\n";
      for (const CircuitEdge& e : c.edges)
        s += "| " + md(c.nodes[e.src].name) + " | " + md(c.nodes[e.dst].name) + " | " + md(fmt(e.score)) + " |\n";
    }
  }
  for (const Bundle& b : runs) s += features_markdown(b);
  files[0].bytes = std::move(s);
  return files;
}

}  // namespace ms::report
