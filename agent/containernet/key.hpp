#pragma once
// ContainerNet's WireGuard key pair. The private key lives in one file (base64 of 32 bytes,
// mode 0600, written atomically) and is never logged or sent; the public key is derived from
// it with OpenSSL's X25519.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "elasticdns/result.hpp"

namespace elasticdns::agent {

using WireGuardKey = std::array<uint8_t, 32>;

struct KeyPair {
  WireGuardKey private_key{};
  WireGuardKey public_key{};
};

/// Standard base64 of a key (44 characters) and back; an Error for anything else.
std::string keyToBase64(const WireGuardKey& key);
Result<WireGuardKey> keyFromBase64(std::string_view text);
/// Lowercase hex (64 characters), the UAPI protocol's spelling, and back.
std::string keyToHex(const WireGuardKey& key);
Result<WireGuardKey> keyFromHex(std::string_view text);

/// A new private key: 32 random bytes (RAND_bytes), clamped as X25519 wants (RFC 7748 5).
Result<WireGuardKey> generatePrivateKey();
/// The X25519 public key of `private_key`.
Result<WireGuardKey> publicKeyOf(const WireGuardKey& private_key);

/// Reads the key file: one line, the base64 private key. Errors: unreadable, group/other may
/// read it (mode must be 0600 or stricter), content not a key.
Result<KeyPair> loadKeyFile(const std::string& path);
/// Writes `private_key` to `path` atomically (a 0600 temporary file in the same directory,
/// fsync, rename), creating the directory (0700) when it is missing.
Result<KeyPair> writeKeyFile(const std::string& path, const WireGuardKey& private_key);
/// loadKeyFile, or a new key written with writeKeyFile when the file does not exist.
Result<KeyPair> loadOrCreateKeyFile(const std::string& path);

}  // namespace elasticdns::agent
