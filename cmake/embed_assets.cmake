# Writes a C++ source that holds files as byte arrays: the web chat's assets (src/webui), so
# that the binary serves them with nothing to fetch or install at run time. Run in script
# mode at build time:
#   cmake -DOUTPUT=out.cpp -DINPUTS="a.html;b.js" -P embed_assets.cmake
# index.html is served at "/", every other file at "/webui/<name>". Each asset gets its
# Content-Type from its extension and a strong ETag from the SHA-256 of its bytes.

if(NOT OUTPUT OR NOT INPUTS)
  message(FATAL_ERROR "embed_assets.cmake: set OUTPUT and INPUTS")
endif()

function(content_type_of name out)
  get_filename_component(ext "${name}" LAST_EXT)
  if(ext STREQUAL ".html")
    set(type "text/html; charset=utf-8")
  elseif(ext STREQUAL ".js")
    set(type "text/javascript; charset=utf-8")
  elseif(ext STREQUAL ".css")
    set(type "text/css; charset=utf-8")
  elseif(ext STREQUAL ".svg")
    set(type "image/svg+xml")
  else()
    message(FATAL_ERROR "embed_assets.cmake: no content type for '${name}'")
  endif()
  set(${out} "${type}" PARENT_SCOPE)
endfunction()

set(arrays "")
set(entries "")
set(index 0)
foreach(input IN LISTS INPUTS)
  get_filename_component(name "${input}" NAME)
  content_type_of("${name}" type)
  if(name STREQUAL "index.html")
    set(url "/")
  else()
    set(url "/webui/${name}")
  endif()
  file(SHA256 "${input}" sha)
  string(SUBSTRING "${sha}" 0 20 etag)
  file(SIZE "${input}" size)
  file(READ "${input}" hex HEX)
  # '\xNN' per byte, 16 to a line; a final 0 keeps the array non-empty (not counted in size).
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "'\\\\x\\1'," bytes "${hex}")
  string(REPEAT "'....'," 16 sixteen)  # CMake's regular expressions have no {16}
  string(REGEX REPLACE "(${sixteen})" "\\1\n    " bytes "${bytes}")
  string(APPEND arrays "constexpr char asset_${index}[] = {\n    ${bytes}0};\n")
  string(APPEND entries "    Asset{\"${url}\", \"${type}\", {asset_${index}, ${size}}, R\"(\"${etag}\")\"},\n")
  math(EXPR index "${index} + 1")
endforeach()

set(text "// Generated at build time by cmake/embed_assets.cmake from src/webui; do not edit.

#include \"webui/assets.hpp\"

#include <array>

namespace troupe::webui {
namespace {

${arrays}
constexpr std::array<Asset, ${index}> table = {
${entries}};

}  // namespace

std::span<const Asset> assets() { return table; }

}  // namespace troupe::webui
")
# Only rewrite when the text changed, so that an unchanged page does not relink.
if(EXISTS "${OUTPUT}")
  file(READ "${OUTPUT}" old)
  if(old STREQUAL text)
    return()
  endif()
endif()
file(WRITE "${OUTPUT}" "${text}")
