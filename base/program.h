#ifndef MIXCAL_BASE_PROGRAM_H_
#define MIXCAL_BASE_PROGRAM_H_

// What the programs built on Abseil flags (mixcal-coordinator, mixcal-worker,
// the benchmarks) do first in main(), and the one place that splits
// "--name=value".

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace mixcal {

// "--name=value" -> {"name", "value"}; "--name" -> {"name", nullopt}.
// `arg` must start with "--".
std::pair<std::string, std::optional<std::string>> SplitFlag(
    absl::string_view arg);

// The other mixcal tools spell flags with dashes (--tls-ca); Abseil's use
// underscores. Returns argv with --a-b turned into --a_b (values untouched);
// `keep` owns the strings.
std::vector<char*> UnderscoreFlags(int argc, char** argv,
                                   std::vector<std::string>* keep);

// When argv asks for help (--help, -h, --helpfull), prints `usage` and every
// flag the program's own *_main.cc (or a benchmark's *_bench.cc) defines,
// each with its meaning and default, to stdout and returns true: main()
// then exits 0. Abseil's own --help finds no flags of a program whose name
// differs from its source file and exits 1.
bool PrintHelpIfAsked(int argc, char** argv, absl::string_view usage);

// What a program's main() does first: --help (PrintHelpIfAsked; returns
// false, and main() exits 0), then the usage message, the deadlock
// detector off, and Abseil's parse of argv with dashes in flag names
// accepted. A bad flag exits 1 with Abseil's message naming it.
bool ParseProgramFlags(int argc, char** argv, absl::string_view usage);

// Debian's Abseil is built with its mutex deadlock detector on, which
// records every lock order (a few percent of the coordinator's time under
// load). The programs turn it off; the tests keep it.
void TurnOffMutexDeadlockDetection();

// With glibc's default settings a freed block of 128 KiB or more goes back
// to the system and is faulted in again, page by page, when next allocated.
// The worker's CPU evaluation batches (a few to tens of MiB) paid about half
// their time for it (533,000 page faults in three quickstart epochs, 66,000
// with this; evaluation 0.83 -> 0.44 s per epoch), and a report carrying
// kept predictions (240 KB) paid it in every copy on both ends of the
// stream. Blocks below 32 MiB now come from the heap and up to 64 MiB of
// free heap stays with the process; larger blocks are still mapped and
// returned (docs/benchmarks.md). Process-wide, set once; the worker, the
// coordinator and the benchmarks that stand for them call it.
void KeepFreedMemory();

}  // namespace mixcal

#endif  // MIXCAL_BASE_PROGRAM_H_
