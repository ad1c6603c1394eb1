#ifndef MIXCAL_BASE_ADDRESS_H_
#define MIXCAL_BASE_ADDRESS_H_

#include <string>

namespace mixcal {

// Whether `address` (host:port, [v6]:port or a gRPC target such as
// ipv4:host:port) names only this machine: localhost, 127.0.0.0/8 or ::1,
// decided by parsing the address (127.evil.example is not loopback).
bool IsLoopback(const std::string& address);

}  // namespace mixcal

#endif  // MIXCAL_BASE_ADDRESS_H_
