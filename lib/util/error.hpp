// One error convention for the library: a value carrying the exit code the
// command line will return (sysexits) and a message a person can act on.
#pragma once

#include <expected>
#include <string>
#include <utility>

namespace retentiond {

// Exit codes from sysexits(3), as promised by the contract.
enum class ExitCode : int {
  ok = 0,
  software = 70,     // a bug of ours; never expected
  usage = 64,        // bad command line
  data_error = 65,   // audit verify found the chain broken
  no_input = 66,     // policy file missing or unreadable
  unavailable = 69,  // a store cannot be opened, or a table/column is missing
  cant_create = 73,  // the state directory or audit log cannot be written
  temp_fail = 75,    // a store stayed busy past its timeout
  no_perm = 77,      // a sweep not approved: its plan is unsigned, foreign, stale or exceeded
  config = 78,       // the policy file is invalid
};

struct Error {
  ExitCode code = ExitCode::software;
  std::string message;
};

template <class T>
using Result = std::expected<T, Error>;

inline std::unexpected<Error> fail(ExitCode code, std::string message) {
  return std::unexpected(Error{code, std::move(message)});
}

}  // namespace retentiond
