#ifndef MIXCAL_BASE_ADDRESS_H_
#define MIXCAL_BASE_ADDRESS_H_

#include <string>

namespace mixcal {

// Whether `address` (host:port, [v6]:port or a gRPC target such as
// ipv4:host:port) names only this machine: localhost, 127.0.0.0/8 or ::1,
// decided by parsing the address (127.evil.example is not loopback).
bool IsLoopback(const std::string& address);

// Whether a TCP connection to `address` (host:port as above) is accepted
// within `timeout_ms`: something listens there, whatever it speaks.
bool PortAccepts(const std::string& address, int timeout_ms = 1000);

}  // namespace mixcal

#endif  // MIXCAL_BASE_ADDRESS_H_
