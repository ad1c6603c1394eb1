#ifndef MIXCAL_WORKER_CORE_NETWORK_H_
#define MIXCAL_WORKER_CORE_NETWORK_H_

// The network a run trains, whatever it is: one of mixcal's own classifiers
// (models.h) or the researcher's TorchScript module. The epoch loop, the
// training methods, the evaluation and the checkpoints see only this
// interface, so every method works on every model. Internal to the training
// core (includes ATen and torch serialisation).
//
//   MIXCAL_ASSIGN_OR_RETURN(std::unique_ptr<Network> net,
//                           MakeNetwork(config, shape));
//   at::Tensor logits = net->Forward(x);                  // [B, classes]
//   at::Tensor mixed = net->ForwardMixed(x, 0, perm, 0.7);  // input mixup

#include <ATen/ATen.h>
#include <torch/serialize/archive.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "calib/config.h"
#include "worker/core/input_shape.h"
#include "worker/core/trainer.h"

namespace mixcal::core {

class Network {
 public:
  virtual ~Network() = default;

  // "mlp", "model file net.pt": how error messages name the network.
  virtual std::string Name() const = 0;

  // [B, ...] inputs (normalised images or token ids) to [B, classes] logits.
  virtual at::Tensor Forward(const at::Tensor& x) = 0;

  // The points where hidden states may be mixed: block 0 is the inputs (for
  // token ids, their embeddings), block k the output of the k-th stage.
  // Blocks(): how many there are; MixableAt(k): whether block k can be mixed.
  virtual int Blocks() const = 0;
  virtual bool MixableAt(int k) const { return k >= 0 && k < Blocks(); }
  // The batch run up to block k, there replaced by
  // lambda * h + (1 - lambda) * h[perm], then run to the logits. With
  // `also_clean` the unmixed batch goes through the same pass in front of
  // the mixed one ([2B, classes]: RegMixup's one forward pass).
  virtual at::Tensor ForwardMixed(const at::Tensor& x, int k,
                                  const at::Tensor& perm, double lambda,
                                  bool also_clean = false) = 0;
  // What block k is, for messages: "the inputs", "features(x)".
  virtual std::string BlockName(int k) const = 0;

  virtual std::vector<at::Tensor> Parameters() = 0;
  virtual void SetTraining(bool on) = 0;
  virtual void To(const at::Device& device) = 0;
  // Whether evaluation may run under c10::InferenceMode (else NoGradGuard).
  virtual bool InferenceModeSafe() const { return true; }
  // Whether convolutions should get channels-last inputs (ToModelLayout).
  virtual bool ChannelsLast() const { return false; }

  // Parameters and buffers (BatchNorm statistics) by name.
  virtual void Save(torch::serialize::OutputArchive& archive) = 0;
  // DataLoss naming the tensor when the archive does not match.
  virtual absl::Status Load(torch::serialize::InputArchive& archive) = 0;
};

// The network of `config` for inputs `shape`: a built-in model
// (InvalidArgument when the inputs are too small for it, or are token ids),
// or config.model_file loaded with torch::jit::load and checked
// (CheckScriptModule). Parameters initialised from the global generator.
absl::StatusOr<std::unique_ptr<Network>> MakeNetwork(
    const calib::TrainConfig& config, const InputShape& shape);

// CheckScriptModel (trainer.h) checks a TorchScript file before MakeNetwork.


}  // namespace mixcal::core

#endif  // MIXCAL_WORKER_CORE_NETWORK_H_
