#ifndef MIXCAL_STORAGE_INTERNAL_JOB_STATES_H_
#define MIXCAL_STORAGE_INTERNAL_JOB_STATES_H_

// The state enums of mixcal.v1 as SQL literals, so that statements say what
// they mean ("WHERE state = " JOB_RUNNING) instead of bare numbers, which
// mean different things in jobs, sweeps and workers. The numbers are the
// stored values: the static_asserts keep them equal to the proto's.

#include "mixcal/v1/jobs.pb.h"

#define JOB_QUEUED "1"
#define JOB_RUNNING "2"
#define JOB_SUCCEEDED "3"
#define JOB_FAILED "4"
#define JOB_CANCELLED "5"
#define SWEEP_IS_ACTIVE "1"
#define WORKER_IS_ACTIVE "1"
#define WORKER_IS_LOST "2"

static_assert(mixcal::v1::QUEUED == 1 && mixcal::v1::RUNNING == 2 &&
                  mixcal::v1::SUCCEEDED == 3 && mixcal::v1::FAILED == 4 &&
                  mixcal::v1::CANCELLED == 5,
              "job states are stored by number");
static_assert(mixcal::v1::SWEEP_ACTIVE == 1, "sweep states are stored by number");
static_assert(mixcal::v1::WORKER_ACTIVE == 1 && mixcal::v1::WORKER_LOST == 2 &&
                  mixcal::v1::WORKER_OUT_OF_ROTATION == 3 &&
                  mixcal::v1::WORKER_STOPPED == 4,
              "worker states are stored by number");

#endif  // MIXCAL_STORAGE_INTERNAL_JOB_STATES_H_
