// Preference data: the JSONL line reader (plain, gzip, stdin, broken input),
// each record layout of read_preferences, every error case with its file,
// line and field, skip_invalid, score records, and the real hh-rlhf file
// against an outside Python split.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "openrm/data/jsonl.h"
#include "openrm/data/preference.h"
#include "openrm/io/file.h"
#include "test_io_util.h"
#include "test_paths.h"
#include "test_util.h"

namespace openrm {
namespace {

using json = nlohmann::json;
using test::contains;
using test::error_of;
using test::starts_with;
using test::TempDir;

// Writes `bytes` gzip-compressed with the gzip tool (Debian's gzip is an
// essential package), a writer independent of the zlib the reader uses.
void write_gz(const std::string& path, const std::string& bytes) {
  test::write_bytes(path + ".plain", bytes);
  std::string command = "gzip -c -n '" + path + ".plain' > '" + path + "'";
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  std::remove((path + ".plain").c_str());
}

std::vector<std::string> all_lines(const std::string& path, std::vector<std::int64_t>* numbers) {
  JsonlReader reader(path);
  std::vector<std::string> lines;
  std::string line;
  while (reader.next(line)) {
    lines.push_back(line);
    if (numbers) numbers->push_back(reader.line_number());
  }
  return lines;
}

Conversation msgs(std::initializer_list<std::pair<const char*, const char*>> list) {
  Conversation conversation;
  for (const auto& [role, content] : list) conversation.push_back(Message{role, content});
  return conversation;
}

// Compares conversations with a readable failure.
std::string show(const Conversation& conversation) {
  std::string text;
  for (const Message& m : conversation) text += "[" + m.role + ": " + m.content + "]";
  return text;
}
#define EXPECT_CONV(actual, expected) EXPECT_EQ(show(actual), show(expected))

// A test with a temporary folder and a file "d.jsonl" in it.
class DataTest : public ::testing::Test {
 protected:
  std::string write(const std::string& content, const std::string& name = "d.jsonl") {
    std::string path = dir_.file(name);
    test::write_bytes(path, content);
    return path;
  }
  PreferenceData read(const std::string& content, const ReadOptions& options = {}) {
    return read_preferences(write(content), options);
  }
  // The message read_preferences throws for `content`.
  std::string read_error(const std::string& content, const ReadOptions& options = {}) {
    std::string path = write(content);
    return error_of([&] { read_preferences(path, options); });
  }
  TempDir dir_;
};

// ---- the line reader ----------------------------------------------------

TEST(Utf8, FindsTheFirstInvalidByte) {
  EXPECT_EQ(find_invalid_utf8("plain ascii"), std::string_view::npos);
  EXPECT_EQ(find_invalid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), std::string_view::npos);
  EXPECT_EQ(find_invalid_utf8("ab\xff"), 2u);
  EXPECT_EQ(find_invalid_utf8("a\xc0\x80"), 1u);         // overlong NUL
  EXPECT_EQ(find_invalid_utf8("\xe0\x80\xaf"), 0u);      // overlong '/'
  EXPECT_EQ(find_invalid_utf8("x\xed\xa0\x80"), 1u);     // surrogate U+D800
  EXPECT_EQ(find_invalid_utf8("\xf4\x90\x80\x80"), 0u);  // above U+10FFFF
  EXPECT_EQ(find_invalid_utf8("ok\xe2\x82"), 2u);        // cut short
  EXPECT_EQ(find_invalid_utf8("\x80"), 0u);              // lone continuation
  EXPECT_EQ(find_invalid_utf8(std::string("a\0b", 3)), std::string_view::npos);
}

TEST_F(DataTest, LinesNumbersBlankLinesCrLfAndBom) {
  std::string path = write("\xEF\xBB\xBF{\"a\":1}\r\n\n   \r\n{\"b\":2}\n\t\n{\"c\":3}");
  std::vector<std::int64_t> numbers;
  auto lines = all_lines(path, &numbers);
  EXPECT_EQ(lines, (std::vector<std::string>{"{\"a\":1}", "{\"b\":2}", "{\"c\":3}"}));
  EXPECT_EQ(numbers, (std::vector<std::int64_t>{1, 4, 6}));
  JsonlReader reader(path);
  std::string line;
  while (reader.next(line)) {
  }
  EXPECT_EQ(reader.lines_read(), 6);
}

TEST_F(DataTest, GzipAndPlainGiveTheSameLines) {
  std::string content;
  for (int i = 0; i < 20000; ++i) content += "{\"i\": " + std::to_string(i) + "}\n\n";
  std::string plain = write(content);
  write_gz(dir_.file("d.jsonl.gz"), content);
  std::vector<std::int64_t> plain_numbers, gz_numbers;
  auto a = all_lines(plain, &plain_numbers);
  auto b = all_lines(dir_.file("d.jsonl.gz"), &gz_numbers);
  EXPECT_EQ(a.size(), 20000u);
  EXPECT_EQ(a, b);
  EXPECT_EQ(plain_numbers, gz_numbers);
  EXPECT_EQ(gz_numbers.back(), 39999);
  // Concatenated gzip members read as one stream.
  write_gz(dir_.file("x.gz"), "{\"x\": 1}\n");
  std::string gz = test::read_bytes(dir_.file("d.jsonl.gz"));
  auto both =
      all_lines(write(gz + test::read_bytes(dir_.file("x.gz")) + gz, "m.jsonl.gz"), nullptr);
  ASSERT_EQ(both.size(), 40001u);
  EXPECT_EQ(both[20000], "{\"x\": 1}");
}

TEST_F(DataTest, MissingFileAndFolderAreNamed) {
  std::string missing = dir_.file("nope.jsonl");
  std::string message = error_of([&] { JsonlReader reader(missing); });
  EXPECT_TRUE(starts_with(message, missing + ": cannot open"));
  EXPECT_TRUE(contains(message, "No such file"));
  EXPECT_TRUE(starts_with(error_of([&] { read_preferences(missing); }), missing));
  EXPECT_TRUE(contains(error_of([&] { JsonlReader reader(dir_.path()); }), "is a folder"));
}

TEST_F(DataTest, TruncatedAndCorruptGzipAreErrorsNamingTheFile) {
  std::string content;
  for (int i = 0; i < 20000; ++i) content += "{\"i\": " + std::to_string(i) + "}\n";
  write_gz(dir_.file("full.gz"), content);
  std::string gz = test::read_bytes(dir_.file("full.gz"));
  std::string truncated = write(gz.substr(0, gz.size() / 2), "cut.jsonl.gz");
  std::string message = error_of([&] { all_lines(truncated, nullptr); });
  EXPECT_TRUE(starts_with(message, truncated + ": truncated gzip stream")) << message;
  // skip_invalid does not hide a broken stream.
  ReadOptions skip;
  skip.skip_invalid = true;
  EXPECT_TRUE(starts_with(error_of([&] { read_preferences(truncated, skip); }),
                          truncated + ": truncated gzip stream"));
  // Only the 8-byte trailer missing.
  std::string no_trailer = write(gz.substr(0, gz.size() - 8), "trailer.jsonl.gz");
  EXPECT_TRUE(contains(error_of([&] { all_lines(no_trailer, nullptr); }), "truncated gzip"));
  // A flipped byte in the compressed data.
  std::string flipped = gz;
  flipped[gz.size() / 2] = static_cast<char>(flipped[gz.size() / 2] ^ 0x55);
  std::string corrupt = write(flipped, "bad.jsonl.gz");
  EXPECT_TRUE(starts_with(error_of([&] { all_lines(corrupt, nullptr); }), corrupt + ": "));
  // Only the gzip magic.
  std::string magic = write("\x1f\x8b", "magic.jsonl.gz");
  EXPECT_TRUE(contains(error_of([&] { read_preferences(magic); }), magic + ": truncated gzip"));
}

TEST_F(DataTest, OverlongLineIsARecordErrorAndReadingGoesOn) {
  std::string path = write("{\"a\":1}\n" + std::string(100, 'x') + "\n{\"b\":2}\n");
  JsonlReader reader(path, /*max_line_bytes=*/32);
  std::string line;
  ASSERT_TRUE(reader.next(line));
  try {
    reader.next(line);
    FAIL() << "no error";
  } catch (const RecordError& e) {
    EXPECT_EQ(std::string(e.what()), path + ":2: line is longer than 32 bytes");
  }
  ASSERT_TRUE(reader.next(line));
  EXPECT_EQ(line, "{\"b\":2}");
  EXPECT_EQ(reader.line_number(), 3);
}

TEST_F(DataTest, HugeLineOverTheDefaultCap) {
  std::string good = R"({"prompt": "p", "chosen": "a", "rejected": "b"})";
  std::string path =
      write(good + "\n\"" + std::string(JsonlReader::kDefaultMaxLineBytes, 'x') + "\"\n" + good);
  EXPECT_EQ(error_of([&] { read_preferences(path); }),
            path + ":2: line is longer than 67108864 bytes");
  ReadOptions skip;
  skip.skip_invalid = true;
  auto data = read_preferences(path, skip);
  EXPECT_EQ(data.stats.records, 2);
  EXPECT_EQ(data.stats.skipped_invalid, 1);
  EXPECT_EQ(data.pairs[1].line, 3);
}

TEST_F(DataTest, ParseErrorsNameFileAndLine) {
  std::string path = write("{\"a\": 1}\n\n{\"a\": \n{\"a\": \"\xc3\x28\"}\n");
  JsonlReader reader(path);
  std::string line;
  ASSERT_TRUE(reader.next(line));
  EXPECT_TRUE(reader.parse(line).is_object());
  ASSERT_TRUE(reader.next(line));
  EXPECT_TRUE(starts_with(error_of([&] { reader.parse(line); }), path + ":3: malformed JSON: "));
  ASSERT_TRUE(reader.next(line));
  EXPECT_EQ(error_of([&] { reader.parse(line); }), path + ":4: invalid UTF-8 at byte 8");
}

TEST_F(DataTest, ReadsStdin) {
  int fd = open(write(R"({"prompt": "p", "chosen": "a", "rejected": "b"})").c_str(), O_RDONLY);
  int saved = dup(STDIN_FILENO);
  ASSERT_TRUE(fd >= 0 && saved >= 0 && dup2(fd, STDIN_FILENO) == STDIN_FILENO);
  close(fd);
  std::string message = error_of([] { EXPECT_EQ(read_preferences("-").pairs.size(), 1u); });
  dup2(saved, STDIN_FILENO);
  close(saved);
  EXPECT_EQ(message, "<no error thrown>");
}

// ---- record layouts -----------------------------------------------------

json to_json(const Conversation& conversation) {
  json list = json::array();
  for (const Message& m : conversation) list.push_back({{"role", m.role}, {"content", m.content}});
  return list;
}

TEST_F(DataTest, ConversationalImplicitPromptIsTheCommonPrefix) {
  Conversation shared =
      msgs({{"system", "S"}, {"user", "U1"}, {"assistant", "A1"}, {"user", "U2"}});
  Conversation good = shared, bad = shared;
  good.push_back({"assistant", "good"});
  bad.push_back({"assistant", "bad"});
  json first = {{"chosen", to_json(good)}, {"rejected", to_json(bad)}};
  json second = {
      {"chosen",
       to_json(msgs({{"user", "U"}, {"assistant", "A"}, {"user", "more"}, {"assistant", "B"}}))},
      {"rejected", to_json(msgs({{"user", "U"}, {"assistant", "C"}}))}};
  auto data = read(first.dump() + "\n" + second.dump() + "\n");
  ASSERT_EQ(data.pairs.size(), 2u);
  EXPECT_CONV(data.pairs[0].prompt,
              msgs({{"system", "S"}, {"user", "U1"}, {"assistant", "A1"}, {"user", "U2"}}));
  EXPECT_CONV(data.pairs[0].chosen, msgs({{"assistant", "good"}}));
  EXPECT_CONV(data.pairs[0].rejected, msgs({{"assistant", "bad"}}));
  EXPECT_CONV(data.pairs[1].prompt, msgs({{"user", "U"}}));
  EXPECT_CONV(data.pairs[1].chosen,
              msgs({{"assistant", "A"}, {"user", "more"}, {"assistant", "B"}}));
  EXPECT_CONV(data.pairs[1].rejected, msgs({{"assistant", "C"}}));
}

TEST(HHTranscript, Splits) {
  EXPECT_CONV(
      parse_hh_transcript("\n\nHuman: Hi\n\nAssistant: Hello\n\nHuman: Joke?\n\nAssistant: No."),
      msgs({{"user", "Hi"}, {"assistant", "Hello"}, {"user", "Joke?"}, {"assistant", "No."}}));
  // Only one space after the colon is dropped; blank lines inside a turn stay.
  EXPECT_CONV(parse_hh_transcript("\n\nHuman:  two\n\npara\n\n\nAssistant:"),
              msgs({{"user", " two\n\npara\n"}, {"assistant", ""}}));
  EXPECT_CONV(parse_hh_transcript("Human: no leading blank line\n\nAssistant: ok"),
              msgs({{"user", "no leading blank line"}, {"assistant", "ok"}}));
  // "Human:" not after a blank line is text.
  EXPECT_CONV(parse_hh_transcript("\n\nHuman: a\n\nAssistant: Human: b  Human: c"),
              msgs({{"user", "a"}, {"assistant", "Human: b  Human: c"}}));
  for (const char* bad : {"", "hello", "\n\nAssistant: hi", " \n\nHuman: x", "\nHuman: x"}) {
    EXPECT_TRUE(contains(error_of([&] { parse_hh_transcript(bad); }), "not an HH transcript"))
        << bad;
  }
}

TEST_F(DataTest, RankedScoresAndRankingExpandToOrderedPairs) {
  auto data = read(
      R"({"prompt": "P", "responses": ["a", "b", "c", "d"], "scores": [1, 3, 1, 0.5], "id": 4})"
      "\n"
      R"({"prompt": "P", "responses": ["x", "y", "z"], "ranking": [2, 0, 1]})");
  ASSERT_EQ(data.rankings.size(), 2u);
  EXPECT_EQ(data.rankings[0].scores, (std::vector<double>{1, 3, 1, 0.5}));
  EXPECT_EQ(data.rankings[1].scores, (std::vector<double>{1, 0, 2}));
  EXPECT_EQ(data.rankings[0].id, "4");
  EXPECT_EQ(data.stats.ranked_records, 2);
  // Record 1: b>a, b>c, b>d, a>d, c>d (a, c tie): 5 pairs. Record 2: 3 pairs.
  ASSERT_EQ(data.pairs.size(), 8u);
  EXPECT_EQ(data.stats.pairs, 8);
  std::vector<std::string> got;
  for (const PreferencePair& p : data.pairs) {
    got.push_back(p.chosen.at(0).content + ">" + p.rejected.at(0).content);
    EXPECT_CONV(p.prompt, msgs({{"user", "P"}}));
  }
  EXPECT_EQ(got,
            (std::vector<std::string>{"a>d", "b>a", "b>c", "b>d", "c>d", "x>y", "z>x", "z>y"}));
  EXPECT_EQ(data.pairs[0].id, "4");
  EXPECT_EQ(data.pairs[5].line, 2);
  EXPECT_EQ(expand_ranking(data.rankings[1]).size(), 3u);
}

// Every expanded pair copies the prompt and both responses: a record whose
// expansion would hold more than 256 MiB is refused, not expanded.
TEST_F(DataTest, RankedExpansionIsBounded) {
  auto ranked = [](std::size_t prompt_bytes) {
    json j = {{"prompt", std::string(prompt_bytes, 'p')}};
    j["responses"] = json::array();
    j["scores"] = json::array();
    for (int i = 0; i < 1024; ++i) {
      j["responses"].push_back("a");
      j["scores"].push_back(i % 10);  // ~472k ordered pairs with different scores
    }
    return j.dump() + "\n";
  };
  const std::string good = R"({"prompt": "P", "chosen": "a", "rejected": "b"})" "\n";
  // 472k pairs x (256 + 1900 + 2 + 2*9 bytes) is about 980 MiB: refused.
  const std::string err = read_error(good + ranked(1900));
  EXPECT_TRUE(contains(err, "d.jsonl:2: field 'responses': expands to")) << err;
  EXPECT_TRUE(contains(err, "256 MiB")) << err;
  ReadOptions skip;
  skip.skip_invalid = true;
  auto data = read(good + ranked(1900), skip);
  EXPECT_EQ(data.pairs.size(), 1u);
  EXPECT_EQ(data.stats.skipped_invalid, 1);
  // A short prompt stays under the limit and expands in full.
  auto small = read(ranked(1));
  std::int64_t expected = 0;
  for (int i = 0; i < 1024; ++i)
    for (int j = 0; j < 1024; ++j) expected += (i % 10) > (j % 10);
  EXPECT_EQ(static_cast<std::int64_t>(small.pairs.size()), expected);
}

TEST_F(DataTest, FixtureWithEveryLayoutAndGzipGiveTheSameResult) {
  std::string fixture = std::string(OPENRM_SOURCE_DIR) + "/tests/fixtures/data/formats.jsonl";
  write_gz(dir_.file("formats.jsonl.gz"), test::read_bytes(fixture));
  auto plain = read_preferences(fixture);
  auto gz = read_preferences(dir_.file("formats.jsonl.gz"));
  EXPECT_EQ(plain.stats.records, 9);
  EXPECT_EQ(plain.stats.lines, 10);
  EXPECT_EQ(plain.stats.ranked_records, 2);
  EXPECT_EQ(plain.stats.pairs, 4 + 3 + 1 + 3);
  ASSERT_EQ(plain.pairs.size(), gz.pairs.size());
  for (std::size_t i = 0; i < plain.pairs.size(); ++i) {
    const PreferencePair &a = plain.pairs[i], &b = gz.pairs[i];
    EXPECT_CONV(a.prompt, b.prompt);
    EXPECT_CONV(a.chosen, b.chosen);
    EXPECT_CONV(a.rejected, b.rejected);
    EXPECT_EQ(a.id, b.id);
    EXPECT_EQ(a.line, b.line);
    EXPECT_EQ(a.margin, b.margin);
  }
  const auto& p = plain.pairs;
  EXPECT_CONV(p[0].prompt, msgs({{"user", "What is 2+2?"}}));  // plain; "source" is ignored
  EXPECT_CONV(p[0].chosen, msgs({{"assistant", "4"}}));
  EXPECT_CONV(p[0].rejected, msgs({{"assistant", "5"}}));
  EXPECT_TRUE(p[0].has_margin);
  EXPECT_EQ(p[0].margin, 1.5);
  EXPECT_EQ(p[0].id, "plain-1");
  EXPECT_FALSE(p[1].has_margin);
  EXPECT_EQ(p[1].id, "2");
  EXPECT_CONV(p[1].prompt, msgs({{"user", "Hi"}}));  // implicit prompt
  EXPECT_CONV(p[1].rejected, msgs({{"assistant", "Go away."}}));
  EXPECT_CONV(p[2].prompt, msgs({{"system", "Be brief."}, {"user", "Capital of France?"}}));
  // hh: the common turns are the prompt.
  EXPECT_CONV(
      p[3].prompt,
      msgs({{"user", "Tell me a joke."}, {"assistant", "About what?"}, {"user", "Chickens."}}));
  EXPECT_CONV(p[3].chosen, msgs({{"assistant", "Why did the chicken cross the road?"}}));
  EXPECT_CONV(p[3].rejected, msgs({{"assistant", "No."}}));
  EXPECT_EQ(p[3].line, 5);
  EXPECT_CONV(p[6].chosen, msgs({{"assistant", "Sky."}}));
  EXPECT_CONV(p[6].rejected, msgs({{"assistant", "Seven."}}));
  EXPECT_TRUE(p[10].prompt.empty());  // "prompt": ""
  // An explicit prompt; one that the lists repeat (ultrafeedback_binarized) is dropped there.
  for (int i : {8, 9}) {
    EXPECT_CONV(p[i].prompt, msgs({{"user", "Q"}}));
    EXPECT_CONV(p[i].chosen, msgs({{"assistant", "A"}}));
    EXPECT_CONV(p[i].rejected, msgs({{"assistant", "B"}}));
  }
}

TEST_F(DataTest, FieldNamesFormatNamesAndMaxRecords) {
  ReadOptions options;
  options.fields.prompt = "question";
  options.fields.chosen = "good";
  options.fields.rejected = "bad";
  options.fields.margin = "strength";
  options.fields.id = "uid";
  std::string line = R"({"question": "Q", "good": "g", "bad": "b", "strength": 0.5, "uid": "u"})";
  auto data = read(line + "\n" + line + "\n" + line, options);
  EXPECT_EQ(data.pairs.size(), 3u);
  EXPECT_EQ(data.pairs[0].margin, 0.5);
  EXPECT_EQ(data.pairs[0].id, "u");
  options.max_records = 2;
  EXPECT_EQ(read(line + "\n" + line + "\n" + line, options).pairs.size(), 2u);
  for (auto format :
       {PreferenceFormat::kAuto, PreferenceFormat::kPlain, PreferenceFormat::kConversational,
        PreferenceFormat::kHH, PreferenceFormat::kRanked}) {
    EXPECT_EQ(preference_format_from_name(preference_format_name(format)), format);
  }
  EXPECT_TRUE(contains(error_of([] { preference_format_from_name("tsv"); }), "hh or ranked"));
}

TEST_F(DataTest, AFixedFormatRejectsOtherLayouts) {
  ReadOptions options;
  options.format = PreferenceFormat::kConversational;
  EXPECT_TRUE(contains(read_error(R"({"prompt": "p", "chosen": "a", "rejected": "b"})", options),
                       ":1: field 'chosen': expected a list of messages, got \"a\""));
  options.format = PreferenceFormat::kPlain;
  EXPECT_TRUE(contains(read_error(R"({"chosen": "a", "rejected": "b"})", options),
                       ":1: missing field 'prompt'"));
  options.format = PreferenceFormat::kHH;
  EXPECT_TRUE(contains(read_error(R"({"prompt": "p", "chosen": "a", "rejected": "b"})", options),
                       ":1: field 'chosen': not an HH transcript"));
}

// ---- errors: file, line and field --------------------------------------------

using Cases = std::vector<std::pair<std::string, std::string>>;

// The (record, expected error) pairs of a tests/fixtures/data/*.txt case file.
Cases fixture_cases(const std::string& name) {
  std::istringstream in(
      test::read_bytes(std::string(OPENRM_SOURCE_DIR) + "/tests/fixtures/data/" + name));
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line[0] != '#') lines.push_back(line);
  }
  EXPECT_EQ(lines.size() % 2, 0u) << name;
  Cases cases;
  for (std::size_t i = 0; i + 1 < lines.size(); i += 2) cases.emplace_back(lines[i], lines[i + 1]);
  return cases;
}

TEST_F(DataTest, EachInvalidRecordGivesFileLineAndField) {
  const std::string good = R"({"prompt": "p", "chosen": "a", "rejected": "b"})";
  Cases cases = fixture_cases("invalid_preferences.txt");
  EXPECT_GE(cases.size(), 40u);
  // The cases a text file cannot hold.
  cases.emplace_back("{\"prompt\": \"p\xff\", \"chosen\": \"a\", \"rejected\": \"b\"}",
                     "invalid UTF-8 at byte 14");
  cases.emplace_back(
      std::string("{\"prompt\": \"p") + '\0' + R"(", "chosen": "a", "rejected": "b"})",
      "malformed JSON: ");
  cases.emplace_back(std::string(100000, '[') + std::string(100000, ']'),
                     "JSON nests deeper than 64 levels");
  for (const auto& [record, expected] : cases) {
    std::string path = write(good + "\n" + record + "\n" + good + "\n");
    std::string message = error_of([&] { read_preferences(path); });
    EXPECT_TRUE(starts_with(message, path + ":2: " + expected)) << message;
    // Each is a record error: skip_invalid skips it and reads the rest.
    ReadOptions skip;
    skip.skip_invalid = true;
    PreferenceData data;
    EXPECT_NO_THROW(data = read_preferences(path, skip)) << record.substr(0, 80);
    EXPECT_EQ(data.stats.records, 2);
    EXPECT_EQ(data.stats.skipped_invalid, 1);
    EXPECT_EQ(data.stats.first_errors, std::vector<std::string>{message});
  }
}

TEST_F(DataTest, EmptyFilesAndFilesWithoutAValidRecord) {
  for (const char* content : {"", "\n\n  \n", "\xEF\xBB\xBF", "\r\n"}) {
    std::string path = write(content);
    EXPECT_EQ(error_of([&] { read_preferences(path); }), path + ": no records");
    write_gz(dir_.file("e.jsonl.gz"), content);
    EXPECT_EQ(error_of([&] { read_preferences(dir_.file("e.jsonl.gz")); }),
              dir_.file("e.jsonl.gz") + ": no records");
  }
  ReadOptions skip;
  skip.skip_invalid = true;
  std::string path = write("[1]\n\n{}\n");
  std::string message = error_of([&] { read_preferences(path, skip); });
  EXPECT_TRUE(starts_with(message, path + ": no valid record (2 invalid skipped; first: " + path +
                                       ":1: expected a JSON object"))
      << message;
  EXPECT_EQ(read_error(R"({"prompt": "p", "responses": ["a", "b"], "scores": [1, 1]})"),
            dir_.file("d.jsonl") + ": no preference pairs (every ranking is a tie)");
}

TEST_F(DataTest, SkipInvalidCountsAndKeepsTheFirstFiveMessages) {
  const std::string good = R"({"prompt": "p", "chosen": "a", "rejected": "b"})";
  std::string content;
  for (int i = 0; i < 10; ++i)
    content += (i % 3 == 0 ? good : "{\"bad\": " + std::to_string(i) + "}") + "\n";
  ReadOptions skip;
  skip.skip_invalid = true;
  auto data = read(content, skip);
  EXPECT_EQ(data.stats.records, 4);
  EXPECT_EQ(data.stats.skipped_invalid, 6);
  EXPECT_EQ(data.stats.lines, 10);
  ASSERT_EQ(data.stats.first_errors.size(), 5u);
  EXPECT_EQ(
      data.stats.first_errors[0],
      dir_.file("d.jsonl") + ":2: missing field 'chosen' (or 'responses' for a ranked record)");
  EXPECT_TRUE(starts_with(data.stats.first_errors[4], dir_.file("d.jsonl") + ":8: "));
  EXPECT_EQ(data.pairs.back().line, 10);
}

// ---- score records --------------------------------------------------------------

std::vector<ScoreRecord> read_all(const std::string& path, const ScoreReadOptions& options,
                                  ReadStats* stats) {
  ScoreRecordReader reader(path, options);
  std::vector<ScoreRecord> records;
  ScoreRecord record;
  while (reader.next(record)) records.push_back(record);
  if (stats) *stats = reader.stats();
  return records;
}

TEST_F(DataTest, ScoreRecordsInBothLayouts) {
  std::string content =
      test::read_bytes(std::string(OPENRM_SOURCE_DIR) + "/tests/fixtures/data/score_records.jsonl");
  write_gz(dir_.file("s.jsonl.gz"), content);
  for (const std::string& path : {write(content), dir_.file("s.jsonl.gz")}) {
    ReadStats stats;
    auto records = read_all(path, {}, &stats);
    ASSERT_EQ(records.size(), 3u);
    EXPECT_CONV(records[0].conversation, msgs({{"user", "Q"}, {"assistant", "A"}}));
    EXPECT_EQ(records[0].id, "1");
    EXPECT_CONV(records[1].conversation, msgs({{"user", "Q"}, {"assistant", "B"}}));
    EXPECT_EQ(records[1].line, 3);
    EXPECT_CONV(records[2].conversation,
                msgs({{"system", "S"}, {"user", "Q"}, {"assistant", "C"}}));
    EXPECT_EQ(records[2].id, "c");
    EXPECT_EQ(stats.records, 3);
    EXPECT_EQ(stats.lines, 4);
  }
}

TEST_F(DataTest, ScoreRecordErrorsAndSkipping) {
  const std::string good = R"({"prompt": "Q", "response": "A"})";
  const Cases cases = fixture_cases("invalid_score_records.txt");
  for (const auto& [record, expected] : cases) {
    std::string path = write(good + "\n" + record + "\n" + good + "\n");
    std::string message = error_of([&] { read_all(path, {}, nullptr); });
    EXPECT_TRUE(starts_with(message, path + ":2: " + expected)) << message;
    ScoreReadOptions skip;
    skip.skip_invalid = true;
    ReadStats stats;
    EXPECT_EQ(read_all(path, skip, &stats).size(), 2u);
    EXPECT_EQ(stats.skipped_invalid, 1);
    EXPECT_EQ(stats.first_errors, std::vector<std::string>{message});
  }
  std::string empty = write("");
  EXPECT_EQ(error_of([&] { read_all(empty, {}, nullptr); }), empty + ": no records");
  ScoreReadOptions fields;
  fields.fields.messages = "conversation";
  fields.fields.id = "key";
  auto records =
      read_all(write(R"({"conversation": [{"role": "assistant", "content": "x"}], "key": 3})"),
               fields, nullptr);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].id, "3");
}

// ---- empty responses, rendered text and ids -----------------------------------------

TEST_F(DataTest, EmptyResponsesAreValidInEveryLayout) {
  const auto data = read(
      R"({"prompt": "p", "chosen": "", "rejected": "b"})"
      "\n"
      R"({"chosen": [{"role": "user", "content": "q"}, {"role": "assistant", "content": ""}], )"
      R"("rejected": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "b"}]})"
      "\n"
      R"({"chosen": "\n\nHuman: a\n\nAssistant: ", "rejected": "\n\nHuman: a\n\nAssistant: b"})"
      "\n"
      R"({"prompt": "p", "responses": ["a", ""], "scores": [1, 2]})"
      "\n");
  ASSERT_EQ(data.pairs.size(), 4u);
  EXPECT_EQ(data.stats.skipped_invalid, 0);
  EXPECT_EQ(data.pairs[0].chosen.back().content, "");
  EXPECT_EQ(data.pairs[1].chosen.back().content, "");
  EXPECT_EQ(data.pairs[2].chosen.back().content, "");
  EXPECT_EQ(data.pairs[3].chosen.back().content, "");  // the empty one scored higher
  EXPECT_EQ(data.pairs[3].rejected.back().content, "a");
  // Still errors: two identical sides, and a completion with no response.
  EXPECT_TRUE(contains(read_error(R"({"prompt": "p", "chosen": "", "rejected": ""})"), "identical"));
  auto records = read_all(write(R"({"prompt": "Q", "response": ""})"
                                "\n"
                                R"({"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": ""}]})"),
                          {}, nullptr);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].conversation.back().content, "");
  EXPECT_EQ(records[1].conversation.back().content, "");
}

TEST_F(DataTest, RenderedTextKeepsItsOwnFormatAndMessageListsTakeTheChatFormat) {
  const auto data = read(
      R"({"prompt": "Q: ", "chosen": "yes", "rejected": "no", "id": 7})"
      "\n"
      R"({"prompt": [{"role": "user", "content": "Q"}], "chosen": "yes", "rejected": "no", "id": "seven"})"
      "\n"
      R"({"chosen": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], )"
      R"("rejected": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "b"}]})"
      "\n"
      R"({"chosen": "\n\nHuman: a\n\nAssistant: b", "rejected": "\n\nHuman: a\n\nAssistant: c"})"
      "\n"
      // Not a round trip through the hh markers (no blank line first, no
      // space after a colon, two spaces): kept as exact slices of the text.
      R"({"chosen": "Human:a\n\nAssistant:  b", "rejected": "Human:a\n\nAssistant:c"})"
      "\n"
      R"({"prompt": "p", "responses": ["a", "b"], "scores": [1, 2]})"
      "\n"
      R"({"prompt": "p", "responses": ["a", [{"role": "assistant", "content": "b"}]], "scores": [1, 2]})"
      "\n");
  ASSERT_EQ(data.pairs.size(), 7u);
  using F = std::optional<ChatFormat>;
  EXPECT_EQ(data.pairs[0].text_format, F(ChatFormat::kPlain));
  EXPECT_EQ(data.pairs[1].text_format, F());  // a message list is involved
  EXPECT_EQ(data.pairs[2].text_format, F());
  EXPECT_EQ(data.pairs[3].text_format, F(ChatFormat::kHH));
  EXPECT_EQ(data.pairs[4].text_format, F(ChatFormat::kPlain));
  EXPECT_EQ(data.pairs[5].text_format, F(ChatFormat::kPlain));
  EXPECT_EQ(data.pairs[6].text_format, F());
  // The exact slices render back to the text, markers and spaces as written.
  const PreferencePair& odd = data.pairs[4];
  std::string chosen, rejected;
  for (const auto& m : odd.prompt) chosen += m.content;
  rejected = chosen;
  for (const auto& m : odd.chosen) chosen += m.content;
  for (const auto& m : odd.rejected) rejected += m.content;
  EXPECT_EQ(chosen, "Human:a\n\nAssistant:  b");
  EXPECT_EQ(rejected, "Human:a\n\nAssistant:c");
  EXPECT_EQ(odd.chosen.back().role, "assistant");
  // Ids keep their JSON type.
  EXPECT_EQ(data.pairs[0].id, "7");
  EXPECT_TRUE(data.pairs[0].id_is_number);
  EXPECT_EQ(data.pairs[1].id, "seven");
  EXPECT_FALSE(data.pairs[1].id_is_number);

  auto records = read_all(write(R"({"prompt": "Q", "response": "A", "id": 12})"
                                "\n"
                                R"({"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]})"),
                          {}, nullptr);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].text_format, F(ChatFormat::kPlain));
  EXPECT_TRUE(records[0].id_is_number);
  EXPECT_EQ(records[1].text_format, F());
  const auto group = parse_response_group(nlohmann::json::parse(R"({"prompt": "Q", "responses": ["a", "b"]})"),
                                          "x", 1);
  EXPECT_EQ(group.text_format, F(ChatFormat::kPlain));
}

// ---- the real hh-rlhf file against an outside split ------------------------------

std::string render_hh(const Conversation& conversation) {
  std::string text;
  for (const Message& m : conversation) {
    text += (m.role == "user" ? "\n\nHuman: " : "\n\nAssistant: ") + m.content;
  }
  return text;
}

TEST(PreferenceHHRealData, MatchesTheRecordsAndAPythonSplit) {
  std::string shared = test::shared_dir();
  if (shared.empty()) GTEST_SKIP() << "no ../shared folder next to the checkout";
  std::string path = shared + "/data/hh-rlhf-harmless-base-test-1800.jsonl.gz";
  if (!path_exists(path)) GTEST_SKIP() << path << " is absent";

  // Every record is valid as it comes, the four whose chosen response is
  // empty included: an empty answer gets a reward like any other.
  PreferenceData data = read_preferences(path);
  EXPECT_EQ(data.stats.lines, 1800);
  EXPECT_EQ(data.stats.records, 1800);
  EXPECT_EQ(data.stats.skipped_invalid, 0);
  std::vector<std::string> skipped_lines;  // the lines with an empty response
  for (const PreferencePair& pair : data.pairs) {
    if (pair.chosen.back().content.empty() || pair.rejected.back().content.empty()) {
      skipped_lines.push_back(std::to_string(pair.line));
    }
    EXPECT_EQ(pair.text_format, std::optional<ChatFormat>(ChatFormat::kHH)) << pair.line;
  }
  EXPECT_EQ(skipped_lines, (std::vector<std::string>{"87", "517", "926", "1104"}));
  ASSERT_EQ(data.pairs.size(), 1800u);

  // The raw records, to check the split renders back to them exactly.
  std::vector<json> raw;
  JsonlReader reader(path);
  for (std::string line; reader.next(line);) raw.push_back(reader.parse(line));
  ASSERT_EQ(raw.size(), 1800u);

  TempDir dir;
  std::string script = std::string(OPENRM_SOURCE_DIR) + "/tests/fixtures/data/hh_reference.py";
  std::string python = path_exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
  std::string out = dir.file("reference.jsonl");
  int status = std::system((python + " '" + script + "' '" + path + "' '" + out + "'").c_str());
  bool have_reference = status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (status != -1 && WIFEXITED(status) && WEXITSTATUS(status) != 77 &&
      WEXITSTATUS(status) != 127) {
    EXPECT_TRUE(have_reference) << "hh_reference.py failed";
  }
  std::vector<json> reference;
  if (have_reference) {
    JsonlReader ref(out);
    for (std::string line; ref.next(line);) reference.push_back(ref.parse(line));
    ASSERT_EQ(reference.size(), 1800u);
    std::vector<std::string> empty_lines;
    for (std::size_t i = 0; i < reference.size(); ++i) {
      if (reference[i]["response"][0] == "" || reference[i]["response"][1] == "") {
        empty_lines.push_back(std::to_string(i + 1));
      }
    }
    EXPECT_EQ(empty_lines, skipped_lines);
  }

  int multi_message_completions = 0, python_prompts_differ = 0;
  for (const PreferencePair& pair : data.pairs) {
    SCOPED_TRACE("line " + std::to_string(pair.line));
    const json& record = raw.at(static_cast<std::size_t>(pair.line - 1));
    const Conversation* sides[2] = {&pair.chosen, &pair.rejected};
    const char* keys[2] = {"chosen", "rejected"};
    if (pair.chosen.size() > 1 || pair.rejected.size() > 1) ++multi_message_completions;
    for (int s = 0; s < 2; ++s) {
      const Conversation& completion = *sides[s];
      ASSERT_FALSE(completion.empty());
      EXPECT_EQ(completion.back().role, "assistant");
      EXPECT_EQ(render_hh(pair.prompt) + render_hh(completion), record[keys[s]].get<std::string>());
      if (!have_reference) continue;
      const json& ref = reference.at(static_cast<std::size_t>(pair.line - 1));
      Conversation before_response = pair.prompt;
      before_response.insert(before_response.end(), completion.begin(), completion.end() - 1);
      EXPECT_EQ(ref["response"][s].get<std::string>(), completion.back().content);
      EXPECT_EQ(ref["turns"][s].get<std::size_t>(), before_response.size());
      EXPECT_EQ(ref["prefix"][s].get<std::string>(), render_hh(before_response));
    }
    if (have_reference) {
      const json& ref = reference.at(static_cast<std::size_t>(pair.line - 1));
      bool differ = ref["prefix"][0] != ref["prefix"][1];
      python_prompts_differ += differ ? 1 : 0;
      EXPECT_EQ(differ, pair.chosen.size() > 1 || pair.rejected.size() > 1);
    }
  }
  // Two records (1255, 1689) have "  Human:" inside an assistant turn and then
  // two assistant turns in a row in chosen: their completion is two messages,
  // and there the usual split gives chosen and rejected different prompts.
  EXPECT_EQ(multi_message_completions, 2);
  if (!have_reference) GTEST_SKIP() << "python3 is not available: checked the round trip only";
  EXPECT_EQ(python_prompts_differ, 2);
}

}  // namespace
}  // namespace openrm
