# Installs xgrad from the build tree into a scratch prefix, then configures, builds and runs
# a separate project that uses find_package(xgrad) and links xgrad::xgrad.
# cmake -DXGRAD_SOURCE_DIR=... -DXGRAD_BINARY_DIR=... -DWORK_DIR=... [-DCONSUMER_FLAGS=...] -P run.cmake
# CONSUMER_FLAGS: compile and link flags of the consumer (the sanitizers, for a sanitized build).
file(REMOVE_RECURSE "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")

function(run_step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc}):\n${out}\n${err}")
  endif()
  set(step_output "${out}" PARENT_SCOPE)
endfunction()

run_step("install" ${CMAKE_COMMAND} --install "${XGRAD_BINARY_DIR}" --prefix "${prefix}")
# Every header lives under include/xgrad/: nothing else at the top of include/.
file(GLOB top_level RELATIVE "${prefix}/include" "${prefix}/include/*")
if(NOT top_level STREQUAL "xgrad")
  message(FATAL_ERROR "include/ holds more than xgrad/: ${top_level}")
endif()
file(GLOB_RECURSE kernel_headers "${prefix}/include/*_kernels*.hpp")
if(kernel_headers)
  message(FATAL_ERROR "internal kernel headers were installed: ${kernel_headers}")
endif()
run_step("configure consumer" ${CMAKE_COMMAND} -S "${XGRAD_SOURCE_DIR}/tests/install_consumer/project"
         -B "${WORK_DIR}/build" -DCMAKE_BUILD_TYPE=Release "-DCMAKE_PREFIX_PATH=${prefix}"
         "-DCMAKE_CXX_FLAGS=${CONSUMER_FLAGS}" "-DCMAKE_EXE_LINKER_FLAGS=${CONSUMER_FLAGS}")
run_step("build consumer" ${CMAKE_COMMAND} --build "${WORK_DIR}/build")
run_step("run consumer" "${WORK_DIR}/build/consumer")
message(STATUS "consumer said: ${step_output}")
if(NOT step_output MATCHES "consumer ok")
  message(FATAL_ERROR "consumer did not report success:\n${step_output}")
endif()
