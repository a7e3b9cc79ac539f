// score_examples: loads a trained reward-model folder and scores a few
// prompt/response pairs in-process, the way C++ RLHF code would.
//
//   score_examples MODEL_DIR
#include <iomanip>
#include <iostream>

#include "openrm/error.h"
#include "openrm/models/model_folder.h"
#include "openrm/runtime.h"
#include "openrm/tokenizer/chat_format.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: score_examples MODEL_DIR\n";
    return 1;
  }
  try {
    openrm::set_num_threads(0);
    openrm::RewardModelFolder folder = openrm::load_reward_model_folder(argv[1]);
    if (!folder.tokenizer) throw openrm::Error(std::string(argv[1]) + " has no tokenizer");
    struct Example {
      const char* prompt;
      const char* response;
    };
    const Example examples[] = {
        {"Why is the sky blue? Answer in capital letters only.",
         "AIR MOLECULES SCATTER SHORT BLUE WAVELENGTHS MUCH MORE THAN RED ONES."},
        {"Why is the sky blue? Answer in capital letters only.",
         "Air molecules scatter short blue wavelengths much more than red ones."},
        {"How can I sleep better? Answer with a numbered list.",
         "1. Keep a regular routine.\n2. Keep the bedroom cool and dark.\n3. Avoid caffeine late in the day."},
        {"How can I sleep better? Answer with a numbered list.",
         "Keep a regular routine. Keep the bedroom cool and dark. Avoid caffeine late in the day."},
        {"What should I pack for a day hike? End your answer with a question.",
         "Bring more water than you think you will need. Did you know that a map helps you find your way?"},
        {"What should I pack for a day hike? End your answer with a question.",
         "Bring more water than you think you will need. A map helps you find your way."},
    };
    std::vector<std::vector<std::int64_t>> sequences;
    for (const auto& e : examples) {
      auto ids = openrm::encode_chat(*folder.tokenizer, folder.chat_format,
                                     {{"user", e.prompt}, {"assistant", e.response}});
      sequences.emplace_back(ids.begin(), ids.end());
    }
    const std::vector<float> rewards = folder.model->score(sequences);
    for (std::size_t i = 0; i < sequences.size(); ++i) {
      std::string response = examples[i].response;
      for (char& c : response) c = c == '\n' ? ' ' : c;
      if (response.size() > 60) response = response.substr(0, 57) + "...";
      std::cout << std::fixed << std::setprecision(3) << std::setw(8) << rewards[i] << "  "
                << examples[i].prompt << "\n          -> " << response << "\n";
    }
  } catch (const std::exception& e) {
    std::cerr << "score_examples: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
