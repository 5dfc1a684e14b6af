# ctest step: no test case name contains ';'. CMake's test discovery treats
# it as a list separator and splits the name into filters that match no
# test, and doctest passes a run that matched nothing: such a case would
# never run under ctest (ten did not, until this check).
file(GLOB sources ${ROOT}/tests/*.cpp ${ROOT}/tests/*.hpp)
set(bad "")
foreach(f ${sources})
  file(STRINGS ${f} lines REGEX "TEST_CASE[A-Z_]*\\(\"[^\"]*;")
  foreach(line ${lines})
    file(RELATIVE_PATH rel ${ROOT} ${f})
    string(APPEND bad "${rel}: ${line}\n")
  endforeach()
endforeach()
if(bad)
  message(FATAL_ERROR "test names with ';' (ctest would split them and run nothing):\n${bad}")
endif()
