#include "tls_setup.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <stdexcept>

namespace medicus::gateway {
namespace {

std::string lastOpenSslError() {
  unsigned long code = ERR_get_error();
  char text[256] = "unknown OpenSSL error";
  if (code) ERR_error_string_n(code, text, sizeof text);
  ERR_clear_error();
  return text;
}

[[noreturn]] void fail(const std::string& what) { throw std::runtime_error(what + ": " + lastOpenSslError()); }

// Mozilla intermediate configuration (TLS 1.2 part); TLS 1.3 suites are OpenSSL's defaults.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

}  // namespace

void configureServerContext(SSL_CTX* context, const ServerTlsConfig& tls) {
  SSL_CTX_set_min_proto_version(context, tls.min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION);
  SSL_CTX_set_options(context, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_set_cipher_list(context, kTls12Ciphers) != 1) fail("cannot set the TLS 1.2 cipher list");
  if (SSL_CTX_use_certificate_chain_file(context, tls.certificate_file.c_str()) != 1) {
    fail("cannot load the certificate chain " + tls.certificate_file);
  }
  if (SSL_CTX_use_PrivateKey_file(context, tls.private_key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    fail("cannot load the private key " + tls.private_key_file);
  }
  if (SSL_CTX_check_private_key(context) != 1) {
    fail("the private key " + tls.private_key_file + " does not belong to the certificate " + tls.certificate_file);
  }
  if (!tls.client_ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(context, tls.client_ca_file.c_str(), nullptr) != 1) {
      fail("cannot load the client CA bundle " + tls.client_ca_file);
    }
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(tls.client_ca_file.c_str());
    if (names) SSL_CTX_set_client_CA_list(context, names);
    int mode = SSL_VERIFY_PEER | (tls.require_client_certificate ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0);
    SSL_CTX_set_verify(context, mode, nullptr);
  }
}

void configureClientContext(SSL_CTX* context, const UpstreamTlsConfig& tls) {
  SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION);
  SSL_CTX_set_options(context, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  if (tls.verify) {
    int ok = tls.ca_file.empty() ? SSL_CTX_set_default_verify_paths(context)
                                 : SSL_CTX_load_verify_locations(context, tls.ca_file.c_str(), nullptr);
    if (ok != 1) fail("cannot load the upstream CA bundle " + (tls.ca_file.empty() ? "(system default)" : tls.ca_file));
    SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(context, SSL_VERIFY_NONE, nullptr);
  }
  if (!tls.certificate_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(context, tls.certificate_file.c_str()) != 1) {
      fail("cannot load the upstream client certificate " + tls.certificate_file);
    }
    if (SSL_CTX_use_PrivateKey_file(context, tls.private_key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
      fail("cannot load the upstream client key " + tls.private_key_file);
    }
  }
}

bool ensureSelfSignedCertificate(const ServerTlsConfig& tls) {
  namespace fs = std::filesystem;
  if (!tls.self_signed_if_missing) return false;
  if (fs::exists(tls.certificate_file) && fs::exists(tls.private_key_file)) return false;
  for (const auto& file : {tls.certificate_file, tls.private_key_file}) {
    fs::path parent = fs::path(file).parent_path();
    if (!parent.empty()) fs::create_directories(parent);
  }
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), EVP_PKEY_free);
  if (!key) fail("cannot generate a P-256 key");
  std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), X509_free);
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), static_cast<long>(std::time(nullptr)));
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 365L * 24 * 3600);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("Medicus Gateway (self-signed)"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, cert.get(), cert.get(), nullptr, nullptr, 0);
  for (auto [nid, value] : {std::pair{NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1"},
                            std::pair{NID_basic_constraints, "critical,CA:FALSE"},
                            std::pair{NID_ext_key_usage, "serverAuth"}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value);
    if (!ext) fail("cannot build a certificate extension");
    X509_add_ext(cert.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  if (!X509_sign(cert.get(), key.get(), EVP_sha256())) fail("cannot sign the self-signed certificate");

  // The key file is created readable by the owner only.
  std::FILE* key_file = std::fopen(tls.private_key_file.c_str(), "wx");
  if (!key_file) throw std::runtime_error("cannot create " + tls.private_key_file);
  fs::permissions(tls.private_key_file, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace);
  bool key_ok = PEM_write_PrivateKey(key_file, key.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1;
  std::fclose(key_file);
  std::FILE* cert_file = std::fopen(tls.certificate_file.c_str(), "w");
  if (!cert_file) throw std::runtime_error("cannot create " + tls.certificate_file);
  bool cert_ok = PEM_write_X509(cert_file, cert.get()) == 1;
  std::fclose(cert_file);
  if (!key_ok || !cert_ok) fail("cannot write the self-signed certificate");
  return true;
}

namespace {

// A named file that is not there: said plainly (OpenSSL's own text is "system library::No such file").
std::string missingFile(const std::string& what, const std::string& file, const std::string& instead) {
  std::error_code ec;
  if (file.empty() || std::filesystem::is_regular_file(file, ec)) return {};
  return what + " '" + file + "' does not exist; " + instead;
}

template <typename Configure>
std::string loadsInto(const SSL_METHOD* method, Configure configure) {
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> context(SSL_CTX_new(method), SSL_CTX_free);
  if (!context) return "cannot create an OpenSSL context: " + lastOpenSslError();
  try {
    configure(context.get());
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return {};
}

}  // namespace

std::string checkServerTlsFiles(const ServerTlsConfig& tls) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (tls.self_signed_if_missing && !(fs::exists(tls.certificate_file, ec) && fs::exists(tls.private_key_file, ec))) {
    return {};  // made at first start
  }
  const std::string or_self_signed = "write the path of a PEM file, or 'self_signed_if_missing: true' to make one at first start";
  for (const auto& problem : {missingFile("certificate", tls.certificate_file, or_self_signed),
                              missingFile("private_key", tls.private_key_file, or_self_signed),
                              missingFile("client_ca", tls.client_ca_file, "write the path of the PEM bundle of the CAs that sign client certificates")}) {
    if (!problem.empty()) return problem;
  }
  return loadsInto(TLS_server_method(), [&](SSL_CTX* context) { configureServerContext(context, tls); });
}

std::string checkClientTlsFiles(const UpstreamTlsConfig& tls) {
  const std::string pem = "write the path of a PEM file";
  for (const auto& problem : {missingFile("ca", tls.ca_file, pem + " (empty: the system's trust store)"),
                              missingFile("certificate", tls.certificate_file, pem),
                              missingFile("private_key", tls.private_key_file, pem)}) {
    if (!problem.empty()) return problem;
  }
  if (tls.certificate_file.empty() != tls.private_key_file.empty()) {
    return "a client certificate needs both 'certificate:' and 'private_key:'";
  }
  return loadsInto(TLS_client_method(), [&](SSL_CTX* context) { configureClientContext(context, tls); });
}

ConfigErrors checkTlsFiles(const GatewayConfig& config) {
  ConfigErrors errors;
  auto add = [&](uint32_t line, uint32_t column, const std::string& owner, std::string problem) {
    if (!problem.empty()) errors.push_back({config.source_file, line, column, owner + " tls: " + problem});
  };
  for (const auto& l : config.listeners) {
    if (l.tls) add(l.tls->line, l.tls->column, "listener '" + l.name + "'", checkServerTlsFiles(*l.tls));
  }
  for (const auto& u : config.upstreams) {
    bool https = std::any_of(u.endpoints.begin(), u.endpoints.end(), [](const UpstreamEndpoint& e) { return e.https; });
    if (https || u.tls.line) add(u.tls.line, u.tls.column, "upstream '" + u.name + "'", checkClientTlsFiles(u.tls));
  }
  return errors;
}

std::string clientIdentityOf(SSL* ssl) {
  if (!ssl || SSL_get_verify_result(ssl) != X509_V_OK) return {};
  std::unique_ptr<X509, decltype(&X509_free)> cert(SSL_get1_peer_certificate(ssl), X509_free);
  if (!cert) return {};
  std::string identity;
  if (auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr))) {
    for (int i = 0; i < sk_GENERAL_NAME_num(names) && identity.empty(); ++i) {
      const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
      if (name->type == GEN_DNS || name->type == GEN_URI || name->type == GEN_EMAIL) {
        const ASN1_IA5STRING* text = name->d.ia5;
        identity.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(text)), ASN1_STRING_length(text));
      }
    }
    GENERAL_NAMES_free(names);
  }
  if (identity.empty()) {
    char cn[256] = {};
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert.get()), NID_commonName, cn, sizeof cn) > 0) identity = cn;
  }
  return identity;
}

}  // namespace medicus::gateway
