// The HTML report: one self-contained page (images as data URIs, inline SVG, no script, no
// network) with each run's provenance, heatmaps, top heads, inputs, attention and circuit.
// Every string from a model, a user or the database goes through html_escape.
#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "core/tokenizer/token_label.h"
#include "report/png.h"
#include "core/base/json_input.h"
#include "report/report_common.h"

namespace ms::report {
namespace {

std::string esc(const std::string& s) { return html_escape(s); }
std::string num(double v) { return std::to_string(static_cast<long long>(std::lround(v))); }

constexpr const char* kStyle = R"css(
body { font: 14px/1.45 -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; color: #1f2328;
       margin: 24px auto; max-width: 1180px; padding: 0 16px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 19px; border-bottom: 1px solid #d0d7de;
  padding-bottom: 4px; margin-top: 36px; } h3 { font-size: 15px; margin: 22px 0 8px; }
.sub { color: #59636e; font-size: 13px; }
table { border-collapse: collapse; font-size: 13px; }
td, th { border: 1px solid #d0d7de; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; }
table.prov td:first-child { color: #59636e; white-space: nowrap; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
pre, code { font: 12.5px/1.4 "DejaVu Sans Mono", monospace; background: #f6f8fa; }
pre { padding: 8px 10px; border: 1px solid #d0d7de; border-radius: 4px; white-space: pre-wrap;
      word-break: break-all; }
.figs { display: flex; flex-wrap: wrap; gap: 18px 28px; align-items: flex-start; }
figure { margin: 0; } figcaption { font-size: 13px; color: #59636e; margin-top: 2px; }
.input { margin-bottom: 12px; }
.tok { display: inline-block; border: 1px solid #d0d7de; border-radius: 3px; padding: 0 3px;
       margin: 1px; font: 12px "DejaVu Sans Mono", monospace; white-space: pre; background: #fff; }
.status { display: inline-block; padding: 0 8px; border-radius: 10px; font-size: 12px; color: #fff; }
.status.done { background: #1a7f37; } .status.failed, .status.cancelled { background: #cf222e; }
.status.running, .status.queued { background: #9a6700; }
svg text { font: 11px "DejaVu Sans", sans-serif; fill: #1f2328; }
.fcard { border: 1px solid #d0d7de; border-radius: 6px; padding: 6px 12px 10px; margin: 12px 0; }
.fcard h4 { margin: 4px 0; font-size: 14px; } .fex { margin: 2px 0; } .tok.at { border-color: #1f2328; }
)css";

struct Axis {
  std::string title;
  std::vector<std::string> labels;  // one per row / column
  bool rotate = false;              // column labels rotated (tokens)
};

// An inline SVG: the heatmap PNG, tick labels, axis titles and a colour bar with its range.
std::string heatmap_svg(const RgbImage& img, const Axis& rows, const Axis& cols, const ColorScale& scale) {
  int n_rows = static_cast<int>(rows.labels.size()), n_cols = static_cast<int>(cols.labels.size());
  size_t row_chars = 1, col_chars = 1;
  for (const auto& l : rows.labels) row_chars = std::max(row_chars, l.size());
  for (const auto& l : cols.labels) col_chars = std::max(col_chars, l.size());
  int left = 22 + std::clamp(static_cast<int>(row_chars) * 7, 14, 100);
  int top = 22 + (cols.rotate ? std::clamp(static_cast<int>(col_chars) * 6 + 8, 14, 98) : 16);
  int w = img.width, h = img.height;
  int bar_x = left + w + 18, bar_h = std::min(h, 240), bar_w = 14;
  int width = bar_x + bar_w + 72, height = std::max(top + h, top + bar_h) + 12;
  double cw = n_cols ? static_cast<double>(w) / n_cols : 0, ch = n_rows ? static_cast<double>(h) / n_rows : 0;
  int col_step = std::max(1, static_cast<int>(std::ceil((cols.rotate ? 12.0 : 16.0) / std::max(cw, 1e-9))));
  int row_step = std::max(1, static_cast<int>(std::ceil(13.0 / std::max(ch, 1e-9))));
  std::string s = "<svg width=\"" + num(width) + "\" height=\"" +
                  num(height) + "\" role=\"img\">";
  s += "<image x=\"" + num(left) + "\" y=\"" + num(top) + "\" width=\"" + num(w) + "\" height=\"" + num(h) +
       "\" href=\"" + png_data_uri(img) + "\" style=\"image-rendering:pixelated\"/>";
  for (int c = 0; c < n_cols; c += col_step) {
    double x = left + (c + 0.5) * cw;
    if (cols.rotate)
      s += "<text transform=\"translate(" + fmt(x + 3) + "," + num(top - 4) + ") rotate(-60)\">" +
           esc(cols.labels[c]) + "</text>";
    else
      s += "<text x=\"" + fmt(x) + "\" y=\"" + num(top - 4) + "\" text-anchor=\"middle\">" + esc(cols.labels[c]) +
           "</text>";
  }
  for (int r = 0; r < n_rows; r += row_step)
    s += "<text x=\"" + num(left - 4) + "\" y=\"" + fmt(top + (r + 0.5) * ch + 4) + "\" text-anchor=\"end\">" +
         esc(rows.labels[r]) + "</text>";
  s += "<text x=\"" + fmt(left + w / 2.0) + "\" y=\"12\" text-anchor=\"middle\" font-weight=\"bold\">" +
       esc(cols.title) + "</text>";
  s += "<text transform=\"translate(12," + fmt(top + h / 2.0) + ") rotate(-90)\" text-anchor=\"middle\" "
       "font-weight=\"bold\">" + esc(rows.title) + "</text>";
  s += "<image x=\"" + num(bar_x) + "\" y=\"" + num(top) + "\" width=\"" + num(bar_w) + "\" height=\"" +
       num(bar_h) + "\" href=\"" + png_data_uri(colorbar_image(scale, bar_w, bar_h)) + "\"/>";
  s += "<rect x=\"" + num(bar_x) + "\" y=\"" + num(top) + "\" width=\"" + num(bar_w) + "\" height=\"" +
       num(bar_h) + "\" fill=\"none\" stroke=\"#8c959f\"/>";
  double mid = (scale.lo + scale.hi) / 2;
  const double ticks[3][2] = {{scale.hi, 0.0}, {mid, 0.5}, {scale.lo, 1.0}};
  for (const auto& t : ticks)
    s += "<text x=\"" + num(bar_x + bar_w + 4) + "\" y=\"" + fmt(top + t[1] * bar_h + (t[1] == 0 ? 9 : t[1] == 1 ? 0 : 4)) +
         "\">" + esc(fmt(t[0])) + "</text>";
  s += "</svg>";
  return s;
}

std::vector<std::string> index_labels(int n) {
  std::vector<std::string> v;
  for (int i = 0; i < n; ++i) v.push_back(std::to_string(i));
  return v;
}

std::string status_badge(RunStatus st) {
  std::string n = run_status_name(st);
  return "<span class=\"status " + n + "\">" + n + "</span>";
}

void row(std::string& s, const std::string& k, const std::string& v_html) {
  s += "<tr><td>" + esc(k) + "</td><td>" + v_html + "</td></tr>";
}

void provenance(std::string& s, const Bundle& b) {
  s += "<table class=\"prov\">";
  if (b.model) {
    row(s, "model", "<code>" + esc(b.model->path.empty() ? "(in memory)" : b.model->path) + "</code> (" +
                        esc(b.model->architecture) + ", " + esc(fmt_count(b.model->n_params)) + " parameters, model " + std::to_string(b.model->id) + ")");
    row(s, "weights hash", "<code>" + esc(b.model->content_hash) + "</code>");
  } else {
    row(s, "model", "(none)");
  }
  row(s, "parameters", "<code>" + esc(b.run.spec.params_json) + "</code>");
  row(s, "mechscope", esc(b.run.mechscope_version));
  row(s, "started", esc(b.run.started_at.empty() ? "-" : b.run.started_at) + " &nbsp; finished " +
                        esc(b.run.finished_at.empty() ? "-" : b.run.finished_at));
  if (!b.run.spec.label.empty()) row(s, "label", esc(b.run.spec.label));
  if (!b.run.spec.resume_key.empty()) row(s, "resume key", "<code>" + esc(b.run.spec.resume_key) + "</code>");
  if (!b.run.error.empty()) row(s, "error", "<pre>" + esc(b.run.error) + "</pre>");
  for (const RunLink& l : b.links) {
    if (l.run_id == b.run.id)
      row(s, "link", esc(l.relation) + " <a href=\"#run-" + std::to_string(l.source_run_id) + "\">run " +
                         std::to_string(l.source_run_id) + "</a>");
    else
      row(s, "link", "<a href=\"#run-" + std::to_string(l.run_id) + "\">run " + std::to_string(l.run_id) +
                         "</a> " + esc(l.relation) + " this run");
  }
  s += "</table>";
  if (b.model) {
    nlohmann::json cfg = ms::parse_json_or_discarded(b.model->config_json);
    std::string pretty = cfg.is_discarded() ? b.model->config_json
                                            : cfg.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
    s += "<details><summary>model config</summary><pre>" + esc(pretty) + "</pre></details>";
  }
}

void scores_section(std::string& s, const Bundle& b, int top_k) {
  if (b.scores.empty()) return;
  s += "<h3>Head scores</h3><div class=\"figs\">";
  for (const HeadScores& h : b.scores) {
    ColorScale scale = scale_for(h);
    int cell = 0;
    RgbImage img = scores_image(h, scale, cell);
    s += "<figure class=\"heatmap\">";
    s += heatmap_svg(img, {"layer", index_labels(h.n_layers)}, {"head", index_labels(h.n_heads)}, scale);
    s += "<figcaption><b>" + esc(h.metric) + "</b>: " + std::to_string(h.n_layers) + " layers x " +
         std::to_string(h.n_heads) + " heads, " + (scale.map == Colormap::kViridis ? "viridis" : "diverging") +
         " " + esc(fmt(scale.lo)) + " to " + esc(fmt(scale.hi)) + "</figcaption></figure>";
  }
  s += "</div><h3>Top heads</h3><div class=\"figs\">";
  for (const HeadScores& h : b.scores) {
    s += "<table><tr><th colspan=\"3\">" + esc(h.metric) + (is_signed_metric(h) ? " (by |value|)" : "") +
         "</th></tr><tr><th>layer</th><th>head</th><th>value</th></tr>";
    for (const TopHead& t : top_heads(h, top_k))
      s += "<tr><td class=\"n\">" + std::to_string(t.layer) + "</td><td class=\"n\">" + std::to_string(t.head) +
           "</td><td class=\"n\">" + esc(fmt(t.value)) + "</td></tr>";
    s += "</table>";
  }
  s += "</div>";
}

void inputs_section(std::string& s, const Bundle& b) {
  if (b.inputs.empty()) return;
  s += "<h3>Inputs</h3>";
  for (const InputRecord& in : b.inputs) {
    s += "<div class=\"input\"><div class=\"sub\">input " + std::to_string(in.index) + ", " +
         std::to_string(in.token_ids.size()) + " tokens</div><pre class=\"prompt\">" + esc(in.text) + "</pre><div>";
    for (size_t i = 0; i < in.token_ids.size() && i < 512; ++i) {
      std::string label = i < in.tokens.size() ? token_display(in.tokens[i]) : token_id_label(in.token_ids[i]);
      s += "<span class=\"tok\" title=\"id " + std::to_string(in.token_ids[i]) + "\">" + esc(label) + "</span>";
    }
    if (in.token_ids.size() > 512) s += " ...";
    s += "</div></div>";
  }
}

// Labels of n cells that each cover `step` positions: the tokens when step is 1, else the first
// position of each block.
std::vector<std::string> token_labels(const Bundle& b, int input, int n, int step) {
  std::vector<std::string> v;
  const InputRecord* in = nullptr;
  for (const auto& x : b.inputs)
    if (x.index == input && step == 1) in = &x;
  for (int i = 0; i < n; ++i) {
    std::string l = in && i < static_cast<int>(in->tokens.size()) ? token_display(in->tokens[i]) : std::to_string(i * step);
    if (l.size() > 14) {  // cut at a character boundary (never inside a UTF-8 sequence)
      size_t cut = 13;
      while (cut > 0 && (static_cast<unsigned char>(l[cut]) & 0xC0) == 0x80) --cut;
      l = l.substr(0, cut) + "~";
    }
    v.push_back(l);
  }
  return v;
}

void tensors_section(std::string& s, Database& db, const Bundle& b) {
  if (b.tensors.empty()) return;
  std::string attn, other;
  for (const TensorInfo& t : b.tensors) {
    std::optional<Matrix> m = load_matrix(db, b.run.id, t);
    if (!m) continue;
    bool is_attn = meta_string(t.meta_json, "kind") == "attention";
    std::vector<double> vals = m->values;
    ColorScale scale = color_scale_for(vals, meta_string(t.meta_json, "kind") == "attribution");
    int cell = std::clamp(560 / std::max(m->rows, m->cols), 3, 28);
    RgbImage img = heatmap_image(m->values, m->rows, m->cols, scale, cell, cell, cell >= 14);
    Axis rows{"row", token_labels(b, -1, m->rows, m->row_step)}, cols{"column", token_labels(b, -1, m->cols, m->col_step)};
    int input = meta_int(t.meta_json, "input", -1);
    if (is_attn) {
      rows = {"query", token_labels(b, input, m->rows, m->row_step)};
      cols = {"key", token_labels(b, input, m->cols, m->col_step), m->col_step == 1};
    } else {
      std::string ry = meta_string(t.meta_json, "rows"), cx = meta_string(t.meta_json, "cols");
      if (!ry.empty()) rows.title = ry;
      if (!cx.empty()) cols.title = cx;
    }
    std::string fig = "<figure>" + heatmap_svg(img, rows, cols, scale) + "<figcaption><b>" + esc(t.name) +
                      "</b> " + esc(t.dtype) + " " + esc(nlohmann::json(t.shape).dump()) +
                      (m->row_step > 1 || m->col_step > 1
                           ? ", shown as means of " + std::to_string(m->row_step) + " x " +
                                 std::to_string(m->col_step) + " blocks"
                           : "") +
                      "</figcaption></figure>";
    (is_attn ? attn : other) += fig;
  }
  if (!attn.empty()) s += "<h3>Attention</h3><div class=\"figs\">" + attn + "</div>";
  if (!other.empty()) s += "<h3>Tensors</h3><div class=\"figs\">" + other + "</div>";
  s += "<h3>Stored tensors</h3><table><tr><th>name</th><th>dtype</th><th>shape</th><th>bytes</th>"
       "<th>stored</th><th>meta</th></tr>";
  for (const TensorInfo& t : b.tensors)
    s += "<tr><td><code>" + esc(t.name) + "</code></td><td>" + esc(t.dtype) + "</td><td>" +
         esc(nlohmann::json(t.shape).dump()) + "</td><td class=\"n\">" + std::to_string(t.raw_bytes) +
         "</td><td class=\"n\">" + std::to_string(t.stored_bytes) + "</td><td><code>" + esc(t.meta_json) +
         "</code></td></tr>";
  s += "</table>";
}

std::string circuit_svg(const Circuit& c) {
  if (c.nodes.empty()) return "<p class=\"sub\">(no nodes)</p>";
  std::map<int, std::vector<int>> by_layer;  // layer -> node indices
  for (size_t i = 0; i < c.nodes.size(); ++i) by_layer[c.nodes[i].layer].push_back(static_cast<int>(i));
  size_t widest = 1;
  for (const auto& [l, v] : by_layer) widest = std::max(widest, v.size());
  const int box_w = 76, box_h = 24, gap_x = 18, row_h = 64, margin = 20;
  int width = std::max<int>(260, static_cast<int>(widest) * (box_w + gap_x) + 2 * margin);
  int height = static_cast<int>(by_layer.size() - 1) * row_h + box_h + 2 * margin;
  std::vector<std::pair<double, double>> pos(c.nodes.size());
  int r = 0;
  for (auto it = by_layer.rbegin(); it != by_layer.rend(); ++it, ++r) {  // highest layer on top
    const auto& v = it->second;
    double span = static_cast<double>(v.size()) * (box_w + gap_x) - gap_x;
    double x0 = (width - span) / 2 + box_w / 2.0;
    for (size_t k = 0; k < v.size(); ++k) pos[v[k]] = {x0 + k * (box_w + gap_x), margin + r * row_h + box_h / 2.0};
  }
  double max_abs = 0;
  for (const auto& e : c.edges)
    if (!std::isnan(e.score)) max_abs = std::max(max_abs, std::fabs(e.score));
  std::string s = "<svg width=\"" + num(width) + "\" height=\"" +
                  num(height) + "\" role=\"img\">";
  for (const auto& e : c.edges) {
    if (e.src < 0 || e.dst < 0 || e.src >= static_cast<int>(pos.size()) || e.dst >= static_cast<int>(pos.size()))
      continue;
    double w = std::isnan(e.score) || max_abs == 0 ? 1.0 : 1.0 + 5.0 * std::fabs(e.score) / max_abs;
    const char* color = std::isnan(e.score) ? "#8c959f" : e.score >= 0 ? "#c94a3e" : "#3b7dbf";
    s += "<line x1=\"" + fmt(pos[e.src].first) + "\" y1=\"" + fmt(pos[e.src].second) + "\" x2=\"" +
         fmt(pos[e.dst].first) + "\" y2=\"" + fmt(pos[e.dst].second) + "\" stroke=\"" + color +
         "\" stroke-opacity=\"0.75\" stroke-width=\"" + fmt(w) + "\"><title>" +
         esc(c.nodes[e.src].name + " -> " + c.nodes[e.dst].name + ": " + fmt(e.score)) + "</title></line>";
  }
  for (size_t i = 0; i < c.nodes.size(); ++i) {
    const CircuitNode& n = c.nodes[i];
    const char* fill = n.kind == "head" ? "#dde8f6" : n.kind == "mlp" ? "#f3e6c8" : "#e6e6e6";
    s += "<g><title>" + esc(n.name + " (" + n.kind + "), score " + fmt(n.score)) + "</title><rect x=\"" +
         fmt(pos[i].first - box_w / 2.0) + "\" y=\"" + fmt(pos[i].second - box_h / 2.0) + "\" width=\"" +
         num(box_w) + "\" height=\"" + num(box_h) + "\" rx=\"5\" fill=\"" + fill +
         "\" stroke=\"#57606a\"/><text x=\"" + fmt(pos[i].first) + "\" y=\"" + fmt(pos[i].second + 4) +
         "\" text-anchor=\"middle\">" + esc(n.name.size() > 12 ? n.name.substr(0, 11) + "~" : n.name) +
         "</text></g>";
  }
  s += "</svg>";
  return s;
}

void circuits_section(std::string& s, const Bundle& b) {
  for (const Circuit& c : b.circuits) {
    s += "<h3>Circuit: " + esc(c.name) + "</h3><figure>" + circuit_svg(c) + "<figcaption>" +
         std::to_string(c.nodes.size()) + " nodes, " + std::to_string(c.edges.size()) +
         " edges; higher layers on top; edge width |score|, red positive, blue negative</figcaption></figure>";
  }
}

}  // namespace

std::string render_html(Database& db, const std::vector<Bundle>& runs, const ReportOptions& opts) {
  std::string s = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                  "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                  "<title>mechscope report</title><style>";
  s += kStyle;
  s += "</style></head><body>\n<h1>mechscope report</h1><div class=\"sub\">";
  std::string ids;
  for (const Bundle& b : runs) ids += (ids.empty() ? "" : ", ") + std::to_string(b.run.id);
  s += esc(std::to_string(runs.size()) + (runs.size() == 1 ? " run (" : " runs (") + ids + ") from " + db.path() +
           ", mechscope " + MECHSCOPE_VERSION);
  s += "</div>\n";
  for (const Bundle& b : runs) {
    s += "<section class=\"run\" id=\"run-" + std::to_string(b.run.id) + "\"><h2>Run " + std::to_string(b.run.id) +
         ": " + esc(b.run.spec.kind) + " " + status_badge(b.run.status) + "</h2>";
    provenance(s, b);
    scores_section(s, b, opts.top_k);
    s += "<h3>Reproduce</h3><pre class=\"command\">" +
         esc(b.run.spec.command.empty() ? "(no command recorded)" : b.run.spec.command) + "</pre>";
    inputs_section(s, b);
    tensors_section(s, db, b);
    circuits_section(s, b);
    features_html(s, b);
    s += "</section>\n";
  }
  s += "</body></html>\n";
  return s;
}

}  // namespace ms::report
