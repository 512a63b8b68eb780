// Internal to adapters/mqtt: the transport half of a session, for a plain TCP socket or a TLS
// stream. Only server.cpp instantiates it.
#pragma once

#include <utility>  // before Asio: Boost 1.74 + g++ 12 need std::exchange declared

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>
#include <type_traits>

#include "adapters/mqtt/session.hpp"

namespace hubgate::mqtt {

template <class Stream>
class SessionOn final : public Session {
public:
    static constexpr bool kTls = !std::is_same_v<Stream, boost::asio::ip::tcp::socket>;

    SessionOn(std::shared_ptr<MqttServer::Core> core, const ListenerContext& listener, boost::asio::ip::tcp::socket socket)
        : Session(std::move(core), listener, socket.get_executor()), stream_(make_stream(std::move(socket), listener)) {}

private:
    static Stream make_stream(boost::asio::ip::tcp::socket socket, const ListenerContext& listener) {
        if constexpr (kTls) return Stream(std::move(socket), *listener.tls);
        else return Stream(std::move(socket));
    }
    auto& socket() {
        if constexpr (kTls) return stream_.next_layer();
        else return stream_;
    }

    void start_handshake() override {
        if constexpr (kTls) {
            stream_.async_handshake(boost::asio::ssl::stream_base::server,
                                    [self = shared_from_this(), this](const boost::system::error_code& ec) { on_handshake(ec); });
        } else {
            on_handshake({});
        }
    }
    void start_read(void* data, std::size_t size) override {
        stream_.async_read_some(boost::asio::buffer(data, size),
                                [self = shared_from_this(), this](const boost::system::error_code& ec, std::size_t n) { on_read(ec, n); });
    }
    void start_write(const void* data, std::size_t size) override {
        boost::asio::async_write(stream_, boost::asio::buffer(data, size),
                                 [self = shared_from_this(), this](const boost::system::error_code& ec, std::size_t n) { on_write(ec, n); });
    }
    void shutdown_transport() override {
        boost::system::error_code ignored;
        socket().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
        socket().close(ignored);
    }
    std::string remote_address() const override {
        boost::system::error_code ec;
        const auto ep = const_cast<SessionOn*>(this)->socket().remote_endpoint(ec);
        if (ec) return "?";
        return ep.address().to_string() + ":" + std::to_string(ep.port());
    }

    Stream stream_;
};

}  // namespace hubgate::mqtt
