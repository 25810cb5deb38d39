// write_model(): GGUF metadata through ggml's gguf writer, then the tensor data streamed
// tensor by tensor (generated, converted or quantized with ggml's own functions, written,
// padded), so a 1B model never needs its weights in memory at once.

#include <fmt/format.h>
#include <ggml.h>
#include <gguf.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <future>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "mkmodel/model_spec.hpp"
#include "mkmodel/vocab.hpp"
#include "mkmodel/vocab_file.hpp"

namespace troupe::mkmodel {
namespace {

struct GgufDeleter {
  void operator()(gguf_context* c) const { gguf_free(c); }
};
struct GgmlDeleter {
  void operator()(ggml_context* c) const { ggml_free(c); }
};
struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

// xoshiro256** seeded through splitmix64: small, fast, identical on every platform.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) {
    for (auto& s : s_)
      s = splitmix(seed);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  // Marsaglia's polar method: two normals per accepted pair, no trigonometry.
  float normal(float stddev) {
    if (has_spare_) {
      has_spare_ = false;
      return spare_ * stddev;
    }
    double u, v, s;
    do {
      u = 2.0 * uniform() - 1.0;
      v = 2.0 * uniform() - 1.0;
      s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    const double m = std::sqrt(-2.0 * std::log(s) / s);
    spare_ = static_cast<float>(v * m);
    has_spare_ = true;
    return static_cast<float>(u * m) * stddev;
  }

 private:
  static std::uint64_t splitmix(std::uint64_t& x) {
    std::uint64_t z = (x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::uint64_t next() {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  std::uint64_t s_[4];
  float spare_ = 0.0f;
  bool has_spare_ = false;
};

std::uint64_t fnv1a(std::string_view s) {
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s)
    h = (h ^ c) * 1099511628211ULL;
  return h;
}

ggml_type ggml_type_of(WeightType t) {
  switch (t) {
    case WeightType::f32:
      return GGML_TYPE_F32;
    case WeightType::f16:
      return GGML_TYPE_F16;
    case WeightType::q8_0:
      return GGML_TYPE_Q8_0;
    case WeightType::q4_0:
      return GGML_TYPE_Q4_0;
  }
  return GGML_TYPE_F32;
}

std::uint32_t llama_file_type(WeightType t) {
  switch (t) {
    case WeightType::f32:
      return 0;  // LLAMA_FTYPE_ALL_F32
    case WeightType::f16:
      return 1;  // LLAMA_FTYPE_MOSTLY_F16
    case WeightType::q8_0:
      return 7;  // LLAMA_FTYPE_MOSTLY_Q8_0
    case WeightType::q4_0:
      return 2;  // LLAMA_FTYPE_MOSTLY_Q4_0
  }
  return 0;
}

// One tensor to write: its name, shape (ne0 = row length) and whether it is a norm (ones) or
// a bias (zeros); those two are F32 vectors, the rest random weights of the model's type.
struct TensorPlan {
  std::string name;
  std::int64_t ne0 = 0, ne1 = 1;
  bool norm = false;
  bool bias = false;
  // Random but always F32, whatever the model's type: llama.cpp's BERT graph adds the token-
  // type row to F32 activations directly, and ggml's CPU add has no F32 + F16 kernel.
  bool f32 = false;
  bool vector() const { return norm || bias; }
  bool stays_f32() const { return norm || bias || f32; }
};

// llama.cpp's BERT (src/models/bert.cpp): learned positions and token types, a norm after the
// embeddings, per layer separate Q/K/V, the attention output with its norm, a GELU FFN
// (up, down) and the layer's output norm; a reranker adds the classifier head (cls: a dense
// tanh layer, cls.output: one score).
std::vector<TensorPlan> plan_bert_tensors(const ModelSpec& spec) {
  const Shape& s = spec.shape;
  std::vector<TensorPlan> t;
  t.push_back({"token_embd.weight", s.n_embd, s.n_vocab});
  t.push_back({"token_types.weight", s.n_embd, 2, false, false, true});
  t.push_back({"position_embd.weight", s.n_embd, s.n_ctx});
  t.push_back({"token_embd_norm.weight", s.n_embd, 1, true});
  t.push_back({"token_embd_norm.bias", s.n_embd, 1, false, true});
  for (int i = 0; i < s.n_layer; ++i) {
    auto n = [i](const char* what) { return fmt::format("blk.{}.{}", i, what); };
    for (const char* w : {"attn_q", "attn_k", "attn_v"}) {
      t.push_back({n(w) + ".weight", s.n_embd, s.n_embd});
      t.push_back({n(w) + ".bias", s.n_embd, 1, false, true});
    }
    t.push_back({n("attn_output.weight"), s.n_embd, s.n_embd});
    t.push_back({n("attn_output.bias"), s.n_embd, 1, false, true});
    t.push_back({n("attn_output_norm.weight"), s.n_embd, 1, true});
    t.push_back({n("attn_output_norm.bias"), s.n_embd, 1, false, true});
    t.push_back({n("ffn_up.weight"), s.n_embd, s.n_ff});
    t.push_back({n("ffn_up.bias"), s.n_ff, 1, false, true});
    t.push_back({n("ffn_down.weight"), s.n_ff, s.n_embd});
    t.push_back({n("ffn_down.bias"), s.n_embd, 1, false, true});
    t.push_back({n("layer_output_norm.weight"), s.n_embd, 1, true});
    t.push_back({n("layer_output_norm.bias"), s.n_embd, 1, false, true});
  }
  if (spec.pooling == BertPooling::rank) {
    t.push_back({"cls.weight", s.n_embd, s.n_embd});
    t.push_back({"cls.bias", s.n_embd, 1, false, true});
    t.push_back({"cls.output.weight", s.n_embd, 1});
    t.push_back({"cls.output.bias", 1, 1, false, true});
  }
  return t;
}

// lfm2 (src/models/lfm2.cpp): its attention layers (every third from the third) and its short
// convolution layers (a 3-token causal convolution gated by projections of the input: a
// recurrent state of 2 tokens), each with the layer's norm, then a feed-forward with its own;
// the output norm is llama.cpp's "token_embd_norm" and the output matrix the embeddings.
constexpr std::int64_t kLfm2ConvWidth = 3;  // lfm2.shortconv.l_cache

bool lfm2_attention(int layer) {
  return layer % 3 == 2;
}

std::vector<TensorPlan> plan_lfm2_tensors(const ModelSpec& spec) {
  const Shape& s = spec.shape;
  const std::int64_t head = s.n_embd / s.n_head;
  const std::int64_t kv = head * s.n_head_kv;
  std::vector<TensorPlan> t;
  t.push_back({"token_embd.weight", s.n_embd, s.n_vocab});
  for (int i = 0; i < s.n_layer; ++i) {
    auto n = [i](const char* what) { return fmt::format("blk.{}.{}.weight", i, what); };
    t.push_back({n("attn_norm"), s.n_embd, 1, true});
    if (lfm2_attention(i)) {
      t.push_back({n("attn_q_norm"), head, 1, true});
      t.push_back({n("attn_k_norm"), head, 1, true});
      t.push_back({n("attn_q"), s.n_embd, s.n_embd});
      t.push_back({n("attn_k"), s.n_embd, kv});
      t.push_back({n("attn_v"), s.n_embd, kv});
      t.push_back({n("attn_output"), s.n_embd, s.n_embd});
    } else {
      // The convolution's taps stay F32 (a row of 3 is no quantization block).
      t.push_back({n("shortconv.conv"), kLfm2ConvWidth, s.n_embd, false, false, true});
      t.push_back({n("shortconv.in_proj"), s.n_embd, 3 * s.n_embd});
      t.push_back({n("shortconv.out_proj"), s.n_embd, s.n_embd});
    }
    t.push_back({n("ffn_norm"), s.n_embd, 1, true});
    t.push_back({n("ffn_gate"), s.n_embd, s.n_ff});
    t.push_back({n("ffn_down"), s.n_ff, s.n_embd});
    t.push_back({n("ffn_up"), s.n_embd, s.n_ff});
  }
  t.push_back({"token_embd_norm.weight", s.n_embd, 1, true});
  return t;
}

// llama's decoder; cohere2 (src/models/cohere2.cpp) is the same without the feed-forward
// norm (attention and feed-forward both read the layer's one norm, in parallel) and with the
// output matrix tied to the token embeddings.
std::vector<TensorPlan> plan_tensors(const ModelSpec& spec) {
  if (spec.arch == Arch::bert)
    return plan_bert_tensors(spec);
  if (spec.arch == Arch::lfm2)
    return plan_lfm2_tensors(spec);
  const bool cohere2 = spec.arch == Arch::cohere2;
  const Shape& s = spec.shape;
  const std::int64_t kv = static_cast<std::int64_t>(s.n_embd / s.n_head) * s.n_head_kv;
  std::vector<TensorPlan> t;
  t.push_back({"token_embd.weight", s.n_embd, s.n_vocab});
  for (int i = 0; i < s.n_layer; ++i) {
    auto n = [i](const char* what) { return fmt::format("blk.{}.{}.weight", i, what); };
    t.push_back({n("attn_norm"), s.n_embd, 1, true});
    t.push_back({n("attn_q"), s.n_embd, s.n_embd});
    t.push_back({n("attn_k"), s.n_embd, kv});
    t.push_back({n("attn_v"), s.n_embd, kv});
    t.push_back({n("attn_output"), s.n_embd, s.n_embd});
    if (!cohere2)
      t.push_back({n("ffn_norm"), s.n_embd, 1, true});
    t.push_back({n("ffn_gate"), s.n_embd, s.n_ff});
    t.push_back({n("ffn_down"), s.n_ff, s.n_embd});
    t.push_back({n("ffn_up"), s.n_embd, s.n_ff});
  }
  t.push_back({"output_norm.weight", s.n_embd, 1, true});
  if (!cohere2)
    t.push_back({"output.weight", s.n_embd, s.n_vocab});
  return t;
}

void set_bert_metadata(gguf_context* g, const ModelSpec& spec) {
  const Shape& s = spec.shape;
  gguf_set_val_str(g, "general.architecture", "bert");
  gguf_set_val_str(g, "general.name", fmt::format("troupe-bert-{}-{}", s.name, spec.seed).c_str());
  gguf_set_val_u32(g, "general.file_type", llama_file_type(spec.type));
  gguf_set_val_u32(g, "general.quantization_version", 2);
  gguf_set_val_u32(g, "bert.context_length", static_cast<std::uint32_t>(s.n_ctx));
  gguf_set_val_u32(g, "bert.embedding_length", static_cast<std::uint32_t>(s.n_embd));
  gguf_set_val_u32(g, "bert.block_count", static_cast<std::uint32_t>(s.n_layer));
  gguf_set_val_u32(g, "bert.feed_forward_length", static_cast<std::uint32_t>(s.n_ff));
  gguf_set_val_u32(g, "bert.attention.head_count", static_cast<std::uint32_t>(s.n_head));
  gguf_set_val_f32(g, "bert.attention.layer_norm_epsilon", 1e-12f);
  gguf_set_val_bool(g, "bert.attention.causal", false);
  gguf_set_val_u32(g, "bert.pooling_type", static_cast<std::uint32_t>(spec.pooling));
}

void set_metadata(gguf_context* g, const ModelSpec& spec) {
  if (spec.arch == Arch::bert)
    return set_bert_metadata(g, spec);
  const Shape& s = spec.shape;
  const std::string arch = spec.arch == Arch::cohere2 ? "cohere2"
                           : spec.arch == Arch::lfm2  ? "lfm2"
                                                      : "llama";
  const auto key = [&arch](const char* name) { return arch + "." + name; };
  const auto u32 = [](std::int32_t v) { return static_cast<std::uint32_t>(v); };
  gguf_set_val_str(g, "general.architecture", arch.c_str());
  gguf_set_val_str(
      g, "general.name",
      fmt::format("troupe-{}{}-{}", arch == "llama" ? "" : arch + "-", s.name, spec.seed).c_str());
  gguf_set_val_u32(g, "general.file_type", llama_file_type(spec.type));
  gguf_set_val_u32(g, "general.quantization_version", 2);
  gguf_set_val_u32(g, key("context_length").c_str(), u32(s.n_ctx));
  gguf_set_val_u32(g, key("embedding_length").c_str(), u32(s.n_embd));
  gguf_set_val_u32(g, key("block_count").c_str(), u32(s.n_layer));
  gguf_set_val_u32(g, key("feed_forward_length").c_str(), u32(s.n_ff));
  gguf_set_val_u32(g, key("attention.head_count").c_str(), u32(s.n_head));
  gguf_set_val_u32(g, key("rope.dimension_count").c_str(), u32(s.n_embd / s.n_head));
  gguf_set_val_f32(g, key("rope.freq_base").c_str(), s.rope_freq_base);
  gguf_set_val_u32(g, key("vocab_size").c_str(), u32(s.n_vocab));
  if (spec.arch == Arch::lfm2) {
    // Key/value heads per layer: none on a convolution layer (llama.cpp's mark of them).
    std::vector<std::uint32_t> kv_heads(static_cast<std::size_t>(s.n_layer));
    for (int i = 0; i < s.n_layer; ++i)
      kv_heads[static_cast<std::size_t>(i)] = lfm2_attention(i) ? u32(s.n_head_kv) : 0;
    gguf_set_arr_data(g, "lfm2.attention.head_count_kv", GGUF_TYPE_UINT32, kv_heads.data(),
                      kv_heads.size());
    gguf_set_val_f32(g, "lfm2.attention.layer_norm_rms_epsilon", s.rms_eps);
    gguf_set_val_u32(g, "lfm2.shortconv.l_cache", static_cast<std::uint32_t>(kLfm2ConvWidth));
    return;
  }
  gguf_set_val_u32(g, key("attention.head_count_kv").c_str(), u32(s.n_head_kv));
  if (spec.arch == Arch::llama) {
    gguf_set_val_f32(g, "llama.attention.layer_norm_rms_epsilon", s.rms_eps);
    return;
  }
  // cohere2: layer norms; a window on every layer but each fourth (llama.cpp's default
  // pattern for it, written out); logits at scale 1.
  gguf_set_val_f32(g, "cohere2.attention.layer_norm_epsilon", s.rms_eps);
  gguf_set_val_u32(g, "cohere2.attention.sliding_window", u32(spec.sliding_window));
  gguf_set_val_u32(g, "cohere2.attention.sliding_window_pattern", 4);
  gguf_set_val_f32(g, "cohere2.logit_scale", 1.0f);
}

void set_tokenizer(gguf_context* g, const Vocab& v) {
  gguf_set_val_str(g, "tokenizer.ggml.model", "llama");
  std::vector<const char*> texts;
  texts.reserve(v.tokens.size());
  for (const auto& t : v.tokens)
    texts.push_back(t.c_str());
  gguf_set_arr_str(g, "tokenizer.ggml.tokens", texts.data(), texts.size());
  gguf_set_arr_data(g, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, v.scores.data(),
                    v.scores.size());
  gguf_set_arr_data(g, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, v.types.data(),
                    v.types.size());
  gguf_set_val_u32(g, "tokenizer.ggml.bos_token_id", static_cast<std::uint32_t>(v.bos_id));
  gguf_set_val_u32(g, "tokenizer.ggml.eos_token_id", static_cast<std::uint32_t>(v.eos_id));
  gguf_set_val_u32(g, "tokenizer.ggml.unknown_token_id", static_cast<std::uint32_t>(v.unk_id));
  gguf_set_val_u32(g, "tokenizer.ggml.eot_token_id", static_cast<std::uint32_t>(v.im_end_id));
  gguf_set_val_bool(g, "tokenizer.ggml.add_bos_token", true);
  gguf_set_val_bool(g, "tokenizer.ggml.add_eos_token", false);
  gguf_set_val_bool(g, "tokenizer.ggml.add_space_prefix", false);
  gguf_set_val_str(g, "tokenizer.chat_template", chatml_template());
}

// The tokenizer keys: the vocabulary file's, or the generated vocabulary's; then the chat
// template asked for, if any.
Result<void> set_tokenizer(gguf_context* g, const ModelSpec& spec, const VocabFile* file) {
  if (file != nullptr) {
    if (auto ok = file->copy_into(g); !ok)
      return ok;
  } else {
    set_tokenizer(g, build_vocab(spec.shape.n_vocab));
  }
  if (spec.chat_template)
    gguf_set_val_str(g, "tokenizer.chat_template", spec.chat_template->c_str());
  if (spec.arch == Arch::bert && gguf_find_key(g, "tokenizer.ggml.token_type_count") < 0)
    gguf_set_val_u32(g, "tokenizer.ggml.token_type_count", 2);  // the token_types tensor's rows
  return {};
}

// Generates one tensor's data, converted or quantized to `type`, in chunks of rows.
std::vector<std::uint8_t> generate_tensor(const TensorPlan& t, ggml_type type, std::uint64_t seed) {
  Rng rng(seed ^ fnv1a(t.name));
  const std::int64_t rows_per_chunk = std::max<std::int64_t>(1, (1 << 20) / t.ne0);
  const std::size_t row_bytes = ggml_row_size(type, t.ne0);
  std::vector<std::uint8_t> out(row_bytes * static_cast<std::size_t>(t.ne1));
  std::vector<float> src;
  for (std::int64_t row = 0; row < t.ne1; row += rows_per_chunk) {
    const std::int64_t rows = std::min(rows_per_chunk, t.ne1 - row);
    src.resize(static_cast<std::size_t>(rows * t.ne0));
    for (float& x : src)
      x = t.norm ? 1.0f : t.bias ? 0.0f : rng.normal(0.02f);
    std::uint8_t* dst = out.data() + row_bytes * static_cast<std::size_t>(row);
    if (type == GGML_TYPE_F32) {
      std::memcpy(dst, src.data(), src.size() * sizeof(float));
    } else if (type == GGML_TYPE_F16) {
      ggml_fp32_to_fp16_row(src.data(), reinterpret_cast<ggml_fp16_t*>(dst),
                            static_cast<std::int64_t>(src.size()));
    } else {
      ggml_quantize_chunk(type, src.data(), dst, 0, rows, t.ne0, nullptr);
    }
  }
  return out;
}

}  // namespace

namespace {

// Unique per process and thread: concurrent writers of one path never share a temporary.
std::string temporary_for(const std::string& path) {
  return fmt::format("{}.tmp.{}.{}", path, ::getpid(),
                     std::hash<std::thread::id>{}(std::this_thread::get_id()));
}

// Renames a written temporary into place (readers never see half a file).
Result<void> move_into_place(const std::string& tmp, const std::string& path) {
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    return Error{Errc::internal, fmt::format("cannot rename into '{}': {}", path, ec.message())};
  }
  return {};
}

Result<void> write_bytes(std::FILE* f, const std::uint8_t* data, std::size_t n) {
  if (n && std::fwrite(data, 1, n, f) != n) {
    return Error{Errc::internal, fmt::format("write failed: {}", std::strerror(errno))};
  }
  return {};
}

// Generates tensors on all cores, a group at a time (bounded memory), and writes them in
// order, each padded to the file's alignment. Every tensor has its own seed, so the bytes do
// not depend on the number of threads.
Result<void> write_tensors(std::FILE* f, gguf_context* g, const std::vector<TensorPlan>& plan,
                           const ModelSpec& spec, const Progress& progress) {
  const std::size_t align = gguf_get_alignment(g);
  const std::size_t group = std::max(1u, std::thread::hardware_concurrency());
  std::size_t total = 0, done = 0;
  for (std::size_t i = 0; i < plan.size(); ++i) {
    total += gguf_get_tensor_size(g, static_cast<std::int64_t>(i));
  }
  const std::vector<std::uint8_t> zeros(align, 0);
  for (std::size_t first = 0; first < plan.size(); first += group) {
    std::vector<std::future<std::vector<std::uint8_t>>> jobs;
    for (std::size_t i = first; i < std::min(plan.size(), first + group); ++i) {
      auto type = plan[i].stays_f32() ? GGML_TYPE_F32 : ggml_type_of(spec.type);
      jobs.push_back(
          std::async(std::launch::async, generate_tensor, std::cref(plan[i]), type, spec.seed));
    }
    for (auto& job : jobs) {
      const auto data = job.get();
      if (auto ok = write_bytes(f, data.data(), data.size()); !ok)
        return ok;
      if (auto ok = write_bytes(f, zeros.data(), (align - data.size() % align) % align); !ok) {
        return ok;
      }
      done += data.size();
      if (progress)
        progress(total ? static_cast<double>(done) / static_cast<double>(total) : 1.0);
    }
  }
  return {};
}

}  // namespace

Result<void> write_model(const ModelSpec& requested, const std::string& path,
                         const Progress& progress) {
  ModelSpec spec = requested;
  std::optional<VocabFile> file;
  if (!spec.vocab_file.empty()) {
    auto opened = VocabFile::open(spec.vocab_file);
    if (!opened)
      return opened.error();
    file.emplace(std::move(opened).value());
    spec.shape.n_vocab = file->n_tokens();
  }
  if (auto ok = validate(spec); !ok)
    return ok.error();
  const auto plan = plan_tensors(spec);
  ggml_init_params params{ggml_tensor_overhead() * (plan.size() + 1), nullptr, true};
  std::unique_ptr<ggml_context, GgmlDeleter> meta(ggml_init(params));
  std::unique_ptr<gguf_context, GgufDeleter> g(gguf_init_empty());
  set_metadata(g.get(), spec);
  if (auto ok = set_tokenizer(g.get(), spec, file ? &*file : nullptr); !ok)
    return ok.error();
  for (const auto& t : plan) {
    auto type = t.stays_f32() ? GGML_TYPE_F32 : ggml_type_of(spec.type);
    ggml_tensor* tensor = t.ne1 == 1 && t.vector()
                              ? ggml_new_tensor_1d(meta.get(), type, t.ne0)
                              : ggml_new_tensor_2d(meta.get(), type, t.ne0, t.ne1);
    ggml_set_name(tensor, t.name.c_str());
    gguf_add_tensor(g.get(), tensor);
  }
  std::vector<std::uint8_t> header(gguf_get_meta_size(g.get()));
  gguf_get_meta_data(g.get(), header.data());

  const std::string tmp = temporary_for(path);
  std::unique_ptr<std::FILE, FileCloser> f(std::fopen(tmp.c_str(), "wb"));
  if (!f) {
    return Error{Errc::invalid_request,
                 fmt::format("cannot write '{}': {}", path, std::strerror(errno)), "output"};
  }
  auto fail = [&](Error e) {
    f.reset();
    std::remove(tmp.c_str());
    return e;
  };
  if (std::fwrite(header.data(), 1, header.size(), f.get()) != header.size()) {
    return fail(Error{Errc::internal, fmt::format("write failed: {}", std::strerror(errno))});
  }
  if (auto ok = write_tensors(f.get(), g.get(), plan, spec, progress); !ok)
    return fail(ok.error());
  if (std::fclose(f.release()) != 0) {
    std::remove(tmp.c_str());
    return Error{Errc::internal, fmt::format("closing '{}' failed: {}", tmp, std::strerror(errno))};
  }
  return move_into_place(tmp, path);
}

namespace {

// The base matrices an adapter adapts: every layer's attention and feed-forward weights.
bool adapted(std::string_view name) {
  static constexpr std::string_view kinds[] = {
      ".attn_q.weight",   ".attn_k.weight", ".attn_v.weight",  ".attn_output.weight",
      ".ffn_gate.weight", ".ffn_up.weight", ".ffn_down.weight"};
  return name.starts_with("blk.") &&
         std::any_of(std::begin(kinds), std::end(kinds), [&](auto k) { return name.ends_with(k); });
}

}  // namespace

Result<void> write_lora_adapter(const LoraAdapterSpec& spec, const std::string& path) {
  if (spec.rank < 1 || spec.rank > 256)
    return Error{Errc::invalid_request, "the adapter's rank must be in 1..256", "rank"};
  {
    std::error_code ec;
    std::FILE* f = std::filesystem::is_regular_file(spec.base, ec)
                       ? std::fopen(spec.base.c_str(), "rb")
                       : nullptr;
    char magic[4] = {};
    const bool gguf =
        f != nullptr && std::fread(magic, 1, 4, f) == 4 && std::memcmp(magic, "GGUF", 4) == 0;
    if (f != nullptr)
      std::fclose(f);
    if (!gguf)
      return Error{Errc::invalid_request, spec.base + " is not a GGUF file", "lora-for"};
  }
  ggml_context* base_tensors = nullptr;
  std::unique_ptr<gguf_context, GgufDeleter> base(
      gguf_init_from_file(spec.base.c_str(), gguf_init_params{true, &base_tensors}));
  std::unique_ptr<ggml_context, GgmlDeleter> base_meta(base_tensors);
  if (!base)
    return Error{Errc::invalid_request, "cannot read " + spec.base + " as GGUF", "lora-for"};
  const std::int64_t arch_key = gguf_find_key(base.get(), "general.architecture");
  if (arch_key < 0 || gguf_get_kv_type(base.get(), arch_key) != GGUF_TYPE_STRING)
    return Error{Errc::invalid_request, spec.base + " names no architecture", "lora-for"};
  std::vector<const ggml_tensor*> targets;
  std::size_t floats = 0;
  for (std::int64_t i = 0; i < gguf_get_n_tensors(base.get()); ++i) {
    const char* name = gguf_get_tensor_name(base.get(), i);
    const ggml_tensor* t = ggml_get_tensor(base_meta.get(), name);
    if (t == nullptr || !adapted(name) || ggml_n_dims(t) != 2)
      continue;
    targets.push_back(t);
    floats += static_cast<std::size_t>((t->ne[0] + t->ne[1]) * spec.rank);
  }
  if (targets.empty())
    return Error{Errc::invalid_request, spec.base + " has no matrices to adapt", "lora-for"};
  const std::size_t bytes = floats * sizeof(float) + (2 * targets.size() + 1) * 256 +
                            ggml_tensor_overhead() * (2 * targets.size() + 1);
  std::unique_ptr<ggml_context, GgmlDeleter> data(ggml_init({bytes, nullptr, false}));
  std::unique_ptr<gguf_context, GgufDeleter> g(gguf_init_empty());
  gguf_set_val_str(g.get(), "general.architecture", gguf_get_val_str(base.get(), arch_key));
  gguf_set_val_str(g.get(), "general.type", "adapter");
  gguf_set_val_str(g.get(), "adapter.type", "lora");
  gguf_set_val_f32(g.get(), "adapter.lora.alpha", spec.alpha);
  if (!spec.task_name.empty())
    gguf_set_val_str(g.get(), "adapter.lora.task_name", spec.task_name.c_str());
  Rng rng(spec.seed ^ 0x4c6f5241ULL);  // "LoRA": not the base's stream for the same seed
  constexpr float kStddev = 0.1f;
  for (const ggml_tensor* t : targets) {
    ggml_tensor* a = ggml_new_tensor_2d(data.get(), GGML_TYPE_F32, t->ne[0], spec.rank);
    ggml_tensor* b = ggml_new_tensor_2d(data.get(), GGML_TYPE_F32, spec.rank, t->ne[1]);
    ggml_set_name(a, (std::string(t->name) + ".lora_a").c_str());
    ggml_set_name(b, (std::string(t->name) + ".lora_b").c_str());
    for (ggml_tensor* x : {a, b}) {
      auto* v = static_cast<float*>(x->data);
      for (std::int64_t k = 0; k < ggml_nelements(x); ++k)
        v[k] = rng.normal(kStddev);
      gguf_add_tensor(g.get(), x);
    }
  }
  const std::string tmp = temporary_for(path);
  if (!gguf_write_to_file(g.get(), tmp.c_str(), false)) {
    std::remove(tmp.c_str());
    return Error{Errc::invalid_request, fmt::format("cannot write '{}'", path), "output"};
  }
  return move_into_place(tmp, path);
}

}  // namespace troupe::mkmodel
