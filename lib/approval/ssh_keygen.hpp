// OpenSSH's ssh-keygen as the signature tool of approved plans: an approver
// signs a plan with the ssh key they already have (`ssh-keygen -Y sign`), and
// retentiond checks it against an allowed-signers file by running
// `ssh-keygen -Y find-principals` and `-Y verify`. No key handling of ours.
#pragma once

#include <filesystem>
#include <string>

#include "util/error.hpp"

namespace retentiond {

// The namespace plans are signed in (`ssh-keygen -Y sign -n retentiond-plan`):
// a signature made for anything else (a git commit, a file) is not an approval.
inline constexpr std::string_view kPlanSignatureNamespace = "retentiond-plan";

// Verifies `signature` (the .sig file) over the bytes of `file` against
// `allowed_signers`, and returns the principal who signed. Errors:
// ExitCode::no_perm, saying what is wrong (no signer of that key, bad
// signature); ExitCode::unavailable when ssh-keygen cannot be run.
Result<std::string> verify_ssh_signature(const std::filesystem::path& file,
                                         const std::filesystem::path& signature,
                                         const std::filesystem::path& allowed_signers);

}  // namespace retentiond
