#include "worker/core/models.h"

#include <torch/torch.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace mixcal::core {
namespace {

namespace nn = torch::nn;

class MlpImpl : public ClassifierImpl {
 public:
  MlpImpl(int64_t in, int64_t classes)
      : fc1_(register_module("fc1", nn::Linear(in, 512))),
        fc2_(register_module("fc2", nn::Linear(512, 256))),
        fc3_(register_module("fc3", nn::Linear(256, classes))) {}
  int stages() const override { return 3; }
  at::Tensor stage(int i, at::Tensor x) override {
    switch (i) {
      case 0:
        return torch::relu(fc1_(x.flatten(1)));
      case 1:
        return torch::relu(fc2_(x));
      default:
        return fc3_(x);
    }
  }

 private:
  nn::Linear fc1_, fc2_, fc3_;
};

class LenetImpl : public ClassifierImpl {
 public:
  LenetImpl(int channels, int height, int width, int classes) {
    const int pad = std::min(height, width) < 32 ? 2 : 0;
    conv1_ = register_module(
        "conv1", nn::Conv2d(nn::Conv2dOptions(channels, 6, 5).padding(pad)));
    conv2_ = register_module("conv2", nn::Conv2d(nn::Conv2dOptions(6, 16, 5)));
    int64_t h = ((height + 2 * pad - 4) / 2 - 4) / 2;
    int64_t w = ((width + 2 * pad - 4) / 2 - 4) / 2;
    flat_ = 16 * h * w;
    fc1_ = register_module("fc1", nn::Linear(flat_, 120));
    fc2_ = register_module("fc2", nn::Linear(120, 84));
    fc3_ = register_module("fc3", nn::Linear(84, classes));
  }
  int stages() const override { return 5; }
  at::Tensor stage(int i, at::Tensor x) override {
    switch (i) {
      case 0:
        return torch::max_pool2d(torch::relu(conv1_(x)), 2);
      case 1:
        return torch::max_pool2d(torch::relu(conv2_(x)), 2);
      case 2:
        return torch::relu(fc1_(x.flatten(1)));
      case 3:
        return torch::relu(fc2_(x));
      default:
        return fc3_(x);
    }
  }

 private:
  nn::Conv2d conv1_{nullptr}, conv2_{nullptr};
  nn::Linear fc1_{nullptr}, fc2_{nullptr}, fc3_{nullptr};
  int64_t flat_ = 0;
};

class BasicBlockImpl : public nn::Module {
 public:
  BasicBlockImpl(int64_t in, int64_t out, int64_t stride) {
    conv1_ = register_module("conv1", nn::Conv2d(nn::Conv2dOptions(in, out, 3)
                                                     .stride(stride)
                                                     .padding(1)
                                                     .bias(false)));
    bn1_ = register_module("bn1", nn::BatchNorm2d(out));
    conv2_ = register_module(
        "conv2",
        nn::Conv2d(nn::Conv2dOptions(out, out, 3).padding(1).bias(false)));
    bn2_ = register_module("bn2", nn::BatchNorm2d(out));
    if (stride != 1 || in != out) {
      shortcut_ = register_module(
          "shortcut",
          nn::Sequential(
              nn::Conv2d(
                  nn::Conv2dOptions(in, out, 1).stride(stride).bias(false)),
              nn::BatchNorm2d(out)));
    }
  }
  at::Tensor forward(at::Tensor x) {
    at::Tensor out = torch::relu(bn1_(conv1_(x)));
    out = bn2_(conv2_(out));
    out += shortcut_.is_empty() ? x : shortcut_->forward(x);
    return torch::relu(out);
  }

 private:
  nn::Conv2d conv1_{nullptr}, conv2_{nullptr};
  nn::BatchNorm2d bn1_{nullptr}, bn2_{nullptr};
  nn::Sequential shortcut_{nullptr};
};
TORCH_MODULE(BasicBlock);

class ResNet18Impl : public ClassifierImpl {
 public:
  ResNet18Impl(int channels, int classes) {
    conv1_ = register_module(
        "conv1",
        nn::Conv2d(nn::Conv2dOptions(channels, 64, 3).padding(1).bias(false)));
    bn1_ = register_module("bn1", nn::BatchNorm2d(64));
    int64_t in = 64;
    const int64_t widths[4] = {64, 128, 256, 512};
    for (int stage = 0; stage < 4; ++stage) {
      nn::Sequential layer;
      for (int block = 0; block < 2; ++block) {
        int64_t stride = (stage > 0 && block == 0) ? 2 : 1;
        layer->push_back(BasicBlock(in, widths[stage], stride));
        in = widths[stage];
      }
      layers_.push_back(
          register_module(absl::StrCat("layer", stage + 1), layer));
    }
    fc_ = register_module("fc", nn::Linear(512, classes));
  }
  // Stem, the four stages of blocks, pooling and the classifier.
  int stages() const override { return 6; }
  at::Tensor stage(int i, at::Tensor x) override {
    if (i == 0) return torch::relu(bn1_(conv1_(x)));
    if (i <= 4) return layers_[i - 1]->forward(x);
    return fc_(torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1));
  }

 private:
  nn::Conv2d conv1_{nullptr};
  nn::BatchNorm2d bn1_{nullptr};
  std::vector<nn::Sequential> layers_;
  nn::Linear fc_{nullptr};
};

class Vgg16Impl : public ClassifierImpl {
 public:
  Vgg16Impl(int channels, int height, int width, int classes) {
    // 0 marks a max-pool.
    const int cfg[] = {64, 64,  0,   128, 128, 0,   256, 256, 256,
                       0,  512, 512, 512, 0,   512, 512, 512, 0};
    int64_t in = channels, h = height, w = width;
    for (int v : cfg) {
      if (v == 0) {
        if (h >= 2 && w >= 2) {
          features_->push_back(nn::MaxPool2d(nn::MaxPool2dOptions(2)));
          bounds_.push_back(features_->size());
          h /= 2;
          w /= 2;
        }
        continue;
      }
      features_->push_back(nn::Conv2d(nn::Conv2dOptions(in, v, 3).padding(1)));
      features_->push_back(nn::BatchNorm2d(v));
      features_->push_back(nn::ReLU(nn::ReLUOptions(true)));
      in = v;
    }
    if (bounds_.empty() || bounds_.back() != features_->size())
      bounds_.push_back(features_->size());
    register_module("features", features_);
    fc_ = register_module("fc", nn::Linear(512, classes));
  }
  // One stage per pooling block of the features (the layers up to and
  // including each max-pool; the rest after the last), then the classifier.
  int stages() const override { return static_cast<int>(bounds_.size()) + 1; }
  at::Tensor stage(int i, at::Tensor x) override {
    if (i == static_cast<int>(bounds_.size()))
      return fc_(torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1));
    const size_t from = i == 0 ? 0 : bounds_[i - 1];
    for (size_t j = from; j < bounds_[i]; ++j)
      x = features_->begin()[static_cast<std::ptrdiff_t>(j)].forward(x);
    return x;
  }

 private:
  nn::Sequential features_;
  nn::Linear fc_{nullptr};
  std::vector<size_t> bounds_;  // end of each stage in features_
};

}  // namespace

absl::StatusOr<std::shared_ptr<ClassifierImpl>> MakeModel(calib::ModelKind kind,
                                                          int channels,
                                                          int height, int width,
                                                          int classes) {
  try {
    switch (kind) {
      case calib::ModelKind::kMlp:
        return std::shared_ptr<ClassifierImpl>(std::make_shared<MlpImpl>(
            int64_t{channels} * height * width, classes));
      case calib::ModelKind::kLenet: {
        const int pad = std::min(height, width) < 32 ? 2 : 0;
        if (std::min(height, width) + 2 * pad < 14) {
          return absl::InvalidArgumentError(absl::StrCat(
              "model lenet needs images of at least 10x10 pixels, got ", height,
              "x", width));
        }
        return std::shared_ptr<ClassifierImpl>(
            std::make_shared<LenetImpl>(channels, height, width, classes));
      }
      case calib::ModelKind::kResnet18:
        return std::shared_ptr<ClassifierImpl>(
            std::make_shared<ResNet18Impl>(channels, classes));
      case calib::ModelKind::kVgg16:
        return std::shared_ptr<ClassifierImpl>(
            std::make_shared<Vgg16Impl>(channels, height, width, classes));
    }
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("building the model: ", e.what()));
  }
  return absl::InvalidArgumentError("unknown model");
}

}  // namespace mixcal::core
