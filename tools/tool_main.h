// What every openrm command-line program does around its one library call:
// parse the options, run, and turn any error into one line on stderr
// ("<tool>: error: ...") and exit status 1. Also shared by all of them:
// --version, option values checked in plain words, --help in groups, the
// --threads warning, and the removal of temporary files on SIGINT/SIGTERM.
#pragma once

#include <CLI/CLI.hpp>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <exception>
#include <functional>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "openrm/io/file.h"
#include "openrm/version.h"

namespace openrm::tools {

// ---- option values, in plain words ------------------------------------------
// CLI11's own messages ("Value 0 not in range 0.000000 to 1797693...",
// "Could not convert: --lr = x") become "--lr: expected a number, got 'x'".

namespace detail {

inline bool parse_integer(const std::string& text, long long& value) {
  if (text.empty() || std::isspace(static_cast<unsigned char>(text[0]))) return false;
  char* end = nullptr;
  errno = 0;
  value = std::strtoll(text.c_str(), &end, 10);
  return errno == 0 && end == text.c_str() + text.size();
}

inline bool parse_number(const std::string& text, double& value) {
  if (text.empty() || std::isspace(static_cast<unsigned char>(text[0]))) return false;
  char* end = nullptr;
  value = std::strtod(text.c_str(), &end);
  return end == text.c_str() + text.size();
}

inline std::string integer_words(long long min) {
  if (min == 1) return "a positive integer";
  if (min == 0) return "a non-negative integer";
  return "an integer of at least " + std::to_string(min);
}

}  // namespace detail

// An integer option of at least `min`.
inline CLI::Validator integer_at_least(long long min) {
  return CLI::Validator(
      [min](std::string& value) -> std::string {
        long long number = 0;
        if (!detail::parse_integer(value, number) || number < min) {
          return "expected " + detail::integer_words(min) + ", got '" + value + "'";
        }
        return std::string();
      },
      "");
}

// A number option above zero.
inline CLI::Validator positive_number() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        double number = 0;
        if (!detail::parse_number(value, number) || !(number > 0)) {
          return "expected a positive number, got '" + value + "'";
        }
        return std::string();
      },
      "");
}

namespace detail {

inline bool is_boolean_word(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const char* word : {"true", "false", "1", "0", "yes", "no", "on", "off", "enable", "disable"}) {
    if (text == word) return true;
  }
  return false;
}

// Every option with a number or boolean value gets a check of its type, so
// that no value reaches CLI11's conversion unchecked. A check the tool gave
// itself comes first and keeps its own message.
inline void add_type_checks(CLI::App& app) {
  for (CLI::Option* option : app.get_options()) {
    const std::string type = option->get_type_name();
    std::string expected;
    std::function<bool(const std::string&)> ok;
    if (type.rfind("UINT", 0) == 0) {
      expected = "a non-negative integer";
      ok = [](const std::string& v) {
        long long n = 0;
        return parse_integer(v, n) && n >= 0;
      };
    } else if (type.rfind("INT", 0) == 0) {
      expected = "an integer";
      ok = [](const std::string& v) {
        long long n = 0;
        return parse_integer(v, n);
      };
    } else if (type.rfind("FLOAT", 0) == 0) {
      expected = "a number";
      ok = [](const std::string& v) {
        double x = 0;
        return parse_number(v, x);
      };
    } else if (type.rfind("BOOLEAN", 0) == 0) {
      expected = "true or false";
      ok = is_boolean_word;
    } else {
      continue;
    }
    option->check(CLI::Validator(
        [expected, ok](std::string& value) -> std::string {
          return ok(value) ? std::string() : "expected " + expected + ", got '" + value + "'";
        },
        ""));
  }
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) add_type_checks(*sub);
}

// CLI11's "Could not convert: --threads = 99999999999" (a value the type
// check let through that does not fit the option's type).
inline std::string plain_parse_error(const CLI::ParseError& e) {
  const std::string what = e.what();
  const std::string prefix = "Could not convert: ";
  const std::size_t eq = what.find(" = ");
  if (what.rfind(prefix, 0) != 0 || eq == std::string::npos) return what;
  return what.substr(prefix.size(), eq - prefix.size()) + ": '" + what.substr(eq + 3) +
         "' is out of range for this option";
}

// --help lists the groups in this order, then any others. (CLI11 lists
// them in the order their first option was added, which puts "Other", the
// group of --help, first.)
class GroupedFormatter : public CLI::Formatter {
 public:
  std::string make_help(const CLI::App* app, std::string name, CLI::AppFormatMode mode) const override {
    if (mode == CLI::AppFormatMode::Sub) return make_expanded(app);
    return make_description(app) + make_usage(app, name) + make_positionals(app) + ordered_groups(app) +
           make_subcommands(app, mode) + "\n" + make_footer(app);
  }

 private:
  std::string ordered_groups(const CLI::App* app) const {
    static const char* const kOrder[] = {"Input", "Model", "Output", "Training", "Performance", "Other"};
    std::vector<std::string> groups(std::begin(kOrder), std::end(kOrder));
    for (const std::string& name : app->get_groups()) {
      if (std::find(groups.begin(), groups.end(), name) == groups.end()) groups.push_back(name);
    }
    std::string out;
    for (const std::string& group : groups) {
      const std::vector<const CLI::Option*> options = app->get_options(
          [&](const CLI::Option* option) { return option->get_group() == group && option->nonpositional(); });
      if (group.empty() || options.empty()) continue;
      if (!out.empty()) out += "\n";
      out += make_group(group, false, options);
    }
    return out;
  }
};

inline void use_groups(CLI::App& app, const std::shared_ptr<CLI::FormatterBase>& formatter) {
  app.formatter(formatter);
  // Whatever the tool did not put into a group (--help, --version) is "Other".
  for (CLI::Option* option : app.get_options()) {
    if (option->get_group() == "Options") option->group("Other");
  }
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) use_groups(*sub, formatter);
}

}  // namespace detail

// Puts the named options of `app` into --help groups: pairs of a group
// ("Input", "Model", "Output", "Training", "Performance") and option names.
inline void group_options(CLI::App& app,
                          const std::vector<std::pair<std::string, std::vector<std::string>>>& groups) {
  for (const auto& [group, names] : groups) {
    for (const std::string& name : names) {
      if (CLI::Option* option = app.get_option_no_throw(name)) option->group(group);
    }
  }
}

// One warning line when --threads asks for more threads than the machine
// has cores (they would only take turns).
inline void warn_if_too_many_threads(const char* tool, long long threads) {
  const unsigned cores = std::thread::hardware_concurrency();
  if (cores == 0 || threads <= static_cast<long long>(cores)) return;
  std::cerr << tool << ": warning: --threads " << threads << " is more than the " << cores
            << " cores of this machine; the extra threads only take turns\n";
}

// Parses argv into `app`, then calls body(). Returns the process exit status:
// 0 on success (and for --help and --version), 1 on a usage error or an
// exception.
template <typename Body>
int run_tool(const char* tool, CLI::App& app, int argc, char** argv, Body&& body) {
  install_interrupt_cleanup();
  app.set_version_flag("--version", std::string(tool) + " " + OPENRM_VERSION_STRING, "print the version and exit");
  detail::add_type_checks(app);
  detail::use_groups(app, std::make_shared<detail::GroupedFormatter>());
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    std::cerr << tool << ": error: " << detail::plain_parse_error(e) << " (see --help)\n";
    return 1;
  }
  try {
    body();
  } catch (const c10::Error& e) {
    // what() would append a multi-line C++ backtrace; the first line is
    // the message (LibTorch's dispatcher errors go on for many more).
    std::string message = e.what_without_backtrace();
    const std::size_t newline = message.find('\n');
    if (newline != std::string::npos) message.resize(newline);
    std::cerr << tool << ": error: " << message << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << tool << ": error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace openrm::tools
