#ifndef MIXCAL_WORKER_CORE_INPUT_SHAPE_H_
#define MIXCAL_WORKER_CORE_INPUT_SHAPE_H_

// What a run's inputs look like, from its data. Torch-free.

#include <cstdint>
#include <string>
#include <vector>

namespace mixcal::core {

// Images [N, C, H, W] or token ids [N, L] (int64 in [0, vocab)), and the
// number of classes of the labels.
struct InputShape {
  bool tokens = false;
  int channels = 0, height = 0, width = 0;  // images
  int length = 0;                            // tokens
  int64_t vocab = 0;                         // tokens: the largest id + 1
  int classes = 0;
  // [n, C, H, W] or [n, L].
  std::vector<int64_t> Batch(int64_t n) const;
  // "1x28x28 images", "token ids of length 64".
  std::string Describe() const;
};

}  // namespace mixcal::core

#endif  // MIXCAL_WORKER_CORE_INPUT_SHAPE_H_
