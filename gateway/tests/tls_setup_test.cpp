// check-config's certificate checks: the files a TLS section names load as serve loads them at start.
#include "tls_setup.h"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "e2e/test_upstream.h"

using namespace medicus::gateway;

namespace {

// A self-signed certificate and key under `dir`/`name`.crt/.key, made by the gateway's own generator.
ServerTlsConfig madeCertificate(const std::string& dir, const std::string& name) {
  ServerTlsConfig tls;
  tls.certificate_file = dir + "/" + name + ".crt";
  tls.private_key_file = dir + "/" + name + ".key";
  tls.self_signed_if_missing = true;
  REQUIRE(ensureSelfSignedCertificate(tls));
  tls.self_signed_if_missing = false;
  return tls;
}

}  // namespace

TEST_CASE("check-config: a listener's certificate, key and client CA load, or say what is wrong") {
  test::TempDir dir;
  ServerTlsConfig good = madeCertificate(dir.path, "a");
  CHECK(checkServerTlsFiles(good).empty());

  ServerTlsConfig missing = good;
  missing.certificate_file = dir.path + "/nope.crt";
  CHECK_THAT(checkServerTlsFiles(missing), Catch::Contains("certificate '" + dir.path + "/nope.crt' does not exist") &&
                                               Catch::Contains("self_signed_if_missing: true"));
  // Missing but made at first start: nothing to load yet.
  missing.self_signed_if_missing = true;
  CHECK(checkServerTlsFiles(missing).empty());

  ServerTlsConfig other = madeCertificate(dir.path, "b");
  ServerTlsConfig mismatched = good;
  mismatched.private_key_file = other.private_key_file;
  // OpenSSL refuses a key that does not fit the certificate while loading it.
  CHECK_THAT(checkServerTlsFiles(mismatched), Catch::Contains("cannot load the private key " + other.private_key_file));

  ServerTlsConfig not_pem = good;
  std::ofstream(dir.path + "/garbage.crt") << "not a certificate\n";
  not_pem.certificate_file = dir.path + "/garbage.crt";
  CHECK_THAT(checkServerTlsFiles(not_pem), Catch::Contains("cannot load the certificate chain " + dir.path + "/garbage.crt"));

  ServerTlsConfig mtls = good;
  mtls.client_ca_file = dir.path + "/ca.pem";
  mtls.require_client_certificate = true;
  CHECK_THAT(checkServerTlsFiles(mtls), Catch::Contains("client_ca '" + dir.path + "/ca.pem' does not exist"));
  mtls.client_ca_file = other.certificate_file;  // any PEM certificate is a CA bundle of one
  CHECK(checkServerTlsFiles(mtls).empty());
}

TEST_CASE("check-config: an upstream's CA bundle and client certificate load, or say what is wrong") {
  test::TempDir dir;
  ServerTlsConfig made = madeCertificate(dir.path, "c");
  UpstreamTlsConfig tls;  // the system's trust store
  CHECK(checkClientTlsFiles(tls).empty());
  tls.ca_file = made.certificate_file;
  CHECK(checkClientTlsFiles(tls).empty());
  tls.ca_file = dir.path + "/missing-ca.pem";
  CHECK_THAT(checkClientTlsFiles(tls), Catch::Contains("ca '" + dir.path + "/missing-ca.pem' does not exist"));
  tls.ca_file.clear();
  tls.certificate_file = made.certificate_file;
  CHECK_THAT(checkClientTlsFiles(tls), Catch::Contains("needs both 'certificate:' and 'private_key:'"));
  tls.private_key_file = made.private_key_file;
  CHECK(checkClientTlsFiles(tls).empty());
}
