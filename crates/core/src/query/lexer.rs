//! Tokens of a target condition: names `[A-Za-z_$][A-Za-z0-9_$-]*` (keywords `AND OR NOT IN
//! NIN true false null` among them, in any case), quoted strings, JSON-style numbers with an
//! optional leading minus, and the punctuation `( ) [ ] , . * = != <> < <= > >=`.

use serde_json::Number;

use super::error::{Fail, Problem};

/// What a token is.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Kind {
    Eof,
    /// A name that is no keyword.
    Word,
    And,
    Or,
    Not,
    In,
    Nin,
    True,
    False,
    Null,
    /// A number literal.
    Number(Number),
    /// A string literal, escapes resolved.
    Str(String),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Dot,
    Star,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// A character that starts no token.
    Stray,
}

impl Kind {
    /// Whether the token is a name, keyword or not: what may follow a `.` in a path.
    pub(super) fn is_name(&self) -> bool {
        matches!(
            self,
            Self::Word
                | Self::And
                | Self::Or
                | Self::Not
                | Self::In
                | Self::Nin
                | Self::True
                | Self::False
                | Self::Null
        )
    }
}

/// A token and its byte range in the condition text.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
}

/// Whether `c` may start a name.
pub(super) fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == '$'
}

/// Whether `c` may continue a name.
pub(super) fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '$' | '-')
}

/// Whether `name` can be written as a bare name (else it needs `['…']`).
pub(super) fn is_plain_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(is_name_start) && chars.all(is_name_char)
}

/// Byte length of the longest prefix of `s` whose characters satisfy `accept`.
fn run(s: &str, accept: fn(char) -> bool) -> usize {
    s.char_indices().find(|&(_, c)| !accept(c)).map_or(s.len(), |(i, _)| i)
}

fn digits(b: &[u8]) -> usize {
    b.iter().take_while(|c| c.is_ascii_digit()).count()
}

/// Length of the number `-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?` at the start of `b`, or 0.
fn number_length(b: &[u8]) -> usize {
    let sign = usize::from(b.first() == Some(&b'-'));
    let whole = digits(b.get(sign..).unwrap_or_default());
    if whole == 0 {
        return 0;
    }
    let mut end = sign + whole;
    if b.get(end) == Some(&b'.') {
        let fraction = digits(b.get(end + 1..).unwrap_or_default());
        if fraction > 0 {
            end += 1 + fraction;
        }
    }
    if matches!(b.get(end), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(b.get(end + 1), Some(b'+' | b'-')));
        let exponent = digits(b.get(end + 1 + sign..).unwrap_or_default());
        if exponent > 0 {
            end += 1 + sign + exponent;
        }
    }
    end
}

/// The value of a number literal: an integer when it is written as one and fits 64 bits,
/// else a float; `None` when it is too large for a float.
pub(super) fn number_value(text: &str) -> Option<Number> {
    if !text.contains(['.', 'e', 'E']) {
        if let Ok(n) = text.parse::<i64>() {
            return Some(n.into());
        }
        if let Ok(n) = text.parse::<u64>() {
            return Some(n.into());
        }
    }
    text.parse::<f64>().ok().and_then(Number::from_f64)
}

/// A keyword spelled by a whole name, in any case.
fn keyword(word: &str) -> Option<Kind> {
    [
        ("and", Kind::And),
        ("or", Kind::Or),
        ("not", Kind::Not),
        ("in", Kind::In),
        ("nin", Kind::Nin),
        ("true", Kind::True),
        ("false", Kind::False),
        ("null", Kind::Null),
    ]
    .into_iter()
    .find(|(k, _)| k.eq_ignore_ascii_case(word))
    .map(|(_, kind)| kind)
}

/// Reads tokens from a condition's text, one at a time.
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

    /// The next token; [`Kind::Eof`] at the end, again and again.
    pub(super) fn next(&mut self) -> Result<Token, Fail> {
        self.pos += run(self.rest(), char::is_whitespace);
        let start = self.pos;
        let rest = self.rest();
        let mut chars = rest.chars();
        let Some(first) = chars.next() else {
            return Ok(Token { kind: Kind::Eof, start, end: start });
        };
        let second = chars.next();
        let (kind, len) = match (first, second) {
            ('(', _) => (Kind::LParen, 1),
            (')', _) => (Kind::RParen, 1),
            ('[', _) => (Kind::LBracket, 1),
            (']', _) => (Kind::RBracket, 1),
            (',', _) => (Kind::Comma, 1),
            ('.', _) => (Kind::Dot, 1),
            ('*', _) => (Kind::Star, 1),
            ('=', _) => (Kind::Eq, 1),
            ('!', Some('=')) | ('<', Some('>')) => (Kind::Ne, 2),
            ('<', Some('=')) => (Kind::Le, 2),
            ('<', _) => (Kind::Lt, 1),
            ('>', Some('=')) => (Kind::Ge, 2),
            ('>', _) => (Kind::Gt, 1),
            ('\'' | '"', _) => {
                let (value, len) = self.string(first)?;
                (Kind::Str(value), len)
            }
            (c, _) if is_name_start(c) => {
                let len = run(rest, is_name_char);
                (keyword(&rest[..len]).unwrap_or(Kind::Word), len)
            }
            _ => match number_length(rest.as_bytes()) {
                0 => (Kind::Stray, first.len_utf8()),
                len => {
                    let number = number_value(&rest[..len]).ok_or_else(|| {
                        Fail::new(start, Problem::NumberOutOfRange { number: rest[..len].to_owned() })
                    })?;
                    (Kind::Number(number), len)
                }
            },
        };
        self.pos += len;
        Ok(Token { kind, start, end: self.pos })
    }

    /// A string literal opened by `quote` at the current position: its value and length.
    fn string(&self, quote: char) -> Result<(String, usize), Fail> {
        let rest = self.rest();
        let mut value = String::new();
        let mut chars = rest.char_indices().skip(1).peekable();
        while let Some((i, c)) = chars.next() {
            if c == quote {
                // `''` inside single quotes is one quote.
                if quote == '\'' && chars.next_if(|&(_, next)| next == '\'').is_some() {
                    value.push('\'');
                    continue;
                }
                return Ok((value, i + 1));
            }
            if c != '\\' {
                value.push(c);
                continue;
            }
            match chars.next() {
                Some((_, escaped @ ('\'' | '"' | '\\'))) => value.push(escaped),
                Some((_, other)) => {
                    let escape = format!("\\{other}");
                    return Err(Fail::new(self.pos + i, Problem::InvalidEscape { escape }));
                }
                None => break,
            }
        }
        Err(Fail::new(self.pos, Problem::UnterminatedString))
    }
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

    fn int(n: i64) -> Kind {
        Kind::Number(n.into())
    }

    fn float(n: f64) -> Kind {
        Kind::Number(Number::from_f64(n).unwrap())
    }

    #[test]
    fn names_hold_dollars_underscores_and_hyphens() {
        assert_eq!(kinds("$version tags.my-key_2"), [Kind::Word, Kind::Word, Kind::Dot, Kind::Word]);
        assert_eq!(kinds("a-1"), [Kind::Word]);
        assert_eq!(kinds("a -1"), [Kind::Word, int(-1)]);
        assert_eq!(kinds("a!=b"), [Kind::Word, Kind::Ne, Kind::Word]);
        assert_eq!(kinds("a<>b<=c>=d<e>f"), {
            use Kind::*;
            [Word, Ne, Word, Le, Word, Ge, Word, Lt, Word, Gt, Word]
        });
    }

    #[test]
    fn keywords_ignore_case_and_are_whole_names() {
        assert_eq!(
            kinds("AND and AnD android Or nOt In NIN nin"),
            [Kind::And, Kind::And, Kind::And, Kind::Word, Kind::Or, Kind::Not, Kind::In, Kind::Nin, Kind::Nin]
        );
        assert_eq!(kinds("true TRUE False NULL nullable"), {
            use Kind::*;
            [True, True, False, Null, Word]
        });
    }

    #[test]
    fn numbers_are_integers_when_written_as_integers() {
        assert_eq!(kinds("9 -3 0"), [int(9), int(-3), int(0)]);
        assert_eq!(kinds("9.0 -2.5 1e3 2.5E-1 1e+2"), [float(9.0), float(-2.5), float(1e3), float(0.25), float(100.0)]);
        assert_eq!(kinds("18446744073709551615"), [Kind::Number(u64::MAX.into())]);
        assert_eq!(kinds("18446744073709551616"), [float(18_446_744_073_709_551_616.0)]);
        assert_eq!(kinds("1. 5"), [int(1), Kind::Dot, int(5)]);
        assert_eq!(kinds("- 1"), [Kind::Stray, int(1)]);
        assert_eq!(kinds("1e"), [int(1), Kind::Word]);
    }

    #[test]
    fn strings_resolve_escapes_and_doubled_quotes() {
        assert_eq!(kinds(r#""a\"b""#), [Kind::Str("a\"b".into())]);
        assert_eq!(kinds(r"'it\'s'"), [Kind::Str("it's".into())]);
        assert_eq!(kinds("'it''s'"), [Kind::Str("it's".into())]);
        assert_eq!(kinds("''''"), [Kind::Str("'".into())]);
        assert_eq!(kinds("''"), [Kind::Str(String::new())]);
        assert_eq!(kinds(r#""a""b""#), [Kind::Str("a".into()), Kind::Str("b".into())]);
        assert_eq!(kinds(r"'a\\b' 'é😀'"), [Kind::Str("a\\b".into()), Kind::Str("é😀".into())]);
    }

    #[test]
    fn bad_tokens_are_errors_at_their_place() {
        let err = |text: &str| Lexer::new(text).next().unwrap_err();
        assert_eq!(err("  'abc"), Fail::new(2, Problem::UnterminatedString));
        assert_eq!(err("'abc\\"), Fail::new(0, Problem::UnterminatedString));
        assert_eq!(err("'a\\nb'"), Fail::new(2, Problem::InvalidEscape { escape: "\\n".into() }));
        assert_eq!(err("1e400"), Fail::new(0, Problem::NumberOutOfRange { number: "1e400".into() }));
        assert_eq!(kinds("@ é !"), [Kind::Stray, Kind::Stray, Kind::Stray]);
    }
}
