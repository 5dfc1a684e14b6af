# ctest step: install zerograd to a prefix, then configure, build and run
# the consumer project against it, compiled with plain -O2 and no arch
# flags. KIND=static installs BUILD_DIR's library; KIND=shared first builds
# the library alone with BUILD_SHARED_LIBS=ON in BUILD_DIR/shared-lib.
# Either way the exported package must carry no -m flag, and the shared
# libraries (one per layer) must have versioned SONAMEs and export only
# zerograd's symbols.
set(prefix ${BUILD_DIR}/consumer-${KIND}-prefix)
set(work ${BUILD_DIR}/consumer-${KIND}-build)
file(REMOVE_RECURSE ${prefix} ${work})

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(rc)
    string(REPLACE ";" " " line "${ARGN}")
    message(FATAL_ERROR "failed (${rc}): ${line}")
  endif()
endfunction()

set(library ${BUILD_DIR})
if(KIND STREQUAL "shared")
  set(library ${BUILD_DIR}/shared-lib)
  # -O1: the consumer's tiny model needs no speed, and the whole library
  # compiles in about 70% of the time -O3 takes.
  run(${CMAKE_COMMAND} -S ${PROJECT_DIR} -B ${library} -DCMAKE_BUILD_TYPE=Release "-DCMAKE_CXX_FLAGS_RELEASE=-O1 -DNDEBUG"
      -DBUILD_SHARED_LIBS=ON
      -DCMAKE_CXX_COMPILER=${CXX} -DZEROGRAD_BUILD_TESTS=OFF -DZEROGRAD_BUILD_EXAMPLES=OFF -DZEROGRAD_BUILD_BENCH=OFF)
  # The test runs alone (RUN_SERIAL): as many jobs as the machine has cores.
  cmake_host_system_information(RESULT cores QUERY NUMBER_OF_LOGICAL_CORES)
  run(${CMAKE_COMMAND} --build ${library} -j ${cores})
endif()
run(${CMAKE_COMMAND} --install ${library} --prefix ${prefix})

file(GLOB exported ${prefix}/lib*/cmake/zerograd/*.cmake)
foreach(f ${exported})
  file(READ ${f} text)
  if(text MATCHES "-m(arch|tune|avx|sse|fma)")
    message(FATAL_ERROR "${f} exports an arch flag (-m${CMAKE_MATCH_1}) to consumers")
  endif()
  if(text MATCHES "XTENSOR_USE_XSIMD")
    message(FATAL_ERROR "${f} exports XTENSOR_USE_XSIMD to consumers")
  endif()
endforeach()

if(KIND STREQUAL "shared")
  foreach(layer autograd nn optim)
    file(GLOB so ${prefix}/lib*/libzerograd_${layer}.so.*.*.*)
    list(LENGTH so n)
    if(NOT n EQUAL 1)
      message(FATAL_ERROR "expected one versioned libzerograd_${layer}.so.X.Y.Z in ${prefix}, found: ${so}")
    endif()
    execute_process(COMMAND objdump -p ${so} OUTPUT_VARIABLE dynamic)
    if(NOT dynamic MATCHES "SONAME +libzerograd_${layer}\\.so\\.[0-9]+\\.[0-9]+\n")
      message(FATAL_ERROR "libzerograd_${layer}.so has no versioned SONAME:\n${dynamic}")
    endif()
    # Every defined dynamic symbol is zerograd's own (namespace zg, its
    # vtables, typeinfo, guards and function-local statics), by mangled name:
    # nothing of xtensor, xsimd, libzip, libxsmm or the standard library.
    execute_process(COMMAND nm -D --defined-only ${so} OUTPUT_VARIABLE symbols)
    string(REPLACE "\n" ";" lines "${symbols}")
    set(leaked "")
    foreach(line ${lines})
      string(REGEX REPLACE "^[0-9a-f]* *[A-Za-z] " "" name "${line}")
      if(NOT name MATCHES "^_Z(Z|GVZ?|T[VISTHW]|Th[n0-9]+_|Tv[n0-9_]+_)?N?K?2zg")
        list(APPEND leaked "${name}")
      endif()
    endforeach()
    list(LENGTH leaked n)
    if(n GREATER 0)
      list(SUBLIST leaked 0 5 some)
      message(FATAL_ERROR "libzerograd_${layer}.so exports ${n} symbols that are not zerograd's, e.g.: ${some}")
    endif()
  endforeach()
  execute_process(COMMAND nm -D -C --defined-only ${prefix}/lib/libzerograd_autograd.so OUTPUT_VARIABLE symbols)
  if(NOT symbols MATCHES "zg::BasicVariable<float>")
    message(FATAL_ERROR "libzerograd_autograd.so does not export zg::BasicVariable<float>")
  endif()
endif()

# A shared zerograd needs nothing of what it links inside: the consumer is
# configured as on a machine without xtensor-blas (LAPACK), zlib or libzip.
set(without "")
if(KIND STREQUAL "shared")
  set(without -DCMAKE_DISABLE_FIND_PACKAGE_xtensor-blas=ON -DCMAKE_DISABLE_FIND_PACKAGE_ZLIB=ON
      -DZEROGRAD_LIBZIP_INCLUDE_DIR=ZEROGRAD_LIBZIP_INCLUDE_DIR-NOTFOUND)
endif()
run(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${work} -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=Release
    "-DCMAKE_CXX_FLAGS_RELEASE=-O2" -DCMAKE_CXX_COMPILER=${CXX} ${without})
run(${CMAKE_COMMAND} --build ${work} --verbose)
# Run from the build folder (the checkpoint goes there); the shared library
# is found through the RPATH CMake sets in the build tree.
execute_process(COMMAND ${work}/consumer WORKING_DIRECTORY ${work} RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "the ${KIND} consumer failed: ${rc}")
endif()
