#include "serve/http_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include "openrm/error.h"

namespace openrm {

struct HttpServer::Impl {
  RewardService& service;
  httplib::Server server;
  int listen_fd = -1;
  explicit Impl(RewardService& s) : service(s) {}
};

HttpServer::HttpServer(RewardService& service) : impl_(std::make_unique<Impl>(service)) {
  const ServeOptions& options = service.options();
  auto& server = impl_->server;
  const int threads = options.http_threads;
  server.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<std::size_t>(threads)); };
  server.set_payload_max_length(options.max_body_bytes);
  // Debian's cpp-httplib listens with a backlog of 5: 64 clients that each
  // connect per request (as requests.post does) overflow it and see resets.
  // The listening socket is kept here so bind() can raise the backlog.
  server.set_socket_options([this](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    impl_->listen_fd = sock;
  });
  server.set_read_timeout(30, 0);
  server.set_write_timeout(30, 0);
  auto handler = [this](const httplib::Request& req, httplib::Response& res) {
    const HttpReply reply = impl_->service.handle(req.method, req.path, req.body, req.get_header_value("Authorization"));
    res.status = reply.status;
    for (const auto& [name, value] : reply.headers) res.set_header(name, value);
    res.set_content(reply.body, reply.content_type);
  };
  server.Get(R"(/.*)", handler);
  server.Post(R"(/.*)", handler);
  server.Put(R"(/.*)", handler);
  server.Delete(R"(/.*)", handler);
  // httplib's own refusals (a body over the limit, a malformed request line)
  // come without a body: give them one that says why.
  server.set_error_handler([max = options.max_body_bytes](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string message = "HTTP " + std::to_string(res.status);
    if (res.status == 413) {
      // cpp-httplib caps form-encoded bodies (curl -d's default type) at 8 KiB.
      message = req.get_header_value("Content-Type").rfind("application/x-www-form-urlencoded", 0) == 0
                    ? "request body: sent as application/x-www-form-urlencoded, which is limited to 8192 bytes here; "
                      "send it with Content-Type: application/json"
                    : "request body: larger than this server's limit of " + std::to_string(max) +
                          " bytes (--max-body-bytes)";
    }
    if (res.status == 400) message = "malformed HTTP request";
    res.set_content("{\"error\": \"" + message + "\"}\n", "application/json");
  });
}

HttpServer::~HttpServer() { stop(); }

int HttpServer::bind() {
  const ServeOptions& options = impl_->service.options();
  auto& server = impl_->server;
  int port = options.port;
  if (port == 0) {
    port = server.bind_to_any_port(options.host);
    if (port < 0) throw Error("cannot bind " + options.host + " to any port");
  } else if (!server.bind_to_port(options.host, port)) {
    throw Error("cannot bind " + options.host + ":" + std::to_string(port) +
                " (in use, or not an address of this machine)");
  }
  // listen() again on a listening socket sets its backlog (Linux).
  if (impl_->listen_fd >= 0) ::listen(impl_->listen_fd, SOMAXCONN);
  return port;
}

void HttpServer::listen() { impl_->server.listen_after_bind(); }

void HttpServer::stop() {
  if (impl_->server.is_running()) impl_->server.stop();
}

}  // namespace openrm
