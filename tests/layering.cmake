# ctest step: each layer includes only what it may see (docs/design.md).
# autograd/ sees nothing above it (viewers, nn, optim, distributed, the
# umbrella header); the viewers (autograd/viewers/), nn/ and optim/ see
# autograd's public headers only, and not each other; distributed/ sees the
# public headers of nn, optim and autograd. The build enforces the same
# through each layer target's include folders; this test names the
# offending file and line when someone adds an include path.
file(GLOB_RECURSE private_headers RELATIVE ${ROOT}/autograd/src ${ROOT}/autograd/src/*.hpp)
set(viewer_headers "zerograd/(dot|html|viewers)\\.hpp")
set(errors "")
function(check dir pattern why)
  file(GLOB_RECURSE files ${ROOT}/${dir}/*.hpp ${ROOT}/${dir}/*.cpp)
  foreach(f ${files})
    # autograd/ holds the viewers' folder; the viewers are checked as a layer of their own.
    if(dir STREQUAL "autograd" AND f MATCHES "^${ROOT}/autograd/viewers/")
      continue()
    endif()
    file(STRINGS ${f} lines REGEX "^[ \t]*#[ \t]*include")
    foreach(line ${lines})
      if(line MATCHES "${pattern}")
        file(RELATIVE_PATH rel ${ROOT} ${f})
        string(APPEND errors "${rel}: ${line}  (${why})\n")
      endif()
    endforeach()
  endforeach()
  set(errors "${errors}" PARENT_SCOPE)
endfunction()

check(autograd "zerograd/(nn|optim|zerograd|distributed)[./]|${viewer_headers}"
  "autograd must not include the viewers, nn, optim, distributed or the umbrella header")
check(autograd/viewers "zerograd/(nn|optim|distributed)[./]|zerograd/zerograd\\.hpp|autograd/src"
  "the viewers see autograd's public headers only")
check(nn "zerograd/(optim|distributed)[./]|zerograd/zerograd\\.hpp|autograd/src|${viewer_headers}"
  "nn sees autograd's public headers only")
check(optim "zerograd/(nn|distributed)[./]|zerograd/zerograd\\.hpp|autograd/src|${viewer_headers}"
  "optim sees autograd's public headers only")
check(distributed "autograd/src|nn/src|optim/src|${viewer_headers}"
  "distributed sees the public headers of nn, optim and autograd")
# mpi.h stays private to distributed/src: users of zerograd::distributed need no MPI flags.
check(distributed/include "mpi\\.h" "mpi.h belongs in distributed/src only")
foreach(h ${private_headers})
  string(REPLACE "." "\\." h_re "${h}")
  foreach(layer autograd/viewers nn optim distributed)
    check(${layer} "[\"/]${h_re}\"" "${h} is private to autograd/src")
  endforeach()
endforeach()
if(errors)
  message(FATAL_ERROR "layering violations:\n${errors}")
endif()
message(STATUS "layering: autograd -> nothing above; viewers, nn, optim -> autograd's public headers; "
  "distributed -> public headers of nn, optim, autograd")
