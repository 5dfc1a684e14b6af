# zerograd.pc for programs built without CMake, and the Debian package
# (CPack's DEB generator) of the installed library, headers and both.
# Included by the top-level CMakeLists.txt after its install rules.

# Libs names the layers zerograd::zerograd links: zerograd_onnx too when it
# is built. Libs.private is what a static zerograd's consumer links, the same
# libraries zerogradConfig.cmake finds for it: ONNX and protobuf, libzip,
# zlib, libxsmm, oneDNN + libgomp, xtensor-blas's BLAS and LAPACK, threads. It names the libraries CMake found
# rather than Requires.private on their .pc files: libzip.pc's own
# Libs.private would ask a --static link for OpenSSL and bzip2 archives that
# linking libzip's shared library never needs. A shared zerograd has them
# all linked in and lists none.
function(zerograd_pc_flags out)
  set(flags "")
  foreach(item ${ARGN})
    if(item STREQUAL "Threads::Threads")
      list(APPEND flags -pthread)
    elseif(item MATCHES "^-")
      list(APPEND flags ${item})
    elseif(item MATCHES "^(.*)/lib([^/]+)\\.so$")
      set(dir ${CMAKE_MATCH_1})
      set(name ${CMAKE_MATCH_2})
      list(FIND CMAKE_CXX_IMPLICIT_LINK_DIRECTORIES ${dir} implicit)
      if(implicit EQUAL -1)
        list(APPEND flags -L${dir})
      endif()
      list(APPEND flags -l${name})
    elseif(IS_ABSOLUTE ${item})
      list(APPEND flags ${item})  # a static archive, e.g. libxsmm.a: by path, so no .so is picked instead
    elseif(NOT item MATCHES "::")
      list(APPEND flags -l${item})
    endif()
  endforeach()
  list(REMOVE_DUPLICATES flags)
  string(REPLACE ";" " " flags "${flags}")
  set(${out} "${flags}" PARENT_SCOPE)
endfunction()

set(ZEROGRAD_PC_LIBS "-lzerograd_nn -lzerograd_optim -lzerograd_viewers -lzerograd_autograd")
if(ZEROGRAD_WITH_ONNX)
  set(ZEROGRAD_PC_LIBS "-lzerograd_onnx ${ZEROGRAD_PC_LIBS}")
endif()
set(private "")
if(NOT BUILD_SHARED_LIBS)
  if(ZEROGRAD_WITH_ONNX)
    list(APPEND private onnx onnx_proto protobuf)
  endif()
  get_target_property(zip zerograd_libzip INTERFACE_LINK_LIBRARIES)
  list(APPEND private ${zip} ${ZLIB_LIBRARIES})
  if(TARGET zerograd_libxsmm)
    get_target_property(xsmm zerograd_libxsmm INTERFACE_LINK_LIBRARIES)
    list(APPEND private ${xsmm})
  endif()
  if(TARGET zerograd_dnnl)
    get_target_property(dnnl zerograd_dnnl INTERFACE_LINK_LIBRARIES)
    list(APPEND private ${dnnl})
  endif()
  # After libxsmm: its BLAS fallback calls sgemm_ and dgemm_.
  get_target_property(blas xtensor-blas INTERFACE_LINK_LIBRARIES)
  list(APPEND private ${blas} Threads::Threads)
endif()
zerograd_pc_flags(ZEROGRAD_PC_LIBS_PRIVATE ${private})
file(RELATIVE_PATH ZEROGRAD_PC_TO_PREFIX /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
string(REGEX REPLACE "/$" "" ZEROGRAD_PC_TO_PREFIX "${ZEROGRAD_PC_TO_PREFIX}")
configure_file(cmake/zerograd.pc.in ${PROJECT_BINARY_DIR}/zerograd.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/zerograd.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# `cpack -G DEB` in a build configured with -DCMAKE_INSTALL_PREFIX=/usr (so
# the libraries go to Debian's multiarch lib dir): libzerograd-dev, the
# libraries, headers, CMake package and zerograd.pc. scripts/dev.sh package
# builds it shared at the -march=x86-64-v2 baseline (docs/install.md).
string(REPLACE ";" " " arch "${ZEROGRAD_ARCH_FLAGS}")
if(arch STREQUAL "")
  set(arch "the compiler's default flags")
endif()
set(ZEROGRAD_PACKAGE_MAINTAINER "zerograd maintainers <maintainers@users.noreply.r-seed-de3f14be.example>"
  CACHE STRING "Maintainer field of the Debian package")
set(CPACK_PACKAGE_NAME zerograd)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT ${ZEROGRAD_PACKAGE_MAINTAINER})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_DEBIAN_PACKAGE_NAME libzerograd-dev)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION libdevel)
# CPack puts the summary first; this is the extended description after it.
set(layers "autograd, viewers, nn, optim")
if(ZEROGRAD_WITH_ONNX)
  string(APPEND layers ", onnx (ONNX export)")
endif()
if(ZEROGRAD_WITH_DISTRIBUTED)
  string(APPEND layers ", distributed")
endif()
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "zerograd's libraries (${layers}) with their headers, CMake package
(find_package(zerograd)) and pkg-config file (zerograd.pc).
Instruction-set baseline: compiled with ${arch}; the libraries run only on
CPUs that have every instruction those flags allow. zerograd's own SIMD
kernels are compiled for that baseline and for AVX2 + FMA, and use AVX2
where the CPU has it (the environment variable ZEROGRAD_MAX_ISA=sse4.2
holds them to the baseline); OpenBLAS, oneDNN and libxsmm choose their
kernels at run time too.")
# The headers include xtensor (and through it xtl and xsimd), whatever the
# library kind; a static library also needs what zerogradConfig.cmake finds
# for its consumers' link. The shared libraries' runtime packages (OpenBLAS,
# libzip, zlib, oneDNN, OpenMPI, ONNX and protobuf) come from dpkg-shlibdeps,
# which reads the libraries' NEEDED entries; it runs in the package's staging
# root, where the libraries' own lib dir (for zerograd_nn's NEEDED
# zerograd_autograd) is relative.
set(depends libxtensor-dev libxtl-dev libxsimd-dev)
if(NOT BUILD_SHARED_LIBS)
  list(APPEND depends libxtensor-blas-dev libopenblas-dev libzip-dev zlib1g-dev)
  if(TARGET zerograd_libxsmm)
    list(APPEND depends libxsmm-dev)
  endif()
  if(TARGET zerograd_dnnl)
    list(APPEND depends libdnnl-dev)
  endif()
  if(ZEROGRAD_WITH_DISTRIBUTED)
    list(APPEND depends libopenmpi-dev)
  endif()
  if(ZEROGRAD_WITH_ONNX)
    list(APPEND depends libonnx-dev libprotobuf-dev)
  endif()
endif()
string(REPLACE ";" ", " CPACK_DEBIAN_PACKAGE_DEPENDS "${depends}")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
string(REGEX REPLACE "^/" "" staged_libdir "${CMAKE_INSTALL_FULL_LIBDIR}")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS ${staged_libdir})
include(CPack)
