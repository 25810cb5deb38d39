# Provides troupe::llama (llama.h + libllama + libggml) and TROUPE_LLAMA_LIBDIR, the folder
# the ggml backends are loaded from at run time.
#
#   TROUPE_LLAMA=bundled  the pinned prebuilt libraries in third_party/llama (scripts/bootstrap.sh)
#   TROUPE_LLAMA=package  a llama.cpp installed elsewhere, through its CMake package `llama`
#                         (e.g. -DTROUPE_LLAMA=package -DCMAKE_PREFIX_PATH=/opt/llama-cuda)
add_library(troupe::llama INTERFACE IMPORTED GLOBAL)

if(TROUPE_LLAMA STREQUAL "bundled")
  set(_dir "${CMAKE_SOURCE_DIR}/third_party/llama")
  if(NOT EXISTS "${_dir}/versions.cmake")
    message(FATAL_ERROR "llama.cpp is not installed in ${_dir}: run scripts/bootstrap.sh first "
                        "(or configure with -DTROUPE_LLAMA=package to use your own build).")
  endif()
  include("${_dir}/versions.cmake")
  set(TROUPE_LLAMA_LIBDIR "${_dir}/lib")
  foreach(_lib llama ggml ggml_base)
    add_library(troupe::_${_lib} SHARED IMPORTED GLOBAL)
  endforeach()
  set_target_properties(troupe::_llama PROPERTIES
    IMPORTED_LOCATION "${TROUPE_LLAMA_LIBDIR}/${TROUPE_LLAMA_LIBRARY}"
    IMPORTED_SONAME "${TROUPE_LLAMA_LIBRARY}")
  set_target_properties(troupe::_ggml PROPERTIES
    IMPORTED_LOCATION "${TROUPE_LLAMA_LIBDIR}/${TROUPE_GGML_LIBRARY}"
    IMPORTED_SONAME "${TROUPE_GGML_LIBRARY}")
  set_target_properties(troupe::_ggml_base PROPERTIES
    IMPORTED_LOCATION "${TROUPE_LLAMA_LIBDIR}/libggml-base.so"
    IMPORTED_SONAME "libggml-base.so")
  # -isystem: llama.cpp's headers are not ours to warn about.
  set_target_properties(troupe::llama PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${_dir}/include"
    INTERFACE_SYSTEM_INCLUDE_DIRECTORIES "${_dir}/include"
    INTERFACE_LINK_LIBRARIES "troupe::_llama;troupe::_ggml;troupe::_ggml_base")
  set(CMAKE_BUILD_RPATH "${TROUPE_LLAMA_LIBDIR}")
elseif(TROUPE_LLAMA STREQUAL "package")
  find_package(llama REQUIRED)
  set_target_properties(troupe::llama PROPERTIES INTERFACE_LINK_LIBRARIES "llama;ggml::ggml;ggml::ggml-base")
  get_target_property(_loc llama LOCATION)
  get_filename_component(TROUPE_LLAMA_LIBDIR "${_loc}" DIRECTORY)
  set(TROUPE_LLAMA_RELEASE "${llama_VERSION}")
  set(TROUPE_LLAMA_NPM_VERSION "")
  set(TROUPE_LLAMA_COMMIT "${LLAMA_BUILD_COMMIT}")
else()
  message(FATAL_ERROR "TROUPE_LLAMA must be 'bundled' or 'package', not '${TROUPE_LLAMA}'")
endif()
message(STATUS "llama.cpp: ${TROUPE_LLAMA} ${TROUPE_LLAMA_RELEASE} from ${TROUPE_LLAMA_LIBDIR}")
