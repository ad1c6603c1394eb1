#ifndef MIXCAL_CLIENT_COMMANDS_H_
#define MIXCAL_CLIENT_COMMANDS_H_

// The `mixcal` subcommands, one family per file; cli.cc maps names to them.
// Each returns an exit code (client/args.h) and prints to out/err.

#include <cstdint>
#include <ostream>
#include <string>

#include "client/args.h"
#include "client/session.h"

namespace mixcal::client {

// submit (cmd_submit.cc)
int Submit(const Parsed& p, Session& s, std::ostream& out, std::ostream& err,
           bool tty);
// sweeps, jobs, workers, cancel, retry, backup (cmd_jobs.cc)
int Sweeps(const Parsed& p, Session& s, std::ostream& out, std::ostream& err,
           bool tty);
int Jobs(const Parsed& p, Session& s, std::ostream& out, std::ostream& err,
         bool tty);
int Workers(const Parsed& p, Session& s, std::ostream& out, std::ostream& err,
            bool tty);
int Cancel(const Parsed& p, Session& s, std::ostream& out, std::ostream& err,
           bool tty);
int Backup(const Parsed& p, Session& s, std::ostream& out, std::ostream& err,
           bool tty);
int Retry(const Parsed& p, Session& s, std::ostream& out, std::ostream& err,
          bool tty);
int Events(const Parsed& p, Session& s, std::ostream& out, std::ostream& err,
           bool tty);
// watch (cmd_watch.cc); Watch also ends `submit --wait`.
int Watch(int64_t sweep_id, Session& s, std::ostream& out, std::ostream& err,
          bool tty, const std::string& format);
int WatchCmd(const Parsed& p, Session& s, std::ostream& out, std::ostream& err,
             bool tty);
// predictions (cmd_predictions.cc)
int PredictionsCmd(const Parsed& p, Session& s, std::ostream& out,
                   std::ostream& err, bool tty);
// summary, metrics (cmd_summary.cc)
// `select_split`: with --at best:METRIC, the split each epoch is chosen on
// ("" = the validation variant of each reported split).
int Summary(int64_t sweep_id, const std::string& at, const std::string& split,
            const std::string& format, const std::string& vs, bool ensemble,
            Session& s, std::ostream& out, std::ostream& err,
            const std::string& select_split = "");
// Every row `req` selects, as CSV (the metric table's columns) or a JSON
// array, written as the pages arrive; the first failed call's status, or
// ToJson's error for the first row it cannot write (client/output.h).
grpc::Status WriteMetrics(Session& s, const v1::QueryMetricsRequest& req,
                          const std::string& format, std::ostream& out);
int SummaryCmd(const Parsed& p, Session& s, std::ostream& out,
               std::ostream& err, bool tty);
int MetricsCmd(const Parsed& p, Session& s, std::ostream& out,
               std::ostream& err, bool tty);
// models, data: list or upload files of `kind` (model | data)
// (cmd_files.cc)
// Uploads `path` as a `kind` file (model | data); kOk with its stored row,
// else the exit code (the error printed).
int UploadFile(const std::string& kind, const std::string& path, Session& s,
               std::ostream& err, v1::StoredFile* stored);
int FilesCmd(const std::string& kind, const Parsed& p, Session& s,
             std::ostream& out, std::ostream& err, bool tty);
// plot reliability|curves|sweep (cmd_plot.cc)
int Plot(const Parsed& p, Session& s, std::ostream& out, std::ostream& err,
         bool tty);

}  // namespace mixcal::client

#endif  // MIXCAL_CLIENT_COMMANDS_H_
