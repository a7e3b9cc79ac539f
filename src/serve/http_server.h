// RewardService behind cpp-httplib (Debian's libcpp-httplib-dev): one
// listening socket, a pool of ServeOptions::http_threads connection threads.
#pragma once

#include <memory>
#include <string>

#include "serve/reward_service.h"

namespace openrm {

class HttpServer {
 public:
  explicit HttpServer(RewardService& service);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds options.host:options.port (port 0: any free port); returns the
  // port. Throws openrm::Error naming the address when it cannot.
  int bind();
  // Serves until stop(); returns when the listening loop ends.
  void listen();
  // Stops accepting and ends listen(). Thread-safe.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace openrm
