//! The target condition grammar, by recursive descent:
//!
//! ```text
//! condition = "*" | or
//! or        = and { OR and }
//! and       = unary { AND unary }
//! unary     = NOT unary | "(" or ")" | predicate
//! predicate = function "(" [operand {"," operand}] ")"
//!           | operand (compare-op operand | (IN | NIN) "[" [literal {"," literal}] "]")
//! operand   = path | literal
//! path      = root { "." name | "[" string "]" }
//! literal   = string | number | true | false | null
//! ```

use serde_json::Value;

use super::ast::{CompareOp, Expr, Function, Operand, Path, Root};
use super::error::{Fail, Problem, found};
use super::lexer::{Kind, Lexer, Token};
use super::{MAX_LIST, MAX_NESTING, MAX_TEXT};

/// Parses a condition's text: `None` for `*`, every device.
pub(super) fn parse(text: &str) -> Result<Option<Expr>, Fail> {
    if text.len() > MAX_TEXT {
        return Err(Fail::new(0, Problem::TooLong { length: text.len() }));
    }
    if text.trim().is_empty() {
        return Err(Fail::new(0, Problem::Empty));
    }
    let mut lexer = Lexer::new(text);
    let token = lexer.next()?;
    let mut parser = Parser { text, lexer, token, nesting: 0 };
    if parser.token.kind == Kind::Star {
        let at = parser.token.start;
        parser.advance()?;
        if parser.token.kind != Kind::Eof {
            return Err(Fail::new(at, Problem::MisplacedStar));
        }
        return Ok(None);
    }
    let expr = parser.or()?;
    if parser.token.kind != Kind::Eof {
        return Err(parser.unexpected("AND, OR or end of condition"));
    }
    Ok(Some(expr))
}

/// What may start a predicate.
const PREDICATE: &str = "a comparison such as tags.environment = 'prod', a function, NOT or '('";

/// What may stand on either side of a comparison or be a function's argument.
const OPERAND: &str = "a property path or a literal";

/// What a path member name may be.
const MEMBER: &str = "a property name after '.' (write ['…'] for other names)";

/// What an `IN` list holds.
const LITERAL: &str = "a literal (a string, number, true, false or null)";

struct Parser<'t> {
    text: &'t str,
    lexer: Lexer<'t>,
    /// The current token; the lexer stands just past it.
    token: Token,
    nesting: usize,
}

impl<'t> Parser<'t> {
    fn advance(&mut self) -> Result<(), Fail> {
        self.token = self.lexer.next()?;
        Ok(())
    }

    fn text_of(&self, token: &Token) -> &'t str {
        let text: &'t str = self.text;
        text.get(token.start..token.end).unwrap_or_default()
    }

    fn unexpected(&self, expected: &'static str) -> Fail {
        if self.token.kind == Kind::Star {
            return Fail::new(self.token.start, Problem::MisplacedStar);
        }
        Fail::new(
            self.token.start,
            Problem::Unexpected { expected, found: found(self.text, self.token.start, self.token.end) },
        )
    }

    /// Runs `parse` one nesting level deeper, refusing to pass [`MAX_NESTING`].
    fn nested(&mut self, at: usize, parse: fn(&mut Self) -> Result<Expr, Fail>) -> Result<Expr, Fail> {
        if self.nesting >= MAX_NESTING {
            return Err(Fail::new(at, Problem::TooDeep));
        }
        self.nesting += 1;
        let result = parse(self);
        self.nesting -= 1;
        result
    }

    fn or(&mut self) -> Result<Expr, Fail> {
        let mut items = vec![self.and()?];
        while self.token.kind == Kind::Or {
            self.advance()?;
            items.push(self.and()?);
        }
        Ok(Expr::or(items))
    }

    fn and(&mut self) -> Result<Expr, Fail> {
        let mut items = vec![self.unary()?];
        while self.token.kind == Kind::And {
            self.advance()?;
            items.push(self.unary()?);
        }
        Ok(Expr::and(items))
    }

    fn unary(&mut self) -> Result<Expr, Fail> {
        let at = self.token.start;
        match self.token.kind {
            Kind::Not => {
                self.advance()?;
                let operand = self.nested(at, Self::unary)?;
                Ok(Expr::Not(Box::new(operand)))
            }
            Kind::LParen => {
                self.advance()?;
                let inner = self.nested(at, Self::or)?;
                if self.token.kind != Kind::RParen {
                    return Err(self.unexpected("AND, OR or ')'"));
                }
                self.advance()?;
                Ok(inner)
            }
            _ => self.predicate(),
        }
    }

    fn predicate(&mut self) -> Result<Expr, Fail> {
        if self.token.kind == Kind::Word {
            let word = self.token.clone();
            self.advance()?;
            if self.token.kind == Kind::LParen {
                return self.call(&word);
            }
            let left = Operand::Path(self.path(&word)?);
            return self.comparison(left);
        }
        let left = self.literal().map(Operand::Literal).ok_or_else(|| self.unexpected(PREDICATE))?;
        self.advance()?;
        self.comparison(left)
    }

    /// The current token's value if it is a literal.
    fn literal(&self) -> Option<Value> {
        Some(match &self.token.kind {
            Kind::Str(s) => Value::String(s.clone()),
            Kind::Number(n) => Value::Number(n.clone()),
            Kind::True => Value::Bool(true),
            Kind::False => Value::Bool(false),
            Kind::Null => Value::Null,
            _ => return None,
        })
    }

    /// A path or a literal, starting at the current token.
    fn operand(&mut self) -> Result<Operand, Fail> {
        if self.token.kind == Kind::Word {
            let word = self.token.clone();
            self.advance()?;
            return Ok(Operand::Path(self.path(&word)?));
        }
        let literal = self.literal().ok_or_else(|| self.unexpected(OPERAND))?;
        self.advance()?;
        Ok(Operand::Literal(literal))
    }

    /// A property path whose first name, `word`, has been read.
    fn path(&mut self, word: &Token) -> Result<Path, Fail> {
        let mut spelled = self.text_of(word).to_owned();
        if matches!(spelled.as_str(), "properties" | "capabilities") && self.token.kind == Kind::Dot {
            self.advance()?;
            if !self.token.kind.is_name() {
                return Err(self.unexpected(MEMBER));
            }
            spelled = format!("{spelled}.{}", self.text_of(&self.token));
            self.advance()?;
        }
        let root = Root::ALL
            .into_iter()
            .find(|root| root.spelling() == spelled)
            .ok_or_else(|| Fail::new(word.start, Problem::UnknownRoot { root: spelled }))?;
        let mut members = Vec::new();
        loop {
            let at = self.token.start;
            match self.token.kind {
                Kind::Dot | Kind::LBracket if !root.has_members() => {
                    return Err(Fail::new(at, Problem::NoMembers { root: root.spelling() }));
                }
                Kind::Dot => {
                    self.advance()?;
                    if !self.token.kind.is_name() {
                        return Err(self.unexpected(MEMBER));
                    }
                    members.push(self.text_of(&self.token).to_owned());
                    self.advance()?;
                }
                Kind::LBracket => {
                    self.advance()?;
                    let Kind::Str(name) = &self.token.kind else {
                        return Err(self.unexpected("a quoted property name after '['"));
                    };
                    members.push(name.clone());
                    self.advance()?;
                    if self.token.kind != Kind::RBracket {
                        return Err(self.unexpected("']'"));
                    }
                    self.advance()?;
                }
                _ => return Ok(Path { root, members }),
            }
        }
    }

    /// What follows the left operand of a comparison or `IN`.
    fn comparison(&mut self, left: Operand) -> Result<Expr, Fail> {
        let op = match self.token.kind {
            Kind::Eq => CompareOp::Eq,
            Kind::Ne => CompareOp::Ne,
            Kind::Lt => CompareOp::Lt,
            Kind::Le => CompareOp::Le,
            Kind::Gt => CompareOp::Gt,
            Kind::Ge => CompareOp::Ge,
            Kind::In => return self.in_list(left, false),
            Kind::Nin => return self.in_list(left, true),
            _ => return Err(self.unexpected("a comparison operator")),
        };
        self.advance()?;
        let right = self.operand()?;
        Ok(Expr::Compare { left, op, right })
    }

    /// `IN [...]` or `NIN [...]` after `operand`, from the keyword on.
    fn in_list(&mut self, operand: Operand, negated: bool) -> Result<Expr, Fail> {
        let keyword = if negated { "NIN" } else { "IN" };
        self.advance()?;
        if self.token.kind != Kind::LBracket {
            let found = found(self.text, self.token.start, self.token.end);
            return Err(Fail::new(self.token.start, Problem::NotAList { keyword, found }));
        }
        self.advance()?;
        let mut list = Vec::new();
        if self.token.kind == Kind::RBracket {
            self.advance()?;
            return Ok(Expr::In { operand, negated, list });
        }
        loop {
            let value = self.literal().ok_or_else(|| self.unexpected(LITERAL))?;
            if list.len() == MAX_LIST {
                return Err(Fail::new(self.token.start, Problem::ListTooLong { keyword }));
            }
            list.push(value);
            self.advance()?;
            match self.token.kind {
                Kind::Comma => self.advance()?,
                Kind::RBracket => {
                    self.advance()?;
                    return Ok(Expr::In { operand, negated, list });
                }
                _ => return Err(self.unexpected("',' or ']'")),
            }
        }
    }

    /// A call to the function named by `word`; the current token is its `(`.
    fn call(&mut self, word: &Token) -> Result<Expr, Fail> {
        let name = self.text_of(word);
        let function = Function::lookup(name)
            .ok_or_else(|| Fail::new(word.start, Problem::UnknownFunction { name: name.to_owned() }))?;
        self.advance()?;
        let mut args = Vec::new();
        if self.token.kind == Kind::RParen {
            self.advance()?;
        } else {
            loop {
                let at = self.token.start;
                let arg = self.operand()?;
                if function == Function::IsDefined && !matches!(arg, Operand::Path(_)) {
                    let end = self.end_of_read(at);
                    return Err(Fail::new(
                        at,
                        Problem::Unexpected {
                            expected: "a property path (IS_DEFINED reads a property)",
                            found: found(self.text, at, end),
                        },
                    ));
                }
                args.push(arg);
                match self.token.kind {
                    Kind::Comma => self.advance()?,
                    Kind::RParen => {
                        self.advance()?;
                        break;
                    }
                    _ => return Err(self.unexpected("',' or ')'")),
                }
            }
        }
        if args.len() != function.arity() {
            let (function, signature) = (function.name(), function.signature());
            return Err(Fail::new(word.start, Problem::Arguments { function, signature }));
        }
        Ok(Expr::Call { function, args })
    }

    /// The end of the text read since `start`, trailing whitespace excluded.
    fn end_of_read(&self, start: usize) -> usize {
        let read = self.text.get(start..self.token.start).unwrap_or_default();
        start + read.trim_end().len()
    }
}
