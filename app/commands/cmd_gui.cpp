// `mechscope gui`: the Dear ImGui workbench. Opens the window (only this command touches GLFW),
// hands over to the views' shell, and with --screenshot renders N settled frames of one view
// (--view) and saves the framebuffer as PNG for headless tests.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <thread>

#include <ATen/Parallel.h>

#include "app/commands/cli.h"
#include "report/png.h"
#include "core/base/atomic_file.h"
#include "runs/circuit_run.h"
#include "runs/dsae_circuit_run.h"
#include "runs/heads_run.h"
#include "runs/patch_run.h"
#include "runs/retrieval_run.h"
#include "runs/sae_features_run.h"
#include "runs/sae_train_run.h"
#include "runs/sae_heads_run.h"
#include "runs/sinks_run.h"
#include "views/analyses.h"
#include "views/attention_view.h"
#include "views/gui_window.h"
#include "views/registry.h"
#include "views/text_view.h"
#include "views/shell.h"

namespace ms::app {

namespace {
struct GuiOptions {
  std::string model, db, view, screenshot, prompt, scale, ablate, calibrate, launch, sae, size = "1280x800";
  std::string corrupted, hook;
  std::string text_heads, text_scale;
  std::vector<std::string> clicks;
  int frames = 3, layer = 0, head = 0, threads = 0, pin_token = -1;
  bool text_received = false, attention_grid = false;
  int64_t run = 0, compare = 0, steer_feature = -1;
  double steer = 0;
};

constexpr const char* kDefaultModel = "resources/models/default";

// "1.0,1.3" -> {(1,0), (1,3)} (HeadRef::parse_list); usage error naming the bad item.
std::vector<std::pair<int, int>> parse_heads(const std::string& text, const std::string& flag) {
  std::vector<std::pair<int, int>> out;
  if (text.empty()) return out;
  std::vector<HeadRef> hs;
  std::string e = HeadRef::parse_list(text, &hs);
  if (!e.empty()) fail_usage(flag + ": " + e);
  for (const HeadRef& h : hs) out.emplace_back(static_cast<int>(h.layer), static_cast<int>(h.head));
  return out;
}

// A --launch key=value of an analysis with an AnalysisSpec: true when key is one of its workbench
// parameters and value reads as one (into params).
bool spec_launch_param(const AnalysisSpec& spec, const std::string& key, const std::string& value, nlohmann::json& params) {
  const ParamDecl* d = spec.find(key);
  if (!d || !d->applies(kInGui)) return false;
  nlohmann::json v;
  if (!param_from_text(*d, value, &v).empty()) return false;
  params[key] = v;
  return true;
}

// --launch "KIND [key=value ...]": the Analyses window's parameters for a headless launch.
struct Launch {
  std::string kind;
  nlohmann::json patch = nlohmann::json::object(), circuit = nlohmann::json::object();
  nlohmann::json sae_circuit = nlohmann::json::object();
  nlohmann::json retrieval = nlohmann::json::object();
  views::SinksParams sinks;
  views::HeadsParams heads;
  views::SaeLaunchParams sae_train, sae_features, sae_heads;
};

Launch parse_launch(const std::string& text) {
  std::istringstream in(text);
  Launch l;
  in >> l.kind;
  if (l.kind != "sinks" && l.kind != "retrieval" && l.kind != "heads" && l.kind != "patch" && l.kind != "circuit" &&
      l.kind != "sae-train" && l.kind != "sae-features" && l.kind != "sae-heads" && l.kind != "sae-circuit")
    fail_usage("--launch '" + text + "': expected sinks, retrieval, heads, patch, circuit, sae-train, sae-features, "
               "sae-heads or sae-circuit, then key=value parameters");
  for (std::string kv; in >> kv;) {
    size_t eq = kv.find('=');
    std::string k = kv.substr(0, eq), v = eq == std::string::npos ? "" : kv.substr(eq + 1);
    bool ok = eq != std::string::npos;
    try {
      if (!ok) {
      } else if (l.kind == "sinks" && k == "prompts") l.sinks.prompts_file = v;
      else if (l.kind == "sinks") ok = spec_launch_param(sinks_spec(), k, v, l.sinks.params);
      else if (l.kind == "patch") ok = spec_launch_param(patch_spec(), k, v, l.patch);
      else if (l.kind == "circuit") ok = spec_launch_param(circuit_spec(), k, v, l.circuit);
      else if (l.kind == "sae-circuit") ok = spec_launch_param(dsae_circuit_spec(), k, v, l.sae_circuit);
      else if (l.kind == "retrieval") ok = spec_launch_param(retrieval_spec(), k, v, l.retrieval);
      else if (l.kind == "heads" && k == "prompts") l.heads.prompts_file = v;
      else if (l.kind == "heads" && k == "input") {
        ok = v == "prompt" || v == "random";
        l.heads.on_prompt = v == "prompt";
      } else if (l.kind == "heads") ok = spec_launch_param(heads_spec(), k, v, l.heads.params);
      else if (l.kind == "sae-train" && k == "prompts") l.sae_train.prompts_file = v;
      else if (l.kind == "sae-train") ok = spec_launch_param(sae_train_spec(), k, v, l.sae_train.params);
      else if (l.kind == "sae-features" && k == "prompts") l.sae_features.prompts_file = v;
      else if (l.kind == "sae-features") ok = spec_launch_param(sae_features_spec(), k, v, l.sae_features.params);
      else if (l.kind == "sae-heads" && k == "prompts") l.sae_heads.prompts_file = v;
      else if (l.kind == "sae-heads") ok = spec_launch_param(sae_heads_spec(), k, v, l.sae_heads.params);
      else ok = false;
    } catch (const std::logic_error&) {
      ok = false;
    }
    if (!ok) fail_usage("--launch: '" + kv + "' is not a parameter of " + l.kind + " (or its value is bad)");
  }
  return l;
}

int run_gui(const GuiOptions& o) {
  if (o.threads > 0) at::set_num_threads(o.threads);
  int width = 1280, height = 800;
  if (std::sscanf(o.size.c_str(), "%dx%d", &width, &height) != 2 || width < 200 || height < 150)
    fail_usage("--size '" + o.size + "': expected WIDTHxHEIGHT, at least 200x150");
  views::HeatScale scale = views::HeatScale::kLinear;
  if (!o.scale.empty() && !views::parse_heat_scale(o.scale, &scale))
    fail_usage("--scale '" + o.scale + "': expected linear, log or sink-clipped");
  const bool headless = !o.screenshot.empty();
  if (!o.view.empty() && !headless) fail_usage("--view needs --screenshot FILE.png");
  std::string model = o.model;
  if (model.empty() && std::filesystem::exists(kDefaultModel)) model = kDefaultModel;
  if (headless && model.empty() && o.view != "runs" && o.view != "circuit")
    fail_usage("--screenshot needs --model DIR (the default model " + std::string(kDefaultModel) + " is absent)");

  Launch launch;
  if (!o.launch.empty()) launch = parse_launch(o.launch);
  if (!o.launch.empty() && model.empty()) fail_usage("--launch needs a model");
  views::Workbench::TextHeads text_heads = views::Workbench::TextHeads::kHead;
  if (o.text_heads == "layer") text_heads = views::Workbench::TextHeads::kLayerMean;
  else if (o.text_heads == "all") text_heads = views::Workbench::TextHeads::kAllMean;
  else if (!o.text_heads.empty() && o.text_heads != "head")
    fail_usage("--text-heads '" + o.text_heads + "': expected head, layer or all");
  if (!o.text_scale.empty() && o.text_scale != "row-max" && o.text_scale != "absolute")
    fail_usage("--text-scale '" + o.text_scale + "': expected row-max or absolute");
  std::vector<std::pair<float, float>> clicks;
  for (const std::string& c : o.clicks) {
    float x = -1, y = -1;
    if (std::sscanf(c.c_str(), "%f,%f", &x, &y) != 2 || !headless)
      fail_usage("--click '" + c + "': expected X,Y (window pixels), with --screenshot");
    clicks.emplace_back(x, y);
  }
  std::vector<std::pair<int, int>> ablated = parse_heads(o.ablate, "--ablate");
  std::vector<std::pair<int, int>> calibrated = parse_heads(o.calibrate, "--calibrate");
  if (!o.view.empty()) {  // usage errors come before the display is touched
    views::TaskManager tasks;
    views::Settings none;
    views::Workbench probe(tasks, none);
    std::string keys;
    bool found = false;
    for (const auto& v : views::make_views(probe)) {
      keys += (keys.empty() ? "" : ", ") + v->key();
      found |= v->key() == o.view;
    }
    if (!found) fail_usage("--view '" + o.view + "': expected one of " + keys);
  }

  views::Settings settings;
  std::string config = headless ? "" : views::Settings::config_dir();
  if (!config.empty()) {
    settings.file = config + "/gui.txt";
    settings.load();
  }
  views::WindowOptions wo;
  wo.width = width;
  wo.height = height;
  wo.vsync = !headless;
  wo.ignore_mouse = headless;
  wo.ini_file = config.empty() ? "" : config + "/imgui.ini";
  wo.title = "mechscope " MECHSCOPE_VERSION;
  Result<std::unique_ptr<views::GuiWindow>> win = views::GuiWindow::open(wo);
  if (!win) throw InputError(win.error().message, win.error().code);

  views::Shell shell(settings);
  views::Workbench& wb = shell.workbench();
  if (!o.db.empty()) wb.db_path = o.db;
  if (!o.scale.empty()) wb.scale = scale;
  wb.layer = o.layer;
  wb.head = o.head;
  wb.selected_run = o.run;
  wb.compare_run = o.compare;
  wb.next_prompt = o.prompt;
  wb.ablated = ablated;
  wb.calibrated = calibrated;
  wb.corrupted_prompt = o.corrupted;
  wb.act_hook = o.hook;
  wb.pinned_token = o.pin_token;
  wb.text_heads = text_heads;
  wb.text_received = o.text_received;
  wb.text_absolute = o.text_scale == "absolute";
  if (text_heads != views::Workbench::TextHeads::kHead) wb.want_head_means = true;
  if (!o.view.empty()) shell.solo(o.view);
  if (views::View* v = shell.find("attention"); v && o.attention_grid) views::set_attention_grid(*v, true);
  if (!model.empty()) wb.open_model(model);
  bool launched = false, sae_loaded = false;

  // Interactive: until the window closes. Headless: until o.frames frames in a row found
  // nothing running (model loaded, forward pass adopted), then the screenshot. Each --click comes
  // once that many frames found nothing running (hover, press, release: three frames), in order.
  const int frames = std::max(1, o.frames);
  int settled = 0;      // frames in a row that found nothing running
  size_t next_click = 0;
  int click_stage = 0;  // of the next click: 0 hover, 1 press, 2 release
  auto t0 = std::chrono::steady_clock::now();
  while (!(*win)->should_close()) {
    if (next_click < clicks.size() && (click_stage > 0 || settled >= frames)) {
      (*win)->inject_mouse(clicks[next_click].first, clicks[next_click].second, click_stage == 1);
      if (++click_stage == 3) click_stage = 0, ++next_click;
      settled = 0;  // what the click starts settles before the next click or the screenshot
    }
    // Interactive and idle (nothing running): wait for input, at most 0.2 s.
    bool idle = !headless && !wb.busy() && !shell.tasks().busy();
    (*win)->begin_frame(idle ? 0.2 : 0);
    shell.frame();
    if (!o.sae.empty() && !sae_loaded && wb.model() && !wb.busy()) {  // once the model is in
      sae_loaded = true;
      if (!wb.load_sae(o.sae) && headless) {
        std::string title, why;
        wb.take_error(&title, &why);
        throw InputError("--sae " + o.sae + ": could not be loaded for this model: " + why);
      }
      wb.steer_feature = o.steer_feature;
      wb.steer_value = o.steer;
      wb.run_prompt();
    }
    if (!o.launch.empty() && !launched && wb.model() && !wb.busy()) {  // once the prompt has run
      if (launch.kind == "sinks") views::launch_sinks(wb, launch.sinks);
      if (launch.kind == "retrieval") views::launch_retrieval(wb, launch.retrieval);
      if (launch.kind == "heads") views::launch_heads(wb, launch.heads);
      if (launch.kind == "patch") views::launch_patch(wb, launch.patch);
      if (launch.kind == "circuit") views::launch_circuit(wb, launch.circuit);
      if (launch.kind == "sae-train") views::launch_sae_train(wb, launch.sae_train);
      if (launch.kind == "sae-features") views::launch_sae_features(wb, launch.sae_features);
      if (launch.kind == "sae-heads") views::launch_sae_heads(wb, launch.sae_heads);
      if (launch.kind == "sae-circuit") views::launch_sae_circuit(wb, launch.sae_circuit);
      launched = true;
    }
    (*win)->render();
    if (headless) {
      bool busy = wb.busy() || shell.tasks().busy() || (!o.launch.empty() && !launched && wb.model()) ||
                  (!o.sae.empty() && !sae_loaded && wb.model());
      settled = busy ? 0 : settled + 1;
      busy = busy || next_click < clicks.size();
      if (!busy && settled >= frames) {
        if (!model.empty() && !wb.model()) throw InputError(wb.model_error());
        RgbImage img = (*win)->read_pixels();
        write_file_atomic(o.screenshot, encode_png(img));
        std::printf("screenshot: %s %dx%d\n", o.screenshot.c_str(), img.width, img.height);
        if (views::View* v = shell.find("attention"); v && o.view == "attention")
          if (const views::HeatmapLayout* l = views::attention_layout(*v))
            std::printf("heatmap: x=%.2f y=%.2f cell_w=%.4f cell_h=%.4f rows=%d cols=%d key_labels=%d key_band=%.1f\n", l->x,
                        l->y, l->cell_w, l->cell_h, l->rows, l->cols, l->key_labels, l->key_band);
        if (views::View* v = shell.find("attention"); v && o.view == "attention")
          if (const views::ThumbGridLayout* g = views::attention_grid_layout(*v))
            std::printf("thumbs: n=%d cols=%d x=%.2f y=%.2f size=%.2f pitch_x=%.2f pitch_y=%.2f\n", g->n, g->cols, g->x, g->y,
                        g->size, g->pitch_x, g->pitch_y);
        if (views::View* v = shell.find("text"); v && o.view == "text")
          if (const views::TokenTextWidget* t = views::text_widget(*v)) {
            std::printf("text: focus=%d max=%.6g chips=%zu scale=%s view_y0=%.2f view_y1=%.2f scroll=%.2f\n", t->focus(),
                        t->focus_max(), t->chips().size(), t->absolute() ? "absolute" : "row-max", t->view_top(),
                        t->view_bottom(), t->scroll_y());
            for (const views::TokenChip& c : t->chips())
              std::printf("chip: token=%d x=%.2f y=%.2f w=%.2f h=%.2f value=%.6g\n", c.token, c.x, c.y, c.w, c.h, c.value);
          }
        std::printf("selected: layer=%d head=%d pinned_token=%d\n", wb.layer, wb.head, wb.pinned_token);
        if (views::View* v = shell.find(o.view)) std::printf("%s", v->layout_report().c_str());
        if (o.view.empty())  // the whole workbench: where each open window is, and its report
          for (const std::string& k : shell.view_keys())
            if (views::View* v = shell.find(k); v && v->open()) {
              const views::View::Rect& r = v->last_rect();
              std::printf("window: key=%s x=%.1f y=%.1f w=%.1f h=%.1f\n", k.c_str(), r.x, r.y, r.w, r.h);
              std::printf("%s", v->layout_report().c_str());
            }
        if (!wb.prompt_error().empty()) std::printf("prompt error: %s\n", wb.prompt_error().c_str());
        break;
      }
      if (std::chrono::steady_clock::now() - t0 > std::chrono::seconds(300))
        throw InputError("screenshot: the model or forward pass did not finish within 300 s", ErrorCode::kInternal);
      if (busy) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    (*win)->present();
  }
  return 0;
}
}  // namespace

void register_gui(CLI::App& app, std::vector<std::pair<CLI::App*, Command>>& cmds) {
  auto o = std::make_shared<GuiOptions>();
  CLI::App* cmd = app.add_subcommand("gui", "the interactive workbench (Dear ImGui + GLFW; needs a display)");
  cmd->add_option("--model", o->model, std::string("model folder or .gguf (default: ") + kDefaultModel + ")");
  cmd->add_option("--db", o->db, "database file (default: $MECHSCOPE_DB or ~/.local/share/mechscope/mechscope.db)");
  cmd->add_option("--view", o->view, "headless: render only this window (model, prompt, attention, text, heads, lens, contributions, activations, runs, circuit, features, analyses)");
  cmd->add_option("--frames", o->frames, "headless: settled frames to render before the screenshot")->check(CLI::Range(1, 100000));
  cmd->add_option("--screenshot", o->screenshot, "headless: save the framebuffer as PNG and exit");
  cmd->add_option("--sae", o->sae, "an SAE to load for the Features window (SAELens folder, params.npz or DIR/layer_N.safetensors)");
  cmd->add_option("--steer-feature", o->steer_feature, "with --sae: steer this feature in the second pass");
  cmd->add_option("--steer", o->steer, "with --steer-feature: the activation added at every position");
  cmd->add_option("--prompt", o->prompt, "the prompt to start with (ids separated by spaces for models without a tokenizer)");
  cmd->add_option("--layer", o->layer, "the attention layer to show")->check(CLI::NonNegativeNumber);
  cmd->add_option("--head", o->head, "the attention head to show")->check(CLI::NonNegativeNumber);
  cmd->add_option("--pin-token", o->pin_token, "Text window: pin this token (its attention shades the text)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--text-heads", o->text_heads, "Text window: whose attention: head (the selected one), layer (mean of its heads), all (mean of every head)");
  cmd->add_option("--text-scale", o->text_scale, "Text window: full shade at the row's maximum (row-max, the default) or at 1 (absolute)");
  cmd->add_flag("--text-received", o->text_received, "Text window: shade by attention the pinned token receives, not pays");
  cmd->add_option("--click", o->clicks, "headless: click the left button at X,Y (window pixels) once settled, then settle again; "
                 "repeat for several clicks, in order");
  cmd->add_flag("--attention-grid", o->attention_grid, "Attention window: every head of --layer as thumbnails");
  cmd->add_option("--scale", o->scale, "attention colour scale: linear, log, sink-clipped");
  cmd->add_option("--corrupted", o->corrupted, "a corrupted prompt for the Contributions window");
  cmd->add_option("--hook", o->hook, "a hook point whose activation the Activations window shows, e.g. blocks.0.hook_resid_post");
  cmd->add_option("--ablate", o->ablate, "heads whose output is zeroed in a second pass, e.g. 1.0,1.3 (Prompt shows both)");
  cmd->add_option("--calibrate", o->calibrate, "heads calibrated (ACT, beta 0.4) in the second pass, e.g. 1.2");
  cmd->add_option("--launch", o->launch, "start an analysis once the model is open and the prompt has run: 'sinks|retrieval|heads|patch|circuit|sae-train|sae-features|sae-heads|sae-circuit [key=value ...]' "
                 "(the Analyses window's parameters, e.g. 'retrieval lengths=32,48 depths=3 mask_top=2')");
  cmd->add_option("--run", o->run, "select this stored run (Runs, Circuit)");
  cmd->add_option("--compare", o->compare, "with --run: the Runs window compares it with this run (metrics, A, B and A - B grids)");
  cmd->add_option("--size", o->size, "window size WIDTHxHEIGHT")->capture_default_str();
  cmd->add_option("--threads", o->threads, "CPU threads of the model's work (0: LibTorch's default)")->check(CLI::NonNegativeNumber);
  cmds.emplace_back(cmd, [o]() { return run_gui(*o); });
}

}  // namespace ms::app
