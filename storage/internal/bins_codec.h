#ifndef MIXCAL_STORAGE_INTERNAL_BINS_CODEC_H_
#define MIXCAL_STORAGE_INTERNAL_BINS_CODEC_H_

// An epoch's reliability bins as one JSON text in epoch_bins.bins:
// [[count,confidence_sum,correct],...] in bin order, each double in the
// shortest form that reads back to the same value (bit for bit).

#include <string>

#include "absl/strings/string_view.h"
#include "google/protobuf/repeated_field.h"
#include "mixcal/v1/metrics.pb.h"

namespace mixcal::storage {

// Bins must be validated first: a non-finite confidence_sum is written as
// null, which DecodeBins refuses.
std::string EncodeBins(
    const google::protobuf::RepeatedPtrField<v1::ReliabilityBin>& bins);

// Appends the bins of `text` to m->bins(); false when `text` is not of
// EncodeBins's form (m may then hold some of them).
bool DecodeBins(absl::string_view text, v1::EpochMetrics* m);

}  // namespace mixcal::storage

#endif  // MIXCAL_STORAGE_INTERNAL_BINS_CODEC_H_
