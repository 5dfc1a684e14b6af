// The Dataset interface, samplers, prefetching (Note [Deterministic
// batches] in data.hpp) and the image transforms.
#include <atomic>
#include <numeric>
#include <set>

#include <xtensor/xview.hpp>
#include <zerograd/zerograd.hpp>

#include "testing.hpp"

using namespace zg;
namespace data = zg::nn::data;

namespace {

// Sample i: x = (1, 2, 3) image holding 100 i + 0..5, target i. Throws at
// index fail_at, to test how errors travel.
class Numbered : public data::Dataset {
 public:
  explicit Numbered(std::size_t n, std::size_t fail_at = SIZE_MAX) : n_(n), fail_at_(fail_at) {}
  std::size_t size() const override { return n_; }
  data::Example get(std::size_t i) const override {
    if (i == fail_at_) throw IOError("Numbered: sample " + std::to_string(i) + " is unreadable");
    data::Example e{Tensor<float>::from_shape({1, 2, 3}), Tensor<float>::from_shape(Shape{})};
    for (std::size_t k = 0; k < 6; ++k) e.x.data()[k] = float(100 * i + k);
    e.target() = float(i);
    return e;
  }

 private:
  std::size_t n_, fail_at_;
};

data::TensorDataset numbered_tensors(std::size_t n) {
  data::TensorDataset d(Tensor<float>::from_shape({n, 1, 2, 3}), Tensor<float>::from_shape({n}));
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t k = 0; k < 6; ++k) d.images.data()[6 * i + k] = float(100 * i + k);
    d.labels(i) = float(i);
  }
  return d;
}

struct Batches {
  std::vector<Tensor<float>> x, t;
  bool operator==(const Batches& o) const { return x == o.x && t == o.t; }
};

// The batches of the loader's current epoch (from its cursor on).
Batches rest_of_epoch(data::DataLoader& loader) {
  Batches out;
  data::DataLoader::Batch b;
  while (loader.next(b)) {
    out.x.push_back(b.x.data());
    out.t.push_back(b.t.data());
  }
  return out;
}

// Labels of every batch of one fresh epoch.
std::vector<std::vector<int>> epoch_labels(data::DataLoader& loader) {
  loader.reset();
  std::vector<std::vector<int>> out;
  for (const auto& t : rest_of_epoch(loader).t) out.emplace_back(t.begin(), t.end());
  return out;
}

// Reverses 0..n-1: a sampler of the user's own.
class Backwards : public data::Sampler {
 public:
  std::vector<std::size_t> order(std::size_t n, std::uint64_t) override {
    std::vector<std::size_t> o(n);
    std::iota(o.rbegin(), o.rend(), std::size_t{0});
    return o;
  }
};

class Repeats : public data::Sampler {
 public:
  std::vector<std::size_t> order(std::size_t n, std::uint64_t) override { return std::vector<std::size_t>(n, 0); }
};

std::shared_ptr<const data::Transform> augment() {
  return std::make_shared<data::Compose>(std::vector<std::shared_ptr<const data::Transform>>{
      std::make_shared<data::RandomCrop>(2, 1), std::make_shared<data::RandomHorizontalFlip>()});
}

}  // namespace

TEST_CASE("Dataset: a user's subclass and TensorDataset through the DataLoader") {
  const Numbered custom(7);
  SUBCASE("batches stack get()'s x and target, in the sampler's order") {
    data::DataLoader::Options o{3, false};
    data::DataLoader loader(custom, o);
    CHECK(loader.batches_per_epoch() == 3);
    const Batches got = rest_of_epoch(loader);
    REQUIRE(got.x.size() == 3);
    CHECK(got.x[0].shape() == Shape{3, 1, 2, 3});
    CHECK(got.t[2] == Tensor<float>({6.f}));
    CHECK(got.x[1](2, 0, 1, 2) == 505.f);  // sample 5, element 5
    o.flatten = true;
    o.sampler = std::make_shared<Backwards>();
    data::DataLoader flat(custom, o);
    const Batches back = rest_of_epoch(flat);
    CHECK(back.x[0].shape() == Shape{3, 6});
    CHECK(back.t[0] == Tensor<float>({6.f, 5.f, 4.f}));
  }
  SUBCASE("the fast path for TensorDataset gives what get() gives") {
    const auto tensors = numbered_tensors(7);
    data::DataLoader fast(tensors, {3, true, false, false}), slow(custom, {3, true, false, false});
    fast.restore(slow.order(), 0);
    CHECK(rest_of_epoch(fast) == rest_of_epoch(slow));
    const data::Example e = tensors.get(4);
    CHECK(e.x.shape() == Shape{1, 2, 3});
    CHECK(e.target.dimension() == 0);
    CHECK(e.target() == 4.f);
  }
  SUBCASE("errors name the op, the index and the shapes") {
    CHECK_THROWS_WITH_AS(numbered_tensors(7).get(7), "TensorDataset::get: index 7 is out of range for 7 samples",
                         ValueError);
    CHECK_THROWS_WITH_AS(data::TensorDataset(Tensor<float>::from_shape({4, 2}), Tensor<float>::from_shape({3})),
                         doctest::Contains("TensorDataset: images of shape (4, 2) and labels of shape (3)"),
                         ValueError);
    data::TensorDataset broken = numbered_tensors(4);
    broken.labels = Tensor<float>::from_shape({5});
    CHECK_THROWS_WITH_AS(data::DataLoader(broken, {2}), doctest::Contains("DataLoader: images of shape (4, 1, 2, 3)"),
                         ValueError);
    class Ragged : public data::Dataset {
     public:
      std::size_t size() const override { return 3; }
      data::Example get(std::size_t i) const override {
        return {xt::zeros<float>({i == 2 ? 4u : 6u}), Tensor<float>::from_shape(Shape{})};
      }
    } ragged;
    data::DataLoader loader(ragged, {3, false});
    data::DataLoader::Batch b;
    CHECK_THROWS_WITH_AS(loader.next(b),
                         "DataLoader: sample 2 of the batch (index 2) has x of shape (4), the batch's first has (6)",
                         ValueError);
  }
}

TEST_CASE("Samplers: sequential, random, distributed and the user's") {
  const auto set = numbered_tensors(23);
  const auto with = [](std::shared_ptr<data::Sampler> s, std::size_t batch = 6) {
    data::DataLoader::Options o{batch};
    o.sampler = std::move(s);
    return o;
  };
  SUBCASE("sequential is 0..n-1 every epoch") {
    data::DataLoader loader(set, with(std::make_shared<data::SequentialSampler>()));
    std::vector<std::size_t> want(23);
    std::iota(want.begin(), want.end(), std::size_t{0});
    CHECK(loader.order() == want);
    loader.reset();
    CHECK(loader.order() == want);
  }
  SUBCASE("random: seeded, one permutation per epoch; unseeded, from the generator; as the Options ask") {
    data::DataLoader a(set, with(std::make_shared<data::RandomSampler>(std::uint64_t{42})));
    data::DataLoader::Options legacy{6};
    legacy.shuffle_seed = 42;
    data::DataLoader b(set, legacy);
    CHECK(a.order() == b.order());
    const auto first = a.order();
    CHECK(std::set<std::size_t>(first.begin(), first.end()).size() == 23);
    a.reset();
    CHECK(a.order() != first);
    a.set_epoch(0);
    a.reset();
    CHECK(a.order() == first);
    Generator g1(5), g2(5);
    data::DataLoader c(set, with(std::make_shared<data::RandomSampler>(g1)));
    data::DataLoader d(set, {6, true}, g2);
    CHECK(c.order() == d.order());
    CHECK(c.order() != first);
  }
  SUBCASE("distributed: disjoint shares of the same permutation, together the one-process batch") {
    data::DataLoader one(set, with(std::make_shared<data::RandomSampler>(std::uint64_t{7})));
    const auto epoch0 = one.order();
    const auto global = epoch_labels(one);  // epoch 1: 6, 6, 6, 5
    REQUIRE(global.size() == 4);
    std::vector<std::vector<std::vector<int>>> ranks;
    for (std::size_t r = 0; r < 3; ++r) {
      data::DataLoader loader(set, with(std::make_shared<data::DistributedSampler>(3, r, true, 7), 2));
      CHECK(loader.global_batch_size() == 6);
      CHECK(loader.order() == epoch0);
      ranks.push_back(epoch_labels(loader));
      REQUIRE(ranks.back().size() == 4);
      // The same shares as Options{replicas, rank, shuffle_seed} read (Note [Sharded epochs]).
      data::DataLoader::Options o{2};
      o.replicas = 3;
      o.rank = r;
      o.shuffle_seed = 7;
      data::DataLoader legacy(set, o);
      CHECK(epoch_labels(legacy) == ranks.back());
    }
    for (std::size_t k = 0; k < 3; ++k) {
      std::vector<int> joined;
      for (const auto& rank : ranks) joined.insert(joined.end(), rank[k].begin(), rank[k].end());
      CHECK(joined == global[k]);
    }
    // The last global batch of 5: 5 / 3 = 1 each, the 2 left over skipped.
    for (std::size_t r = 0; r < 3; ++r) CHECK(ranks[r][3] == std::vector<int>{global[3][r]});
    data::DataLoader unshuffled(set, with(std::make_shared<data::DistributedSampler>(2, 1, false), 2));
    CHECK(epoch_labels(unshuffled).front() == std::vector<int>{2, 3});
  }
  SUBCASE("bad samplers and conflicting options are errors") {
    CHECK_THROWS_WITH_AS(data::DistributedSampler(2, 2), "DistributedSampler: rank 2 is not below replicas 2",
                         ValueError);
    CHECK_THROWS_WITH_AS(data::DistributedSampler(0, 0), "DistributedSampler: replicas must be positive", ValueError);
    auto o = with(std::make_shared<data::SequentialSampler>());
    o.replicas = 2;
    CHECK_THROWS_WITH_AS(data::DataLoader(set, o), doctest::Contains("with a sampler, the sampler decides"), ValueError);
    CHECK_THROWS_WITH_AS(data::DataLoader(set, with(std::make_shared<Repeats>())),
                         "DataLoader: the sampler's order for epoch 0: the order is not a permutation of 0..22 (index 0)",
                         ValueError);
  }
}

TEST_CASE("DataLoader prefetch: the same batches as without, errors rethrown, clean stops") {
  const Numbered custom(23);
  const auto tensors = numbered_tensors(23);
  const auto options = [](std::size_t prefetch, bool transform) {
    data::DataLoader::Options o{4};
    o.prefetch = prefetch;
    if (transform) o.transform = augment();
    return o;
  };
  SUBCASE("bit for bit, random transforms and reshuffles included") {
    for (const data::Dataset* set : {static_cast<const data::Dataset*>(&custom), static_cast<const data::Dataset*>(&tensors)})
      for (bool transform : {false, true}) {
        CAPTURE(transform);
        std::vector<Batches> runs;
        for (std::size_t prefetch : {0, 1, 3}) {
          Generator gen(11);
          data::DataLoader loader(*set, options(prefetch, transform), gen);
          Batches all = rest_of_epoch(loader);
          loader.reset();
          const Batches second = rest_of_epoch(loader);
          all.x.insert(all.x.end(), second.x.begin(), second.x.end());
          all.t.insert(all.t.end(), second.t.begin(), second.t.end());
          runs.push_back(all);
        }
        REQUIRE(runs[0].x.size() == 12);
        CHECK(runs[1] == runs[0]);
        CHECK(runs[2] == runs[0]);
        if (transform) CHECK(runs[0].x[0].shape() == Shape{4, 1, 2, 2});
      }
  }
  SUBCASE("random transforms differ across samples and epochs, not across rank counts") {
    const Numbered same(8);
    data::DataLoader::Options o{8, false};
    o.sampler = std::make_shared<data::DistributedSampler>(1, 0, false, 3);
    o.transform = augment();
    data::DataLoader one(same, o);
    const Batches first = rest_of_epoch(one);
    one.reset();
    CHECK(rest_of_epoch(one).x != first.x);
    one.set_epoch(0);
    one.reset();
    CHECK(rest_of_epoch(one).x == first.x);
    o.batch_size = 4;
    o.sampler = std::make_shared<data::DistributedSampler>(2, 1, false, 3);
    data::DataLoader rank1(same, o);
    const Batches half = rest_of_epoch(rank1);
    REQUIRE(half.x.size() == 1);
    CHECK(half.x[0] == xt::view(first.x[0], xt::range(4, 8)));
  }
  SUBCASE("an exception in get() reaches next() with its message; the batch is retried") {
    const Numbered failing(23, 9);
    for (std::size_t prefetch : {0, 2}) {
      CAPTURE(prefetch);
      auto o = options(prefetch, false);
      o.shuffle = false;
      data::DataLoader loader(failing, o);
      data::DataLoader::Batch b;
      REQUIRE(loader.next(b));
      REQUIRE(loader.next(b));
      CHECK(loader.cursor() == 8);
      CHECK_THROWS_WITH_AS(loader.next(b), "Numbered: sample 9 is unreadable", IOError);
      CHECK(loader.cursor() == 8);
      CHECK_THROWS_WITH_AS(loader.next(b), "Numbered: sample 9 is unreadable", IOError);
    }
  }
  SUBCASE("reset, restore and destruction mid-epoch stop the thread; the epoch goes on as without it") {
    Generator g1(4), g2(4);
    data::DataLoader with(custom, options(2, true), g1), without(custom, options(0, true), g2);
    data::DataLoader::Batch b;
    REQUIRE(with.next(b));
    REQUIRE(without.next(b));
    with.reset();
    without.reset();
    REQUIRE(with.next(b));
    const auto order = with.order();
    const std::size_t seed = with.transform_seed();
    with.restore(order, 12, seed);
    without.restore(order, 12, seed);
    CHECK(rest_of_epoch(with) == rest_of_epoch(without));
    for (int i = 0; i < 20; ++i) {  // destroyed with a full queue and a waiting thread
      data::DataLoader early(tensors, options(1 + i % 3, i % 2 == 0));
      if (i % 4 == 0) continue;
      REQUIRE(early.next(b));
    }
  }
}

TEST_CASE("Normalize: per-channel mean and std") {
  Generator gen(1);
  Tensor<float> x = {{{1.f, 2.f}}, {{3.f, 5.f}}};  // (2, 1, 2)
  SUBCASE("values") {
    const data::Normalize norm({1.f, 1.f}, {0.5f, 2.f});
    CHECK(norm(x, gen) == Tensor<float>({{{0.f, 2.f}}, {{1.f, 2.f}}}));
  }
  SUBCASE("errors: lengths, std <= 0, channel count, not an image") {
    CHECK_THROWS_WITH_AS(data::Normalize({0.f}, {1.f, 1.f}),
                         "Normalize: 1 means and 2 standard deviations; give one of each per channel", ValueError);
    CHECK_THROWS_WITH_AS(data::Normalize({0.f, 0.f}, {1.f, 0.f}),
                         "Normalize: std 0.000000 of channel 1 is not positive", ValueError);
    const data::Normalize three({0.f, 0.f, 0.f}, {1.f, 1.f, 1.f});
    CHECK_THROWS_WITH_AS(three(x, gen),
                         "Normalize: an image of 2 channels, shape (2, 1, 2), for 3 means and standard deviations",
                         ShapeError);
    CHECK_THROWS_WITH_AS(three(Tensor<float>({1.f, 2.f}), gen),
                         "Normalize: expected one image (C, H, W), got shape (2)", ShapeError);
  }
}

TEST_CASE("RandomCrop: zero padding, every offset reachable, fixed by the generator") {
  Tensor<float> x = {{{1, 2, 3}, {4, 5, 6}, {7, 8, 9}}};  // (1, 3, 3)
  // The 3x3 windows of x padded by 1 (5x5), at top = 0..2, left = 0..2.
  const auto window = [](int top, int left) {
    Tensor<float> w = xt::zeros<float>({1, 3, 3});
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j) {
        const int r = top + i - 1, c = left + j - 1;
        if (r >= 0 && r < 3 && c >= 0 && c < 3) w(0, i, j) = float(3 * r + c + 1);
      }
    return w;
  };
  SUBCASE("a hand-computed window, and each of the nine offsets appears") {
    CHECK(window(0, 0) == Tensor<float>({{{0, 0, 0}, {0, 1, 2}, {0, 4, 5}}}));
    CHECK(window(2, 1) == Tensor<float>({{{4, 5, 6}, {7, 8, 9}, {0, 0, 0}}}));
    const data::RandomCrop crop(3, 1);
    std::set<int> seen;
    for (std::uint64_t seed = 0; seed < 200; ++seed) {
      Generator gen(seed), again(seed);
      const Tensor<float> y = crop(x, gen);
      CHECK(y == crop(x, again));
      int match = -1;
      for (int k = 0; k < 9; ++k)
        if (y == window(k / 3, k % 3)) match = k;
      CHECK(match >= 0);
      seen.insert(match);
    }
    CHECK(seen.size() == 9);
  }
  SUBCASE("no padding and the full size is the image itself") {
    Generator gen(1);
    CHECK(data::RandomCrop(3)(x, gen) == x);
  }
  SUBCASE("a crop larger than the padded image is an error") {
    Generator gen(1);
    CHECK_THROWS_WITH_AS(data::RandomCrop(6, 1)(x, gen),
                         "RandomCrop: a 6x6 crop of an image of shape (1, 3, 3) padded by 1 to 5x5", ShapeError);
    CHECK_THROWS_WITH_AS(data::RandomCrop(0), "RandomCrop: the crop size must be positive", ValueError);
  }
}

TEST_CASE("RandomHorizontalFlip and Compose") {
  Tensor<float> x = {{{1, 2, 3}, {4, 5, 6}}, {{7, 8, 9}, {10, 11, 12}}};  // (2, 2, 3)
  const Tensor<float> mirrored = {{{3, 2, 1}, {6, 5, 4}}, {{9, 8, 7}, {12, 11, 10}}};
  Generator gen(2);
  SUBCASE("p = 1 always mirrors, p = 0 never, p = 0.5 about half the time") {
    CHECK(data::RandomHorizontalFlip(1.0)(x, gen) == mirrored);
    CHECK(data::RandomHorizontalFlip(0.0)(x, gen) == x);
    const data::RandomHorizontalFlip half;
    int flipped = 0;
    for (int i = 0; i < 1000; ++i) flipped += half(x, gen) == mirrored;
    CHECK(flipped > 430);
    CHECK(flipped < 570);
    CHECK_THROWS_WITH_AS(data::RandomHorizontalFlip(1.5), "RandomHorizontalFlip: probability 1.500000 is not in [0, 1]",
                         ValueError);
  }
  SUBCASE("Compose runs the transforms in order") {
    const data::Compose both({std::make_shared<data::Normalize>(std::vector<float>{1.f, 7.f}, std::vector<float>{1.f, 1.f}),
                              std::make_shared<data::RandomHorizontalFlip>(1.0)});
    CHECK(both(x, gen) == Tensor<float>({{{2, 1, 0}, {5, 4, 3}}, {{2, 1, 0}, {5, 4, 3}}}));
    CHECK_THROWS_WITH_AS(data::Compose({nullptr}), "Compose: transform 0 is null", ValueError);
  }
}
