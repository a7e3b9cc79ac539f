// make_demo_data: writes the bundled demo preference dataset.
//
//   make_demo_data --output-dir data [--train 2400] [--test 400] [--seed 2026]
//
// Each pair asks for an answer on an everyday topic under one verifiable
// instruction ("answer in capital letters", "end with a question", "use a
// numbered list", "mention the word X", ...). The chosen answer follows the
// instruction; the rejected answer is about the same topic, written from the
// same sentences, and breaks it. Instructions come in opposite pairs (capitals
// / lower case, one sentence / several, list / paragraph, ...), so a model must
// read the instruction: no property of the answer alone predicts the label.
//
// The output is a pure function of the arguments: the same seed writes the
// same bytes (gzip with no timestamp). Every pair is checked with the
// constraint checker before it is written.
#include <nlohmann/json.hpp>
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iostream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "demo_constraints.h"

namespace {

using demo::Constraint;

struct Topic {
  const char* question;
  std::vector<const char*> sentences;  // plain statements, each ending in '.'
  std::vector<const char*> keywords;   // words that may appear in an answer
};

const std::vector<Topic>& topics() {
  static const std::vector<Topic> kTopics = {
      {"How often should I water a houseplant?",
       {"Most houseplants like their soil to dry out a little between waterings.",
        "Push a finger into the soil and water when the top few centimetres feel dry.",
        "Plants in bright light drink more than plants in a dim corner.",
        "Water less in winter, when growth slows down.",
        "A pot with a drainage hole keeps the roots from sitting in water.",
        "Yellow, soft leaves are often a sign of too much water."},
       {"soil", "roots", "light", "winter", "pot"}},
      {"What is a good way to start learning a new language?",
       {"Short daily practice works better than one long session a week.",
        "Learn the few hundred most common words first.",
        "Listening to simple podcasts trains your ear early on.",
        "Speaking with a patient partner builds confidence quickly.",
        "Flashcards with spaced repetition help words stick.",
        "Mistakes are part of the process and nothing to fear."},
       {"words", "practice", "podcasts", "partner", "flashcards"}},
      {"Why is the sky blue?",
       {"Sunlight contains every colour of visible light.",
        "Air molecules scatter short blue wavelengths much more than red ones.",
        "That scattered blue light reaches our eyes from every direction.",
        "At sunset the light travels through more air, so more blue is lost.",
        "This effect is called Rayleigh scattering.",
        "On the Moon, with no air, the daytime sky looks black."},
       {"sunlight", "molecules", "scattering", "sunset", "wavelengths"}},
      {"How can I sleep better?",
       {"Going to bed and waking up at the same time every day helps a lot.",
        "A cool, dark and quiet bedroom makes it easier to fall asleep.",
        "Caffeine late in the day can keep you awake for hours.",
        "Screens before bed delay the feeling of tiredness.",
        "A short walk in daylight improves sleep at night.",
        "If you cannot sleep, get up for a while and read something calm."},
       {"bedroom", "caffeine", "screens", "daylight", "routine"}},
      {"How do I make a simple tomato sauce?",
       {"Warm some olive oil in a pan and soften a chopped onion.",
        "Add a clove of garlic and cook it for a minute.",
        "Pour in a tin of chopped tomatoes and a pinch of salt.",
        "Let the sauce simmer gently for about twenty minutes.",
        "A few basil leaves at the end add a fresh taste.",
        "Taste it and adjust the salt before serving."},
       {"onion", "garlic", "tomatoes", "basil", "salt"}},
      {"What should I pack for a day hike?",
       {"Bring more water than you think you will need.",
        "A light jacket helps when the weather changes.",
        "Pack a snack with some salt and sugar for energy.",
        "A map and a charged phone help you find your way.",
        "Sturdy shoes protect your ankles on rough paths.",
        "Sunscreen and a hat are useful even on cloudy days."},
       {"water", "jacket", "map", "shoes", "sunscreen"}},
      {"How do vaccines work?",
       {"A vaccine shows the immune system a harmless piece or copy of a germ.",
        "The body learns to recognise that germ without getting sick.",
        "Memory cells remain ready long after the vaccination.",
        "If the real germ arrives later, the defence starts much faster.",
        "Some vaccines need a booster to keep the protection strong.",
        "When many people are protected, the germ spreads less."},
       {"immune", "germ", "memory", "booster", "protection"}},
      {"How can I save money on groceries?",
       {"Plan the meals for the week before you go shopping.",
        "Write a list and stick to it in the shop.",
        "Store brands are often as good as the famous ones.",
        "Buying vegetables in season usually costs less.",
        "Cooking larger portions and freezing some saves time and money.",
        "Avoid shopping when you are hungry."},
       {"list", "meals", "season", "brands", "freezing"}},
      {"What makes a good password?",
       {"A long password is harder to guess than a short clever one.",
        "Several random words joined together are easy to remember.",
        "Never reuse the same password on different sites.",
        "A password manager can create and store strong passwords for you.",
        "Turn on two-factor authentication wherever it is offered.",
        "Avoid names, birthdays and other facts people can find."},
       {"long", "random", "manager", "authentication", "reuse"}},
      {"How do I keep a sourdough starter alive?",
       {"Feed the starter with equal weights of flour and water.",
        "Keep it at room temperature if you bake often.",
        "In the fridge it only needs feeding about once a week.",
        "A layer of grey liquid on top just means it is hungry.",
        "Discard part of the starter before each feeding.",
        "Bubbles and a pleasant sour smell show it is healthy."},
       {"flour", "fridge", "bubbles", "feeding", "temperature"}},
      {"Why do cats purr?",
       {"Cats often purr when they are relaxed and content.",
        "Kittens purr to tell their mother that all is well.",
        "Some cats also purr when they are hurt or stressed.",
        "The sound comes from quick movements of the muscles in the larynx.",
        "The low vibration may even help bones and tissue heal.",
        "Each cat has its own purr, and some are surprisingly loud."},
       {"kittens", "muscles", "vibration", "relaxed", "larynx"}},
      {"How can I focus better while studying?",
       {"Put your phone in another room while you work.",
        "Study in blocks of about twenty-five minutes with short breaks.",
        "Decide before you start what you want to finish.",
        "Explaining a topic out loud shows what you have not understood yet.",
        "A tidy desk leaves fewer things to distract you.",
        "Sleep and exercise make concentration much easier."},
       {"phone", "breaks", "desk", "exercise", "blocks"}},
  };
  return kTopics;
}

std::string join_sentences(const std::vector<std::string>& sentences) {
  std::string out;
  for (const auto& s : sentences) out += (out.empty() ? "" : " ") + s;
  return out;
}

std::string to_upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string to_lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string numbered_list(const std::vector<std::string>& sentences) {
  std::string out;
  for (std::size_t i = 0; i < sentences.size(); ++i) {
    out += (i ? "\n" : "") + std::to_string(i + 1) + ". " + sentences[i];
  }
  return out;
}

// A sentence turned into a question about the same point.
std::string as_question(const std::string& sentence) {
  std::string s = sentence.substr(0, sentence.size() - 1);  // drop '.'
  s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  return "Did you know that " + s + "?";
}

class Generator {
 public:
  explicit Generator(std::uint64_t seed) : rng_(seed) {}

  std::size_t below(std::size_t n) { return static_cast<std::size_t>(rng_() % n); }

  // k distinct sentences of a topic, in a random order.
  std::vector<std::string> pick(const Topic& t, std::size_t k) {
    std::vector<std::string> all(t.sentences.begin(), t.sentences.end());
    for (std::size_t i = all.size(); i > 1; --i) std::swap(all[i - 1], all[below(i)]);
    all.resize(std::min(k, all.size()));
    return all;
  }

  const char* pick_keyword(const Topic& t) { return t.keywords[below(t.keywords.size())]; }

  nlohmann::json make_pair(std::int64_t id) {
    const Topic& t = topics()[below(topics().size())];
    const auto kind = static_cast<Constraint::Kind>(below(Constraint::kKinds));
    Constraint c{kind, ""};
    std::string chosen, rejected, instruction;
    const std::size_t n = 2 + below(2);  // sentences in a normal answer
    switch (kind) {
      case Constraint::kUppercase: {
        instruction = "Answer in capital letters only.";
        auto s = join_sentences(pick(t, n));
        chosen = to_upper(s);
        rejected = below(2) ? s : to_lower(s);
        break;
      }
      case Constraint::kLowercase: {
        instruction = "Answer using only lower-case letters.";
        auto s = join_sentences(pick(t, n));
        chosen = to_lower(s);
        rejected = below(2) ? s : to_upper(s);
        break;
      }
      case Constraint::kOneSentence: {
        instruction = "Answer in exactly one sentence.";
        auto s = pick(t, 3 + below(2));
        chosen = s[0];
        rejected = join_sentences(s);
        break;
      }
      case Constraint::kSeveralSentences: {
        instruction = "Answer in at least three sentences.";
        auto s = pick(t, 3 + below(2));
        chosen = join_sentences(s);
        rejected = s[0];
        break;
      }
      case Constraint::kNumberedList: {
        instruction = "Answer with a numbered list.";
        auto s = pick(t, 3);
        chosen = numbered_list(s);
        rejected = join_sentences(s);
        break;
      }
      case Constraint::kNoList: {
        instruction = "Answer in one paragraph, without a list.";
        auto s = pick(t, 3);
        chosen = join_sentences(s);
        rejected = numbered_list(s);
        break;
      }
      case Constraint::kEndWithQuestion: {
        instruction = "End your answer with a question.";
        auto s = pick(t, n + 1);
        std::vector<std::string> a(s.begin(), s.end() - 1);
        a.push_back(as_question(s.back()));
        chosen = join_sentences(a);
        rejected = join_sentences(s);
        break;
      }
      case Constraint::kNoQuestion: {
        instruction = "Do not ask any questions in your answer.";
        auto s = pick(t, n + 1);
        std::vector<std::string> a(s.begin(), s.end() - 1);
        a.push_back(as_question(s.back()));
        chosen = join_sentences(s);
        rejected = join_sentences(a);
        break;
      }
      case Constraint::kMentionWord: {
        // The chosen answer contains a sentence with the word, the rejected
        // one has the same number of sentences, none with it.
        const std::vector<std::string> all(t.sentences.begin(), t.sentences.end());
        for (int attempt = 0; attempt < 50 && (chosen.empty() || rejected.empty()); ++attempt) {
          c.word = pick_keyword(t);
          std::vector<std::string> with, without;
          for (const auto& s : pick(t, all.size())) {
            (demo::contains_word(s, c.word) ? with : without).push_back(s);
          }
          if (with.empty() || without.size() < n) continue;
          std::vector<std::string> a(without.begin(), without.begin() + static_cast<std::ptrdiff_t>(n - 1));
          a.insert(a.begin() + static_cast<std::ptrdiff_t>(below(n)), with[0]);
          chosen = join_sentences(a);
          rejected = join_sentences(std::vector<std::string>(without.begin(), without.begin() + static_cast<std::ptrdiff_t>(n)));
        }
        if (chosen.empty()) throw std::runtime_error(std::string("no sentence mentions a keyword of '") + t.question + "'");
        instruction = "Mention the word \"" + c.word + "\" in your answer.";
        break;
      }
    }
    if (!demo::satisfies(c, chosen) || demo::satisfies(c, rejected)) {
      throw std::runtime_error("internal error: pair " + std::to_string(id) + " (" +
                               demo::constraint_name(kind) + ") does not separate chosen from rejected");
    }
    return {{"id", id},
            {"constraint", demo::constraint_name(kind)},
            {"prompt", std::string(t.question) + " " + instruction},
            {"chosen", chosen},
            {"rejected", rejected}};
  }

 private:
  std::mt19937_64 rng_;
};

// Writes gzip with zlib's defaults: no file name and a zero timestamp, so
// the bytes depend only on the content.
void write_gz(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp";
  gzFile f = gzopen(tmp.c_str(), "wb9");
  if (f == nullptr) throw std::runtime_error(path + ": cannot open for writing");
  const bool ok = content.empty() ||
                  gzwrite(f, content.data(), static_cast<unsigned>(content.size())) == static_cast<int>(content.size());
  if (gzclose(f) != Z_OK || !ok) {
    std::remove(tmp.c_str());
    throw std::runtime_error(path + ": write failed");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw std::runtime_error(path + ": cannot rename into place");
  }
}

std::string make_split(Generator& g, std::int64_t first_id, std::int64_t count) {
  std::string out;
  for (std::int64_t i = 0; i < count; ++i) out += g.make_pair(first_id + i).dump() + "\n";
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string output_dir;
  std::int64_t train = 2400, test = 400;
  std::uint64_t seed = 2026;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(arg + " needs a value");
      return argv[++i];
    };
    try {
      if (arg == "--output-dir") output_dir = value();
      else if (arg == "--train") train = std::stoll(value());
      else if (arg == "--test") test = std::stoll(value());
      else if (arg == "--seed") seed = std::stoull(value());
      else throw std::runtime_error("unknown argument '" + arg + "'");
    } catch (const std::exception& e) {
      std::cerr << "make_demo_data: error: " << e.what()
                << "\nusage: make_demo_data --output-dir DIR [--train N] [--test N] [--seed S]\n";
      return 1;
    }
  }
  if (output_dir.empty() || train < 1 || test < 1) {
    std::cerr << "usage: make_demo_data --output-dir DIR [--train N] [--test N] [--seed S]\n";
    return 1;
  }
  try {
    Generator g(seed);
    const std::string train_path = output_dir + "/demo-prefs-train.jsonl.gz";
    const std::string test_path = output_dir + "/demo-prefs-test.jsonl.gz";
    write_gz(train_path, make_split(g, 0, train));
    write_gz(test_path, make_split(g, train, test));
    std::cout << "make_demo_data: wrote " << train << " pairs to " << train_path << " and " << test
              << " to " << test_path << " (seed " << seed << ")\n";
  } catch (const std::exception& e) {
    std::cerr << "make_demo_data: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
