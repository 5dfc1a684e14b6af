# libzip as an imported target. Debian's libzip CMake config also imports the
# zipcmp/zipmerge/ziptool programs and fails when they are not installed, so
# find the header and library directly.
# Defines nothing when libzip is missing: the caller says what to install.
if(NOT TARGET zerograd_libzip)
  find_path(ZEROGRAD_LIBZIP_INCLUDE_DIR zip.h)
  find_library(ZEROGRAD_LIBZIP_LIBRARY NAMES zip)
  if(ZEROGRAD_LIBZIP_INCLUDE_DIR AND ZEROGRAD_LIBZIP_LIBRARY)
    add_library(zerograd_libzip INTERFACE IMPORTED)
    set_target_properties(zerograd_libzip PROPERTIES
      INTERFACE_INCLUDE_DIRECTORIES "${ZEROGRAD_LIBZIP_INCLUDE_DIR}"
      INTERFACE_LINK_LIBRARIES "${ZEROGRAD_LIBZIP_LIBRARY}")
  endif()
endif()
