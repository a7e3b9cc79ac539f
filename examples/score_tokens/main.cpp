// score_tokens: scores token-id sequences with a reward model folder.
//
//   score_tokens MODEL_DIR SEQUENCES_FILE
//
// SEQUENCES_FILE holds one sequence per line, token ids separated by spaces
// (blank lines are skipped). Prints "index length reward" per sequence, all
// scored in one packed batch, then the largest difference between a sequence
// scored alone and the same sequence in the batch: batching must never change
// a score.
#include <openrm/models/reward_model.h>
#include <openrm/runtime.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

using Sequence = std::vector<std::int64_t>;

std::vector<Sequence> read_sequences(const std::string& path, std::int64_t vocab_size) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open");
  std::vector<Sequence> sequences;
  std::string line;
  for (int line_no = 1; std::getline(in, line); ++line_no) {
    std::istringstream words(line);
    Sequence ids;
    for (std::string word; words >> word;) {
      std::size_t used = 0;
      long long id = -1;
      try { id = std::stoll(word, &used); } catch (const std::exception&) {}
      if (used != word.size() || id < 0 || id >= vocab_size)
        throw std::runtime_error(path + ":" + std::to_string(line_no) + ": bad token '" + word +
                                 "' (expected an id in [0, " + std::to_string(vocab_size) + "))");
      ids.push_back(id);
    }
    if (!ids.empty()) sequences.push_back(std::move(ids));
  }
  if (sequences.empty()) throw std::runtime_error(path + ": no sequences");
  return sequences;
}

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: score_tokens MODEL_DIR SEQUENCES_FILE\n";
    return 2;
  }
  try {
    openrm::set_num_threads(0);  // all cores; LibTorch may start with one
    openrm::warn_if_reference_blas();
    auto model = openrm::load_reward_model(argv[1]);
    auto sequences = read_sequences(argv[2], model->config().vocab_size);

    std::vector<float> batched = model->score(sequences);  // one packed batch
    std::printf("%5s %6s %12s\n", "index", "length", "reward");
    for (std::size_t i = 0; i < sequences.size(); ++i)
      std::printf("%5zu %6zu %12.6f\n", i, sequences[i].size(), batched[i]);

    double max_diff = 0;
    for (std::size_t i = 0; i < sequences.size(); ++i) {
      double diff = std::fabs(double(model->score({sequences[i]}).at(0)) - batched[i]);
      if (!(diff <= max_diff)) max_diff = diff;  // lets a NaN through to the report
    }
    std::printf("max |alone - batched| = %.3e over %zu sequences\n", max_diff, sequences.size());
  } catch (const std::exception& e) {
    std::cerr << "score_tokens: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
