# Installs openrm, builds examples/score_tokens against the installed package
# as an outside project would, runs it on the bundled tiny model and checks
# its output. Run with cmake -P and:
#   OPENRM_BINARY_DIR  the configured and built openrm build folder
#   OPENRM_SOURCE_DIR  the openrm source folder
#   WORK_DIR           scratch folder (emptied first)
cmake_minimum_required(VERSION 3.18)

foreach(var OPENRM_BINARY_DIR OPENRM_SOURCE_DIR WORK_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "install_test.cmake: -D${var}=... is required")
  endif()
endforeach()

set(prefix ${WORK_DIR}/prefix)
set(example_build ${WORK_DIR}/build)
set(model_dir ${OPENRM_SOURCE_DIR}/data/tiny-llama-rm)
set(sequences_file ${OPENRM_SOURCE_DIR}/data/demo-sequences.txt)
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})

# run_step(<description> <command...>): runs a command and fails the test on
# a non-zero exit, showing what it printed; leaves its stdout in step_output.
function(run_step description)
  message(STATUS "install_test: ${description}")
  execute_process(COMMAND ${ARGN}
    RESULT_VARIABLE result
    OUTPUT_VARIABLE out
    ERROR_VARIABLE err)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "install_test: ${description} failed (${result}):\n${out}${err}")
  endif()
  set(step_output "${out}" PARENT_SCOPE)
endfunction()

run_step("install into ${prefix}"
  ${CMAKE_COMMAND} --install ${OPENRM_BINARY_DIR} --prefix ${prefix})

# The example is one translation unit: Ninja and ccache when present keep
# this step short; nothing else of the parent build leaks in.
# EXTRA_PREFIX_PATH: where the parent build found its dependencies (PyPI's
# LibTorch for the torch2 build), "|"-separated. It goes to the example's
# configure as the environment's CMAKE_PREFIX_PATH (searched before the
# system, like the variable): run_step's ARGN would split a ";" list.
if(DEFINED EXTRA_PREFIX_PATH AND NOT EXTRA_PREFIX_PATH STREQUAL "")
  string(REPLACE "|" ":" extra "${EXTRA_PREFIX_PATH}")
  set(ENV{CMAKE_PREFIX_PATH} "${extra}")
endif()
set(configure_args -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=Release)
find_program(NINJA_PROGRAM ninja)
if(NINJA_PROGRAM)
  list(APPEND configure_args -G Ninja)
endif()
find_program(CCACHE_PROGRAM ccache)
if(CCACHE_PROGRAM)
  list(APPEND configure_args -DCMAKE_CXX_COMPILER_LAUNCHER=${CCACHE_PROGRAM})
endif()
run_step("configure examples/score_tokens against the installed package"
  ${CMAKE_COMMAND} -S ${OPENRM_SOURCE_DIR}/examples/score_tokens -B ${example_build}
  ${configure_args})
run_step("build examples/score_tokens"
  ${CMAKE_COMMAND} --build ${example_build})

run_step("score ${sequences_file}"
  ${example_build}/score_tokens ${model_dir} ${sequences_file})
set(output "${step_output}")
message(STATUS "install_test: score_tokens printed:\n${output}")

# One finite reward line per non-blank input line: "index length reward".
# NaN or inf print as letters and do not match.
file(STRINGS ${sequences_file} input_lines REGEX "[0-9]")
list(LENGTH input_lines expected_count)
# Each match starts at its line's newline and stops before the next one.
string(REGEX MATCHALL "\n *[0-9]+ +[0-9]+ +[-+]?[0-9]+\\.[0-9]+"
  reward_lines "\n${output}")
list(LENGTH reward_lines reward_count)
if(NOT reward_count EQUAL expected_count)
  message(FATAL_ERROR "install_test: expected ${expected_count} finite reward lines "
    "(one per sequence in ${sequences_file}), found ${reward_count}")
endif()

# The example prints the difference as "%.3e" (d.ddde[+-]XX); CMake has no
# floats, so compare mantissa digits and exponent as integers: <= 1e-6.
if(NOT output MATCHES "max \\|alone - batched\\| = ([0-9])\\.([0-9][0-9][0-9])e([-+][0-9]+)")
  message(FATAL_ERROR "install_test: no finite 'max |alone - batched|' line in the output")
endif()
set(max_diff "${CMAKE_MATCH_1}.${CMAKE_MATCH_2}e${CMAKE_MATCH_3}")
math(EXPR mantissa "${CMAKE_MATCH_1}${CMAKE_MATCH_2}")  # 1.234 -> 1234
math(EXPR exponent "${CMAKE_MATCH_3}")
if(NOT (mantissa EQUAL 0 OR exponent LESS -6 OR
        (exponent EQUAL -6 AND mantissa LESS_EQUAL 1000)))
  message(FATAL_ERROR "install_test: a sequence scored alone differs from the same "
    "sequence in the batch by ${max_diff} (allowed: 1e-6)")
endif()
message(STATUS "install_test: ${reward_count} rewards, max |alone - batched| = ${max_diff}: OK")

# examples/best_of_n: rollout threads asking one ScoreQueue for rewards; the
# queue's rewards equal one direct Scorer call's.
set(best_build ${WORK_DIR}/build-best-of-n)
run_step("configure examples/best_of_n against the installed package"
  ${CMAKE_COMMAND} -S ${OPENRM_SOURCE_DIR}/examples/best_of_n -B ${best_build}
  ${configure_args})
run_step("build examples/best_of_n"
  ${CMAKE_COMMAND} --build ${best_build})
run_step("best of 4 for 3 prompts from each of 3 workers"
  ${best_build}/best_of_n ${model_dir} 3 3 4)
set(output "${step_output}")
message(STATUS "install_test: best_of_n printed:\n${output}")
string(REGEX MATCHALL "\n +[0-9]+ +[0-9]+ +[0-3] +[-+]?[0-9]+\\.[0-9]+ +[-+]?[0-9]+\\.[0-9]+"
  choice_lines "\n${output}")
list(LENGTH choice_lines choice_count)
if(NOT choice_count EQUAL 9)
  message(FATAL_ERROR "install_test: best_of_n printed ${choice_count} choice lines, expected 9")
endif()
if(NOT output MATCHES "queue: 9 requests, 36 sequences")
  message(FATAL_ERROR "install_test: best_of_n's queue did not score 9 requests of 4")
endif()
if(NOT output MATCHES "max \\|queue - direct\\| = ([0-9])\\.([0-9][0-9][0-9])e([-+][0-9]+)")
  message(FATAL_ERROR "install_test: no finite 'max |queue - direct|' line in best_of_n's output")
endif()
math(EXPR mantissa "${CMAKE_MATCH_1}${CMAKE_MATCH_2}")
math(EXPR exponent "${CMAKE_MATCH_3}")
if(NOT (mantissa EQUAL 0 OR exponent LESS -6 OR (exponent EQUAL -6 AND mantissa LESS_EQUAL 1000)))
  message(FATAL_ERROR "install_test: the queue's rewards differ from a direct Scorer call by "
    "${CMAKE_MATCH_1}.${CMAKE_MATCH_2}e${CMAKE_MATCH_3} (allowed: 1e-6)")
endif()
message(STATUS "install_test: best_of_n: OK")

# The installed tools load sentencepiece through the bridge installed next to
# libopenrm.so, with no environment variable: train a tiny tokenizer and
# check that encode and decode give the text back.
set(tool ${prefix}/bin/openrm-tokenizer)
if(EXISTS ${tool})
  run_step("train a tokenizer with the installed openrm-tokenizer"
    ${tool} train --input ${OPENRM_SOURCE_DIR}/README.md --output ${WORK_DIR}/tok
    --vocab-size 200 --no-byte-fallback)
  run_step("encode with the installed openrm-tokenizer"
    ${tool} encode --tokenizer ${WORK_DIR}/tok --text "reward models")
  string(STRIP "${step_output}" ids)
  if(NOT ids MATCHES "^[0-9]+( [0-9]+)+$")
    message(FATAL_ERROR "install_test: openrm-tokenizer encode printed '${ids}', not ids")
  endif()
  run_step("decode with the installed openrm-tokenizer"
    ${tool} decode --tokenizer ${WORK_DIR}/tok --ids "${ids}" --skip-special)
  string(STRIP "${step_output}" text)
  if(NOT text STREQUAL "reward models")
    message(FATAL_ERROR "install_test: decode gave '${text}', expected 'reward models'")
  endif()
  message(STATUS "install_test: installed openrm-tokenizer round trip: OK")
endif()
