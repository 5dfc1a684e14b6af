// to_html and GraphRecorder: what a page records and inlines. The page's
// behaviour in a browser is tested by tests/browser/graph_player.test.js.
#include <cstdlib>
#include <string>

#include "testing.hpp"

using namespace zg;
using zg::testing::message_of;

namespace {

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

Variable64 leaf(double v, const char* name) { return Variable64(v, name).requires_grad_(); }

// A user's op that says nothing about its rule.
struct Twice {
  std::string name() const { return "Twice"; }
  template <class T>
  Outputs<T> forward(const TensorList<T>& x) const { return Tensor<T>(x[0] * T(2)); }
  template <class T>
  Variables<T> backward(const Function<T>&, const Variables<T>& gy) const { return {gy[0] * T(2)}; }
};

// PATH without dot for one scope.
struct NoPath {
  std::string saved = std::getenv("PATH") ? std::getenv("PATH") : "";
  NoPath() { setenv("PATH", "/nonexistent", 1); }
  ~NoPath() { setenv("PATH", saved.c_str(), 1); }
};

}  // namespace

TEST_CASE("GraphRecorder") {
  SUBCASE("apple: two forward and two backward steps, the engine's numbers, nothing external") {
    auto apple = leaf(100, "apple"), num = leaf(2, "apple_num"), tax = leaf(1.1, "tax");
    GraphRecorder<double> rec;
    auto apple_price = (apple * num).set_name("apple_price");  // named after the op ran
    auto price = (apple_price * tax).set_name("price");
    bool user_observer_ran = false;
    Variable64::BackwardOptions o;
    o.observer = [&](const BackwardStep<double>&) { user_observer_ran = true; };
    rec.backward(price, o);
    CHECK(user_observer_ran);
    CHECK(rec.num_forward_steps() == 2);
    CHECK(rec.num_backward_steps() == 2);
    CHECK(apple.grad().item() == doctest::Approx(2.2));
    const std::string page = to_html(rec);
    CHECK(page.find("<svg") != std::string::npos);
    CHECK(page.find("\"n\":\"apple_price\"") != std::string::npos);
    // apple 2.2, apple_num 110 at the second backward step, tax 200 at the first.
    CHECK(page.find("[0,\"2.2\"],[1,\"110\"]") != std::string::npos);
    CHECK(page.find("\"g\":\"200\"") != std::string::npos);
    CHECK(page.find("1.1 \u00d7 apple_num (2)") != std::string::npos);
    // No request can leave the page: no external script, style, image or link.
    for (const char* external : {"src=", "<link", "href=\"http", "url(", "@import"}) CHECK(page.find(external) == std::string::npos);
  }
  SUBCASE("a freed intermediate is marked freed; KeepIntermediatesGuard keeps it") {
    for (bool keep : {false, true}) {
      CAPTURE(keep);
      auto x = leaf(0.5, "x"), w = leaf(3, "w");
      GraphRecorder<double> rec;
      Variable64 y;
      {
        std::optional<KeepIntermediatesGuard> guard;
        if (keep) guard.emplace();
        y = (zg::sin(x) + 1.0) * w;  // AddConst needs only sin(x)'s shape: nobody keeps sin(x)
      }
      rec.backward(y);
      const std::string page = rec.html();
      CHECK(count(page, "\"freed\":1") == (keep ? 0u : 2u));  // the Variable, and AddConst's input at its step
      CHECK(x.grad().item() == doctest::Approx(3 * std::cos(0.5)));
    }
  }
  SUBCASE("ops run by backward are not forward steps; unrecorded ops are none") {
    Variable x(Tensor<float>{1.f, 2.f}, "x");
    x.requires_grad_();
    const Variable c(Tensor<float>{3.f, 4.f});
    GraphRecorder<float> rec;
    auto constant_only = c * c;  // nothing requires grad: no graph
    auto y = zg::sum(zg::exp(x) * c);
    rec.backward(y);
    CHECK(rec.num_forward_steps() == 3);
    CHECK(rec.num_backward_steps() == 3);
    CHECK(constant_only.creator() == nullptr);
  }
  SUBCASE("a big array is shown by shape and summary") {
    Variable64 x(Tensor<double>::from_shape({30, 20}), "big");
    x.data().fill(0.5);
    x.requires_grad_();
    GraphRecorder<double> rec;
    auto y = zg::sum(x);
    rec.backward(y);
    const std::string page = rec.html();
    CHECK(page.find("(30, 20) mean 0.5, min 0.5, max 0.5") != std::string::npos);
    CHECK(page.find("0.5, 0.5, 0.5") == std::string::npos);
  }
  SUBCASE("no dot on PATH: an Error naming the problem, no page") {
    auto x = leaf(2, "x");
    GraphRecorder<double> rec;
    auto y = x * x;
    rec.backward(y);
    NoPath no_path;
    const std::string m = message_of<Error>([&] { (void)rec.html(); });
    CHECK(m.find("to_html") != std::string::npos);
    CHECK(m.find("`dot` was not found") != std::string::npos);
  }
}

TEST_CASE("to_html of a graph") {
  SUBCASE("its forward replayed in generation order, with the grads it holds") {
    auto a = leaf(2, "a"), b = leaf(3, "b");
    auto c = (a * b).set_name("c");
    auto d = (c + a).set_name("d");
    Variable64::BackwardOptions o;
    o.retain_graph = true;  // else backward releases the graph it walks
    d.backward(o);
    const std::string page = to_html(d);
    CHECK(count(page, "{\"k\":\"f\"") == 2);
    CHECK(count(page, "{\"k\":\"b\"") == 0);
    CHECK(page.find("\"steps\":[{\"k\":\"f\",\"f\":0},\n{\"k\":\"f\",\"f\":1}]") != std::string::npos);
    CHECK(page.find("{\"n\":\"a\",\"s\":\"()\",\"v\":\"2\",\"g\":\"4\"") != std::string::npos);  // 1 + b
  }
  SUBCASE("a leaf alone is a page of one node") {
    const Variable x(Tensor<float>{1.f}, "x");
    CHECK(to_html(x).find("\"n\":\"x\"") != std::string::npos);
  }
}

TEST_CASE("the page shows each Function's own rule in words") {
  auto a = leaf(2.0, "a"), b = leaf(3.0, "b");
  GraphRecorder<double> recorder;
  auto y = zg::relu(a * b - a);
  recorder.backward(y);
  const std::string page = recorder.html();
  CHECK(page.find("\"Mul\":[\"multiply sends the upstream gradient times the other input\",") != std::string::npos);
  CHECK(page.find("\"Sub\":[\"passes the upstream gradient on unchanged\",\"the upstream gradient, negated\"]") !=
        std::string::npos);
  CHECK(page.find("\"ReLU\":[\"a switch: upstream where x \\u003e 0, 0 elsewhere\"]") != std::string::npos);
  SUBCASE("options override a Function's rule by name") {
    HtmlOptions o;
    o.rules["Mul"] = "my words";
    CHECK(recorder.html(o).find("\"Mul\":[\"my words\",\"my words\"]") != std::string::npos);
  }
}

TEST_CASE("a Function without a rule gets a generic sentence naming it") {
  auto x = leaf(1.0, "x");
  GraphRecorder<double> recorder;
  auto y = zg::call(Twice{}, x);
  recorder.backward(y);
  CHECK(recorder.html().find("\"Twice\":[\"what Twice's own backward computes from the upstream gradient\"]") !=
        std::string::npos);
}
