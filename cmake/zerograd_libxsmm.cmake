# libxsmm (Debian's libxsmm-dev, amd64 only) as an imported target, when it
# is there: small float GEMMs run on its generated kernels (Note [Small
# products] in autograd/src/kernels/blas.cpp). Debian ships it as a static library
# only, built position-independent; it needs libdl and librt. Its own BLAS
# fallback (never called: zerograd uses only its generated kernels) links to
# the OpenBLAS zerograd links anyway. Not libxsmmnoblas: its stubs define
# sgemm_ and dgemm_, which would shadow OpenBLAS's in a static program.
if(NOT TARGET zerograd_libxsmm)
  find_path(ZEROGRAD_LIBXSMM_INCLUDE_DIR libxsmm.h)
  find_library(ZEROGRAD_LIBXSMM_LIBRARY NAMES libxsmm.a xsmm)
  if(ZEROGRAD_LIBXSMM_INCLUDE_DIR AND ZEROGRAD_LIBXSMM_LIBRARY)
    add_library(zerograd_libxsmm INTERFACE IMPORTED)
    set_target_properties(zerograd_libxsmm PROPERTIES
      INTERFACE_INCLUDE_DIRECTORIES "${ZEROGRAD_LIBXSMM_INCLUDE_DIR}"
      INTERFACE_LINK_LIBRARIES "${ZEROGRAD_LIBXSMM_LIBRARY};${CMAKE_DL_LIBS};rt;m;Threads::Threads")
  endif()
endif()
