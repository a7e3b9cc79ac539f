#include "train/model_card.h"

#include <cmath>
#include <ctime>
#include <sstream>

#include "compat/torch_compat.h"

namespace openrm {
namespace {

std::string fixed(double v, int digits = 4) {
  if (!std::isfinite(v)) return "n/a";
  std::ostringstream out;
  out.setf(std::ios::fixed);
  out.precision(digits);
  out << v;
  return out.str();
}

void file_table(std::ostringstream& out, const std::vector<DataFileSummary>& files) {
  out << "| file | sha256 | records | pairs | invalid records skipped |\n|---|---|---|---|---|\n";
  for (const auto& f : files) {
    out << "| `" << f.path << "` | `" << f.sha256 << "` | " << f.records << " | " << f.pairs << " | "
        << f.skipped_invalid << " |\n";
  }
}

}  // namespace

std::string make_model_card(const ModelCardInputs& in) {
  const TrainOptions& o = in.options;
  const TrainResult& r = in.result;
  const ModelConfig& c = in.model->config();
  std::int64_t params = 0;
  for (const auto& p : in.model->parameters()) params += p.numel();
  std::ostringstream out;
  out << "# Reward model\n\n"
      << "A `" << c.architecture << "` reward model (one scalar output) trained with openrm's "
      << "Bradley-Terry trainer on " << today_utc() << ". It loads in openrm (`load_reward_model_folder`); `openrm-export` "
      << "writes it as a folder that transformers' `AutoModelForSequenceClassification` and "
      << "`AutoTokenizer` load (docs/export.md).\n\n"
      << "## Model\n\n"
      << "| | |\n|---|---|\n"
      << "| parameters | " << params << " |\n"
      << "| hidden size / layers / heads | " << c.hidden_size << " / " << c.num_hidden_layers << " / "
      << c.num_attention_heads << " |\n"
      << "| vocabulary | " << c.vocab_size << " |\n"
      << "| started from | "
      << (!o.init_model.empty() ? "reward model `" + o.init_model + "`"
          : !o.init_causal_lm.empty() ? "causal LM `" + o.init_causal_lm + "` (new score head)"
                                       : "random weights, config `" + o.init_config + "`")
      << " |\n"
      << "| tokenizer | `" << in.tokenizer << "` |\n"
      << "| chat format | `" << in.chat_format << "` |\n"
      << "| pooling | `" << pooling_name(in.model->pooling()) << "` |\n\n";

  out << "## Training data\n\n";
  file_table(out, in.train_files);
  out << "\nTruncation (max_length " << r.max_length << ", policy `" << o.truncation << "`): "
      << r.train_truncation.summary() << ".\n\n";
  if (!in.eval_files.empty()) {
    out << "## Evaluation data\n\n";
    file_table(out, in.eval_files);
    out << "\nTruncation: " << r.eval_truncation.summary() << ".\n\n";
  }

  out << "## Results\n\n";
  if (r.has_eval) {
    const PreferenceMetrics& m = r.eval;
    out << "On the held-out pairs after training:\n\n"
        << "| metric | value |\n|---|---|\n"
        << "| pairs | " << m.pairs << " |\n"
        << "| accuracy (a tie counts as wrong) | " << fixed(m.accuracy) << " |\n"
        << "| mean margin r_chosen - r_rejected | " << fixed(m.mean_margin) << " |\n"
        << "| Bradley-Terry loss | " << fixed(m.loss) << " |\n"
        << "| expected calibration error (10 bins) | " << fixed(m.ece) << " |\n"
        << "| reward mean / std | " << fixed(m.reward_mean) << " / " << fixed(m.reward_std) << " |\n";
    if (m.has_length_bias) {
      out << "| Pearson(reward, length) | " << fixed(m.length_bias.pearson) << " |\n"
          << "| longer response wins (model / data) | " << fixed(m.length_bias.longer_wins_rate) << " / "
          << fixed(m.length_bias.chosen_longer_rate) << " |\n";
    }
    out << "\nThe reward mean and std are stored in `openrm.json` (`reward_mean`, `reward_std`) for "
           "optional normalisation. `openrm-eval` on this folder and the same file gives these numbers: "
           "it takes the chat format, max_length and truncation policy from `openrm.json`.\n\n";
  } else {
    out << "No held-out data was given, so this model has **not been evaluated**.\n\n";
  }

  out << "## Training\n\n"
      << "| | |\n|---|---|\n"
      << "| optimizer steps | " << r.steps << " (" << r.skipped_steps << " skipped for non-finite values) |\n"
      << "| training pairs | " << r.train_pairs << " |\n"
      << "| throughput | " << fixed(r.pairs_per_second, 1) << " pairs/s, " << fixed(r.tokens_per_second, 0)
      << " tokens/s |\n"
      << "| wall time | " << fixed(in.wall_seconds, 1) << " s |\n"
      << "| device / threads | " << o.device << " / " << (o.threads > 0 ? std::to_string(o.threads) : "all")
      << " |\n"
      << "| LibTorch | " << compat::torch_version() << " |\n";
  if (r.resumed_from >= 0) out << "| resumed from step | " << r.resumed_from << " |\n";
  out << "\nAll settings are in `training_config.json`; per-step metrics in `metrics.jsonl`.\n\n"
      << "## Limitations\n\n"
      << "A reward model scores what its training pairs rewarded and nothing more. This one saw "
      << r.train_pairs << " pairs";
  if (r.has_eval) {
    out << " and was checked on " << r.eval.pairs << " held-out pairs from the same source";
  }
  out << "; its scores on other kinds of prompts, other chat formats or longer texts than "
      << r.max_length << " tokens are unknown. Check the length-bias figures before using its rewards "
         "for optimisation: a policy will exploit any preference for length.\n";
  return out.str();
}

std::string today_utc() {
  std::time_t now = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d", std::gmtime(&now));
  return buf;
}

}  // namespace openrm
