#include "url_rewriter.h"

#include <string.h>

#include "medicus/fhir/node.h"

namespace medicus::gateway {

UrlRewriter::UrlRewriter(std::string_view upstream_base, std::string_view gateway_base)
    : upstream_base_(upstream_base), gateway_base_(gateway_base) {}

std::optional<std::string> UrlRewriter::rewrite(std::string_view url) const {
  if (url.substr(0, upstream_base_.size()) != upstream_base_) return std::nullopt;
  std::string_view rest = url.substr(upstream_base_.size());
  // "http://up/fhir" must not match "http://up/fhirx/...".
  if (!rest.empty() && rest.front() != '/' && rest.front() != '?') return std::nullopt;
  std::string out;
  out.reserve(gateway_base_.size() + rest.size());
  out.append(gateway_base_).append(rest);
  return out;
}

bool UrlRewriter::mayNeedBundleRewrite(std::string_view body) const {
  // Only a Bundle's URLs are rewritten. A JSON body that opens with another resourceType (as
  // servers write them: read, create, update replies; compact or pretty-printed) needs no scan of
  // its whole text.
  constexpr std::string_view kSpace = " \t\r\n";
  auto skip = [&](std::string_view text) {
    size_t at = text.find_first_not_of(kSpace);
    return at == std::string_view::npos ? std::string_view() : text.substr(at);
  };
  auto expect = [&](std::string_view& text, std::string_view token) {
    text = skip(text);
    if (text.substr(0, token.size()) != token) return false;
    text.remove_prefix(token.size());
    return true;
  };
  std::string_view rest = body;
  if (expect(rest, "{") && expect(rest, "\"resourceType\"") && expect(rest, ":") && expect(rest, "\"")) {
    if (rest.substr(0, 7) != "Bundle\"") return false;
  }
  return mentionsUpstream(body);
}

bool UrlRewriter::mentionsUpstream(std::string_view text) const {
  // memmem (glibc: two-way with a 2-gram skip table) rather than string_view::find, which stops at
  // every 'h' of a body to compare.
  return ::memmem(text.data(), text.size(), upstream_base_.data(), upstream_base_.size()) != nullptr;
}

namespace {

size_t rewriteValue(const UrlRewriter& rewriter, fhir::Document& document, fhir::Node* node) {
  if (!node || !node->hasValue()) return 0;
  if (auto rewritten = rewriter.rewrite(node->value())) {
    document.setValue(node, *rewritten);
    return 1;
  }
  return 0;
}

size_t rewriteNode(const UrlRewriter& rewriter, fhir::Document& document, fhir::Node* bundle, int depth) {
  if (!bundle || depth > 8 || !bundle->type() || bundle->type()->name != "Bundle") return 0;
  size_t count = 0;
  for (fhir::Node* link : bundle->children("link")) count += rewriteValue(rewriter, document, link->child("url"));
  for (fhir::Node* entry : bundle->children("entry")) {
    count += rewriteValue(rewriter, document, entry->child("fullUrl"));
    for (fhir::Node* link : entry->children("link")) count += rewriteValue(rewriter, document, link->child("url"));
    if (fhir::Node* response = entry->child("response")) {
      count += rewriteValue(rewriter, document, response->child("location"));
    }
    if (fhir::Node* resource = entry->child("resource")) count += rewriteNode(rewriter, document, resource, depth + 1);
  }
  return count;
}

}  // namespace

size_t UrlRewriter::rewriteBundle(fhir::Document& document) const {
  return rewriteNode(*this, document, document.root(), 0);
}

}  // namespace medicus::gateway
