// Helpers shared by the tests.
#pragma once

#include <cstdint>
#include <string>

#include "openrm/io/config.h"

namespace openrm::test {

// A fresh empty directory under $TMPDIR (or /tmp), removed with its contents
// when the object goes out of scope.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void write_bytes(const std::string& path, const std::string& bytes);
std::string read_bytes(const std::string& path);

// A tiny decoder config of the given architecture
// ("LlamaForSequenceClassification", ...): hidden 32, 2 layers, 4 heads,
// 2 kv heads, vocab 64, pad token 0.
ModelConfig tiny_config(const std::string& architecture);

// Root of the shared read-only data (../shared next to the checkout), or ""
// when it is absent.
std::string shared_dir();

}  // namespace openrm::test
