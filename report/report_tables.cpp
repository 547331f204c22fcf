// Scores as data files in long format, one row per (run, metric, layer, head): CSV (RFC 4180
// quoting) and JSON records, values printed with 17 significant digits so they read back exactly.
#include <cmath>
#include <nlohmann/json.hpp>

#include "report/report_common.h"

namespace ms::report {
namespace {

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

}  // namespace

std::string render_csv(const std::vector<Bundle>& runs) {
  std::string s = "run,metric,layer,head,value\n";
  for (const Bundle& b : runs)
    for (const HeadScores& h : b.scores)
      for (int l = 0; l < h.n_layers; ++l)
        for (int hd = 0; hd < h.n_heads; ++hd) {
          double v = h.at(l, hd);
          if (std::isnan(v)) continue;
          s += std::to_string(b.run.id) + "," + csv_field(h.metric) + "," + std::to_string(l) + "," +
               std::to_string(hd) + "," + fmt_exact(v) + "\n";
        }
  return s;
}

std::string render_json(const std::vector<Bundle>& runs) {
  // Written by hand (not nlohmann::json) so 1M rows stay fast and values keep 17 digits.
  std::string s = "[";
  bool first = true;
  for (const Bundle& b : runs)
    for (const HeadScores& h : b.scores) {
      std::string metric = nlohmann::json(h.metric).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      for (int l = 0; l < h.n_layers; ++l)
        for (int hd = 0; hd < h.n_heads; ++hd) {
          double v = h.at(l, hd);
          if (std::isnan(v)) continue;
          s += first ? "\n" : ",\n";
          first = false;
          s += "{\"run\":" + std::to_string(b.run.id) + ",\"metric\":" + metric + ",\"layer\":" + std::to_string(l) +
               ",\"head\":" + std::to_string(hd) + ",\"value\":" + (std::isfinite(v) ? fmt_exact(v) : "null") + "}";
        }
    }
  for (const Bundle& b : runs) features_json(s, first, b);
  s += "\n]\n";
  return s;
}

}  // namespace ms::report
