#include "agent/containernet/key.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "agent/util/unique_fd.hpp"

namespace elasticdns::agent {
namespace {

constexpr size_t kBase64KeyLength = 44;  // 32 bytes, one '=' of padding
constexpr size_t kMaxKeyFileSize = 256;  // a key and a newline; anything longer is not a key

Error keyError(const std::string& path, const std::string& reason) {
  return Error{path, reason};
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

void wipe(std::string& s) {
  OPENSSL_cleanse(s.data(), s.size());
  s.clear();
}

}  // namespace

std::string keyToBase64(const WireGuardKey& key) {
  unsigned char out[kBase64KeyLength + 1] = {};
  EVP_EncodeBlock(out, key.data(), static_cast<int>(key.size()));
  return std::string(reinterpret_cast<char*>(out), kBase64KeyLength);
}

Result<WireGuardKey> keyFromBase64(std::string_view text) {
  if (text.size() != kBase64KeyLength || text.back() != '=' || text[42] == '=')
    return Error{"", "not a WireGuard key (base64 of 32 bytes, 44 characters)"};
  unsigned char out[33] = {};  // 44 characters decode to 33 bytes, the last one padding
  int n = EVP_DecodeBlock(out, reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n != 33) return Error{"", "not a WireGuard key (bad base64)"};
  WireGuardKey key;
  std::memcpy(key.data(), out, key.size());
  OPENSSL_cleanse(out, sizeof out);
  if (keyToBase64(key) != text) return Error{"", "not a WireGuard key (non-canonical base64)"};
  return key;
}

std::string keyToHex(const WireGuardKey& key) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(64);
  for (uint8_t b : key) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xf]);
  }
  return out;
}

Result<WireGuardKey> keyFromHex(std::string_view text) {
  if (text.size() != 64) return Error{"", "not a hex key (64 hex digits)"};
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  WireGuardKey key;
  for (size_t i = 0; i < key.size(); ++i) {
    int hi = digit(text[2 * i]), lo = digit(text[2 * i + 1]);
    if (hi < 0 || lo < 0) return Error{"", "not a hex key (64 hex digits)"};
    key[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return key;
}

Result<WireGuardKey> generatePrivateKey() {
  WireGuardKey key;
  if (RAND_bytes(key.data(), static_cast<int>(key.size())) != 1)
    return Error{"", "no random bytes from OpenSSL"};
  key[0] &= 248;   // RFC 7748 5: clear the 3 low bits ...
  key[31] &= 127;  // ... and the top bit,
  key[31] |= 64;   // set the second highest
  return key;
}

Result<WireGuardKey> publicKeyOf(const WireGuardKey& private_key) {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> pkey(
      EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, private_key.data(),
                                   private_key.size()),
      EVP_PKEY_free);
  if (!pkey) return Error{"", "OpenSSL refused the X25519 private key"};
  WireGuardKey pub;
  size_t len = pub.size();
  if (EVP_PKEY_get_raw_public_key(pkey.get(), pub.data(), &len) != 1 || len != pub.size())
    return Error{"", "OpenSSL derived no X25519 public key"};
  return pub;
}

Result<KeyPair> loadKeyFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) return keyError(path, std::string("cannot read the key file: ") + strerror(errno));
  struct stat st {};
  if (fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
    return keyError(path, "the key file is not a regular file");
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
    return keyError(path, std::string("the key file has mode ") + mode +
                              "; it must be 0600 (readable by its owner only)");
  }
  std::string content(kMaxKeyFileSize + 1, '\0');
  ssize_t n = ::read(fd.get(), content.data(), content.size());
  if (n < 0) return keyError(path, std::string("cannot read the key file: ") + strerror(errno));
  content.resize(static_cast<size_t>(n));
  if (content.size() > kMaxKeyFileSize) {
    wipe(content);
    return keyError(path, "the key file is not a WireGuard private key (too long)");
  }
  std::string text = trimmed(content);
  wipe(content);
  auto key = keyFromBase64(text);
  wipe(text);
  if (!key)
    return keyError(path,
                    "the key file is not a WireGuard private key (one line, base64 of 32 "
                    "bytes, as `wg genkey` writes)");
  KeyPair pair;
  pair.private_key = key.value();
  auto pub = publicKeyOf(pair.private_key);
  if (!pub) return keyError(path, pub.error().reason);
  pair.public_key = pub.value();
  return pair;
}

Result<KeyPair> writeKeyFile(const std::string& path, const WireGuardKey& private_key) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  std::error_code ec;
  if (target.has_parent_path() && !fs::exists(target.parent_path(), ec)) {
    fs::create_directories(target.parent_path(), ec);
    if (ec) return keyError(path, "cannot create the key file's directory: " + ec.message());
    fs::permissions(target.parent_path(), fs::perms::owner_all, ec);
  }
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd) return keyError(path, std::string("cannot write the key file: ") + strerror(errno));
  std::string text = keyToBase64(private_key) + "\n";
  bool ok = fchmod(fd.get(), 0600) == 0 &&
            ::write(fd.get(), text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
            fsync(fd.get()) == 0;
  int saved = errno;
  wipe(text);
  fd.reset();
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    if (ok) saved = errno;
    ::unlink(tmp.c_str());
    return keyError(path, std::string("cannot write the key file: ") + strerror(saved));
  }
  KeyPair pair;
  pair.private_key = private_key;
  auto pub = publicKeyOf(private_key);
  if (!pub) return keyError(path, pub.error().reason);
  pair.public_key = pub.value();
  return pair;
}

Result<KeyPair> loadOrCreateKeyFile(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 && errno == ENOENT) {
    auto key = generatePrivateKey();
    if (!key) return keyError(path, key.error().reason);
    return writeKeyFile(path, key.value());
  }
  return loadKeyFile(path);
}

}  // namespace elasticdns::agent
