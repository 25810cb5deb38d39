#pragma once
// Model sets of random-weight `tiny` models for the tests of the models module and of the
// cluster's workers that hold several models.

#include <string>
#include <utility>

#include "models/model_set.hpp"
#include "support/test_models.hpp"

namespace troupe::models::test_models {

// A tiny model's configuration: a small context, 2 slots, 1 thread.
inline ModelConfig tiny(const std::string& id, const std::string& path) {
  ModelConfig c;
  c.options.model_path = path;
  c.options.model_id = id;
  c.options.engine.n_ctx = 512;
  c.options.engine.n_parallel = 2;
  c.options.engine.n_threads = 1;
  return c;
}

// Two models of different weights: alpha and beta.
inline ModelSetOptions alpha_and_beta() {
  ModelSetOptions o;
  o.models.push_back(
      tiny("alpha", troupe::test::generated_model("tiny", mkmodel::WeightType::f32, 1)));
  o.models.push_back(
      tiny("beta", troupe::test::generated_model("tiny", mkmodel::WeightType::f32, 2)));
  return o;
}

}  // namespace troupe::models::test_models
