#include "client/cli.h"

#include <algorithm>
#include <functional>

#include "absl/strings/str_cat.h"
#include "client/args.h"
#include "client/commands.h"
#include "client/dashboard.h"
#include "client/session.h"

namespace mixcal::client {

namespace {

using Handler = std::function<int(const Parsed&, Session&, std::ostream&,
                                  std::ostream&, bool)>;

struct Entry {
  Command cmd;
  Handler run;
};

const std::vector<Entry>& Commands() {
  static const auto* c = new std::vector<Entry>{
      {{"submit",
        "submit SPEC.json [flags] | --name N --methods M[,M...] [flags] "
        "[--wait]",
        "Submits a sweep: a JSON SweepSpec file (docs/sweep-spec.md), or the "
        "common case from flags:\n"
        "  mixcal submit --name fmnist-calib --dataset fashion-mnist --model "
        "lenet \\\n"
        "      --methods baseline,mixup:0.2,mixup:0.4,ls:0.1,erl:0.1 --seeds 3 "
        "--epochs 10\n"
        "With a file, the flags given override its fields (e.g. "
        "examples/quickstart.json --seeds 1 --epochs 5).\n"
        "Flags: --name, --dataset (fashion-mnist, mnist, cifar10, cifar100, "
        "synthetic, npz, image-folder),\n"
        "  --data-dir, --model (lenet, mlp, resnet18, vgg16, torchscript), "
        "--methods NAME[:VALUE],...\n"
        "  (baseline, mixup, feature_mixup, label_smoothing or ls, erl, "
        "focal, cutmix, regmixup, mmce, manifold_mixup;\n"
        "  replaces the file's methods),\n"
        "  --model-file NET.pt (your TorchScript network, uploaded; also the "
        "spec's modelFile),\n"
        "  --data-file DATA.npz (your arrays, uploaded; also the spec's "
        "data.dataFile), --data-path PATH (.npz or\n"
        "  image folder on the workers, inside their --data_root),\n"
        "  --seeds N (seeds 0..N-1), --epochs, --batch-size, --lr, "
        "--weight-decay, --schedule constant|step|cosine,\n"
        "  --milestones E1,E2,... (the step schedule's epochs; default: "
        "epochs/2 and 3*epochs/4; another --schedule drops them),\n"
        "  --threads, --train-limit, --test-limit, --device cpu|cuda|any, "
        "--priority,\n"
        "  --request-id (resubmitting with it never makes a copy), --wait "
        "(follow it to the end).",
        {"name", "dataset", "data-dir", "model", "methods", "seeds", "epochs",
         "batch-size", "lr", "weight-decay", "schedule", "milestones", "threads",
         "train-limit", "test-limit", "device", "priority", "request-id",
         "model-file", "data-file", "data-path"},
        {"wait"},
        0,
        1},
       Submit},
      {{"sweeps",
        "sweeps [--active]",
        "Lists sweeps, newest first, with their job counts.",
        {},
        {"active"},
        0,
        0},
       Sweeps},
      {{"jobs",
        "jobs [SWEEP] [--job JOB]",
        "Lists the jobs of a sweep (or of all sweeps); --job JOB shows one "
        "job with every setting it trains with, defaults filled in.",
        {"job"},
        {},
        0,
        1},
       Jobs},
      {{"workers",
        "workers [--all]",
        "Lists the workers with their device, state (busy, idle, or gone: "
        "stopped, lost, out of rotation, or silent for over a minute) and "
        "current job; gone workers only with --all. Under the table, the "
        "on-demand launcher's newest events.",
        {},
        {"all"},
        0,
        0},
       Workers},
      {{"backup",
        "backup",
        "Has the coordinator write an online backup of its store now (an "
        "admin token): a consistent copy of the database and the "
        "predictions file in a new folder under its --backup_dir, taken "
        "while it keeps serving; prints the folder, sizes and time. Restore: "
        "stop the coordinator and copy both files back (docs/storage.md, "
        "\"Backups\").",
        {},
        {},
        0,
        0},
       Backup},
      {{"models",
        "models [upload FILE]",
        "Lists the model files stored on the coordinator (TorchScript, by "
        "SHA-256), or uploads one:\n"
        "  mixcal models upload net.pt\n"
        "A file is stored once, whoever uploads it again; the coordinator "
        "refuses files over its --max_upload_mb (512 MiB by default) and "
        "bytes that do not match the hash sent with them "
        "(docs/files.md).",
        {},
        {},
        0,
        2},
       [](const Parsed& p, Session& s, std::ostream& out, std::ostream& err,
          bool tty) { return FilesCmd("model", p, s, out, err, tty); }},
      {{"data",
        "data [upload FILE]",
        "Lists the dataset files stored on the coordinator, or uploads one:\n"
        "  mixcal data upload cifar-subset.npz\n"
        "Stored once by SHA-256, with the same limits as models "
        "(docs/files.md).",
        {},
        {},
        0,
        2},
       [](const Parsed& p, Session& s, std::ostream& out, std::ostream& err,
          bool tty) { return FilesCmd("data", p, s, out, err, tty); }},
      {{"cancel",
        "cancel SWEEP | --job JOB",
        "Cancels a sweep's queued and running jobs, or one job. Running jobs "
        "stop within a batch.",
        {"job"},
        {},
        0,
        1},
       Cancel},
      {{"retry",
        "retry JOB",
        "Queues a failed or cancelled job again.",
        {},
        {},
        1,
        1},
       Retry},
      {{"events",
        "events SWEEP [--job JOB] [--limit N]",
        "Lists what happened to a sweep and its jobs, oldest first: "
        "submitted, leased, handed back, requeued, cancelled (and by whom), "
        "retried, ended. --limit: the newest N events, [1, 1000000] "
        "(default 1000).",
        {"job", "limit"},
        {},
        1,
        1},
       Events},
      {{"watch",
        "watch SWEEP",
        "Follows a sweep live: a bar per running job (epoch, samples/s, latest "
        "ECE) and the job counts;\n"
        "ends with the summary when the sweep ends. --format json prints each "
        "update as JSON.",
        {},
        {},
        1,
        1},
       WatchCmd},
      {{"summary",
        "summary SWEEP [--at final|best:METRIC|epoch:N] [--select-split S] "
        "[--split S] [--vs METHOD[:VALUE]] [--ensemble]",
        "The papers' table: per method and value, mean ± std over seeds of "
        "accuracy, ECE, OE, MCE,\n"
        "NLL and Brier, and ECE, NLL and T after temperature scaling. --at "
        "picks each job's final epoch\n"
        "(default), its best epoch by METRIC (e.g. best:ece), or epoch N.\n"
        "best:METRIC chooses each job's epoch on validation data (split val; "
        "val_ts for the TS columns);\n"
        "--select-split test chooses on test data instead, and the output "
        "says so. --vs baseline (any method,\n"
        "METHOD:VALUE where it has several values) adds each configuration's "
        "difference to it, paired\n"
        "by seed, with a 95% Student-t interval; * marks an interval that "
        "excludes 0.\n"
        "--ensemble adds each configuration's seed ensemble: the metrics of "
        "the average of its seeds'\n"
        "kept test probabilities (evaluation.predictions) at the same epochs.",
        {"at", "select-split", "split", "vs"},
        {"ensemble"},
        1,
        1},
       SummaryCmd},
      {{"metrics",
        "metrics SWEEP | --job JOB [--split S] [--bins] [--format csv|json]",
        "Every per-epoch row, as CSV (default) or JSON, ready for pandas.",
        {"job", "split"},
        {"bins"},
        0,
        1},
       MetricsCmd},
      {{"predictions",
        "predictions JOB --out FILE.npz|FILE.csv [--epoch N] [--split test]",
        "Writes a job's kept predictions (evaluation.predictions: the test "
        "split's probabilities at the\n"
        "final epoch by default) for NumPy: np.load(FILE.npz) holds "
        "probabilities (float16, examples x\n"
        "classes), labels (int32) and, where the worker kept them, "
        "label_log_probs (float32: each\n"
        "label's log-probability, exact where float16 rounds to 0; "
        "-mean is the NLL); or as CSV (row,\n"
        "label, log_p_label, p0, p1, ...). --epoch picks another kept "
        "epoch (default: the newest kept).",
        {"out", "epoch", "split"},
        {},
        1,
        1},
       PredictionsCmd},
      {{"plot",
        "plot reliability JOB | evolution JOB | curves SWEEP | sweep SWEEP "
        "[--metric M] [--param P] [--vs METHOD[:VALUE]] [--out FILE]",
        "Writes an SVG to open in a browser:\n"
        "  reliability JOB [--epoch N] [--split S]  a reliability diagram: "
        "accuracy per confidence bin\n"
        "      against the diagonal, the gap drawn, and the confidence "
        "histogram (newest epoch by default)\n"
        "  evolution JOB [--with JOB2,...] [--epochs 1,5,10,30] [--split train]"
        "  the split's bins at\n"
        "      chosen epochs side by side (a row per job): bubbles at (mean "
        "confidence, accuracy), area =\n"
        "      share of examples, red when overconfident (Thulasidasan et al. "
        "Fig. 1; default: 4 epochs)\n"
        "  curves SWEEP [--metric ece] [--split test]  the metric against "
        "epoch per method, mean over\n"
        "      seeds with a ±std band (also training metrics: train_loss, "
        "train_accuracy, lr)\n"
        "  sweep SWEEP [--metric ece] [--split test] [--param "
        "alpha|epsilon|beta|gamma|lambda]\n"
        "      [--vs METHOD[:VALUE]]  the final metric against the "
        "hyperparameter, baseline dashed;\n"
        "      with --vs each configuration minus that one, paired by seed, "
        "with its 95% interval\n"
        "--split: test (default), test_ts (after temperature scaling), val, "
        "val_ts, noise, ood, train, or a\n"
        "calibrator's test_<name>. --out names the file (default: a "
        "descriptive name in the current directory).",
        {"metric", "param", "split", "epoch", "epochs", "with", "vs", "out"},
        {},
        2,
        2},
       Plot},
      {{"dashboard",
        "dashboard [--listen 127.0.0.1:8080] [--open] "
        "[--dashboard-token-file F] [--dashboard-insecure]",
        "Serves a web view of the coordinator (the same --address, --token "
        "and --tls-ca as every command):\n"
        "the sweeps; a sweep's jobs updating live, its summary (at final / "
        "best / epoch N, raw or\n"
        "temperature-scaled, compared with any method), curves and metric "
        "against hyperparameter,\n"
        "CSV/JSON downloads; a job's reliability diagram at any epoch, curves "
        "and events; the workers.\n"
        "It listens on loopback unless told otherwise; on another address it "
        "needs its own token\n"
        "(--dashboard-token-file FILE or $MIXCAL_DASHBOARD_TOKEN, at least 16 "
        "characters; open the\n"
        "page once as /?token=TOKEN) or --dashboard-insecure. --open starts a "
        "browser (xdg-open);\n"
        "--port-file F writes the port (with --listen HOST:0). Ctrl-C stops "
        "it.",
        {"listen", "dashboard-token-file", "port-file"},
        {"open", "dashboard-insecure"},
        0,
        0},
       DashboardCmd},
  };
  return *c;
}

std::string MainHelp() {
  std::string s =
      "mixcal: run calibration sweeps on a mixcal coordinator.\n\n"
      "usage: mixcal COMMAND [ARGS] [--address HOST:PORT] [--token T] "
      "[--token-file F] [--tls-ca CA.pem] [--insecure] "
      "[--format text|json]\n\n"
      "Commands:\n";
  for (const Entry& e : Commands())
    absl::StrAppend(&s, "  mixcal ", e.cmd.synopsis, "\n");
  absl::StrAppend(&s,
                  "\nThe address defaults to $MIXCAL_ADDRESS (else "
                  "127.0.0.1:7707); the token to --token-file, "
                  "$MIXCAL_TOKEN or $MIXCAL_TOKEN_FILE (a file holding it); "
                  "the CA to $MIXCAL_TLS_CA. A token goes to an "
                  "address other than this machine only over TLS "
                  "(--tls-ca), or with --insecure.\n"
                  "`mixcal COMMAND --help` describes a command. Exit codes: 0 "
                  "ok, 1 server error, 2 usage.\n");
  return s;
}

}  // namespace

int RunCli(const std::vector<std::string>& args, std::ostream& out,
           std::ostream& err, bool tty) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h" ||
      args[0] == "help") {
    (args.empty() ? err : out) << MainHelp();
    return args.empty() ? kUsage : kOk;
  }
  for (const Entry& e : Commands()) {
    if (e.cmd.name != args[0]) continue;
    std::vector<std::string> rest(args.begin() + 1, args.end());
    if (std::find(rest.begin(), rest.end(), "--help") != rest.end() ||
        std::find(rest.begin(), rest.end(), "-h") != rest.end()) {
      out << "usage: mixcal " << e.cmd.synopsis << "\n\n" << e.cmd.help
          << "\n\nEvery command also takes --address HOST:PORT, --token T, "
             "--token-file F, --tls-ca CA.pem,\n--insecure and --format "
             "text|json (mixcal --help says where their defaults come "
             "from).\n";
      return kOk;
    }
    Parsed p;
    if (auto u = Parse(e.cmd, rest, &p)) {
      err << "mixcal: " << u->message << "\n";
      return kUsage;
    }
    Session session(p, err);
    if (!session.Connect()) return kUsage;
    return e.run(p, session, out, err, tty);
  }
  err << "mixcal: unknown command \"" << args[0] << "\" (see mixcal --help)\n";
  return kUsage;
}

}  // namespace mixcal::client
