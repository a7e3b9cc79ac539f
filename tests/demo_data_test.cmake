# Regenerates the demo dataset into a scratch folder and checks that it is
# byte-identical to the bundled data/demo-prefs-*.jsonl.gz (the generator is
# deterministic and the bundled files are its output). Run with cmake -P and
#   GENERATOR (the make_demo_data binary), SOURCE_DIR, WORK_DIR.
cmake_minimum_required(VERSION 3.18)
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
execute_process(COMMAND ${GENERATOR} --output-dir ${WORK_DIR}
  RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "make_demo_data failed (${result}):\n${out}${err}")
endif()
foreach(split train test)
  set(name demo-prefs-${split}.jsonl.gz)
  execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files
    ${WORK_DIR}/${name} ${SOURCE_DIR}/data/${name} RESULT_VARIABLE differ)
  if(NOT differ EQUAL 0)
    message(FATAL_ERROR "data/${name} differs from what make_demo_data writes now; "
      "regenerate it with: make_demo_data --output-dir data")
  endif()
endforeach()
message(STATUS "demo data: both splits reproduced byte for byte")
