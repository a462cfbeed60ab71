//! Tokens of the route language, cut as edgeHub's ANTLR lexer cuts them: the longest match
//! wins and a tie goes to the rule listed first (operators, strings, numbers and keywords
//! before identifiers). Identifiers take every character but `( ) < > @ , ; : \ " / [ ] ? =
//! { }` and whitespace, so `a-b` is one property name and `3 -1` is two numbers, exactly as
//! in Azure; keywords (`SELECT FROM WHERE INTO AND OR NOT`) are case-insensitive, literals
//! (`true false null undefined`) lower-case only.

use super::error::{Fail, Problem, found};

/// What a token is.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Kind {
    Eof,
    Select,
    From,
    Where,
    Into,
    And,
    Or,
    Not,
    True,
    False,
    Null,
    Undefined,
    /// A number literal; `None` when it has the shape of one but no value (`e5`), which
    /// edgeHub reads as undefined.
    Number(Option<f64>),
    /// A string literal, escapes resolved.
    Str(String),
    Ident,
    /// `$` and a name: a system property, `$body` query or `$upstream`.
    SysProp,
    LParen,
    RParen,
    LBrace,
    RBrace,
    Comma,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Concat,
    Coalesce,
    /// Text that is no token of the grammar (`@`, `;`, a bare `a[0]`).
    Stray,
}

/// A token and its byte range in the route text.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
}

/// Whether `c` separates tokens.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Whether `c` may be part of an identifier (and of a FROM path segment).
pub(super) fn is_ident_char(c: char) -> bool {
    !is_space(c) && !"()<>@,;:\\\"/[]?={}".contains(c)
}

/// Whether `c` may be part of a `$` name, which may also index arrays.
fn is_query_char(c: char) -> bool {
    matches!(c, '[' | ']') || is_ident_char(c)
}

/// Byte length of the longest prefix of `s` whose characters satisfy `accept`.
fn run(s: &str, accept: fn(char) -> bool) -> usize {
    s.char_indices().find(|&(_, c)| !accept(c)).map_or(s.len(), |(i, _)| i)
}

fn digits(b: &[u8]) -> usize {
    b.iter().take_while(|c| c.is_ascii_digit()).count()
}

/// Length of an exponent `[eE][+-]?[0-9]+` at the start of `b`, or 0.
fn exponent(b: &[u8]) -> usize {
    if !matches!(b.first(), Some(b'e' | b'E')) {
        return 0;
    }
    let sign = usize::from(matches!(b.get(1), Some(b'+' | b'-')));
    match digits(b.get(1 + sign..).unwrap_or_default()) {
        0 => 0,
        n => 1 + sign + n,
    }
}

/// The longest number literal at the start of `s` and its value: an integer `-?[0-9]+`, hex
/// `0x[0-9a-f]+` or real `-?[0-9]*.[0-9]+(e…)?` / `-?[0-9]*e…`.
fn number(s: &str) -> Option<(usize, Option<f64>)> {
    let b = s.as_bytes();
    let sign = usize::from(b.first() == Some(&b'-'));
    let whole = digits(&b[sign..]);
    let integer = if whole > 0 { sign + whole } else { 0 };
    let hex_digits = if b.starts_with(b"0x") || b.starts_with(b"0X") {
        b[2..].iter().take_while(|c| c.is_ascii_hexdigit()).count()
    } else {
        0
    };
    let hex = if hex_digits > 0 { 2 + hex_digits } else { 0 };
    let mantissa = sign + whole;
    let fraction = if b.get(mantissa) == Some(&b'.') { digits(&b[mantissa + 1..]) } else { 0 };
    let real = if fraction > 0 {
        let end = mantissa + 1 + fraction;
        end + exponent(&b[end..])
    } else {
        match exponent(&b[mantissa..]) {
            0 => 0,
            e => mantissa + e,
        }
    };
    let len = integer.max(hex).max(real);
    let text = s.get(..len)?;
    if len == 0 {
        None
    } else if hex > integer && hex >= real {
        // As .NET's long.Parse of hex digits: 64 bits, two's complement.
        Some((len, u64::from_str_radix(&text[2..], 16).ok().map(|v| v as i64 as f64)))
    } else {
        Some((len, text.parse::<f64>().ok()))
    }
}

/// A keyword or literal spelled by a whole identifier.
fn keyword(word: &str) -> Option<Kind> {
    let literal = match word {
        "true" => Some(Kind::True),
        "false" => Some(Kind::False),
        "null" => Some(Kind::Null),
        "undefined" => Some(Kind::Undefined),
        _ => None,
    };
    literal.or_else(|| {
        [
            ("select", Kind::Select),
            ("from", Kind::From),
            ("where", Kind::Where),
            ("into", Kind::Into),
            ("and", Kind::And),
            ("or", Kind::Or),
            ("not", Kind::Not),
        ]
        .into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(word))
        .map(|(_, kind)| kind)
    })
}

/// Reads tokens from a route's text, one at a time.
pub(super) struct Lexer<'t> {
    text: &'t str,
    pos: usize,
}

impl<'t> Lexer<'t> {
    pub(super) fn new(text: &'t str) -> Self {
        Self { text, pos: 0 }
    }

    fn rest(&self) -> &'t str {
        self.text.get(self.pos..).unwrap_or_default()
    }

    fn skip_space(&mut self) {
        self.pos += run(self.rest(), is_space);
    }

    fn skip_space_and_comments(&mut self) -> Result<(), Fail> {
        loop {
            self.skip_space();
            if !self.rest().starts_with("/*") {
                return Ok(());
            }
            match self.rest()[2..].find("*/") {
                Some(close) => self.pos += 2 + close + 2,
                None => return Err(Fail::new(self.pos, Problem::UnterminatedComment)),
            }
        }
    }

    /// The next token; [`Kind::Eof`] at the end, again and again.
    pub(super) fn next(&mut self) -> Result<Token, Fail> {
        self.skip_space_and_comments()?;
        let start = self.pos;
        let rest = self.rest();
        let Some(first) = rest.chars().next() else {
            return Ok(Token { kind: Kind::Eof, start, end: start });
        };
        let ident = run(rest, is_ident_char);
        let second = rest[first.len_utf8()..].chars().next();
        let (kind, len) = match (first, second) {
            ('(', _) => (Kind::LParen, 1),
            (')', _) => (Kind::RParen, 1),
            ('{', _) => (Kind::LBrace, 1),
            ('}', _) => (Kind::RBrace, 1),
            (',', _) => (Kind::Comma, 1),
            ('=', _) => (Kind::Eq, 1),
            ('!', Some('=')) | ('<', Some('>')) => (Kind::Ne, 2),
            ('<', Some('=')) => (Kind::Le, 2),
            ('<', _) => (Kind::Lt, 1),
            ('>', Some('=')) => (Kind::Ge, 2),
            ('>', _) => (Kind::Gt, 1),
            ('|', Some('|')) => (Kind::Concat, 2),
            ('?', Some('?')) => (Kind::Coalesce, 2),
            ('+', _) => (Kind::Plus, 1),
            ('*', _) => (Kind::Star, 1),
            ('/', _) => (Kind::Slash, 1),
            ('%', _) => (Kind::Percent, 1),
            ('"' | '\'', _) => {
                let (value, len) = self.string(first)?;
                (Kind::Str(value), len)
            }
            ('$', _) => match run(&rest[1..], is_query_char) {
                0 => (Kind::Stray, 0),
                n => (Kind::SysProp, 1 + n),
            },
            _ => match number(rest) {
                Some((len, value)) => (Kind::Number(value), len),
                None if first == '-' => (Kind::Minus, 1),
                None => (Kind::Stray, 0),
            },
        };
        let query = run(rest, is_query_char);
        let (kind, len) = if query > ident.max(len) {
            // A name holding `[`, which only a `$` name may: no token of the grammar.
            (Kind::Stray, query)
        } else if ident > len {
            (keyword(&rest[..ident]).unwrap_or(Kind::Ident), ident)
        } else if len > 0 {
            (kind, len)
        } else {
            (Kind::Stray, first.len_utf8())
        };
        self.pos += len;
        Ok(Token { kind, start, end: self.pos })
    }

    /// A string literal opened by `quote` at the current position: its value and length.
    fn string(&self, quote: char) -> Result<(String, usize), Fail> {
        let rest = self.rest();
        let mut value = String::new();
        let mut chars = rest.char_indices().skip(1);
        while let Some((i, c)) = chars.next() {
            if c == quote {
                return Ok((value, i + 1));
            }
            if c != '\\' {
                value.push(c);
                continue;
            }
            let bad = |len: usize| {
                let escape = rest[i..].chars().take(len).collect();
                Fail::new(self.pos + i, Problem::InvalidEscape { escape })
            };
            let escaped = match chars.next().map(|(_, e)| e) {
                Some(e @ ('"' | '\'' | '\\' | '/')) => e,
                Some('b') => '\u{8}',
                Some('f') => '\u{c}',
                Some('n') => '\n',
                Some('r') => '\r',
                Some('t') => '\t',
                Some('u') => {
                    let unit = |at: usize| {
                        let hex = rest.get(at..at + 4).filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))?;
                        u16::from_str_radix(hex, 16).ok()
                    };
                    let high = unit(i + 2).ok_or_else(|| bad(6))?;
                    chars.nth(3);
                    let decoded = if (0xD800..0xDC00).contains(&high) && rest[i + 6..].starts_with("\\u") {
                        let low = unit(i + 8).ok_or_else(|| bad(12))?;
                        chars.nth(5);
                        char::decode_utf16([high, low]).next().and_then(Result::ok).ok_or_else(|| bad(12))?
                    } else {
                        char::decode_utf16([high]).next().and_then(Result::ok).ok_or_else(|| bad(6))?
                    };
                    value.push(decoded);
                    continue;
                }
                Some(_) => return Err(bad(2)),
                None => break,
            };
            value.push(escaped);
        }
        Err(Fail::new(self.pos, Problem::UnterminatedString))
    }

    /// The FROM path at the current position: its `/`-separated segments, each with its
    /// offset, and the path's byte range. A `/*` here is the wildcard, never a comment.
    pub(super) fn path(&mut self) -> Result<Path, Fail> {
        self.skip_space();
        let start = self.pos;
        if !self.rest().starts_with('/') {
            let end = start + run(self.rest(), |c| !is_space(c));
            return Err(Fail::new(
                start,
                Problem::Unexpected {
                    expected: "a source path such as /messages/*",
                    found: found(self.text, start, end),
                },
            ));
        }
        let mut segments = Vec::new();
        while self.rest().starts_with('/') {
            self.pos += 1;
            let len = run(self.rest(), is_ident_char);
            if len == 0 {
                if self.rest().starts_with('/') {
                    return Err(Fail::new(
                        self.pos,
                        Problem::Unexpected {
                            expected: "a path segment",
                            found: found(self.text, self.pos, self.pos + 1),
                        },
                    ));
                }
                break;
            }
            segments.push(self.rest()[..len].to_owned());
            self.pos += len;
        }
        Ok(Path { segments, start, end: self.pos })
    }
}

/// A FROM path as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Path {
    pub segments: Vec<String>,
    pub start: usize,
    pub end: usize,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn kinds(text: &str) -> Vec<Kind> {
        let mut lexer = Lexer::new(text);
        let mut out = Vec::new();
        loop {
            let token = lexer.next().unwrap();
            if token.kind == Kind::Eof {
                return out;
            }
            out.push(token.kind);
        }
    }

    #[test]
    fn identifiers_swallow_operator_characters_as_in_azure() {
        assert_eq!(kinds("a-b"), [Kind::Ident]);
        assert_eq!(kinds("a - b"), [Kind::Ident, Kind::Minus, Kind::Ident]);
        assert_eq!(kinds("1+2"), [Kind::Ident]);
        assert_eq!(kinds("a!=b"), [Kind::Ident, Kind::Eq, Kind::Ident]);
        assert_eq!(kinds("a<>b"), [Kind::Ident, Kind::Ne, Kind::Ident]);
        assert_eq!(kinds("'a'||'b'"), [Kind::Ident]);
        assert_eq!(kinds("'a' || 'b'"), [Kind::Str("a".into()), Kind::Concat, Kind::Str("b".into())]);
    }

    #[test]
    fn numbers_take_their_sign_and_ties_go_to_numbers() {
        assert_eq!(kinds("-1"), [Kind::Number(Some(-1.0))]);
        assert_eq!(kinds("3 -1"), [Kind::Number(Some(3.0)), Kind::Number(Some(-1.0))]);
        assert_eq!(kinds("- 1"), [Kind::Minus, Kind::Number(Some(1.0))]);
        assert_eq!(kinds("-x"), [Kind::Ident]);
        assert_eq!(
            kinds("1e-6 .5 10e10"),
            [Kind::Number(Some(1e-6)), Kind::Number(Some(0.5)), Kind::Number(Some(1e11))]
        );
        assert_eq!(kinds("0x1F 0xFFFFFFFFFFFFFFFF"), [Kind::Number(Some(31.0)), Kind::Number(Some(-1.0))]);
        assert_eq!(kinds("0x10000000000000000"), [Kind::Number(None)]);
        assert_eq!(kinds("e5"), [Kind::Number(None)]);
        assert_eq!(kinds("e5x 1. 2.5x"), [Kind::Ident, Kind::Ident, Kind::Ident]);
    }

    #[test]
    fn keywords_are_whole_identifiers() {
        assert_eq!(kinds("AND and AnD android"), [Kind::And, Kind::And, Kind::And, Kind::Ident]);
        assert_eq!(kinds("true TRUE null Null"), [Kind::True, Kind::Ident, Kind::Null, Kind::Ident]);
        assert_eq!(
            kinds("select From wHeRe INTO not or"),
            [Kind::Select, Kind::From, Kind::Where, Kind::Into, Kind::Not, Kind::Or]
        );
    }

    #[test]
    fn strings_resolve_escapes() {
        assert_eq!(kinds(r#""a\"b""#), [Kind::Str("a\"b".into())]);
        assert_eq!(kinds(r"'it\'s'"), [Kind::Str("it's".into())]);
        assert_eq!(kinds(r"'\u00e9\n\t\\'"), [Kind::Str("é\n\t\\".into())]);
        assert_eq!(kinds(r"'\ud83d\ude00'"), [Kind::Str("😀".into())]);
        assert_eq!(kinds("'x'y"), [Kind::Ident]);
    }

    #[test]
    fn bad_strings_are_errors_at_their_place() {
        let err = |text: &str| Lexer::new(text).next().unwrap_err();
        assert_eq!(err("  'abc"), Fail::new(2, Problem::UnterminatedString));
        assert_eq!(err("'a\\qb'"), Fail::new(2, Problem::InvalidEscape { escape: "\\q".into() }));
        assert_eq!(err("'\\u12'"), Fail::new(1, Problem::InvalidEscape { escape: "\\u12'".into() }));
        assert_eq!(err("'\\ud800'"), Fail::new(1, Problem::InvalidEscape { escape: "\\ud800".into() }));
        assert_eq!(err("/* open"), Fail::new(0, Problem::UnterminatedComment));
    }

    #[test]
    fn comments_and_system_properties() {
        assert_eq!(
            kinds("/* a */ $x /**/ {$y} $body.a[0]"),
            [Kind::SysProp, Kind::LBrace, Kind::SysProp, Kind::RBrace, Kind::SysProp]
        );
        assert_eq!(kinds("a[0] @ ;"), [Kind::Stray, Kind::Stray, Kind::Stray]);
    }

    #[test]
    fn paths_keep_star_segments_and_stop_at_space() {
        let mut lexer = Lexer::new(" /messages/* WHERE");
        let path = lexer.path().unwrap();
        assert_eq!(path.segments, ["messages", "*"]);
        assert_eq!((path.start, path.end), (1, 12));
        assert_eq!(lexer.next().unwrap().kind, Kind::Where);
        assert_eq!(Lexer::new("/* INTO").path().unwrap().segments, ["*"]);
        assert_eq!(Lexer::new("/messages/ INTO").path().unwrap().segments, ["messages"]);
        assert!(Lexer::new("/messages//x").path().is_err());
        assert!(Lexer::new("messages").path().is_err());
    }
}
