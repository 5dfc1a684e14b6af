# ctest step: install zerograd, then configure, build and run the consumer
# project against it with plain -O2 and no arch flags, through
# find_package(zerograd) and through pkg-config (zerograd.pc).
#   KIND=static   installs BUILD_DIR's static library to a prefix.
#   KIND=package  builds the library shared in BUILD_DIR/package-lib at the
#                 package baseline (BASELINE, the arch flags scripts/dev.sh
#                 package uses), makes its Debian package with cpack and
#                 unpacks it with dpkg-deb -x into a scratch dir: the
#                 package's own files are what is tested, and nothing is
#                 installed into the system.
# Either way the exported package must carry no -m flag; the shared libraries
# (one per layer) must have versioned SONAMEs and export only zerograd's
# symbols.
set(scratch ${BUILD_DIR}/consumer-${KIND})
set(work ${scratch}/build)
file(REMOVE_RECURSE ${scratch})
file(MAKE_DIRECTORY ${scratch})

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(rc)
    string(REPLACE ";" " " line "${ARGN}")
    message(FATAL_ERROR "failed (${rc}): ${line}")
  endif()
endfunction()

if(KIND STREQUAL "static")
  set(prefix ${scratch}/prefix)
  run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})
else()
  set(library ${BUILD_DIR}/package-lib)
  # -O1 only to keep the suite fast: the consumer's tiny model needs no
  # speed, and the whole library compiles in about 70% of the time -O3 takes.
  # The package scripts/dev.sh makes is -O3 (Release).
  run(${CMAKE_COMMAND} -S ${PROJECT_DIR} -B ${library} -DCMAKE_BUILD_TYPE=Release "-DCMAKE_CXX_FLAGS_RELEASE=-O1 -DNDEBUG"
      -DBUILD_SHARED_LIBS=ON -DCMAKE_INSTALL_PREFIX=/usr "-DZEROGRAD_ARCH_FLAGS=${BASELINE}"
      -DCMAKE_CXX_COMPILER=${CXX} -DZEROGRAD_BUILD_TESTS=OFF -DZEROGRAD_BUILD_EXAMPLES=OFF -DZEROGRAD_BUILD_BENCH=OFF)
  # The test runs alone (RUN_SERIAL): as many jobs as the machine has cores.
  cmake_host_system_information(RESULT cores QUERY NUMBER_OF_LOGICAL_CORES)
  run(${CMAKE_COMMAND} --build ${library} -j ${cores})
  file(REMOVE_RECURSE ${library}/_CPack_Packages)
  file(GLOB old ${library}/*.deb)
  if(old)
    file(REMOVE ${old})
  endif()
  execute_process(COMMAND ${CPACK} -G DEB WORKING_DIRECTORY ${library} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  file(GLOB deb ${library}/libzerograd-dev_*.deb)
  if(rc OR NOT deb)
    message(FATAL_ERROR "cpack -G DEB failed (${rc}):\n${out}")
  endif()
  foreach(field Package Version Depends Description)
    execute_process(COMMAND dpkg-deb -f ${deb} ${field} OUTPUT_VARIABLE ${field} OUTPUT_STRIP_TRAILING_WHITESPACE)
  endforeach()
  message(STATUS "${deb}\nPackage: ${Package}\nVersion: ${Version}\nDepends: ${Depends}\nDescription: ${Description}")
  if(NOT Package STREQUAL "libzerograd-dev")
    message(FATAL_ERROR "the package is named '${Package}', not libzerograd-dev")
  endif()
  if(NOT Version STREQUAL VERSION)
    message(FATAL_ERROR "the package's version is '${Version}', not the project's ${VERSION}")
  endif()
  # The headers' dependencies (xtensor) and, from dpkg-shlibdeps, the
  # libraries' runtime ones (OpenBLAS, libzip, zlib; ONNX and protobuf).
  set(deps libxtensor-dev libxsimd-dev libxtl-dev libopenblas0[-a-z]* libzip4 zlib1g)
  if(WITH_ONNX)
    list(APPEND deps libonnx[0-9]+ libprotobuf[0-9]+)
  endif()
  foreach(dep ${deps})
    if(NOT Depends MATCHES "(^|[ ,|])${dep}([ ,|(]|$)")
      message(FATAL_ERROR "the package does not depend on ${dep}: ${Depends}")
    endif()
  endforeach()
  string(FIND "${Description}" "${BASELINE}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "the package's description does not state its baseline ${BASELINE}:\n${Description}")
  endif()
  run(dpkg-deb -x ${deb} ${scratch}/root)
  set(prefix ${scratch}/root/usr)
endif()

# The lib dir is where the CMake package is: lib, or Debian's multiarch lib
# dir in the package.
file(GLOB_RECURSE config ${prefix}/zerogradConfig.cmake)
get_filename_component(libdir ${config} DIRECTORY)
get_filename_component(libdir ${libdir}/../.. ABSOLUTE)

file(GLOB exported ${libdir}/cmake/zerograd/*.cmake ${libdir}/pkgconfig/zerograd.pc)
foreach(f ${exported})
  file(READ ${f} text)
  if(text MATCHES "-m(arch|tune|avx|sse|fma)")
    message(FATAL_ERROR "${f} exports an arch flag (-m${CMAKE_MATCH_1}) to consumers")
  endif()
  if(text MATCHES "XTENSOR_USE_XSIMD")
    message(FATAL_ERROR "${f} exports XTENSOR_USE_XSIMD to consumers")
  endif()
endforeach()

# zerograd_onnx, built with this project, is in the package and the
# pkg-config file, and the consumer exports to ONNX through it (it calls
# zg::onnx when the header is there).
if(WITH_ONNX)
  if(NOT EXISTS ${prefix}/include/zerograd/onnx.hpp)
    message(FATAL_ERROR "zerograd_onnx was built but zerograd/onnx.hpp is not installed in ${prefix}")
  endif()
  file(READ ${libdir}/pkgconfig/zerograd.pc pc)
  if(NOT pc MATCHES "Libs:[^\n]*-lzerograd_onnx")
    message(FATAL_ERROR "zerograd.pc does not link zerograd_onnx:\n${pc}")
  endif()
endif()

set(layers autograd nn optim)
if(WITH_ONNX)
  list(APPEND layers onnx)
endif()
if(KIND STREQUAL "package")
  foreach(layer ${layers})
    file(GLOB so ${libdir}/libzerograd_${layer}.so.*.*.*)
    list(LENGTH so n)
    if(NOT n EQUAL 1)
      message(FATAL_ERROR "expected one versioned libzerograd_${layer}.so.X.Y.Z in ${libdir}, found: ${so}")
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
  execute_process(COMMAND nm -D -C --defined-only ${libdir}/libzerograd_autograd.so OUTPUT_VARIABLE symbols)
  if(NOT symbols MATCHES "zg::BasicVariable<float>")
    message(FATAL_ERROR "libzerograd_autograd.so does not export zg::BasicVariable<float>")
  endif()
endif()

# A shared zerograd needs nothing of what it links inside: the consumer is
# configured as on a machine without xtensor-blas (LAPACK), zlib or libzip.
set(without "")
if(KIND STREQUAL "package")
  set(without -DCMAKE_DISABLE_FIND_PACKAGE_xtensor-blas=ON -DCMAKE_DISABLE_FIND_PACKAGE_ZLIB=ON
      -DZEROGRAD_LIBZIP_INCLUDE_DIR=ZEROGRAD_LIBZIP_INCLUDE_DIR-NOTFOUND)
endif()
run(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${work} -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=Release
    "-DCMAKE_CXX_FLAGS_RELEASE=-O2" -DCMAKE_CXX_COMPILER=${CXX} ${without})
run(${CMAKE_COMMAND} --build ${work} --verbose)

# The same program built by the compiler alone with pkg-config's flags: for
# a static zerograd with --static, which adds Libs.private.
set(pc_static "")
if(KIND STREQUAL "static")
  set(pc_static --static)
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -E env PKG_CONFIG_PATH=${libdir}/pkgconfig
  pkg-config ${pc_static} --cflags --libs zerograd
  RESULT_VARIABLE rc OUTPUT_VARIABLE flags ERROR_VARIABLE err OUTPUT_STRIP_TRAILING_WHITESPACE)
if(rc)
  message(FATAL_ERROR "pkg-config ${pc_static} --cflags --libs zerograd failed:\n${err}")
endif()
message(STATUS "pkg-config ${pc_static} --cflags --libs zerograd: ${flags}")
separate_arguments(flags UNIX_COMMAND "${flags}")
run(${CXX} -O2 -Wall -Wextra -Werror ${SOURCE_DIR}/main.cpp ${flags} -o ${work}/consumer-pkg-config)

# Run from the build folder (the checkpoint goes there). The package's
# libraries are found through LD_LIBRARY_PATH, as a system finds them in its
# lib dir once the package is installed.
foreach(program consumer consumer-pkg-config)
  execute_process(COMMAND ${CMAKE_COMMAND} -E env LD_LIBRARY_PATH=${libdir} ${work}/${program}
    WORKING_DIRECTORY ${work} RESULT_VARIABLE rc)
  if(rc)
    message(FATAL_ERROR "the ${KIND} ${program} failed: ${rc}")
  endif()
endforeach()
file(REMOVE_RECURSE ${scratch})
if(KIND STREQUAL "package")
  file(REMOVE_RECURSE ${library}/_CPack_Packages)
endif()
