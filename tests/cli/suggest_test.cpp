#include "cli/suggest.hpp"

#include <gtest/gtest.h>

namespace troupe::cli {
namespace {

const std::vector<std::string> kCommands = {"serve",   "chat",    "bench",  "worker",
                                            "gateway", "mkmodel", "version"};

TEST(Suggest, EditDistance) {
  EXPECT_EQ(edit_distance("", ""), 0u);
  EXPECT_EQ(edit_distance("serv", "serve"), 1u);
  EXPECT_EQ(edit_distance("sevre", "serve"), 1u);  // two neighbours swapped
  EXPECT_EQ(edit_distance("abc", ""), 3u);
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
}

TEST(Suggest, ClosestIsATypoOrAPrefixNeverAGuess) {
  EXPECT_EQ(closest("serv", kCommands), "serve");
  EXPECT_EQ(closest("chta", kCommands), "chat");
  EXPECT_EQ(closest("gate", kCommands), "gateway");
  EXPECT_EQ(closest("--prot", {"--port", "--host"}), "--port");
  EXPECT_EQ(closest("--thr", {"--threads", "--host"}), "--threads");
  EXPECT_EQ(closest("run", kCommands), std::nullopt);
  EXPECT_EQ(closest("pull", kCommands), std::nullopt);
  EXPECT_EQ(closest("--xyz", {"--port"}), std::nullopt);
}

TEST(Suggest, UnknownCommandNamesTheWordAndListsTheCommands) {
  auto m = unknown_command_message("serv", kCommands);
  EXPECT_NE(m.find("unknown command 'serv'"), std::string::npos) << m;
  EXPECT_NE(m.find("Did you mean 'troupe serve'?"), std::string::npos) << m;
  EXPECT_NE(m.find("Commands: serve, chat, bench, worker, gateway, mkmodel, version"),
            std::string::npos)
      << m;
  m = unknown_command_message("run", kCommands);
  EXPECT_NE(m.find("troupe chat"), std::string::npos) << m;
  m = unknown_command_message("download", kCommands);
  EXPECT_NE(m.find("troupe pull OWNER/NAME[:QUANT]"), std::string::npos) << m;
}

TEST(Suggest, LlamaFlagsSayWhatTroupeCallsThem) {
  EXPECT_EQ(llama_flag_hint("--batch-size"), "troupe's name for it is -b/--batch");
  EXPECT_EQ(llama_flag_hint("-np"), "troupe's name for it is --parallel");
  EXPECT_NE(llama_flag_hint("-ub")->find("one batch"), std::string::npos);
  EXPECT_EQ(llama_flag_hint("-ngl"), std::nullopt);  // taken: --n-gpu-layers
  EXPECT_EQ(llama_flag_hint("-hf"), std::nullopt);   // taken: --hf-repo
  EXPECT_NE(llama_flag_hint("--model-url")->find("--hf-repo"), std::string::npos);
  EXPECT_NE(llama_flag_hint("-hft")->find("HF_TOKEN"), std::string::npos);
  EXPECT_EQ(llama_flag_hint("--port"), std::nullopt);
  // Samplers troupe takes per request; its server-wide defaults are real flags, not hints.
  EXPECT_NE(llama_flag_hint("--mirostat")->find("per request"), std::string::npos);
  EXPECT_NE(llama_flag_hint("--dry-multiplier")->find("dry_multiplier"), std::string::npos);
  EXPECT_EQ(llama_flag_hint("--temp"), std::nullopt);
  EXPECT_EQ(llama_flag_hint("--n-predict"), std::nullopt);
  EXPECT_EQ(llama_flag_hint("-n"), "troupe's name for it is --n-predict");
}

TEST(Suggest, UnknownArgumentsOneLineEachValuesSkipped) {
  auto m = unknown_arguments_message("serve", {"--prot", "8080", "-ub", "99", "model.gguf"},
                                     {"--port", "--host", "-m", "--model"});
  EXPECT_NE(m.find("troupe serve: unknown option '--prot'; did you mean '--port'?"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("troupe serve: unknown option '-ub': troupe decodes each step as one batch"),
            std::string::npos)
      << m;
  EXPECT_EQ(m.find("'8080'"), std::string::npos) << m;  // an option's value
  EXPECT_EQ(m.find("'99'"), std::string::npos) << m;
  EXPECT_NE(m.find("unexpected argument 'model.gguf'"), std::string::npos) << m;
  m = unknown_arguments_message("serve", {"model.gguf"}, {"-m"});
  EXPECT_NE(m.find("unexpected argument 'model.gguf' (a model is given with -m/--model"),
            std::string::npos)
      << m;
  m = unknown_arguments_message("serve", {"--prot=8080"}, {"--port"});
  EXPECT_NE(m.find("unknown option '--prot'; did you mean '--port'?"), std::string::npos) << m;
  EXPECT_NE(m.find("Run 'troupe serve --help' for its options."), std::string::npos) << m;
}

TEST(Suggest, LlamaShortSpellingsBecomeTroupesLongNames) {
  const std::vector<std::string> in = {
      "troupe", "serve", "-ngl", "99", "-fa",  "on",   "-ctk=q8_0", "-ctv", "q8_0",  "-sm", "row",
      "-ts",    "3,1",   "-mg",  "1",  "-dev", "none", "-c",        "512",  "-nglx", "-m",  "-ngl"};
  const std::vector<std::string> out = {"troupe",
                                        "serve",
                                        "--n-gpu-layers",
                                        "99",
                                        "--flash-attn",
                                        "on",
                                        "--cache-type-k=q8_0",
                                        "--cache-type-v",
                                        "q8_0",
                                        "--split-mode",
                                        "row",
                                        "--tensor-split",
                                        "3,1",
                                        "--main-gpu",
                                        "1",
                                        "--device",
                                        "none",
                                        "-c",
                                        "512",
                                        "-nglx",
                                        "-m",
                                        "--n-gpu-layers"};
  EXPECT_EQ(expand_llama_short_flags(in), out);
  EXPECT_EQ(expand_llama_short_flags({"-ctxcp", "4"}),
            (std::vector<std::string>{"--ctx-checkpoints", "4"}));
  const std::vector<std::string> hf = {"troupe", "serve", "-hf", "o/m:Q8_0", "-hff=m.gguf", "-hfr"};
  EXPECT_EQ(expand_llama_short_flags(hf),
            (std::vector<std::string>{"troupe", "serve", "--hf-repo", "o/m:Q8_0",
                                      "--hf-file=m.gguf", "--hf-repo"}));
}

}  // namespace
}  // namespace troupe::cli
