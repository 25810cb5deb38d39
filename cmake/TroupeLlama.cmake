# Provides troupe::llama (llama.h + libllama + libggml), troupe::llama_common (llama.cpp's
# common library: Jinja chat templates, tool-call and reasoning parsers, JSON-schema grammars;
# linked by one module only), TROUPE_LLAMA_LIBDIR (the folder the ggml backends are loaded from
# at run time) and TROUPE_LLAMA_BUILD (which build: native, npm prebuilt, a user's package).
#
#   TROUPE_LLAMA=bundled  third_party/llama, as scripts/bootstrap.sh installs it: built from the
#                         pinned release for this machine, or the npm prebuilt (--prebuilt)
#   TROUPE_LLAMA=package  a llama.cpp installed elsewhere, through its CMake package `llama`
#                         (e.g. -DTROUPE_LLAMA=package -DCMAKE_PREFIX_PATH=/opt/llama-cuda)
add_library(troupe::llama INTERFACE IMPORTED GLOBAL)
add_library(troupe::llama_common INTERFACE IMPORTED GLOBAL)

if(TROUPE_LLAMA STREQUAL "bundled")
  set(_dir "${CMAKE_SOURCE_DIR}/third_party/llama")
  if(NOT EXISTS "${_dir}/versions.cmake")
    message(FATAL_ERROR "llama.cpp is not installed in ${_dir}: run scripts/bootstrap.sh first "
                        "(or configure with -DTROUPE_LLAMA=package to use your own build).")
  endif()
  include("${_dir}/versions.cmake")
  set(TROUPE_LLAMA_LIBDIR "${_dir}/lib")
  if(NOT DEFINED TROUPE_LLAMA_COMMON_LIBRARY)
    message(FATAL_ERROR "${_dir} was installed by an older scripts/bootstrap.sh: run it again.")
  endif()
  foreach(_pair "llama;${TROUPE_LLAMA_LIBRARY}" "ggml;${TROUPE_GGML_LIBRARY}"
                "ggml_base;${TROUPE_GGML_BASE_LIBRARY}" "common;${TROUPE_LLAMA_COMMON_LIBRARY}")
    list(GET _pair 0 _lib)
    list(GET _pair 1 _file)
    add_library(troupe::_${_lib} SHARED IMPORTED GLOBAL)
    set_target_properties(troupe::_${_lib} PROPERTIES
      IMPORTED_LOCATION "${TROUPE_LLAMA_LIBDIR}/${_file}" IMPORTED_SONAME "${_file}")
  endforeach()
  # -isystem: llama.cpp's headers are not ours to warn about.
  set_target_properties(troupe::llama PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${_dir}/include"
    INTERFACE_SYSTEM_INCLUDE_DIRECTORIES "${_dir}/include"
    INTERFACE_LINK_LIBRARIES "troupe::_llama;troupe::_ggml;troupe::_ggml_base")
  set_target_properties(troupe::llama_common PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${_dir}/include/common;${_dir}/include/vendor"
    INTERFACE_SYSTEM_INCLUDE_DIRECTORIES "${_dir}/include/common;${_dir}/include/vendor"
    INTERFACE_LINK_LIBRARIES "troupe::_common;troupe::llama")
  set(TROUPE_LLAMA_TESTDATA "${_dir}/testdata")
  set(CMAKE_BUILD_RPATH "${TROUPE_LLAMA_LIBDIR}")
elseif(TROUPE_LLAMA STREQUAL "package")
  find_package(llama REQUIRED)
  set_target_properties(troupe::llama PROPERTIES INTERFACE_LINK_LIBRARIES "llama;ggml::ggml;ggml::ggml-base")
  get_target_property(_loc llama LOCATION)
  get_filename_component(TROUPE_LLAMA_LIBDIR "${_loc}" DIRECTORY)
  set(TROUPE_LLAMA_RELEASE "${llama_VERSION}")
  set(TROUPE_LLAMA_NPM_VERSION "")
  set(TROUPE_LLAMA_COMMIT "${LLAMA_BUILD_COMMIT}")
  set(TROUPE_LLAMA_BUILD "package llama ${llama_VERSION} from ${TROUPE_LLAMA_LIBDIR}")
  # llama.cpp's CMake package does not export its common library: look beside libllama, and
  # for its headers under the prefix (a source tree's common/ works too: -DTROUPE_LLAMA_COMMON_INCLUDE).
  find_library(TROUPE_LLAMA_COMMON_LIB NAMES llama-common common HINTS "${TROUPE_LLAMA_LIBDIR}")
  find_path(TROUPE_LLAMA_COMMON_INCLUDE chat.h PATH_SUFFIXES common include/common
            HINTS "${TROUPE_LLAMA_LIBDIR}/.." "${TROUPE_LLAMA_LIBDIR}/../..")
  find_path(TROUPE_LLAMA_NLOHMANN_INCLUDE nlohmann/json.hpp PATH_SUFFIXES vendor include/vendor
            HINTS "${TROUPE_LLAMA_COMMON_INCLUDE}/.." "${TROUPE_LLAMA_LIBDIR}/..")
  if(NOT TROUPE_LLAMA_COMMON_LIB OR NOT TROUPE_LLAMA_COMMON_INCLUDE OR NOT TROUPE_LLAMA_NLOHMANN_INCLUDE)
    message(FATAL_ERROR "llama.cpp's common library is missing from this llama package "
      "(library: ${TROUPE_LLAMA_COMMON_LIB}, headers: ${TROUPE_LLAMA_COMMON_INCLUDE}, "
      "nlohmann/json: ${TROUPE_LLAMA_NLOHMANN_INCLUDE}). Build llama.cpp with "
      "-DBUILD_SHARED_LIBS=ON -DLLAMA_BUILD_COMMON=ON and point -DTROUPE_LLAMA_COMMON_LIB, "
      "-DTROUPE_LLAMA_COMMON_INCLUDE (its common/ folder) and -DTROUPE_LLAMA_NLOHMANN_INCLUDE "
      "(its vendor/ folder) at them.")
  endif()
  set_target_properties(troupe::llama_common PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${TROUPE_LLAMA_COMMON_INCLUDE};${TROUPE_LLAMA_NLOHMANN_INCLUDE}"
    INTERFACE_SYSTEM_INCLUDE_DIRECTORIES "${TROUPE_LLAMA_COMMON_INCLUDE};${TROUPE_LLAMA_NLOHMANN_INCLUDE}"
    INTERFACE_LINK_LIBRARIES "${TROUPE_LLAMA_COMMON_LIB};troupe::llama")
  set(TROUPE_LLAMA_TESTDATA "${CMAKE_SOURCE_DIR}/third_party/llama/testdata")
else()
  message(FATAL_ERROR "TROUPE_LLAMA must be 'bundled' or 'package', not '${TROUPE_LLAMA}'")
endif()
message(STATUS "llama.cpp: ${TROUPE_LLAMA} ${TROUPE_LLAMA_RELEASE} from ${TROUPE_LLAMA_LIBDIR}: ${TROUPE_LLAMA_BUILD}")

# troupe_llama_internal(OUT HEADER SOURCE VAR): the folder of one of llama.cpp's internal
# headers (bundled: installed by scripts/bootstrap.sh; package: -DTROUPE_LLAMA_INTERNAL_INCLUDE, a
# source tree's src/) when it is there and SOURCE, which uses what it declares, compiles and
# links against the library (cached in VAR); else empty.
set(TROUPE_LLAMA_INTERNAL_INCLUDE "${CMAKE_SOURCE_DIR}/third_party/llama/include/internal"
    CACHE PATH "folder of llama.cpp's src/llama-grammar.h and src/llama-ext.h (optional)")
function(troupe_llama_internal out header source var)
  set(${out} "" PARENT_SCOPE)
  if(NOT EXISTS "${TROUPE_LLAMA_INTERNAL_INCLUDE}/${header}")
    return()
  endif()
  include(CheckCXXSourceCompiles)
  get_target_property(_inc troupe::llama INTERFACE_INCLUDE_DIRECTORIES)
  set(CMAKE_REQUIRED_INCLUDES "${TROUPE_LLAMA_INTERNAL_INCLUDE};${_inc}")
  set(CMAKE_REQUIRED_LIBRARIES troupe::llama)
  set(CMAKE_REQUIRED_FLAGS "-std=c++20")
  check_cxx_source_compiles("${source}" ${var})
  if(${var})
    set(${out} "${TROUPE_LLAMA_INTERNAL_INCLUDE}" PARENT_SCOPE)
  endif()
endfunction()

# troupe_llama_grammar_internals(OUT): llama-grammar.h's folder when the library exports the
# internal grammar functions; else empty.
function(troupe_llama_grammar_internals out)
  troupe_llama_internal(_dir llama-grammar.h [=[
#include <llama-grammar.h>
int main() {
  llama_grammar* g = llama_grammar_init_impl(nullptr, "root ::= [a]", "root", false, nullptr, 0,
                                             nullptr, 0);
  llama_grammar_free_impl(llama_grammar_clone_impl(*g));
  return llama_grammar_get_rules(g).empty() ? 1 : 0;
}
]=] TROUPE_HAVE_LLAMA_GRAMMAR_INTERNALS)
  if(NOT _dir)
    message(STATUS "llama.cpp grammar internals: none; grammars sampled without the state cache")
  endif()
  set(${out} "${_dir}" PARENT_SCOPE)
endfunction()

# troupe_llama_memory_breakdown(OUT): the folder of llama.cpp's staging header llama-ext.h when
# the library exports llama_get_memory_breakdown, llama.cpp's own account of what a model and a
# context allocate on each device; else empty.
function(troupe_llama_memory_breakdown out)
  troupe_llama_internal(_dir llama-ext.h [=[
#include <llama-ext.h>
int main(int argc, char**) {
  if (argc > 1) {
    const llama_memory_breakdown m = llama_get_memory_breakdown(nullptr);
    return static_cast<int>(m.empty() ? 0 : m.begin()->second.total());
  }
  return 0;
}
]=] TROUPE_HAVE_LLAMA_MEMORY_BREAKDOWN)
  if(NOT _dir)
    message(STATUS "llama.cpp memory breakdown: none; memory estimated from the GGUF's shape")
  endif()
  set(${out} "${_dir}" PARENT_SCOPE)
endfunction()
