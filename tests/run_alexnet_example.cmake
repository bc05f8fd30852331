# Runs alexnet_example with ARGS (a ;-list) in a fresh WORK_DIR and checks its exit code.
# When EXPECT_CODE is 0 it also passes --metrics and checks the JSON and CSV were written;
# otherwise it checks that stderr holds a message (EXPECT_MESSAGE, if given), and for exit code 2
# (a bad command line) the usage. EXPECT_STDOUT, if given, must occur in stdout.
# cmake -DPROGRAM=... -DEXPECT_CODE=0|1|2 -DWORK_DIR=... -DARGS=... -P run_alexnet_example.cmake
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
set(args ${ARGS})
if(EXPECT_CODE EQUAL 0)
  list(APPEND args --metrics "${WORK_DIR}/m.json")
endif()
execute_process(COMMAND "${PROGRAM}" ${args}
  WORKING_DIRECTORY "${WORK_DIR}"
  RESULT_VARIABLE code OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}${err}")
if(NOT code STREQUAL "${EXPECT_CODE}")
  message(FATAL_ERROR "alexnet_example ${args}: exit code ${code}, expected ${EXPECT_CODE}")
endif()
# Fails unless `text` (stdout or stderr, named by `stream`) holds `expected`.
function(expect_in text stream expected)
  string(FIND "${text}" "${expected}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "alexnet_example ${args}: ${stream} lacks '${expected}'")
  endif()
endfunction()
if(DEFINED EXPECT_STDOUT)
  expect_in("${out}" stdout "${EXPECT_STDOUT}")
endif()
if(EXPECT_CODE EQUAL 0)
  foreach(f m.json m.csv)
    if(NOT EXISTS "${WORK_DIR}/${f}")
      message(FATAL_ERROR "alexnet_example did not write ${f}")
    endif()
  endforeach()
  file(READ "${WORK_DIR}/m.json" json)
  string(JSON accuracy GET "${json}" test_accuracy)
  string(JSON seconds GET "${json}" train_seconds)
  message("test_accuracy ${accuracy}, train_seconds ${seconds}")
else()
  if(EXPECT_CODE EQUAL 2 AND NOT err MATCHES "usage: alexnet_example")  # a bad command line
    message(FATAL_ERROR "alexnet_example ${args}: no usage on stderr")
  endif()
  if(DEFINED EXPECT_MESSAGE)
    expect_in("${err}" stderr "${EXPECT_MESSAGE}")
  endif()
endif()
