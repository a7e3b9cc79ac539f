// The reward report of a trained folder (README.md): what the model is for,
// where it came from, what it learned from and how, how well it did, and
// what openrm could not know. docs/reward-reports.md lists the sections.
#include "train/model_card.h"

#include <cmath>
#include <ctime>
#include <sstream>

#include "compat/torch_compat.h"
#include "openrm/version.h"

namespace openrm {
namespace {

// A rate difference beyond which the card calls a length preference the
// model's own rather than the data's.
constexpr double kLengthBiasMargin = 0.05;

// A setting as the user wrote it: 1, 0.003, 1e-08 (not std::to_string's 1.000000).
std::string num(double v) {
  std::ostringstream out;
  out << v;
  return out.str();
}

void file_table(std::ostringstream& out, const std::vector<DataFileSummary>& files) {
  out << "| file | sha256 | records | pairs | invalid records skipped |\n|---|---|---|---|---|\n";
  for (const auto& f : files) {
    out << "| `" << f.path << "` | "
        << (f.sha256.empty() ? std::string("not hashed (not a regular file)") : "`" + f.sha256 + "`") << " | "
        << f.records << " | " << f.pairs << " | " << f.skipped_invalid << " |\n";
  }
}

std::string started_from(const TrainOptions& o) {
  if (!o.init_model.empty()) return "the reward model " + md_code(o.init_model);
  if (!o.init_causal_lm.empty()) return "the causal LM " + md_code(o.init_causal_lm) + " with a new score head";
  return "random weights (config " + md_code(o.init_config) + ")";
}

void lineage_section(std::ostringstream& out, const ModelCardInputs& in) {
  const TrainOptions& o = in.options;
  out << "## Lineage\n\n";
  if (!o.init_config.empty()) {
    out << "**Trained from random weights**: no pretrained model went into it. The weights were drawn fresh "
           "(normal, std "
        << o.init_std << ", seed " << o.seed << ") in the shape of " << md_code(o.init_config) << " (sha256 "
        << (in.init_config.sha256.empty() ? std::string("not recorded") : md_code(in.init_config.sha256))
        << ").\n\n";
  } else {
    out << "Training continued from "
        << (!o.init_model.empty() ? "a reward model" : "a causal language model, whose LM head was replaced by a "
                                                      "new score head drawn from the seed")
        << ".\n\n"
        << lineage_markdown(in.lineage);
  }
  if (o.lora_rank > 0) {
    out << "This folder holds LoRA adapters (rank " << o.lora_rank << ", alpha " << o.lora_alpha << ", on "
        << o.lora_targets.size() << " layer kinds) and the score head, trained over the frozen base above; "
           "`adapter_config.json` names the base, which loading needs (`openrm-export` writes the merged "
           "model).\n\n";
  }
  if (in.result.resumed_from >= 0) {
    out << "The run was resumed from its own checkpoint at step " << in.result.resumed_from
        << "; the options that change the trajectory were the same (docs/training.md).\n\n";
  }
  out << "Tokenizer: " << md_code(in.tokenizer) << " (its files are copied into this folder).\n\n";
}

void collection_section(std::ostringstream& out, const ModelCardInputs& in) {
  const TrainOptions& o = in.options;
  const TrainResult& r = in.result;
  const TrainingPairStats& s = in.train_stats;
  out << "## Preference collection\n\n"
      << "What openrm knows of how the preferences were made is what the files themselves show:\n\n"
      << "- record layout " << md_code(o.data_format) << "; " << r.train_read.records << " records gave "
      << r.train_read.pairs << " pairs";
  if (r.train_read.ranked_records > 0) {
    out << " (" << r.train_read.ranked_records << " ranked records expanded into every ordered pair)";
  }
  out << ";\n- " << s.with_margin << " of the " << s.pairs << " training pairs carry a preference margin"
      << (s.with_margin > 0 ? (o.use_margin ? ", which the loss used" : ", which the loss ignored (use_margin false)")
                            : "")
      << ";\n- the chosen response is the longer one in " << fixed(s.chosen_longer_rate) << " of the "
      << s.pairs_with_length_difference
      << " training pairs whose sides differ in length (sequence tokens after truncation): the data's own length "
         "preference.\n\n"
      << "**Not recorded**: who wrote the prompts and the responses (people, or which models), who judged them "
         "(people or an AI judge) and with what instructions, how much the judges agreed, when and why the data "
         "was collected, and whether it was filtered. openrm reads only the pairs; the dataset's own "
         "documentation is where these belong.\n\n";
}

void training_section(std::ostringstream& out, const ModelCardInputs& in) {
  const TrainOptions& o = in.options;
  const TrainResult& r = in.result;
  out << "## Training\n\n"
      << "| | |\n|---|---|\n"
      << "| objective | Bradley-Terry: -log sigmoid(r_chosen - r_rejected" << (o.use_margin ? " - margin" : "")
      << ")" << (o.center_rewards_coefficient > 0 ? " + " + num(o.center_rewards_coefficient) +
                                                        " (r_chosen + r_rejected)^2 (reward centering)"
                                                  : std::string())
      << " |\n"
      << "| optimizer | AdamW, lr " << o.lr << ", betas " << o.beta1 << " / " << o.beta2 << ", eps " << o.eps
      << ", weight decay " << o.weight_decay << " |\n"
      << "| schedule | " << o.schedule << " after " << o.warmup_steps << " warm-up steps, down to "
      << o.min_lr_ratio << " x lr |\n"
      << "| optimizer steps | " << r.steps << " (" << r.skipped_steps << " skipped for non-finite values) |\n"
      << "| epochs / max_steps | " << o.epochs << " / " << o.max_steps << " |\n"
      << "| training pairs | " << r.train_pairs << " |\n"
      << "| micro-batch budget / accumulation | " << o.max_tokens << " tokens / " << o.grad_accum << " |\n"
      << "| gradient clipping | " << (o.max_grad_norm > 0 ? num(o.max_grad_norm) : std::string("none"))
      << " |\n"
      << "| seed / shuffle | " << o.seed << " / " << (o.shuffle ? "true" : "false") << " |\n"
      << "| LoRA | " << (o.lora_rank > 0 ? "rank " + std::to_string(o.lora_rank) : std::string("none: every weight trained"))
      << " |\n"
      << "| throughput | " << fixed(r.pairs_per_second, 1) << " pairs/s, " << fixed(r.tokens_per_second, 0)
      << " tokens/s |\n"
      << "| wall time | " << fixed(in.wall_seconds, 1) << " s |\n"
      << "| device / dtype / threads / processes | " << o.device << " / " << o.dtype << " / "
      << (o.threads > 0 ? std::to_string(o.threads) : "all") << " / " << in.world_size << " |\n"
      << "| openrm / LibTorch | " << OPENRM_VERSION_STRING << " / " << compat::torch_version() << " |\n";
  if (r.resumed_from >= 0) out << "| resumed from step | " << r.resumed_from << " |\n";
  out << "\nAll settings are in `training_config.json` (`openrm-train --config training_config.json` retrains "
         "the model); per-step metrics in `metrics.jsonl`.\n\n";
}

void evaluation_section(std::ostringstream& out, const ModelCardInputs& in) {
  const TrainResult& r = in.result;
  out << "## Evaluation at the end of training\n\n";
  if (!r.has_eval) {
    out << "No held-out data was given, so this model has **not been evaluated**; `openrm-eval --update-card` "
           "adds an evaluation below.\n\n";
    return;
  }
  const PreferenceMetrics& m = r.eval;
  out << "On the held-out pairs of " << md_code(in.options.eval_data) << " (hashed above):\n\n"
      << "| metric | value |\n|---|---|\n"
      << "| pairs | " << m.pairs << " |\n"
      << "| accuracy (a tie counts as wrong) | " << fixed(m.accuracy) << " |\n"
      << "| ties | " << m.ties << " |\n"
      << "| mean margin r_chosen - r_rejected | " << fixed(m.mean_margin) << " |\n"
      << "| Bradley-Terry loss | " << fixed(m.loss) << " |\n"
      << "| expected calibration error (" << m.calibration.size() << " bins) | " << fixed(m.ece) << " |\n"
      << "| reward mean / std | " << fixed(m.reward_mean) << " / " << fixed(m.reward_std) << " |\n";
  if (!m.calibration.empty()) {
    out << "\nCalibration of P(chosen preferred) = sigmoid(r_chosen - r_rejected), over both orderings of each "
           "pair:\n\n| bin | predictions | mean predicted | observed frequency |\n|---|---|---|---|\n";
    for (std::size_t i = 0; i < m.calibration.size(); ++i) {
      const CalibrationBin& b = m.calibration[i];
      const bool last = i + 1 == m.calibration.size();  // it includes 1
      out << "| [" << fixed(b.lower, 1) << ", " << fixed(b.upper, 1) << (last ? "]" : ")") << " | " << b.count << " | "
          << fixed(b.mean_predicted) << " | " << fixed(b.observed_frequency) << " |\n";
    }
  }
  out << "\nThe reward mean and std are stored in `openrm.json` (`reward_mean`, `reward_std`) for optional "
         "normalisation. `openrm-eval` on this folder and the same file gives these numbers: it takes the chat "
         "format, max_length and truncation policy from `openrm.json`.\n\n";
}

void biases_section(std::ostringstream& out, const ModelCardInputs& in) {
  const TrainResult& r = in.result;
  out << "## Known biases\n\n";
  if (r.has_eval && r.eval.has_length_bias) {
    const LengthBias& b = r.eval.length_bias;
    const double excess = b.longer_wins_rate - b.chosen_longer_rate;
    out << "Length, on the held-out pairs (sequence tokens):\n\n| | |\n|---|---|\n"
        << "| Pearson(reward, length) | " << fixed(b.pearson) << " |\n"
        << "| longer response wins (model / data) | " << fixed(b.longer_wins_rate) << " / "
        << fixed(b.chosen_longer_rate) << " (of " << b.pairs_with_length_difference
        << " pairs whose sides differ in length) |\n\n";
    if (!std::isfinite(excess)) {
      out << "The rates could not be compared (no pair with a length difference).\n\n";
    } else if (excess > kLengthBiasMargin) {
      out << "The longer response wins under the model in a share " << fixed(excess, 2)
          << " higher than the data's labels choose it: the model prefers length more than its data does, and a "
             "policy optimised against it is likely to lengthen its responses without making them better.\n\n";
    } else if (excess < -kLengthBiasMargin) {
      out << "The longer response wins under the model in a share " << fixed(-excess, 2)
          << " lower than the data's labels choose it: the model prefers shorter responses than its data does, "
             "and a policy optimised against it may shorten its responses.\n\n";
    } else {
      out << "The model's longer-wins rate is within " << kLengthBiasMargin
          << " of the data's chosen-longer rate: it follows the data's length preference, which is itself a "
             "bias when that rate is far from 0.5.\n\n";
    }
  } else {
    out << "Length bias was **not measured**: there was no held-out data. The training data's chosen side is the "
           "longer one in "
        << fixed(in.train_stats.chosen_longer_rate) << " of its pairs with a length difference (above), which "
                                                         "a model trained on it tends to learn.\n\n";
  }
  out << "openrm measures no other bias (position, style, sycophancy, topics, languages, dialects or groups of "
         "people); none of them is known to be absent.\n\n";
}

}  // namespace

void add_card_lineage(ModelCardInputs& in) {
  const TrainOptions& o = in.options;
  if (!o.init_model.empty()) {
    in.lineage = describe_lineage(o.init_model, "reward model");
  } else if (!o.init_causal_lm.empty()) {
    in.lineage = describe_lineage(o.init_causal_lm, "causal LM");
  } else {
    in.init_config = {o.init_config, hash_file_logged(o.init_config), 0};
  }
}

std::string make_model_card(const ModelCardInputs& in) {
  const TrainOptions& o = in.options;
  const TrainResult& r = in.result;
  const ModelConfig& c = in.model->config();
  std::int64_t params = 0;
  for (const auto& p : in.model->parameters()) params += p.numel();
  std::ostringstream out;
  out << "# Reward report: `" << c.architecture << "` reward model\n\n"
      << "A `" << c.architecture << "` reward model (one scalar output) trained with openrm " << OPENRM_VERSION_STRING
      << "'s Bradley-Terry trainer on " << today_utc() << ", from " << started_from(o) << ". It loads in openrm "
      << "(`load_reward_model_folder`); `openrm-export` writes it as a folder that transformers' "
      << "`AutoModelForSequenceClassification` and `AutoTokenizer` load (docs/export.md).\n\n"
      << "This card is a reward report in the spirit of Gilbert et al., *Reward Reports for Reinforcement "
         "Learning* (2022): what the model is for, where it came from, what it learned from and how, how well it "
         "did, its measured biases and its limits. What openrm cannot know is marked **not recorded**.\n\n"
      << intended_use_section()
      << "## Model\n\n"
      << "| | |\n|---|---|\n"
      << "| parameters | " << params << " |\n"
      << "| hidden size / layers / heads | " << c.hidden_size << " / " << c.num_hidden_layers << " / "
      << c.num_attention_heads << " |\n"
      << "| vocabulary | " << c.vocab_size << " |\n"
      << "| started from | " << started_from(o) << " |\n"
      << "| tokenizer | `" << in.tokenizer << "` |\n"
      << "| chat format | `" << in.chat_format << "` |\n"
      << "| pooling | `" << pooling_name(in.model->pooling()) << "` |\n\n";
  lineage_section(out, in);

  out << "## Training data\n\n";
  file_table(out, in.train_files);
  out << "\nLicence of the data: "
      << (o.data_license.empty() ? std::string("**not stated** (openrm-train's `--data-license` records it)")
                                 : md_code(o.data_license) + " (as given to openrm-train; openrm does not check it)")
      << ". The model's own licence is a separate choice (`openrm-export --license`), which the data's may "
         "constrain.\n\n"
      << "Truncation (max_length " << r.max_length << ", policy `" << o.truncation << "`): "
      << r.train_truncation.summary() << ".\n\n";
  if (!in.eval_files.empty()) {
    out << "## Evaluation data\n\n";
    file_table(out, in.eval_files);
    out << "\nTruncation: " << r.eval_truncation.summary() << ".\n\n";
  }
  collection_section(out, in);
  training_section(out, in);
  evaluation_section(out, in);
  biases_section(out, in);

  out << "## Limitations\n\n"
      << "A reward model scores what its training pairs rewarded and nothing more. This one saw " << r.train_pairs
      << " pairs";
  if (r.has_eval) out << " and was checked on " << r.eval.pairs << " held-out pairs";
  out << "; its scores on other kinds of prompts, other chat formats or longer texts than " << r.max_length
      << " tokens are unknown. Accuracy on held-out pairs from the same source says little about pairs from "
         "elsewhere, and nothing about whether the judges' preferences were right. Check the length-bias figures "
         "before using its rewards for optimisation: a policy will exploit any preference for length, and any "
         "other flaw of the reward, the more the harder it is optimised.\n\n"
      << evaluations_heading_section();
  return out.str();
}

std::string today_utc() {
  std::time_t now = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d", std::gmtime(&now));
  return buf;
}

}  // namespace openrm
