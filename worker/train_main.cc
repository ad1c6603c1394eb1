// mixcal-train: one training run from the command line. See --help.

#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>

#include "absl/strings/str_format.h"
#include "worker/core/report_json.h"
#include "worker/core/trainer.h"
#include "worker/train_flags.h"

namespace {

std::atomic<bool> g_cancel{false};

void OnSignal(int) { g_cancel.store(true); }

void PrintText(const mixcal::core::EpochReport& r, int epochs) {
  for (const auto& m : r.splits) {
    auto v = [&](const char* name) { return m.values.Get(name).value_or(0); };
    if (m.has_labels) {
      std::printf(
          "epoch %3d/%d  %-8s acc %.4f  ece %.4f  oe %.4f  mce %.4f  nll %.4f  "
          "brier %.4f",
          r.epoch, epochs, m.split.c_str(), v("accuracy"), v("ece"), v("oe"),
          v("mce"), v("nll"), v("brier"));
      if (m.values.Get("temperature"))
        std::printf("  T %.3f", v("temperature"));
    } else {
      std::printf("epoch %3d/%d  %-8s conf %.4f  entropy %.4f  auroc %.4f",
                  r.epoch, epochs, m.split.c_str(), v("mean_confidence"),
                  v("mean_entropy"), v("auroc"));
    }
    if (m.split == "test") {
      std::printf("  | loss %.4f  lr %.4g  %.0f samples/s", r.train_loss, r.lr,
                  r.samples_per_sec);
    }
    std::printf("\n");
  }
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  absl::StatusOr<mixcal::worker::TrainCommand> cmd =
      mixcal::worker::ParseTrainFlags(argc, argv);
  if (!cmd.ok()) {
    std::fprintf(stderr, "mixcal-train: %s\n",
                 std::string(cmd.status().message()).c_str());
    return 2;
  }
  if (cmd->help) {
    std::fputs(mixcal::worker::TrainHelp().c_str(), stdout);
    return 0;
  }
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);

  mixcal::core::TrainHooks hooks;
  hooks.cancel = &g_cancel;
  const int epochs = cmd->config.epochs;
  const bool text = cmd->format == "text";
  hooks.on_epoch = [&](const mixcal::core::EpochReport& r) {
    if (text) {
      PrintText(r, epochs);
    } else {
      for (const std::string& line : mixcal::core::EpochReportJsonLines(r))
        std::fprintf(stdout, "%s\n", line.c_str());
      std::fflush(stdout);
    }
    return absl::OkStatus();
  };
  hooks.on_checkpoint = [](int epoch, const std::string& path) {
    std::fprintf(stderr, "mixcal-train: epoch %d checkpoint %s\n", epoch,
                 path.c_str());
  };
  absl::Status s = mixcal::core::NewTorchTrainer()->Run(cmd->config, hooks);
  if (absl::IsCancelled(s)) {
    std::fprintf(stderr, "mixcal-train: interrupted: %s\n",
                 std::string(s.message()).c_str());
    return 130;
  }
  if (!s.ok()) {
    std::fprintf(stderr, "mixcal-train: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}
