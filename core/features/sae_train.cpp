// The SAE / transcoder trainer: forward, hand-written backward, Adam, dead-feature tracking, the
// training curve and checkpoints (see sae_train.h for the semantics followed).
#include "core/features/sae_train.h"
#include "core/features/topk_rows.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/InferenceMode.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "core/io/safetensors.h"

namespace fs = std::filesystem;

namespace ms {
namespace {

constexpr double kAdamEps = 1e-8;
constexpr int64_t kInitRows = 65536;  // rows read for the norm scaling factor and b_dec's mean
const char* const kCheckpointFile = "checkpoint.safetensors";

bool is_jump(SaeArch a) { return a == SaeArch::kJumpRelu || a == SaeArch::kJumpReluTranscoder; }

struct Trainer {
  const ActivationStore& store;
  const SaeTrainOptions& o;
  bool transcoder = false, jump = false, topk = false, skip = false, b_dec_in = false;
  int64_t d_in = 0, d_out = 0;
  double s_in = 1, s_out = 1;  // norm scaling factors
  std::vector<std::string> names;
  std::map<std::string, at::Tensor> p, m, v;  // parameters and Adam's moments
  // Reused every step (a fresh 10^7-float tensor per step costs page faults, not just bandwidth):
  // the matrices' gradients and Adam's denominators.
  std::map<std::string, at::Tensor> gbuf, dbuf;
  // The step's [batch, d_sae] tensors, reused across steps: a fresh 50 MB tensor (glibc maps
  // large blocks anew) costs about as much in page faults as a GEMM at GPT-2-small width.
  std::map<std::string, at::Tensor> sbuf;
  at::Tensor& step_buf(const std::string& name, at::IntArrayRef sizes) {
    at::Tensor& b = sbuf[name];
    if (!b.defined() || b.sizes() != sizes) b = at::empty(sizes, at::kFloat);
    return b;
  }
  at::Tensor since_fired;                     // [d_sae] float64: steps since each feature fired
  std::vector<SaeTrainPoint> curve;
  int64_t step = 0;

  Trainer(const ActivationStore& s, const SaeTrainOptions& opts) : store(s), o(opts) {
    transcoder = sae_is_transcoder(o.arch);
    jump = is_jump(o.arch);
    topk = o.arch == SaeArch::kTopK;
    skip = o.arch == SaeArch::kSkipTranscoder;
    b_dec_in = !transcoder;  // SAELens: apply_b_dec_to_input for SAEs, never for transcoders
    d_in = store.d_in();
    d_out = store.d_out();
    names = {"W_enc", "b_enc", "W_dec", "b_dec"};
    if (jump) names.push_back("log_threshold");
    if (skip) names.push_back("W_skip");
  }

  double mean_norm_factor(const at::Tensor& rows) const {
    return std::sqrt(static_cast<double>(rows.size(1))) / rows.to(at::kDouble).norm(2, {1}).mean().item<double>();
  }

  void init() {
    at::Tensor xs = store.head_rows(kInitRows, false);
    at::Tensor ys = transcoder ? store.head_rows(kInitRows, true) : xs;
    if (o.normalize_activations) {
      s_in = mean_norm_factor(xs);
      s_out = transcoder ? mean_norm_factor(ys) : s_in;
    }
    at::Generator gen = at::detail::createCPUGenerator(o.seed);
    const double dec_norm = topk ? 1.0 : o.decoder_init_norm;
    at::Tensor W_dec = at::randn({o.d_sae, d_out}, gen, at::kFloat);
    W_dec = W_dec / W_dec.norm(2, {1}, true) * dec_norm;
    at::Tensor W_enc;
    if (d_in == d_out) {
      W_enc = W_dec.t().contiguous();  // SAELens' init_encoder_as_decoder_transpose
    } else {
      W_enc = at::randn({d_in, o.d_sae}, gen, at::kFloat);
      W_enc = W_enc / W_enc.norm(2, {0}, true) * dec_norm;
    }
    p["W_enc"] = W_enc;
    p["W_dec"] = W_dec.contiguous();
    p["b_enc"] = at::zeros({o.d_sae}, at::kFloat);
    p["b_dec"] = o.b_dec_init_mean ? (ys.to(at::kDouble).mean(0) * s_out).to(at::kFloat) : at::zeros({d_out}, at::kFloat);
    if (jump) p["log_threshold"] = at::full({o.d_sae}, std::log(o.jumprelu_init_threshold), at::kFloat);
    if (skip) p["W_skip"] = at::zeros({d_out, d_in}, at::kFloat);
    for (const std::string& n : names) {
      m[n] = at::zeros_like(p[n]);
      v[n] = at::zeros_like(p[n]);
    }
    since_fired = at::zeros({o.d_sae}, at::kDouble);
  }

  void alloc_buffers() {
    if (!dbuf.empty()) return;
    for (const std::string& n : names) dbuf[n] = at::empty_like(p[n]);
    gbuf["W_enc"] = at::empty_like(p["W_enc"]);
    gbuf["W_dec"] = at::empty_like(p["W_dec"]);
  }

  double lr_at(int64_t t) const {
    double lr = o.lr;
    if (o.lr_warmup_steps > 0) lr *= std::min(1.0, static_cast<double>(t + 1) / static_cast<double>(o.lr_warmup_steps));
    if (o.lr_decay_steps > 0 && t >= o.steps - o.lr_decay_steps)
      lr *= static_cast<double>(o.steps - t) / static_cast<double>(o.lr_decay_steps);
    return lr;
  }

  double sparsity_coeff(int64_t t) const {
    const double c = jump ? o.l0_coefficient : o.l1_coefficient;
    if (o.sparsity_warmup_steps <= 0) return c;
    return c * std::min(1.0, static_cast<double>(t + 1) / static_cast<double>(o.sparsity_warmup_steps));
  }

  // One step on batch `step`: gradients by hand, Adam, the decoder's norm (topk), the dead counts.
  void train_step(bool log) {
    at::Tensor x, y;
    store.batch(step, o.batch_size, &x, transcoder ? &y : nullptr);
    x = x * s_in;  // (B, d_in); never in place: a batch may share the store's buffer
    at::Tensor target = transcoder ? y * s_out : x;  // (B, d_out)
    const double B = static_cast<double>(x.size(0));
    at::Tensor &W_enc = p["W_enc"], &b_enc = p["b_enc"], &W_dec = p["W_dec"], &b_dec = p["b_dec"];
    at::Tensor xc = b_dec_in ? x - b_dec : x;
    at::Tensor pre = at::addmm_out(step_buf("pre", {x.size(0), o.d_sae}), b_enc, xc, W_enc);  // (B, d_sae)
    at::Tensor acts, mask, thr;
    if (topk) {
      mask = sbuf["fired"];
      acts = topk_relu_rows(pre, std::min(o.k, o.d_sae), &mask, &sbuf["acts"]);  // row-parallel; = topk + scatter
      sbuf["fired"] = mask;
    } else if (jump) {
      thr = p["log_threshold"].exp();
      mask = pre > thr;
      acts = pre * mask;
    } else {
      mask = pre > 0;
      acts = at::relu_(pre);  // pre is not needed again
    }
    at::Tensor recon = at::addmm(b_dec, acts, W_dec);  // (B, d_out)
    if (skip) recon.addmm_(x, p["W_skip"].t());
    at::Tensor err = recon - target;
    at::Tensor d_recon = err * (2.0 / B);
    alloc_buffers();
    std::map<std::string, at::Tensor> g;
    g["W_dec"] = at::mm_out(gbuf["W_dec"], acts.t(), d_recon);  // (d_sae, d_out)
    g["b_dec"] = d_recon.sum(0);
    at::Tensor d_acts = at::mm_out(step_buf("d_acts", {x.size(0), o.d_sae}), d_recon, W_dec.t());  // (B, d_sae)
    const double coeff = sparsity_coeff(step);
    double sparsity_loss = 0, aux_loss = 0;
    if (jump) {
      // Straight-through estimates: d(pre * H(pre - t))/dt = -(t / bw) K, dH(pre - t)/dt = -(1 / bw) K,
      // K = rectangle((pre - t) / bw); log-threshold by the chain rule (x t).
      const double bw = o.jumprelu_bandwidth;
      at::Tensor rect = ((pre - thr).abs() < 0.5 * bw).to(at::kFloat);  // (B, d_sae)
      at::Tensor g_thr = -(d_acts * rect).sum(0) * thr / bw - rect.sum(0) * (coeff / (B * bw));
      g["log_threshold"] = g_thr * thr;
      if (log) sparsity_loss = coeff * mask.sum().item<double>() / B;
    } else if (!topk) {
      // L1 weighted by the decoder rows' norms: coeff * mean_b sum_j f_bj |W_dec_j|.
      at::Tensor norms = W_dec.norm(2, {1});  // (d_sae)
      d_acts.add_(norms * (coeff / B));
      g["W_dec"].add_(W_dec * (acts.sum(0) / norms * (coeff / B)).unsqueeze(1));
      if (log) sparsity_loss = coeff * (acts * norms).sum().item<double>() / B;
    }
    at::Tensor d_pre = d_acts.mul_(mask);  // d_acts is not needed again
    at::Tensor dead = since_fired >= static_cast<double>(o.dead_feature_window);
    const int64_t n_dead = dead.sum().item<int64_t>();
    if (topk && n_dead > 0 && o.aux_k_coefficient > 0) {
      // Aux-k: the dead features' top k_aux pre-activations reconstruct the residual.
      const int64_t k_aux = std::max<int64_t>(1, d_in / 2);
      const double scale = std::min(1.0, static_cast<double>(n_dead) / static_cast<double>(k_aux));
      at::Tensor idx = dead.nonzero().squeeze(1);  // (n_dead)
      auto top = pre.index_select(1, idx).topk(std::min(k_aux, n_dead), -1);
      at::Tensor aux_acts = at::zeros({x.size(0), n_dead}, at::kFloat).scatter_(-1, std::get<1>(top), at::relu(std::get<0>(top)));
      at::Tensor W_dead = W_dec.index_select(0, idx);  // (n_dead, d_out)
      at::Tensor aux_err = at::mm(aux_acts, W_dead) + err;  // recons - residual, residual = -(err) detached
      at::Tensor d_aux = aux_err * (2.0 * scale * o.aux_k_coefficient / B);
      g["W_dec"].index_add_(0, idx, at::mm(aux_acts.t(), d_aux));
      d_pre.index_add_(1, idx, at::mm(d_aux, W_dead.t()) * (aux_acts > 0));
      if (log) aux_loss = scale * aux_err.pow(2).sum().item<double>() / B;
    }
    g["W_enc"] = at::mm_out(gbuf["W_enc"], xc.t(), d_pre);  // (d_in, d_sae)
    g["b_enc"] = d_pre.sum(0);
    if (b_dec_in) g["b_dec"].sub_(at::mv(W_enc, g["b_enc"]));  // through x - b_dec: sum_b d_pre W_enc^T
    if (skip) g["W_skip"] = at::mm(d_recon.t(), x);

    const double lr = lr_at(step);
    ++step;
    const double bc1 = 1 - std::pow(o.adam_beta1, static_cast<double>(step));
    const double bc2 = 1 - std::pow(o.adam_beta2, static_cast<double>(step));
    for (const std::string& n : names) {
      m[n].mul_(o.adam_beta1).add_(g[n], 1 - o.adam_beta1);
      v[n].mul_(o.adam_beta2).addcmul_(g[n], g[n], 1 - o.adam_beta2);
      at::Tensor& denom = dbuf[n];  // sqrt(v / bc2) + eps
      at::sqrt_out(denom, v[n]).div_(std::sqrt(bc2)).add_(kAdamEps);
      p[n].addcdiv_(m[n], denom, -lr / bc1);
    }
    if (topk) W_dec.div_(W_dec.norm(2, {1}, true).clamp_min(1e-12));
    since_fired = at::where(mask.any(0), at::zeros_like(since_fired), since_fired + 1);

    if (log) {
      SaeTrainPoint pt;
      pt.step = step;
      const double se = err.to(at::kDouble).pow(2).sum().item<double>();
      at::Tensor td = target.to(at::kDouble);
      const double var = (td - td.mean(0)).pow(2).sum().item<double>();
      pt.mse = se / B / (s_out * s_out);
      pt.explained_variance = var > 0 ? 1 - se / var : 0;
      pt.l0 = mask.sum().item<double>() / B;
      pt.sparsity_loss = sparsity_loss;
      pt.aux_loss = aux_loss;
      pt.dead_features = (since_fired >= static_cast<double>(o.dead_feature_window)).sum().item<int64_t>();
      pt.lr = lr;
      curve.push_back(pt);
    }
  }

  std::string fingerprint() const {
    nlohmann::json j{{"arch", sae_arch_name(o.arch)}, {"d_sae", o.d_sae}, {"k", o.k}, {"batch_size", o.batch_size},
                     {"lr", o.lr}, {"l1", o.l1_coefficient}, {"l0", o.l0_coefficient}, {"seed", o.seed},
                     {"d_in", d_in}, {"d_out", d_out}, {"rows", store.size()}, {"normalize", o.normalize_activations},
                     {"bandwidth", o.jumprelu_bandwidth}, {"window", o.dead_feature_window}};
    return j.dump();
  }

  static std::string exact(double d) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.17g", d);
    return buf;
  }

  void save_checkpoint() const {
    if (o.checkpoint_dir.empty()) return;
    std::error_code ec;
    fs::create_directories(o.checkpoint_dir, ec);
    std::vector<std::pair<std::string, at::Tensor>> t;
    for (const std::string& n : names) {
      t.emplace_back(n, p.at(n));
      t.emplace_back("adam_m." + n, m.at(n));
      t.emplace_back("adam_v." + n, v.at(n));
    }
    t.emplace_back("steps_since_fired", since_fired);
    at::Tensor c = at::zeros({static_cast<int64_t>(curve.size()), 9}, at::kDouble);
    for (size_t i = 0; i < curve.size(); ++i) {
      const SaeTrainPoint& q = curve[i];
      double row[9] = {static_cast<double>(q.step), q.mse, q.explained_variance, q.l0, q.sparsity_loss,
                       q.aux_loss, static_cast<double>(q.dead_features), q.lr, 0};
      for (int k = 0; k < 9; ++k) c[static_cast<int64_t>(i)][k] = row[k];
    }
    t.emplace_back("curve", c);
    std::map<std::string, std::string> meta{{"step", std::to_string(step)}, {"options", fingerprint()},
                                            {"s_in", exact(s_in)}, {"s_out", exact(s_out)}};
    Status st = write_safetensors((fs::path(o.checkpoint_dir) / kCheckpointFile).string(), t, meta);
    if (!st) throw InputError(st.error().message, st.error().code);
  }

  // True when a checkpoint was found and loaded.
  bool load_checkpoint() {
    const std::string path = (fs::path(o.checkpoint_dir) / kCheckpointFile).string();
    if (o.checkpoint_dir.empty() || !fs::exists(path)) return false;
    auto f = SafetensorsFile::open(path);
    if (!f) throw InputError(f.error().message, f.error().code);
    const auto& meta = (*f)->metadata();
    auto get = [&](const std::string& k) {
      auto it = meta.find(k);
      if (it == meta.end()) fail_input(path + ": not a mechscope SAE training checkpoint (no '" + k + "' metadata)");
      return it->second;
    };
    if (get("options") != fingerprint())
      fail_input(path + ": the checkpoint was made with other training options or data (" + get("options") +
                 "); give the same options, or another --checkpoint-dir");
    auto read = [&](const std::string& n, c10::ScalarType dt) {
      const TensorView* tv = (*f)->find(n);
      if (!tv) fail_input(path + ": tensor '" + n + "' is missing");
      return to_tensor(*tv, dt).clone();
    };
    for (const std::string& n : names) {
      p[n] = read(n, at::kFloat);
      m[n] = read("adam_m." + n, at::kFloat);
      v[n] = read("adam_v." + n, at::kFloat);
    }
    since_fired = read("steps_since_fired", at::kDouble);
    at::Tensor c = read("curve", at::kDouble);
    curve.clear();
    for (int64_t i = 0; i < c.size(0); ++i) {
      auto r = c[i];
      curve.push_back({static_cast<int64_t>(r[0].item<double>()), r[1].item<double>(), r[2].item<double>(),
                       r[3].item<double>(), r[4].item<double>(), r[5].item<double>(),
                       static_cast<int64_t>(r[6].item<double>()), r[7].item<double>()});
    }
    step = std::stoll(get("step"));
    s_in = std::stod(get("s_in"));
    s_out = std::stod(get("s_out"));
    return true;
  }

  // The trained SAE in the activations' units: the scaling folded into the weights.
  std::shared_ptr<Sae> export_sae() const {
    auto sae = std::make_shared<Sae>();
    SaeConfig& c = sae->cfg;
    c.arch = o.arch;
    c.d_in = d_in;
    c.d_out = d_out;
    c.d_sae = o.d_sae;
    c.k = topk ? o.k : 0;
    c.apply_b_dec_to_input = b_dec_in;
    c.hook_name = o.hook_name;
    c.hook_name_out = o.hook_name_out;
    c.model_name = o.model_name;
    c.format = "saelens";
    c.source = "(trained)";
    sae->w.W_enc = (p.at("W_enc") * s_in).contiguous();
    sae->w.b_enc = p.at("b_enc").clone();
    sae->w.W_dec = (p.at("W_dec") / s_out).contiguous();
    sae->w.b_dec = p.at("b_dec") / s_out;
    if (jump) sae->w.threshold = p.at("log_threshold").exp();
    if (skip) sae->w.W_skip = (p.at("W_skip") * (s_in / s_out)).contiguous();
    return sae;
  }
};

}  // namespace

Result<SaeArch> parse_train_arch(const std::string& s) {
  return guard([&] {
    for (SaeArch a : {SaeArch::kStandard, SaeArch::kTopK, SaeArch::kJumpRelu, SaeArch::kTranscoder,
                      SaeArch::kSkipTranscoder, SaeArch::kJumpReluTranscoder}) {
      if (s == sae_arch_name(a)) return a;
    }
    fail_usage("architecture '" + s + "' cannot be trained (standard, topk, jumprelu, transcoder, skip_transcoder, "
               "jumprelu_transcoder)");
  });
}

Result<SaeTrainResult> train_sae(const ActivationStore& store, const SaeTrainOptions& o, const SaeTrainControl& control) {
  return guard([&] {
    c10::InferenceMode guard;
    if (o.arch == SaeArch::kGated) fail_usage("gated SAEs cannot be trained here (standard, topk, jumprelu, transcoders)");
    if (o.d_sae < 1) fail_usage("d_sae must be at least 1");
    if (o.arch == SaeArch::kTopK && (o.k < 1 || o.k > o.d_sae))
      fail_usage("k " + std::to_string(o.k) + " must be between 1 and d_sae " + std::to_string(o.d_sae));
    if (o.steps < 1 || o.batch_size < 1) fail_usage("steps and batch size must be at least 1");
    if (sae_is_transcoder(o.arch) != store.has_target())
      fail_usage(sae_is_transcoder(o.arch) ? "a transcoder needs an output hook point (the store has no targets)"
                                           : "an SAE's store must not have targets (give no output hook point)");
    auto t0 = std::chrono::steady_clock::now();
    Trainer tr(store, o);
    SaeTrainResult r;
    if (!(o.resume && tr.load_checkpoint())) tr.init();
    r.resumed_from = tr.step;
    while (tr.step < o.steps) {
      if (control.cancel && control.cancel->load()) {
        r.cancelled = true;
        break;
      }
      const bool log = o.log_every > 0 && ((tr.step + 1) % o.log_every == 0 || tr.step + 1 == o.steps);
      tr.train_step(log);
      if (o.checkpoint_every > 0 && tr.step % o.checkpoint_every == 0 && tr.step < o.steps) tr.save_checkpoint();
      if (control.progress) control.progress(tr.step, o.steps);
    }
    tr.save_checkpoint();
    r.sae = tr.export_sae();
    r.curve = tr.curve;
    r.steps_done = tr.step;
    r.norm_scaling_factor = tr.s_in;
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
  });
}

}  // namespace ms
