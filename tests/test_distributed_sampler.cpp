// The DataLoader's sharded epochs (Note [Sharded epochs] in data.hpp): what
// each data-parallel rank reads. No MPI needed: ranks are options here.
#include <numeric>
#include <set>

#include <zerograd/zerograd.hpp>

#include "testing.hpp"

using namespace zg;
namespace data = zg::nn::data;
using zg::testing::message_of;

namespace {

data::TensorDataset numbered(std::size_t n) {
  data::TensorDataset set;
  set.images = Tensor<float>::from_shape({n, 1, 1, 1});
  set.labels = Tensor<float>::from_shape({n});
  for (std::size_t i = 0; i < n; ++i) set.images(i, 0, 0, 0) = set.labels(i) = float(i);
  return set;
}

// Every batch of one epoch, as sample indices.
std::vector<std::vector<int>> epoch_batches(data::DataLoader& loader) {
  loader.reset();
  std::vector<std::vector<int>> out;
  data::DataLoader::Batch b;
  while (loader.next(b)) {
    out.emplace_back();
    for (float v : b.t.data()) out.back().push_back(int(v));
  }
  return out;
}

data::DataLoader::Options sharded(std::size_t batch, std::size_t replicas, std::size_t rank, bool drop_last = false) {
  data::DataLoader::Options o{batch, true, drop_last, false};
  o.replicas = replicas;
  o.rank = rank;
  o.shuffle_seed = 42;
  return o;
}

}  // namespace

TEST_CASE("DataLoader sharded: ranks read disjoint slices of one global batch") {
  const auto set = numbered(23);
  data::DataLoader one(set, sharded(6, 1, 0));
  const auto global = epoch_batches(one);  // batches of 6, 6, 6, 5
  REQUIRE(global.size() == 4);
  CHECK(global.back().size() == 5);

  SUBCASE("3 ranks x 2 = the one-process batches of 6, rank by rank in order") {
    std::vector<std::vector<std::vector<int>>> ranks;
    for (std::size_t r = 0; r < 3; ++r) {
      data::DataLoader loader(set, sharded(2, 3, r));
      CHECK(loader.batches_per_epoch() == 4);
      CHECK(loader.global_batch_size() == 6);
      ranks.push_back(epoch_batches(loader));
      REQUIRE(ranks.back().size() == 4);
    }
    for (std::size_t k = 0; k < 3; ++k) {
      std::vector<int> joined;
      for (std::size_t r = 0; r < 3; ++r) joined.insert(joined.end(), ranks[r][k].begin(), ranks[r][k].end());
      CHECK(joined == global[k]);
    }
    // The last global batch of 5: each rank reads 5 / 3 = 1, the 2 left over are skipped.
    for (std::size_t r = 0; r < 3; ++r) CHECK(ranks[r][3] == std::vector<int>{global[3][r]});
  }
  SUBCASE("same permutation on every rank, a new one per epoch, from the seed alone") {
    Generator a(1), b(999);  // the loaders' own generators do not matter with shuffle_seed
    data::DataLoader r0(set, sharded(2, 2, 0), a), r1(set, sharded(2, 2, 1), b);  // epoch 0
    CHECK(r0.order() == r1.order());
    const auto first = r0.order();
    r0.reset();
    CHECK(r0.order() != first);
    r1.set_epoch(0);
    r1.reset();
    CHECK(r1.order() == first);
  }
  SUBCASE("a last batch smaller than the rank count is not read; drop_last drops any partial one") {
    const auto seven = numbered(7);
    data::DataLoader r(seven, sharded(2, 4, 3));  // global 8 > 7 samples: 7 / 4 = 1 each
    CHECK(epoch_batches(r).size() == 1);
    const auto three = numbered(3);
    data::DataLoader few(three, sharded(2, 4, 0));
    CHECK(few.batches_per_epoch() == 0);
    CHECK(epoch_batches(few).empty());
    CHECK(few.cursor() == 3);
    data::DataLoader drop(set, sharded(2, 3, 1, true));
    CHECK(drop.batches_per_epoch() == 3);
    CHECK(epoch_batches(drop).size() == 3);
  }
  SUBCASE("bad ranks are errors") {
    CHECK(message_of<ValueError>([&] { data::DataLoader l(set, sharded(2, 2, 2)); }) == "DataLoader: rank 2 is not below replicas 2");
    CHECK(message_of<ValueError>([&] { data::DataLoader l(set, sharded(2, 0, 0)); }) == "DataLoader: replicas must be positive");
  }
}
