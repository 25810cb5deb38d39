# Helpers every module uses, so that flags, sanitizers and test registration stay uniform.

set(TROUPE_WARNINGS -Wall -Wextra -Wpedantic -Wno-missing-field-initializers)

add_library(troupe_options INTERFACE)
target_compile_options(troupe_options INTERFACE ${TROUPE_WARNINGS})
target_include_directories(troupe_options INTERFACE "${CMAKE_SOURCE_DIR}/src")
if(TROUPE_SANITIZE)
  target_compile_options(troupe_options INTERFACE -fsanitize=${TROUPE_SANITIZE} -fno-omit-frame-pointer
                         -fno-sanitize-recover=all)
  target_link_options(troupe_options INTERFACE -fsanitize=${TROUPE_SANITIZE})
endif()

# troupe_add_module(NAME SOURCES... [DEPS targets...] [PRIVATE_DEPS targets...]): a static
# library troupe_NAME. DEPS are what its headers need (PUBLIC: consumers compile against them);
# PRIVATE_DEPS only its sources (consumers still link them, as a static library needs).
function(troupe_add_module name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(troupe_${name} STATIC ${ARG_SOURCES})
  target_link_libraries(troupe_${name} PUBLIC troupe_options ${ARG_DEPS})
  if(ARG_PRIVATE_DEPS)
    target_link_libraries(troupe_${name} PRIVATE ${ARG_PRIVATE_DEPS})
  endif()
endfunction()

# troupe_add_tests(NAME SOURCES... [DEPS targets...] [LABELS ...]): one GoogleTest binary per
# module, each test registered with ctest so that ctest -j runs them in parallel. Every test
# is labelled NAME (extra LABELS are informative only: gtest_discover_tests keeps just the
# first item of a list property). The tsan preset picks its suites with TROUPE_ONLY instead.
function(troupe_add_tests name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  add_executable(${name}_tests ${ARG_SOURCES})
  target_link_libraries(${name}_tests PRIVATE troupe_options ${ARG_DEPS} GTest::gtest GTest::gmock
                                              GTest::gtest_main)
  target_compile_definitions(${name}_tests PRIVATE
    TROUPE_SOURCE_DIR="${CMAKE_SOURCE_DIR}" TROUPE_BINARY_DIR="${CMAKE_BINARY_DIR}"
    TROUPE_LLAMA_TESTDATA="${TROUPE_LLAMA_TESTDATA}")
  gtest_discover_tests(${name}_tests DISCOVERY_MODE PRE_TEST DISCOVERY_TIMEOUT 60
                       PROPERTIES LABELS "${name};${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT})
endfunction()
