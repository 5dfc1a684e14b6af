# oneDNN (Debian's libdnnl-dev) as an imported target, when it is there:
# float convolutions run on its kernels (Note [oneDNN convolutions] in
# nn/src/kernels/conv_dnnl.cpp). Debian builds it on OpenMP (libgomp), whose thread
# count zerograd sets per call; libgomp is linked by name so that no
# -fopenmp (and with clang no libomp) is needed.
if(NOT TARGET zerograd_dnnl)
  find_path(ZEROGRAD_DNNL_INCLUDE_DIR dnnl.hpp)
  find_library(ZEROGRAD_DNNL_LIBRARY NAMES dnnl)
  find_library(ZEROGRAD_GOMP_LIBRARY NAMES gomp libgomp.so.1)
  if(ZEROGRAD_DNNL_INCLUDE_DIR AND ZEROGRAD_DNNL_LIBRARY AND ZEROGRAD_GOMP_LIBRARY)
    add_library(zerograd_dnnl INTERFACE IMPORTED)
    set_target_properties(zerograd_dnnl PROPERTIES
      INTERFACE_INCLUDE_DIRECTORIES "${ZEROGRAD_DNNL_INCLUDE_DIR}"
      INTERFACE_LINK_LIBRARIES "${ZEROGRAD_DNNL_LIBRARY};${ZEROGRAD_GOMP_LIBRARY}")
  endif()
endif()
