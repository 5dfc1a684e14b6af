# ctest step: the layers include only what DESIGN.md lets them see.
# autograd/ sees neither nn/ nor optim/ (nor the umbrella header); nn/ and
# optim/ see autograd's public headers only, and not each other. The build
# enforces the same through each layer target's include folders; this test
# names the offending file and line when someone adds an include path.
file(GLOB private_headers RELATIVE ${ROOT}/autograd/src ${ROOT}/autograd/src/*.hpp)
set(errors "")
function(check layer pattern why)
  file(GLOB_RECURSE files ${ROOT}/${layer}/*.hpp ${ROOT}/${layer}/*.cpp)
  foreach(f ${files})
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

check(autograd "zerograd/(nn|optim|zerograd|distributed)[./]" "autograd must not include nn, optim, distributed or the umbrella header")
check(nn "zerograd/(optim|distributed)[./]|zerograd/zerograd\\.hpp|autograd/src" "nn sees autograd's public headers only")
check(optim "zerograd/(nn|distributed)[./]|zerograd/zerograd\\.hpp|autograd/src" "optim sees autograd's public headers only")
check(distributed "autograd/src|nn/src|optim/src" "distributed sees the public headers of nn, optim and autograd")
# mpi.h stays private to distributed/src: users of zerograd::distributed need no MPI flags.
check(distributed/include "mpi\\.h" "mpi.h belongs in distributed/src only")
foreach(h ${private_headers})
  string(REPLACE "." "\\." h_re "${h}")
  check(nn "[\"/]${h_re}\"" "${h} is private to autograd/src")
  check(optim "[\"/]${h_re}\"" "${h} is private to autograd/src")
  check(distributed "[\"/]${h_re}\"" "${h} is private to autograd/src")
endforeach()
if(errors)
  message(FATAL_ERROR "layering violations:\n${errors}")
endif()
message(STATUS "layering: autograd -> nothing above; nn, optim -> autograd's public headers; distributed -> public headers")
