// Fuzzes what a Hugging Face endpoint (or a mirror, or anyone on the path) sends troupe before
// a byte of a model is written: the repository's file list, the pagination Link header, an
// error body, and the cache's own records (a file on disk another process may have written).
// The input's first byte picks the parser; for a file list the rest also names a reference
// whose GGUF is chosen from it. Every input must end as a value or an error: no crash, no
// sanitizer report, no exception, and never a path that could leave the cache folder.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "hub/metadata.hpp"
#include "hub/select.hpp"

namespace {

using namespace troupe::hub;

void check_path(const std::string& path) {
  if (!safe_relative_path(path))
    __builtin_trap();  // a server's path reached a file name unchecked
}

void file_list(std::string_view json, std::string_view ref_text) {
  auto files = parse_tree(json);
  if (!files)
    return;
  for (const auto& f : *files)
    check_path(f.path);
  auto ref = parse_repo_ref(ref_text);
  if (!ref)
    return;
  auto picked = pick_gguf(*files, *ref);
  if (!picked)
    return;
  if (!is_gguf(picked->path))
    __builtin_trap();
  if (auto parts = split_parts(*files, *picked); parts) {
    for (const auto& p : *parts)
      check_path(p.path);
  }
}

void record(std::string_view json) {
  auto r = parse_record(json);
  if (!r)
    return;
  check_path(r->file);
  auto again = parse_record(record_json(*r));
  if (!again || !(*again == *r))
    __builtin_trap();  // what the cache writes it must read back as it was
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0)
    return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 4) {
    case 0: {
      // "<file list JSON>\n<owner/name[:QUANT]>": the reference after the last newline.
      const auto nl = rest.rfind('\n');
      file_list(rest.substr(0, nl), nl == std::string_view::npos ? "o/n" : rest.substr(nl + 1));
      break;
    }
    case 1:
      (void)next_link(rest);
      break;
    case 2:
      (void)error_message_of(rest);
      break;
    default:
      record(rest);
  }
  return 0;
}
