#include "worker/core/network.h"

#include <torch/script.h>
#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/ascii.h"
#include "base/status_macros.h"
#include "worker/core/execution.h"
#include "worker/core/models.h"

namespace mixcal::core {
namespace {

// LibTorch's message in one line: TorchScript's interpreter puts the
// Python-side error ("RuntimeError: mat1 and mat2 ...") after its own
// traceback; other errors lead with it.
std::string OneLine(const std::string& what) {
  std::string found;
  for (absl::string_view line : absl::StrSplit(what, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    const size_t colon = line.find("Error: ");
    if (colon != absl::string_view::npos &&
        line.find(' ') > colon) {  // "RuntimeError: ...", not prose
      found = std::string(line);
    }
  }
  if (!found.empty()) return found;
  for (absl::string_view line : absl::StrSplit(what, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (!line.empty()) return std::string(line);
  }
  return what;
}

at::Tensor Mix(const at::Tensor& h, const at::Tensor& perm, double lambda,
               bool also_clean) {
  at::Tensor mixed = lambda * h + (1.0 - lambda) * h.index_select(0, perm);
  return also_clean ? at::cat({h, mixed}) : mixed;
}

// --- mixcal's own classifiers (models.h) ---

class BuiltinNetwork : public Network {
 public:
  BuiltinNetwork(std::shared_ptr<ClassifierImpl> model, calib::ModelKind kind)
      : model_(std::move(model)), kind_(kind) {}

  std::string Name() const override { return std::string(calib::Name(kind_)); }
  at::Tensor Forward(const at::Tensor& x) override {
    return model_->forward(x);
  }
  int Blocks() const override { return model_->stages(); }
  at::Tensor ForwardMixed(const at::Tensor& x, int k, const at::Tensor& perm,
                          double lambda, bool also_clean) override {
    at::Tensor h = x;
    for (int i = 0; i < model_->stages(); ++i) {
      if (i == k) h = Mix(h, perm, lambda, also_clean);
      h = model_->stage(i, std::move(h));
    }
    return h;
  }
  std::string BlockName(int k) const override {
    return k == 0 ? "the inputs" : absl::StrCat("the output of stage ", k);
  }
  std::vector<at::Tensor> Parameters() override {
    return model_->parameters();
  }
  void SetTraining(bool on) override { model_->train(on); }
  void To(const at::Device& device) override {
    model_->to(device);
    if (ChannelsLast()) ConvertToChannelsLast(*model_);
  }
  bool ChannelsLast() const override {
    return kind_ != calib::ModelKind::kMlp;
  }
  void Save(torch::serialize::OutputArchive& archive) override {
    torch::serialize::OutputArchive model_archive;
    model_->save(model_archive);
    archive.write("model", model_archive);
  }
  absl::Status Load(torch::serialize::InputArchive& archive) override {
    torch::serialize::InputArchive model_archive;
    archive.read("model", model_archive);
    model_->load(model_archive);
    return absl::OkStatus();
  }

 private:
  std::shared_ptr<ClassifierImpl> model_;
  calib::ModelKind kind_;
};

// --- a TorchScript module (docs/own-model.md) ---
//   forward(x) -> logits                   required
//   embed(x) -> e, forward_embedded(e)     block 0 of token ids
//   features(x) -> h, classify(h)          block 1

class ScriptNetwork : public Network {
 public:
  ScriptNetwork(torch::jit::Module module, std::string name, bool tokens)
      : module_(std::move(module)), name_(std::move(name)), tokens_(tokens) {
    embed_ = module_.find_method("embed").has_value() &&
             module_.find_method("forward_embedded").has_value();
    features_ = module_.find_method("features").has_value() &&
                module_.find_method("classify").has_value();
  }

  std::string Name() const override { return name_; }
  at::Tensor Forward(const at::Tensor& x) override {
    return module_.forward({x}).toTensor();
  }
  int Blocks() const override { return features_ ? 2 : 1; }
  bool MixableAt(int k) const override {
    if (k == 0) return !tokens_ || embed_;
    return k == 1 && features_;
  }
  at::Tensor ForwardMixed(const at::Tensor& x, int k, const at::Tensor& perm,
                          double lambda, bool also_clean) override {
    if (k == 1) {
      at::Tensor h = Call("features", x);
      return Call("classify", Mix(h, perm, lambda, also_clean));
    }
    if (tokens_) {
      at::Tensor e = Call("embed", x);
      return Call("forward_embedded", Mix(e, perm, lambda, also_clean));
    }
    return Forward(Mix(x, perm, lambda, also_clean));
  }
  std::string BlockName(int k) const override {
    if (k == 1) return "features(x)";
    return tokens_ ? "embed(x)" : "the inputs";
  }
  // The interpreter may keep tensors made under InferenceMode in its plans,
  // which training then cannot save for backward.
  bool InferenceModeSafe() const override { return false; }
  std::vector<at::Tensor> Parameters() override {
    std::vector<at::Tensor> out;
    for (const at::Tensor& p : module_.parameters()) out.push_back(p);
    return out;
  }
  void SetTraining(bool on) override { module_.train(on); }
  void To(const at::Device& device) override { module_.to(device); }

  // Every parameter and buffer, by name, as two lists: names and tensors.
  void Save(torch::serialize::OutputArchive& archive) override {
    std::vector<std::string> names;
    c10::List<at::Tensor> tensors;
    for (const auto& p : module_.named_parameters()) {
      names.push_back(p.name);
      tensors.push_back(p.value.detach());
    }
    for (const auto& b : module_.named_buffers()) {
      names.push_back(b.name);
      tensors.push_back(b.value.detach());
    }
    archive.write("script_names", c10::IValue(absl::StrJoin(names, "\n")));
    archive.write("script_tensors", c10::IValue(tensors));
  }
  absl::Status Load(torch::serialize::InputArchive& archive) override {
    c10::IValue names_iv, tensors_iv;
    if (!archive.try_read("script_names", names_iv) ||
        !archive.try_read("script_tensors", tensors_iv)) {
      return absl::DataLossError(
          "the checkpoint holds no TorchScript module's tensors");
    }
    std::vector<std::string> names =
        absl::StrSplit(names_iv.toStringRef(), '\n');
    c10::List<at::Tensor> tensors = tensors_iv.toTensorList();
    if (names.size() != tensors.size()) {
      return absl::DataLossError("the checkpoint's tensor list is damaged");
    }
    std::map<std::string, at::Tensor> stored;
    for (size_t i = 0; i < names.size(); ++i) stored[names[i]] = tensors[i];
    torch::NoGradGuard ng;
    auto restore = [&](const std::string& name,
                       at::Tensor target) -> absl::Status {
      auto it = stored.find(name);
      if (it == stored.end() || it->second.sizes() != target.sizes()) {
        return absl::DataLossError(absl::StrCat(
            "the checkpoint does not match ", name_, " (tensor ", name,
            it == stored.end() ? " missing)" : " has another shape)"));
      }
      target.copy_(it->second);
      return absl::OkStatus();
    };
    for (const auto& p : module_.named_parameters())
      MIXCAL_RETURN_IF_ERROR(restore(p.name, p.value));
    for (const auto& b : module_.named_buffers())
      MIXCAL_RETURN_IF_ERROR(restore(b.name, b.value));
    return absl::OkStatus();
  }

 private:
  at::Tensor Call(const std::string& method, const at::Tensor& x) {
    return module_.get_method(method)({x}).toTensor();
  }

  torch::jit::Module module_;
  std::string name_;
  bool tokens_ = false, embed_ = false, features_ = false;
};

std::string FileName(const std::string& path) {
  return absl::StrCat("model_file ",
                      std::filesystem::path(path).filename().string());
}

absl::StatusOr<torch::jit::Module> LoadModule(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return absl::NotFoundError(
        absl::StrCat(FileName(path), ": no such file (", path, ")"));
  }
  try {
    return torch::jit::load(path, torch::kCPU);
  } catch (const std::exception& e) {
    const std::string what = OneLine(e.what());
    return absl::InvalidArgumentError(absl::StrCat(
        FileName(path),
        ": not a TorchScript file this LibTorch (" TORCH_VERSION
        ") can load; save it with torch.jit.save(torch.jit.script(model)) "
        "from PyTorch " TORCH_VERSION " or older (",
        what, ")"));
  }
}

// A batch of two inputs of `shape`: zeros (token id 0) for the check.
at::Tensor ProbeBatch(const InputShape& shape) {
  return at::zeros(shape.Batch(2), shape.tokens ? at::kLong : at::kFloat);
}

absl::Status CheckLogits(const std::string& who, const std::string& call,
                         const c10::IValue& out, const InputShape& shape) {
  if (!out.isTensor()) {
    return absl::InvalidArgumentError(
        absl::StrCat(who, ": ", call, " returned ", out.tagKind(),
                     ", not a tensor of logits [batch, classes]"));
  }
  const at::Tensor t = out.toTensor();
  if (t.dim() != 2 || t.size(0) != 2 || t.size(1) != shape.classes ||
      !at::isFloatingType(t.scalar_type())) {
    return absl::InvalidArgumentError(absl::StrCat(
        who, ": ", call, " of a batch of 2 ", shape.Describe(), " gives ",
        t.toString(), " [", absl::StrJoin(t.sizes(), ", "),
        "]; the data has ", shape.classes, " classes, so it must give float [2, ",
        shape.classes, "]"));
  }
  return absl::OkStatus();
}

}  // namespace

std::vector<int64_t> InputShape::Batch(int64_t n) const {
  if (tokens) return {n, length};
  return {n, channels, height, width};
}

std::string InputShape::Describe() const {
  if (tokens) return absl::StrCat("token ids of length ", length);
  return absl::StrCat(channels, "x", height, "x", width, " images");
}

absl::Status CheckScriptModel(const std::string& path,
                              const InputShape& shape) {
  MIXCAL_ASSIGN_OR_RETURN(torch::jit::Module m, LoadModule(path));
  const std::string who = FileName(path);
  try {
    if (m.parameters().size() == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          who, ": the module has no parameters to train (a frozen module, "
               "torch.jit.freeze, cannot be trained)"));
    }
    if (!m.find_method("forward")) {
      return absl::InvalidArgumentError(
          absl::StrCat(who, ": the module has no forward(x)"));
    }
    m.eval();
    torch::NoGradGuard ng;
    const at::Tensor x = ProbeBatch(shape);
    MIXCAL_RETURN_IF_ERROR(CheckLogits(who, "forward(x)", m.forward({x}), shape));
    // The optional pairs of the convention: both or neither, and together
    // they give logits as forward does.
    auto check_pair = [&](const std::string& first, const std::string& second,
                          const std::string& purpose) -> absl::Status {
      const bool has_first = m.find_method(first).has_value(),
                 has_second = m.find_method(second).has_value();
      if (has_first != has_second) {
        return absl::InvalidArgumentError(absl::StrCat(
            who, ": defines ", has_first ? first : second, " without ",
            has_first ? second : first, "; ", purpose, " needs both"));
      }
      if (!has_first) return absl::OkStatus();
      c10::IValue h = m.get_method(first)({x});
      if (!h.isTensor()) {
        return absl::InvalidArgumentError(
            absl::StrCat(who, ": ", first, "(x) must return a tensor"));
      }
      return CheckLogits(who, absl::StrCat(second, "(", first, "(x))"),
                         m.get_method(second)({h}), shape);
    };
    MIXCAL_RETURN_IF_ERROR(
        check_pair("embed", "forward_embedded", "embedding-space mixing"));
    MIXCAL_RETURN_IF_ERROR(
        check_pair("features", "classify", "feature-level mixing"));
  } catch (const std::exception& e) {
    const std::string what = OneLine(e.what());
    return absl::InvalidArgumentError(absl::StrCat(
        who, ": running it on a batch of 2 ", shape.Describe(),
        " failed: ", what));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Network>> MakeNetwork(
    const calib::TrainConfig& config, const InputShape& shape) {
  if (config.model == calib::ModelKind::kTorchScript) {
    MIXCAL_ASSIGN_OR_RETURN(torch::jit::Module m,
                            LoadModule(config.model_file));
    return std::unique_ptr<Network>(std::make_unique<ScriptNetwork>(
        std::move(m), FileName(config.model_file), shape.tokens));
  }
  if (shape.tokens) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model ", calib::Name(config.model),
        " takes images; this dataset holds token ids: give a model_file (a "
        "TorchScript module with an embedding, docs/own-model.md)"));
  }
  MIXCAL_ASSIGN_OR_RETURN(std::shared_ptr<ClassifierImpl> model,
                          MakeModel(config.model, shape.channels, shape.height,
                                    shape.width, shape.classes));
  return std::unique_ptr<Network>(
      std::make_unique<BuiltinNetwork>(std::move(model), config.model));
}

}  // namespace mixcal::core
