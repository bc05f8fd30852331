# Resuming a distributed run: COMMAND (mpirun ... alexnet_example --distributed and the run's
# flags, joined with '|') trains once straight through (--save reference), once saving the
# training state every EVERY steps; then the newest save is deleted, as if the job had died
# just before it, the run resumes from the one before, and its final weights must equal the
# reference's byte for byte.
# cmake -DCOMMAND=... -DWORK_DIR=... -DEVERY=... -P run_mpi_resume.cmake
cmake_policy(SET CMP0007 NEW)
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
string(REPLACE "|" ";" command "${COMMAND}")
list(REMOVE_ITEM command "")

function(run_job what)
  execute_process(COMMAND ${command} ${ARGN} WORKING_DIRECTORY "${WORK_DIR}" TIMEOUT 120
    RESULT_VARIABLE code OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT code EQUAL 0)
    message(FATAL_ERROR "the ${what} run ended with ${code}\n--- stdout\n${out}--- stderr\n${err}")
  endif()
  message("--- ${what}: ${out}")
endfunction()

run_job(reference --save reference)
run_job(checkpointed --checkpoint-dir ck --checkpoint-every ${EVERY})
file(GLOB saves RELATIVE "${WORK_DIR}/ck" "${WORK_DIR}/ck/step-*")
list(SORT saves)
list(LENGTH saves count)
if(NOT count EQUAL 2)
  message(FATAL_ERROR "expected the newest two training states in ck, found: ${saves}")
endif()
list(GET saves 1 newest)
file(REMOVE_RECURSE "${WORK_DIR}/ck/${newest}")
run_job(resumed --resume ck --save resumed)

file(GLOB files RELATIVE "${WORK_DIR}/reference" "${WORK_DIR}/reference/*.npy")
list(LENGTH files count)
if(count EQUAL 0)
  message(FATAL_ERROR "the reference run saved no weights")
endif()
foreach(f IN LISTS files)
  execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files "${WORK_DIR}/reference/${f}" "${WORK_DIR}/resumed/${f}"
    RESULT_VARIABLE differ)
  if(NOT differ EQUAL 0)
    message(FATAL_ERROR "${f} differs between the uninterrupted and the resumed run")
  endif()
endforeach()
message("${count} weight files identical after resuming from ${saves}")
