#pragma once
// Hides the upstream from clients: absolute URLs that start with the upstream's base URL are rewritten
// to the gateway's base URL (Location, Content-Location, Bundle.link.url, Bundle.entry.fullUrl,
// Bundle.entry.response.location; http://hl7.org/fhir/R4/bundle.html#bundle-unique).
#include <optional>
#include <string>
#include <string_view>

namespace medicus::fhir {
class Document;
}

namespace medicus::gateway {

class UrlRewriter {
 public:
  // Both without a trailing slash: "http://10.0.0.5:8080/fhir" -> "https://gateway.example/fhir".
  // Views: both texts must outlive the rewriter (it lives for one reply; copying them cost two
  // allocations per request).
  UrlRewriter(std::string_view upstream_base, std::string_view gateway_base);

  // The rewritten URL, or nullopt when `url` does not start with the upstream base.
  std::optional<std::string> rewrite(std::string_view url) const;
  // True when the text mentions the upstream base at all (cheap pre-check before parsing a body).
  bool mentionsUpstream(std::string_view text) const;
  // mentionsUpstream, except false at once for a JSON body that starts with a resourceType other
  // than Bundle (rewriteBundle would change nothing in it).
  bool mayNeedBundleRewrite(std::string_view body) const;
  // Rewrites the URLs of a Bundle (recursively through entry.resource Bundles); returns the count.
  size_t rewriteBundle(fhir::Document& document) const;

 private:
  std::string_view upstream_base_;
  std::string_view gateway_base_;
};

}  // namespace medicus::gateway
