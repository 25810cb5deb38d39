#include "mkmodel/model_spec.hpp"

#include <fmt/format.h>

#include "mkmodel/vocab.hpp"

namespace troupe::mkmodel {

Result<Shape> shape_by_name(std::string_view name) {
  if (name == "tiny")
    return Shape{"tiny", 2048, 2048, 128, 4, 4, 2, 384};
  if (name == "small")
    return Shape{"small", 32000, 2048, 768, 12, 12, 12, 2048};
  if (name == "1b")
    return Shape{"1b", 32000, 2048, 2048, 22, 32, 4, 5632};
  return Error{Errc::invalid_request,
               fmt::format("unknown shape '{}' (expected tiny, small or 1b)", name), "shape"};
}

Result<WeightType> parse_weight_type(std::string_view name) {
  if (name == "f32")
    return WeightType::f32;
  if (name == "f16")
    return WeightType::f16;
  if (name == "q8_0")
    return WeightType::q8_0;
  if (name == "q4_0")
    return WeightType::q4_0;
  return Error{Errc::invalid_request,
               fmt::format("unknown type '{}' (expected f32, f16, q8_0 or q4_0)", name), "type"};
}

Result<Arch> parse_arch(std::string_view name) {
  if (name == "llama")
    return Arch::llama;
  if (name == "bert")
    return Arch::bert;
  if (name == "cohere2")
    return Arch::cohere2;
  if (name == "lfm2")
    return Arch::lfm2;
  return Error{Errc::invalid_request,
               fmt::format("unknown arch '{}' (expected llama, bert, cohere2 or lfm2)", name),
               "arch"};
}

Result<BertPooling> parse_bert_pooling(std::string_view name) {
  if (name == "mean")
    return BertPooling::mean;
  if (name == "cls")
    return BertPooling::cls;
  if (name == "rank")
    return BertPooling::rank;
  return Error{Errc::invalid_request,
               fmt::format("unknown pooling '{}' (expected mean, cls or rank)", name), "pooling"};
}

std::string_view weight_type_name(WeightType t) {
  switch (t) {
    case WeightType::f32:
      return "f32";
    case WeightType::f16:
      return "f16";
    case WeightType::q8_0:
      return "q8_0";
    case WeightType::q4_0:
      return "q4_0";
  }
  return "?";
}

Result<void> validate(const ModelSpec& spec) {
  const Shape& s = spec.shape;
  auto bad = [](std::string msg, std::string param) {
    return Error{Errc::invalid_request, std::move(msg), std::move(param)};
  };
  if (spec.vocab_file.empty() && (s.n_vocab < kMinVocab || s.n_vocab > max_vocab())) {
    return bad(fmt::format("vocab must be in [{}, {}], not {}", kMinVocab, max_vocab(), s.n_vocab),
               "vocab");
  }
  if (s.n_ctx < 16)
    return bad(fmt::format("ctx must be at least 16, not {}", s.n_ctx), "ctx");
  if (s.n_embd <= 0 || s.n_layer <= 0 || s.n_head <= 0 || s.n_head_kv <= 0 || s.n_ff <= 0) {
    return bad("embd, layers, heads, kv heads and ff must all be positive", "shape");
  }
  if (s.n_embd % s.n_head != 0) {
    return bad(fmt::format("heads ({}) must divide embd ({})", s.n_head, s.n_embd), "heads");
  }
  if (s.n_head % s.n_head_kv != 0) {
    return bad(fmt::format("kv heads ({}) must divide heads ({})", s.n_head_kv, s.n_head),
               "kv-heads");
  }
  if ((s.n_embd / s.n_head) % 2 != 0)
    return bad("the head size must be even (RoPE)", "heads");
  if (spec.arch == Arch::bert && spec.vocab_file.empty()) {
    return bad("--arch bert needs a WordPiece vocabulary: --vocab ggml-vocab-bert-bge.gguf",
               "vocab");
  }
  if (spec.arch == Arch::cohere2 && spec.sliding_window < 1)
    return bad("the sliding window must be at least one token", "sliding-window");
  if (spec.arch == Arch::bert && s.n_head_kv != s.n_head)
    return bad("bert has no grouped-query attention: kv heads must equal heads", "kv-heads");
  if (spec.type != WeightType::f32 && spec.type != WeightType::f16 &&
      (s.n_embd % 32 != 0 || s.n_ff % 32 != 0)) {
    return bad(fmt::format("{} needs embd and ff divisible by 32", weight_type_name(spec.type)),
               "type");
  }
  return {};
}

std::int64_t parameter_count(const Shape& s) {
  const std::int64_t head = s.n_embd / s.n_head;
  const std::int64_t kv = head * s.n_head_kv;
  const std::int64_t per_layer =
      2LL * s.n_embd * s.n_embd + 2LL * s.n_embd * kv + 3LL * s.n_embd * s.n_ff + 2LL * s.n_embd;
  return 2LL * s.n_vocab * s.n_embd + s.n_embd + s.n_layer * per_layer;
}

}  // namespace troupe::mkmodel
