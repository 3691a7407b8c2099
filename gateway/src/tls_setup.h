#pragma once
// OpenSSL set-up for listeners and upstream connections (plain OpenSSL; the Asio ssl::context wraps
// the SSL_CTX). Startup functions throw std::runtime_error with a message naming the file.
#include <string>

#include "medicus/gateway/config.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace medicus::gateway {

// TLS 1.2+ (or 1.3 only), the Mozilla "intermediate" AEAD cipher suites for 1.2, certificate chain and
// key; with client_ca: verify client certificates (required when require_client_certificate).
void configureServerContext(SSL_CTX* context, const ServerTlsConfig& tls);
// Upstream side: TLS 1.2+, verification against ca_file (or the system store) unless verify is false,
// optional client certificate.
void configureClientContext(SSL_CTX* context, const UpstreamTlsConfig& tls);

// When the files are missing and self_signed_if_missing is set: writes a new P-256 key and a
// self-signed certificate (CN and SAN "localhost", SAN IP 127.0.0.1, one year). Returns true when it
// made one.
bool ensureSelfSignedCertificate(const ServerTlsConfig& tls);

// check-config: loads the certificate chains, keys and CA bundles a TLS section names, as serve does at
// start, without binding or connecting. Empty when they load (or are missing but will be made:
// self_signed_if_missing); else what failed and what to write instead.
std::string checkServerTlsFiles(const ServerTlsConfig& tls);
std::string checkClientTlsFiles(const UpstreamTlsConfig& tls);
// Both for a whole config (listeners; upstreams with https endpoints or a 'tls:'), each problem at the
// line of its 'tls:' in config.source_file, named by listener or upstream. check-config and serve.
ConfigErrors checkTlsFiles(const GatewayConfig& config);

// The identity of a verified client certificate: its first subjectAltName (DNS, URI or email), else
// the subject's CN; empty when there is no verified certificate.
std::string clientIdentityOf(SSL* ssl);

}  // namespace medicus::gateway
