// Lexer and recursive-descent parser for FHIRPath (http://hl7.org/fhirpath/N1/grammar.html).
// Precedence, loosest first: implies; or xor; and; in contains; = ~ != !~; < > <= >=; |; is as;
// + - &; * / div mod; unary + -; . and [] (http://hl7.org/fhirpath/N1/#operator-precedence).
#include <regex.h>

#include <cctype>
#include <cstring>

#include "fhirpath/ast.h"

namespace medicus::fhirpath::detail {

Diagnostic makeDiagnostic(ErrorKind kind, std::string message, std::string_view text, uint32_t position) {
  Diagnostic d;
  d.kind = kind;
  d.message = std::move(message);
  d.position = position;
  for (uint32_t i = 0; i < position && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++d.line;
      d.column = 1;
    } else {
      ++d.column;
    }
  }
  return d;
}

namespace {

enum class Tok : uint8_t {
  End, Identifier, QuotedIdentifier, String, Number, DateTime, Time, Date, EnvVar, Variable, Symbol,
};

struct Token {
  Tok kind = Tok::End;
  std::string text;  // identifier name, unescaped string, number text, symbol, temporal text
  uint32_t position = 0;
};

bool isIdentStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool isDigit(char c) { return c >= '0' && c <= '9'; }

class Lexer {
 public:
  explicit Lexer(std::string_view text) : text_(text) {}

  tl::expected<Token, Diagnostic> next() {
    auto skipped = skipSpaceAndComments();
    if (!skipped) return tl::unexpected(skipped.error());
    Token t;
    t.position = static_cast<uint32_t>(pos_);
    if (pos_ >= text_.size()) return t;
    char c = text_[pos_];
    if (isIdentStart(c)) {
      size_t start = pos_;
      while (pos_ < text_.size() && (isIdentStart(text_[pos_]) || isDigit(text_[pos_]))) ++pos_;
      t.kind = Tok::Identifier;
      t.text = std::string(text_.substr(start, pos_ - start));
      return t;
    }
    if (isDigit(c)) {
      size_t start = pos_;
      while (pos_ < text_.size() && isDigit(text_[pos_])) ++pos_;
      if (pos_ + 1 < text_.size() && text_[pos_] == '.' && isDigit(text_[pos_ + 1])) {
        ++pos_;
        while (pos_ < text_.size() && isDigit(text_[pos_])) ++pos_;
      }
      t.kind = Tok::Number;
      t.text = std::string(text_.substr(start, pos_ - start));
      return t;
    }
    if (c == '\'' || c == '`') {
      auto s = readQuoted(c);
      if (!s) return tl::unexpected(s.error());
      t.kind = c == '\'' ? Tok::String : Tok::QuotedIdentifier;
      t.text = std::move(*s);
      return t;
    }
    if (c == '@') {
      ++pos_;
      return readTemporal(t);
    }
    if (c == '%') {
      ++pos_;
      if (pos_ < text_.size() && (text_[pos_] == '`' || text_[pos_] == '\'')) {
        auto s = readQuoted(text_[pos_]);
        if (!s) return tl::unexpected(s.error());
        t.text = std::move(*s);
      } else {
        size_t start = pos_;
        while (pos_ < text_.size() && (isIdentStart(text_[pos_]) || isDigit(text_[pos_]) || text_[pos_] == '-')) ++pos_;
        t.text = std::string(text_.substr(start, pos_ - start));
      }
      if (t.text.empty()) return fail("expected a variable name after '%'", t.position);
      t.kind = Tok::EnvVar;
      return t;
    }
    if (c == '$') {
      size_t start = ++pos_;
      while (pos_ < text_.size() && isIdentStart(text_[pos_])) ++pos_;
      t.text = std::string(text_.substr(start, pos_ - start));
      if (t.text != "this" && t.text != "index" && t.text != "total")
        return fail("unknown special variable '$" + t.text + "'", t.position);
      t.kind = Tok::Variable;
      return t;
    }
    static const char* const kTwoChar[] = {"<=", ">=", "!=", "!~"};
    for (const char* op : kTwoChar) {
      if (text_.substr(pos_, 2) == op) {
        pos_ += 2;
        t.kind = Tok::Symbol;
        t.text = op;
        return t;
      }
    }
    if (std::strchr("+-*/|&=~<>.,()[]{}", c) != nullptr) {
      ++pos_;
      t.kind = Tok::Symbol;
      t.text = std::string(1, c);
      return t;
    }
    return fail(std::string("unexpected character '") + c + "'", t.position);
  }

  std::string_view text() const { return text_; }

 private:
  tl::unexpected<Diagnostic> fail(std::string message, uint32_t position) const {
    return tl::unexpected(makeDiagnostic(ErrorKind::Syntax, std::move(message), text_, position));
  }

  tl::expected<void, Diagnostic> skipSpaceAndComments() {
    while (pos_ < text_.size()) {
      char c = text_[pos_];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        ++pos_;
      } else if (c == '/' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '/') {
        while (pos_ < text_.size() && text_[pos_] != '\n') ++pos_;
      } else if (c == '/' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '*') {
        size_t end = text_.find("*/", pos_ + 2);
        if (end == std::string_view::npos) return fail("unterminated comment", static_cast<uint32_t>(pos_));
        pos_ = end + 2;
      } else {
        break;
      }
    }
    return {};
  }

  tl::expected<std::string, Diagnostic> readQuoted(char quote) {
    uint32_t start = static_cast<uint32_t>(pos_);
    ++pos_;
    std::string out;
    while (pos_ < text_.size()) {
      char c = text_[pos_++];
      if (c == quote) return out;
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (pos_ >= text_.size()) break;
      char e = text_[pos_++];
      switch (e) {
        case '\'': case '"': case '`': case '\\': case '/': out.push_back(e); break;
        case 'f': out.push_back('\f'); break;
        case 'n': out.push_back('\n'); break;
        case 'r': out.push_back('\r'); break;
        case 't': out.push_back('\t'); break;
        case 'u': {
          if (pos_ + 4 > text_.size()) return fail("bad \\u escape", static_cast<uint32_t>(pos_ - 2));
          unsigned cp = 0;
          for (int i = 0; i < 4; ++i) {
            char h = text_[pos_++];
            cp <<= 4;
            if (isDigit(h)) cp |= static_cast<unsigned>(h - '0');
            else if (h >= 'a' && h <= 'f') cp |= static_cast<unsigned>(h - 'a' + 10);
            else if (h >= 'A' && h <= 'F') cp |= static_cast<unsigned>(h - 'A' + 10);
            else return fail("bad \\u escape", static_cast<uint32_t>(pos_ - 1));
          }
          if (cp < 0x80) {
            out.push_back(static_cast<char>(cp));
          } else if (cp < 0x800) {
            out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
          } else {
            out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
            out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
          }
          break;
        }
        default: return fail(std::string("unknown escape '\\") + e + "'", static_cast<uint32_t>(pos_ - 2));
      }
    }
    return fail("unterminated quoted text", start);
  }

  size_t digits(size_t n) {
    size_t k = 0;
    while (k < n && pos_ + k < text_.size() && isDigit(text_[pos_ + k])) ++k;
    return k;
  }

  // @YYYY[-MM[-DD]][T[hh[:mm[:ss[.fff]]]][Z|(+|-)hh:mm]] or @Thh[:mm[:ss[.fff]]]; the value is
  // checked by Temporal::parse in the parser.
  tl::expected<Token, Diagnostic> readTemporal(Token& t) {
    size_t start = pos_;
    auto timePart = [&]() {
      if (digits(2) != 2) return;
      pos_ += 2;
      for (int i = 0; i < 2; ++i) {
        if (pos_ + 2 < text_.size() && text_[pos_] == ':' && isDigit(text_[pos_ + 1]) && isDigit(text_[pos_ + 2])) pos_ += 3;
        else return;
      }
      if (pos_ + 1 < text_.size() && text_[pos_] == '.' && isDigit(text_[pos_ + 1])) {
        ++pos_;
        while (pos_ < text_.size() && isDigit(text_[pos_])) ++pos_;
      }
    };
    if (pos_ < text_.size() && text_[pos_] == 'T') {
      ++pos_;
      timePart();
      t.kind = Tok::Time;
    } else {
      if (digits(4) != 4) return fail("malformed date/time literal", t.position);
      pos_ += 4;
      t.kind = Tok::Date;
      for (int i = 0; i < 2; ++i) {
        if (pos_ + 2 < text_.size() && text_[pos_] == '-' && isDigit(text_[pos_ + 1]) && isDigit(text_[pos_ + 2])) pos_ += 3;
        else break;
      }
      if (pos_ < text_.size() && text_[pos_] == 'T') {
        ++pos_;
        t.kind = Tok::DateTime;
        timePart();
      }
    }
    // Time zone (also consumed after a Time so that the parser can reject it).
    if (pos_ < text_.size() && text_[pos_] == 'Z') {
      ++pos_;
      if (t.kind == Tok::Date) t.kind = Tok::DateTime;
    } else if (pos_ + 5 < text_.size() + 0 && (text_[pos_] == '+' || text_[pos_] == '-') && t.kind != Tok::Date &&
               isDigit(text_[pos_ + 1]) && isDigit(text_[pos_ + 2]) && text_[pos_ + 3] == ':') {
      pos_ += 6;
    }
    t.text = std::string(text_.substr(start, pos_ - start));
    return t;
  }

  std::string_view text_;
  size_t pos_ = 0;
};

bool isCalendarUnit(std::string_view s) {
  static const char* const kUnits[] = {"year",   "years",   "month",  "months",  "week",        "weeks",
                                       "day",    "days",    "hour",   "hours",   "minute",      "minutes",
                                       "second", "seconds", "millisecond", "milliseconds"};
  for (const char* u : kUnits)
    if (s == u) return true;
  return false;
}

class Parser {
 public:
  Parser(std::string_view text, uint32_t max_depth) : lexer_(text), max_depth_(max_depth) {}

  tl::expected<AstPtr, Diagnostic> parseAll() {
    if (auto r = advance(); !r) return tl::unexpected(r.error());
    auto e = parseBinary(0);
    if (!e) return e;
    if (cur_.kind != Tok::End) return fail("unexpected '" + cur_.text + "' after the end of the expression");
    return e;
  }

 private:
  tl::expected<void, Diagnostic> advance() {
    auto t = lexer_.next();
    if (!t) return tl::unexpected(t.error());
    cur_ = std::move(*t);
    return {};
  }

  tl::unexpected<Diagnostic> fail(std::string message) const {
    return tl::unexpected(makeDiagnostic(ErrorKind::Syntax, std::move(message), lexer_.text(), cur_.position));
  }

  bool isSymbol(const char* s) const { return cur_.kind == Tok::Symbol && cur_.text == s; }
  bool isKeyword(const char* s) const { return cur_.kind == Tok::Identifier && cur_.text == s; }

  tl::expected<void, Diagnostic> expectSymbol(const char* s) {
    if (!isSymbol(s)) return fail(std::string("expected '") + s + "'" + (cur_.kind == Tok::End ? " before the end" : ""));
    return advance();
  }

  // Binary operator at the current token for a precedence level (0 loosest).
  bool binaryAt(int level, BinaryOp& op) const {
    switch (level) {
      case 0: if (isKeyword("implies")) return op = BinaryOp::Implies, true; return false;
      case 1:
        if (isKeyword("or")) return op = BinaryOp::Or, true;
        if (isKeyword("xor")) return op = BinaryOp::Xor, true;
        return false;
      case 2: if (isKeyword("and")) return op = BinaryOp::And, true; return false;
      case 3:
        if (isKeyword("in")) return op = BinaryOp::In, true;
        if (isKeyword("contains")) return op = BinaryOp::Contains, true;
        return false;
      case 4:
        if (isSymbol("=")) return op = BinaryOp::Equal, true;
        if (isSymbol("~")) return op = BinaryOp::Equivalent, true;
        if (isSymbol("!=")) return op = BinaryOp::NotEqual, true;
        if (isSymbol("!~")) return op = BinaryOp::NotEquivalent, true;
        return false;
      case 5:
        if (isSymbol("<")) return op = BinaryOp::Less, true;
        if (isSymbol(">")) return op = BinaryOp::Greater, true;
        if (isSymbol("<=")) return op = BinaryOp::LessOrEqual, true;
        if (isSymbol(">=")) return op = BinaryOp::GreaterOrEqual, true;
        return false;
      case 6: if (isSymbol("|")) return op = BinaryOp::Union, true; return false;
      case 8:
        if (isSymbol("+")) return op = BinaryOp::Plus, true;
        if (isSymbol("-")) return op = BinaryOp::Minus, true;
        if (isSymbol("&")) return op = BinaryOp::Concat, true;
        return false;
      case 9:
        if (isSymbol("*")) return op = BinaryOp::Times, true;
        if (isSymbol("/")) return op = BinaryOp::Divide, true;
        if (isKeyword("div")) return op = BinaryOp::Div, true;
        if (isKeyword("mod")) return op = BinaryOp::Mod, true;
        return false;
      default: return false;
    }
  }

  tl::expected<AstPtr, Diagnostic> parseBinary(int level) {
    if (++depth_ > max_depth_) return fail("expression nested too deeply");
    struct DepthGuard { uint32_t& d; ~DepthGuard() { --d; } } guard{depth_};
    if (level == 10) return parseUnary();
    if (level == 7) return parseTypeOp();
    auto lhs = parseBinary(level + 1);
    if (!lhs) return lhs;
    BinaryOp op;
    while (binaryAt(level, op)) {
      uint32_t pos = cur_.position;
      if (auto r = advance(); !r) return tl::unexpected(r.error());
      auto rhs = parseBinary(level + 1);
      if (!rhs) return rhs;
      auto node = std::make_unique<AstNode>();
      node->kind = NodeKind::Binary;
      node->op = op;
      node->position = pos;
      node->children.push_back(std::move(*lhs));
      node->children.push_back(std::move(*rhs));
      lhs = std::move(node);
    }
    return lhs;
  }

  tl::expected<AstPtr, Diagnostic> parseTypeOp() {
    auto lhs = parseBinary(8);
    if (!lhs) return lhs;
    while (isKeyword("is") || isKeyword("as")) {
      auto node = std::make_unique<AstNode>();
      node->kind = NodeKind::TypeOperator;
      node->name = cur_.text;
      node->position = cur_.position;
      if (auto r = advance(); !r) return tl::unexpected(r.error());
      auto type = parseQualifiedName();
      if (!type) return tl::unexpected(type.error());
      node->type.written = *type;
      node->children.push_back(std::move(*lhs));
      lhs = std::move(node);
    }
    return lhs;
  }

  tl::expected<std::string, Diagnostic> parseQualifiedName() {
    std::string name;
    for (;;) {
      if (cur_.kind != Tok::Identifier && cur_.kind != Tok::QuotedIdentifier) return fail("expected a type name");
      name += cur_.text;
      if (auto r = advance(); !r) return tl::unexpected(r.error());
      if (!isSymbol(".")) return name;
      name += '.';
      if (auto r = advance(); !r) return tl::unexpected(r.error());
    }
  }

  tl::expected<AstPtr, Diagnostic> parseUnary() {
    if (isSymbol("+") || isSymbol("-")) {
      if (++depth_ > max_depth_) return fail("expression nested too deeply");
      struct DepthGuard { uint32_t& d; ~DepthGuard() { --d; } } guard{depth_};
      auto node = std::make_unique<AstNode>();
      node->kind = NodeKind::Unary;
      node->unary_op = cur_.text[0];
      node->position = cur_.position;
      if (auto r = advance(); !r) return tl::unexpected(r.error());
      auto operand = parseUnary();
      if (!operand) return operand;
      node->children.push_back(std::move(*operand));
      return node;
    }
    return parsePostfix();
  }

  tl::expected<AstPtr, Diagnostic> parsePostfix() {
    auto term = parseTerm();
    if (!term) return term;
    AstPtr node = std::move(*term);
    for (;;) {
      if (isSymbol(".")) {
        if (auto r = advance(); !r) return tl::unexpected(r.error());
        if (cur_.kind != Tok::Identifier && cur_.kind != Tok::QuotedIdentifier) return fail("expected a name after '.'");
        auto inv = parseInvocation(std::move(node));
        if (!inv) return inv;
        node = std::move(*inv);
      } else if (isSymbol("[")) {
        auto idx = std::make_unique<AstNode>();
        idx->kind = NodeKind::Indexer;
        idx->position = cur_.position;
        if (auto r = advance(); !r) return tl::unexpected(r.error());
        auto index = parseBinary(0);
        if (!index) return index;
        if (auto r = expectSymbol("]"); !r) return tl::unexpected(r.error());
        idx->children.push_back(std::move(node));
        idx->children.push_back(std::move(*index));
        node = std::move(idx);
      } else {
        return node;
      }
    }
  }

  // name or name(args) applied to target (null: the focus).
  tl::expected<AstPtr, Diagnostic> parseInvocation(AstPtr target) {
    auto node = std::make_unique<AstNode>();
    node->position = cur_.position;
    node->name = cur_.text;
    bool quoted = cur_.kind == Tok::QuotedIdentifier;
    if (auto r = advance(); !r) return tl::unexpected(r.error());
    if (!quoted && isSymbol("(")) {
      node->kind = NodeKind::Function;
      if (auto r = advance(); !r) return tl::unexpected(r.error());
      node->children.push_back(std::move(target));
      if (!isSymbol(")")) {
        for (;;) {
          auto arg = parseBinary(0);
          if (!arg) return arg;
          node->children.push_back(std::move(*arg));
          if (isSymbol(",")) {
            if (auto r = advance(); !r) return tl::unexpected(r.error());
            continue;
          }
          break;
        }
      }
      if (auto r = expectSymbol(")"); !r) return tl::unexpected(r.error());
      return node;
    }
    if (target) {
      node->kind = NodeKind::Member;
      node->children.push_back(std::move(target));
    } else {
      node->kind = NodeKind::Identifier;
    }
    return node;
  }

  tl::expected<AstPtr, Diagnostic> literal(SystemValue v, uint32_t pos) {
    auto node = std::make_unique<AstNode>();
    node->kind = NodeKind::Literal;
    node->has_value = true;
    node->value = std::move(v);
    node->position = pos;
    if (auto r = advance(); !r) return tl::unexpected(r.error());
    return node;
  }

  tl::expected<AstPtr, Diagnostic> parseTerm() {
    uint32_t pos = cur_.position;
    switch (cur_.kind) {
      case Tok::End: return fail("unexpected end of expression");
      case Tok::Number: {
        std::string number = cur_.text;
        if (auto r = advance(); !r) return tl::unexpected(r.error());
        bool is_decimal = number.find('.') != std::string::npos;
        // Quantity: number followed by a unit string or a calendar duration keyword.
        if (cur_.kind == Tok::String || (cur_.kind == Tok::Identifier && isCalendarUnit(cur_.text))) {
          Quantity q;
          auto d = Decimal::parse(number);
          if (!d) return fail("number out of range");
          q.value = *d;
          q.unit = cur_.text;
          auto node = std::make_unique<AstNode>();
          node->kind = NodeKind::Literal;
          node->has_value = true;
          node->value = std::move(q);
          node->position = pos;
          if (auto r = advance(); !r) return tl::unexpected(r.error());
          return node;
        }
        auto node = std::make_unique<AstNode>();
        node->kind = NodeKind::Literal;
        node->has_value = true;
        node->position = pos;
        if (!is_decimal && number.size() <= 18) {
          long long v = std::stoll(number);
          if (v <= 2147483647LL) {
            node->value = static_cast<int64_t>(v);
            return node;
          }
        }
        auto d = Decimal::parse(number);
        if (!d) return tl::unexpected(makeDiagnostic(ErrorKind::Syntax, "number out of range", lexer_.text(), pos));
        node->value = *d;
        return node;
      }
      case Tok::String: return literal(SystemValue{cur_.text}, pos);
      case Tok::Date: case Tok::DateTime: case Tok::Time: {
        TemporalKind kind = cur_.kind == Tok::Date ? TemporalKind::Date
                            : cur_.kind == Tok::Time ? TemporalKind::Time : TemporalKind::DateTime;
        std::string text = cur_.text;
        if (kind == TemporalKind::DateTime && text.size() > 0 && text.back() == 'T') text.pop_back();
        auto t = Temporal::parse(text, kind);
        if (!t) return fail("invalid date/time literal '@" + cur_.text + "'");
        return literal(SystemValue{*t}, pos);
      }
      case Tok::EnvVar: {
        auto node = std::make_unique<AstNode>();
        node->kind = NodeKind::EnvVariable;
        node->name = cur_.text;
        node->position = pos;
        if (auto r = advance(); !r) return tl::unexpected(r.error());
        return node;
      }
      case Tok::Variable: {
        auto node = std::make_unique<AstNode>();
        node->kind = NodeKind::Variable;
        node->name = cur_.text;
        node->position = pos;
        if (auto r = advance(); !r) return tl::unexpected(r.error());
        return node;
      }
      case Tok::Symbol: {
        if (isSymbol("(")) {
          if (auto r = advance(); !r) return tl::unexpected(r.error());
          auto e = parseBinary(0);
          if (!e) return e;
          if (auto r = expectSymbol(")"); !r) return tl::unexpected(r.error());
          return e;
        }
        if (isSymbol("{")) {
          if (auto r = advance(); !r) return tl::unexpected(r.error());
          if (!isSymbol("}")) return fail("expected '}'");
          auto node = std::make_unique<AstNode>();
          node->kind = NodeKind::Literal;
          node->position = pos;
          if (auto r = advance(); !r) return tl::unexpected(r.error());
          return node;
        }
        return fail("unexpected '" + cur_.text + "'");
      }
      case Tok::Identifier:
        if (cur_.text == "true") return literal(SystemValue{true}, pos);
        if (cur_.text == "false") return literal(SystemValue{false}, pos);
        [[fallthrough]];
      case Tok::QuotedIdentifier: return parseInvocation(nullptr);
    }
    return fail("unexpected token");
  }

  Lexer lexer_;
  Token cur_;
  uint32_t max_depth_;
  uint32_t depth_ = 0;
};

}  // namespace

std::string singleLineRegex(const std::string& pattern) {
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      out.push_back(c);
      out.push_back(pattern[++i]);
      continue;
    }
    if (c == '[') in_class = true;
    if (c == ']') in_class = false;
    if (c == '.' && !in_class) out += "[\\s\\S]";
    else out.push_back(c);
  }
  return out;
}

struct PosixRegex::State {
  regex_t compiled;
};

PosixRegex::~PosixRegex() {
  if (state_) regfree(&state_->compiled);
}

std::shared_ptr<const PosixRegex> PosixRegex::compile(const std::string& pattern, bool full_match) {
  // The subset both dialects read the same way; the ECMAScript class escapes \d \s \w (and \D \S \W
  // outside brackets) are written as their POSIX equivalents.
  std::string text;
  text.reserve(pattern.size() + 8);
  bool in_class = false;
  char previous = '\0';
  // Size of the pattern with counted repetitions expanded (glibc's regcomp() expands them: a{100}
  // nested three deep would take seconds and much memory to compile).
  constexpr uint64_t kMaxExpanded = 10000;
  std::vector<uint64_t> sizes{0};  // per open group
  uint64_t last = 0;               // size of the atom a quantifier would repeat
  auto atom = [&](uint64_t n) { last = n; sizes.back() += n; };
  for (size_t i = 0; i < pattern.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(pattern[i]);
    if (c == 0 || c >= 0x80) return nullptr;  // bytes vs code points
    if (in_class) {
      if (c == '\\') {
        if (i + 1 >= pattern.size()) return nullptr;
        char e = pattern[++i];
        if (e == 'd') text += "0-9";
        else if (e == 's') text += "[:space:]";
        else if (e == 'w') text += "A-Za-z0-9_";
        else return nullptr;  // other escapes differ inside brackets
        previous = 'a';
        continue;
      }
      if (c == '[' && i + 1 < pattern.size() && (pattern[i + 1] == ':' || pattern[i + 1] == '=' || pattern[i + 1] == '.'))
        return nullptr;  // POSIX classes
      if (c == ']' && previous != '[' && !(previous == '^' && i >= 2 && pattern[i - 2] == '[')) {
        in_class = false;
        atom(1);
      }
      text.push_back(static_cast<char>(c));
      previous = static_cast<char>(c);
      continue;
    }
    if (c == '\\') {
      if (i + 1 >= pattern.size()) return nullptr;
      unsigned char e = static_cast<unsigned char>(pattern[i + 1]);
      const char* posix = e == 'd' ? "[0-9]" : e == 'D' ? "[^0-9]" : e == 's' ? "[[:space:]]" : e == 'S' ? "[^[:space:]]"
                        : e == 'w' ? "[A-Za-z0-9_]" : e == 'W' ? "[^A-Za-z0-9_]" : nullptr;
      if (posix) {
        text += posix;
      } else {
        if (std::isalnum(e) || e >= 0x80) return nullptr;  // \b \n \1 ... differ
        text.push_back('\\');
        text.push_back(static_cast<char>(e));
      }
      ++i;
      atom(1);
      previous = 'a';
      continue;
    }
    if (c == '[') {
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') return nullptr;
      in_class = true;
    } else if (c == '(' && i + 1 < pattern.size() && (pattern[i + 1] == '?' || pattern[i + 1] == '|' || pattern[i + 1] == ')')) {
      return nullptr;  // (?:...), lookarounds, empty alternatives
    } else if (c == '|' && (i + 1 >= pattern.size() || pattern[i + 1] == '|' || pattern[i + 1] == ')' || i == 0)) {
      return nullptr;
    } else if ((c == '*' || c == '+' || c == '?' || c == '}') && i + 1 < pattern.size() &&
               (pattern[i + 1] == '?' || pattern[i + 1] == '*' || pattern[i + 1] == '+' || pattern[i + 1] == '{')) {
      return nullptr;  // lazy or stacked quantifiers
    } else if ((c == '*' || c == '+' || c == '?' || c == '{') && (i == 0 || previous == '(' || previous == '|')) {
      return nullptr;  // quantifier with nothing to repeat
    } else if (c == '{') {
      size_t j = i + 1;
      while (j < pattern.size() && (std::isdigit(static_cast<unsigned char>(pattern[j])) || pattern[j] == ',')) ++j;
      if (j == i + 1 || j >= pattern.size() || pattern[j] != '}' || pattern[i + 1] == ',') return nullptr;  // a literal '{'
      uint64_t count = 0, bound = 0;  // the largest number in the braces (+1 when open-ended)
      for (size_t k = i + 1; k < j; ++k) {
        if (pattern[k] == ',') { bound = std::max(bound, count); count = 0; continue; }
        count = std::min<uint64_t>(count * 10 + static_cast<uint64_t>(pattern[k] - '0'), kMaxExpanded + 1);
      }
      bound = std::max(bound, count) + (pattern[j - 1] == ',' ? 1 : 0);
      if (bound == 0) bound = 1;
      sizes.back() += last * (bound - 1);
      last *= bound;
      if (sizes.back() > kMaxExpanded || last > kMaxExpanded) return nullptr;
    } else if (c == '(') {
      sizes.push_back(0);
    } else if (c == ')') {
      if (sizes.size() < 2) return nullptr;
      uint64_t group = sizes.back();
      sizes.pop_back();
      atom(group);
    } else if (c != '*' && c != '+' && c != '?' && c != '|' && c != '^' && c != '$' && c != '}') {
      atom(1);
    }
    text.push_back(static_cast<char>(c));
    previous = static_cast<char>(c);
  }
  if (in_class || sizes.size() != 1) return nullptr;
  std::shared_ptr<PosixRegex> r(new PosixRegex());
  r->state_ = std::make_unique<State>();
  if (full_match) text = "^(" + text + ")$";
  if (regcomp(&r->state_->compiled, text.c_str(), REG_EXTENDED | REG_NOSUB) != 0) {
    r->state_.reset();
    return nullptr;
  }
  return r;
}

bool regexMayBacktrackExponentially(const std::string& pattern) {
  // A repeated group holding a quantifier or an alternative (or a back-reference) lets a
  // backtracking matcher try exponentially many ways to split the input: (a|aa)+, (a+)+, (\w+\s?)*.
  std::vector<bool> risky{false};  // per open group: it holds a quantifier or '|'
  bool group_closed = false;       // the previous token closed a group that was risky
  for (size_t i = 0; i < pattern.size(); ++i) {
    char c = pattern[i];
    bool closed = false;
    if (c == '\\') {
      if (i + 1 < pattern.size() && pattern[i + 1] >= '1' && pattern[i + 1] <= '9') return true;
      ++i;
    } else if (c == '[') {
      ++i;
      if (i < pattern.size() && pattern[i] == '^') ++i;
      if (i < pattern.size() && pattern[i] == ']') ++i;
      while (i < pattern.size() && pattern[i] != ']') i += pattern[i] == '\\' ? 2 : 1;
    } else if (c == '(') {
      risky.push_back(false);
    } else if (c == ')') {
      if (risky.size() > 1) {
        closed = risky.back();
        risky.pop_back();
        risky.back() = risky.back() || closed;
      }
    } else if (c == '|') {
      risky.back() = true;
    } else if (c == '*' || c == '+' || c == '{' || c == '?') {
      // '?' after a quantifier makes it lazy; '?' alone repeats nothing (at most once).
      if (c != '?' && group_closed) return true;
      if (c != '?') risky.back() = true;
    }
    group_closed = closed;
  }
  return false;
}

bool PosixRegex::search(std::string_view text) const {
  regmatch_t range[1];
  range[0].rm_so = 0;
  range[0].rm_eo = static_cast<regoff_t>(text.size());
  // REG_STARTEND: the text is a range, not a C string (it may hold NUL bytes and needs no copy).
  return regexec(&state_->compiled, text.data(), 1, range, REG_STARTEND) == 0;
}

tl::expected<AstPtr, Diagnostic> parseExpression(std::string_view text, uint32_t max_depth) {
  Parser parser(text, max_depth);
  return parser.parseAll();
}

}  // namespace medicus::fhirpath::detail
