// The Ties subset's names and ids, shared by the RewardBench reader and
// scorer (internal; docs/rewardbench.md).
#pragma once

#include <cctype>
#include <cstdint>
#include <optional>
#include <string>

namespace openrm::rewardbench_detail {

inline std::string lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// run_v2.py picks the Ties subset with subset.lower() == "ties".
inline bool is_ties(const std::string& subset) { return lower(subset) == "ties"; }

// A Ties id, "ref:N" or "tied:N": process_single_model splits it on ':'
// into exactly two parts, looks the first up among "ref" and "tied" and
// takes int() of the second, so "tied:07" and "tied:7" are one prompt.
struct TiesId {
  bool ref = false;
  std::int64_t prompt = 0;
};

inline std::optional<TiesId> parse_ties_id(const std::string& id) {
  const std::size_t colon = id.find(':');
  if (colon == std::string::npos || id.find(':', colon + 1) != std::string::npos) return std::nullopt;
  const std::string kind = id.substr(0, colon), number = id.substr(colon + 1);
  if (kind != "ref" && kind != "tied") return std::nullopt;
  std::size_t start = (!number.empty() && (number[0] == '+' || number[0] == '-')) ? 1 : 0;
  if (start == number.size() || number.size() - start > 18) return std::nullopt;
  for (std::size_t i = start; i < number.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(number[i]))) return std::nullopt;
  }
  return TiesId{kind == "ref", std::stoll(number)};
}

inline constexpr const char* kTiesIdRule = "\"ref:N\" or \"tied:N\" with N an integer (the Ties subset pairs prompts by N)";

}  // namespace openrm::rewardbench_detail
