# ctest step: each layer includes only what it may see (docs/design.md).
# autograd/ sees nothing above it (viewers, nn, optim, distributed, onnx, the
# umbrella header); the viewers (autograd/viewers/), nn/ and optim/ see
# autograd's public headers only, and not each other; distributed/ sees the
# public headers of nn, optim and autograd; onnx (nn/onnx/) sees those of
# nn, the viewers and autograd, and no layer below includes it. The build enforces the same
# through each layer target's include folders; this test names the
# offending file and line when someone adds an include path.
file(GLOB_RECURSE private_headers RELATIVE ${ROOT}/autograd/src ${ROOT}/autograd/src/*.hpp)
set(viewer_headers "zerograd/(dot|html|viewers)\\.hpp")
set(onnx_headers "zerograd/onnx[./]")
set(errors "")
function(check dir pattern why)
  file(GLOB_RECURSE files ${ROOT}/${dir}/*.hpp ${ROOT}/${dir}/*.cpp)
  foreach(f ${files})
    # autograd/ holds the viewers' folder; the viewers are checked as a layer of their own.
    if(dir STREQUAL "autograd" AND f MATCHES "^${ROOT}/autograd/viewers/")
      continue()
    endif()
    # nn/ holds the onnx layer's folder, checked as a layer of its own.
    if(dir STREQUAL "nn" AND f MATCHES "^${ROOT}/nn/onnx/")
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

check(autograd "zerograd/(nn|optim|zerograd|distributed)[./]|${viewer_headers}|${onnx_headers}"
  "autograd must not include the viewers, nn, optim, distributed or the umbrella header")
check(autograd/viewers "zerograd/(nn|optim|distributed)[./]|zerograd/zerograd\\.hpp|autograd/src|${onnx_headers}"
  "the viewers see autograd's public headers only")
check(nn "zerograd/(optim|distributed)[./]|zerograd/zerograd\\.hpp|autograd/src|${viewer_headers}|${onnx_headers}"
  "nn sees autograd's public headers only")
check(optim "zerograd/(nn|distributed)[./]|zerograd/zerograd\\.hpp|autograd/src|${viewer_headers}|${onnx_headers}"
  "optim sees autograd's public headers only")
check(distributed "autograd/src|nn/src|optim/src|${viewer_headers}"
  "distributed sees the public headers of nn, optim and autograd")
check(nn/onnx "zerograd/(optim|distributed)[./]|zerograd/zerograd\\.hpp|autograd/src|nn/src"
  "onnx sees the public headers of nn, the viewers and autograd")
# mpi.h stays private to distributed/src: users of zerograd::distributed need no MPI flags.
check(distributed/include "mpi\\.h" "mpi.h belongs in distributed/src only")
foreach(h ${private_headers})
  string(REPLACE "." "\\." h_re "${h}")
  foreach(layer autograd/viewers nn nn/onnx optim distributed)
    check(${layer} "[\"/]${h_re}\"" "${h} is private to autograd/src")
  endforeach()
endforeach()
if(errors)
  message(FATAL_ERROR "layering violations:\n${errors}")
endif()
message(STATUS "layering: autograd -> nothing above; viewers, nn, optim -> autograd's public headers; onnx -> nn, viewers; "
  "distributed -> public headers of nn, optim, autograd")
