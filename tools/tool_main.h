// What every openrm command-line program does around its one library call:
// parse the options, run, and turn any error into one line on stderr
// ("<tool>: error: ...") and exit status 1.
#pragma once

#include <CLI/CLI.hpp>
#include <c10/util/Exception.h>

#include <exception>
#include <iostream>

namespace openrm::tools {

// Parses argv into `app`, then calls body(). Returns the process exit status:
// 0 on success (and for --help), 1 on a usage error or an exception.
template <typename Body>
int run_tool(const char* tool, CLI::App& app, int argc, char** argv, Body&& body) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    std::cerr << tool << ": error: " << e.what() << " (see --help)\n";
    return 1;
  }
  try {
    body();
  } catch (const c10::Error& e) {
    // what() would append a multi-line C++ backtrace.
    std::cerr << tool << ": error: " << e.what_without_backtrace() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << tool << ": error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace openrm::tools
