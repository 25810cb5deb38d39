#include "chat/session_state.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace troupe::chat {
namespace {

Reaction say(std::string text) {
  return Reaction{std::move(text) + '\n'};
}

Reaction fail(std::string text) {
  Reaction r = say(std::move(text));
  r.is_error = true;
  return r;
}

struct Reactor {
  SessionState& state;

  Reaction operator()(const UserMessage& m) const {
    if (auto pending = state.conversation.pending_tool_calls(); !pending.empty()) {
      return fail(fmt::format(
          "the model waits for {} tool result{}: answer with /tool <result> (or /clear)",
          pending.size(), pending.size() == 1 ? "" : "s"));
    }
    Reaction r;
    r.send = m.text;
    return r;
  }
  Reaction operator()(const HelpCommand&) const { return Reaction{std::string(help_text())}; }
  Reaction operator()(const ExitCommand&) const {
    Reaction r;
    r.exit = true;
    return r;
  }

  Reaction operator()(const ClearCommand&) const {
    state.conversation.clear();
    return say("(conversation cleared)");
  }

  Reaction operator()(const DropCommand&) const {
    const std::size_t dropped = state.conversation.drop_oldest_exchange();
    if (dropped == 0)
      return fail("nothing to drop: the conversation has no earlier exchange (/clear starts over)");
    return say(
        fmt::format("(forgot the oldest exchange, {} message{}; ↑ brings back what you "
                    "typed)",
                    dropped, dropped == 1 ? "" : "s"));
  }

  Reaction operator()(const StatsCommand&) const {
    state.show_stats = !state.show_stats;
    return say(state.show_stats ? "(stats on)" : "(stats off)");
  }

  Reaction operator()(const SystemCommand& c) const {
    state.conversation.set_system(c.text);
    return say(c.text.empty() ? "(system prompt removed)" : "(system prompt set)");
  }

  Reaction operator()(const SetCommand& c) const {
    if (auto r = state.conversation.set_parameter(c.name, c.value); !r) {
      return fail(r.error().message);
    }
    return say(fmt::format("({} = {})", c.name, c.value));
  }

  Reaction operator()(const ModelCommand& c) const {
    state.conversation.set_model(c.name);
    return say(fmt::format("(model {})", c.name));
  }

  Reaction operator()(const ReasoningCommand& c) const {
    using Action = ReasoningCommand::Action;
    if (c.action == Action::last) {
      if (state.last_reasoning.empty())
        return say("(the last answer had no reasoning)");
      Reaction r = say(state.last_reasoning);
      r.dim = true;
      return r;
    }
    state.show_reasoning =
        c.action == Action::toggle ? !state.show_reasoning : c.action == Action::show;
    return say(state.show_reasoning ? "(reasoning shown)" : "(reasoning hidden)");
  }

  Reaction operator()(const ToolCommand& c) const {
    auto call = state.conversation.add_tool_result(c.result);
    if (!call)
      return fail(call.error().message);
    auto pending = state.conversation.pending_tool_calls();
    if (pending.empty()) {
      Reaction r;
      r.resume = true;
      return r;
    }
    return say(
        fmt::format("({} answered; next waiting call: {})", call->name, pending.front().name));
  }

  Reaction operator()(const SaveCommand& c) const {
    if (auto r = write_file(c.path, state.conversation.to_json()); !r) {
      return fail(r.error().message);
    }
    return say(fmt::format("(saved {} messages to {})", state.conversation.turns().size(), c.path));
  }
};

}  // namespace

Reaction react(SessionState& state, const Input& input) {
  return std::visit(Reactor{state}, input);
}

ModelChoice choose_model(const std::vector<std::string>& served, const std::string& requested) {
  if (requested.empty())
    return {served.empty() ? std::string() : served.front(), {}};
  for (const auto& m : served) {
    if (m == requested)
      return {requested, {}};
  }
  if (served.empty())
    return {requested, {}};
  return {requested, fmt::format("the server does not list model '{}' (it serves {}); asking "
                                 "for it anyway",
                                 requested, fmt::join(served, ", "))};
}

}  // namespace troupe::chat
