// SpecForm: ImGui fields from an AnalysisSpec.
#include "views/spec_form.h"

#include <imgui.h>
#include <imgui_stdlib.h>

namespace ms::views {

SpecForm::SpecForm(const AnalysisSpec& spec) : m_spec(spec) {
  for (const ParamDecl& d : spec.params) {
    if (!d.applies(kInGui)) continue;
    if (d.type == ParamType::kBool) m_flag[d.name] = !d.def.is_null() && d.def.get<bool>();
    else m_text[d.name] = d.def.is_null() ? "" : param_text(d, d.def);
  }
}

void SpecForm::draw() {
  ImGui::PushID(m_spec.kind.c_str());
  for (const ParamDecl& d : m_spec.params) {
    if (!d.applies(kInGui)) continue;
    if (d.type == ParamType::kBool) {
      ImGui::Checkbox(d.name.c_str(), &m_flag[d.name]);
    } else if (d.type == ParamType::kChoice) {
      std::string& v = m_text[d.name];
      ImGui::SetNextItemWidth(160);
      if (ImGui::BeginCombo(d.name.c_str(), v.c_str())) {
        for (const std::string& c : d.choices)
          if (ImGui::Selectable(c.c_str(), c == v)) v = c;
        ImGui::EndCombo();
      }
    } else {
      ImGui::SetNextItemWidth(d.type == ParamType::kPath || d.type == ParamType::kString || d.type == ParamType::kIntList ? -150.0f : 160.0f);
      auto hint = m_hint.find(d.name);
      if (hint != m_hint.end()) ImGui::InputTextWithHint(d.name.c_str(), hint->second.c_str(), &m_text[d.name]);
      else ImGui::InputText(d.name.c_str(), &m_text[d.name]);
    }
    if (ImGui::IsItemHovered()) ImGui::SetTooltip("%s", d.help.c_str());
  }
  ImGui::PopID();
}

std::string SpecForm::params(nlohmann::json* out) const {
  nlohmann::json p = nlohmann::json::object();
  for (const ParamDecl& d : m_spec.params) {
    if (!d.applies(kInGui)) continue;
    if (d.type == ParamType::kBool) {
      p[d.name] = m_flag.at(d.name);
      continue;
    }
    const std::string& text = m_text.at(d.name);
    if (text.empty() && d.def.is_string()) {  // an empty optional string: its default
      p[d.name] = d.def;
      continue;
    }
    nlohmann::json v;
    std::string e = param_from_text(d, text, &v);
    if (!e.empty()) return e;
    p[d.name] = v;
  }
  *out = p;
  return "";
}

}  // namespace ms::views
