//! The route grammar, by recursive descent with precedence climbing for conditions:
//!
//! ```text
//! route     = [SELECT "*"] FROM path [WHERE condition] INTO sink
//! sink      = "$upstream" | "BrokeredEndpoint" "(" string ")"
//! condition = operand { binary-op operand }        (precedence in types::BinaryOp)
//! operand   = ("-" | NOT) operand | literal | name | name "(" [condition {"," condition}] ")"
//!           | "$"name | "{" "$"name "}" | "(" condition ")"
//! ```
//!
//! Types are checked as each node is built, so an error points at the operator or function
//! at fault.

use super::body::BodyPath;
use super::error::{Fail, Problem, found};
use super::expr::{Expr, Literal};
use super::functions::Function;
use super::lexer::{Kind, Lexer, Token};
use super::message::eq_ignore_case;
use super::sink::Sink;
use super::source::Source;
use super::types::{self, BinaryOp, ExprType, UnaryOp};

/// How deep parentheses, prefix operators and calls may nest: bounds the parser's recursion.
const MAX_NESTING: usize = 64;

/// How deep a condition's tree may be (a chain of 999 `OR`s is fine): bounds the
/// evaluator's recursion.
const MAX_DEPTH: usize = 1000;

/// A parsed route.
pub(super) struct Parsed {
    pub source: Source,
    pub condition: Option<Expr>,
    pub sink: Sink,
}

/// Parses a route's text.
pub(super) fn parse(text: &str) -> Result<Parsed, Fail> {
    let mut lexer = Lexer::new(text);
    let token = lexer.next()?;
    Parser { text, lexer, token, nesting: 0 }.route()
}

/// An expression with its static type and the depth of its tree.
struct Typed {
    expr: Expr,
    ty: ExprType,
    depth: usize,
}

impl Typed {
    fn leaf(expr: Expr, ty: ExprType) -> Self {
        Self { expr, ty, depth: 1 }
    }
}

fn binary_op(kind: &Kind) -> Option<BinaryOp> {
    Some(match kind {
        Kind::Coalesce => BinaryOp::Coalesce,
        Kind::Or => BinaryOp::Or,
        Kind::And => BinaryOp::And,
        Kind::Eq => BinaryOp::Eq,
        Kind::Ne => BinaryOp::Ne,
        Kind::Lt => BinaryOp::Lt,
        Kind::Le => BinaryOp::Le,
        Kind::Gt => BinaryOp::Gt,
        Kind::Ge => BinaryOp::Ge,
        Kind::Plus => BinaryOp::Add,
        Kind::Minus => BinaryOp::Sub,
        Kind::Concat => BinaryOp::Concat,
        Kind::Star => BinaryOp::Mul,
        Kind::Slash => BinaryOp::Div,
        Kind::Percent => BinaryOp::Rem,
        _ => return None,
    })
}

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

    fn token_text(&self) -> &'t str {
        let text: &'t str = self.text;
        text.get(self.token.start..self.token.end).unwrap_or_default()
    }

    fn unexpected(&self, expected: &'static str) -> Fail {
        Fail::new(
            self.token.start,
            Problem::Unexpected { expected, found: found(self.text, self.token.start, self.token.end) },
        )
    }

    /// Steps past the current token if it is `kind`.
    fn expect(&mut self, kind: Kind, expected: &'static str) -> Result<(), Fail> {
        if self.token.kind != kind {
            return Err(self.unexpected(expected));
        }
        self.advance()
    }

    fn route(mut self) -> Result<Parsed, Fail> {
        if self.token.kind == Kind::Select {
            self.advance()?;
            self.expect(Kind::Star, "'*' after SELECT")?;
        }
        if self.token.kind != Kind::From {
            return Err(self.unexpected("FROM"));
        }
        let path = self.lexer.path()?;
        let source = Source::from_segments(&path.segments).ok_or_else(|| {
            let path_text = self.text.get(path.start..path.end).unwrap_or_default().to_owned();
            Fail::new(path.start, Problem::UnsupportedSource { path: path_text })
        })?;
        self.advance()?;
        let condition = if self.token.kind == Kind::Where {
            self.advance()?;
            Some(self.condition()?.expr)
        } else {
            None
        };
        if self.token.kind != Kind::Into {
            return Err(self.unexpected(if condition.is_some() { "an operator or INTO" } else { "WHERE or INTO" }));
        }
        self.advance()?;
        let sink = self.sink()?;
        if self.token.kind != Kind::Eof {
            return Err(self.unexpected("end of route"));
        }
        Ok(Parsed { source, condition, sink })
    }

    fn sink(&mut self) -> Result<Sink, Fail> {
        let at = self.token.start;
        match self.token.kind {
            Kind::SysProp => {
                let sink = Sink::system(self.token_text()).map_err(|problem| Fail::new(at, problem))?;
                self.advance()?;
                Ok(sink)
            }
            Kind::Ident => {
                let name = self.token_text();
                if !eq_ignore_case(name, "BrokeredEndpoint") {
                    return Err(Fail::new(at, Problem::UnknownEndpoint { name: name.to_owned() }));
                }
                self.advance()?;
                self.expect(Kind::LParen, "'(' after BrokeredEndpoint")?;
                let Kind::Str(address) = &self.token.kind else {
                    return Err(self.unexpected("a quoted endpoint address"));
                };
                let sink = Sink::brokered(address).map_err(|problem| Fail::new(self.token.start, problem))?;
                self.advance()?;
                self.expect(Kind::RParen, "')'")?;
                Ok(sink)
            }
            _ => Err(self.unexpected("$upstream or BrokeredEndpoint(…)")),
        }
    }

    /// Runs `parse` one nesting level deeper, refusing to pass [`MAX_NESTING`].
    fn nested<T>(&mut self, at: usize, parse: fn(&mut Self) -> Result<T, Fail>) -> Result<T, Fail> {
        if self.nesting >= MAX_NESTING {
            return Err(Fail::new(at, Problem::TooDeep));
        }
        self.nesting += 1;
        let result = parse(self);
        self.nesting -= 1;
        result
    }

    fn condition(&mut self) -> Result<Typed, Fail> {
        self.binary(BinaryOp::Coalesce.precedence())
    }

    /// Operands joined by operators binding at least as tightly as `min`, left to right.
    fn binary(&mut self, min: u8) -> Result<Typed, Fail> {
        let mut left = self.unary()?;
        while let Some(op) = binary_op(&self.token.kind)
            && op.precedence() >= min
        {
            let (at, operator) = (self.token.start, self.token_text());
            self.advance()?;
            let right = self.binary(op.precedence() + 1)?;
            let Some(ty) = types::binary(op, left.ty, right.ty) else {
                let (left, right) = (left.ty, right.ty);
                return Err(Fail::new(at, Problem::BinaryOperands { operator: operator.to_owned(), left, right }));
            };
            let depth = 1 + left.depth.max(right.depth);
            let dynamic = left.ty == ExprType::Any || right.ty == ExprType::Any;
            let expr = Expr::Binary { op, left: Box::new(left.expr), right: Box::new(right.expr), dynamic };
            left = node(at, expr, ty, depth)?;
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Typed, Fail> {
        let op = match self.token.kind {
            Kind::Minus => UnaryOp::Negate,
            Kind::Not => UnaryOp::Not,
            _ => return self.primary(),
        };
        let (at, operator) = (self.token.start, self.token_text());
        self.advance()?;
        let operand = self.nested(at, Self::unary)?;
        let Some(ty) = types::unary(op, operand.ty) else {
            return Err(Fail::new(at, Problem::UnaryOperand { operator: operator.to_owned(), operand: operand.ty }));
        };
        let dynamic = operand.ty == ExprType::Any;
        node(at, Expr::Unary { op, operand: Box::new(operand.expr), dynamic }, ty, operand.depth + 1)
    }

    fn primary(&mut self) -> Result<Typed, Fail> {
        let at = self.token.start;
        let typed = match self.token.kind.clone() {
            Kind::Number(Some(n)) => Typed::leaf(Expr::Literal(Literal::Number(n)), ExprType::Number),
            // A number .NET cannot read (`e5`) is edgeHub's undefined.
            Kind::Number(None) | Kind::Undefined => Typed::leaf(Expr::Literal(Literal::Undefined), ExprType::Undefined),
            Kind::Str(s) => Typed::leaf(Expr::Literal(Literal::String(s)), ExprType::String),
            Kind::True => Typed::leaf(Expr::Literal(Literal::Bool(true)), ExprType::Bool),
            Kind::False => Typed::leaf(Expr::Literal(Literal::Bool(false)), ExprType::Bool),
            Kind::Null => Typed::leaf(Expr::Literal(Literal::Null), ExprType::Null),
            Kind::SysProp => dollar(self.token_text(), false, at)?,
            Kind::Ident => return self.name(),
            Kind::LBrace => {
                self.advance()?;
                if self.token.kind != Kind::SysProp {
                    return Err(self.unexpected("a $ property after '{'"));
                }
                let typed = dollar(self.token_text(), true, self.token.start)?;
                self.advance()?;
                if self.token.kind != Kind::RBrace {
                    return Err(self.unexpected("'}'"));
                }
                typed
            }
            Kind::LParen => {
                self.advance()?;
                let inner = self.nested(at, Self::condition)?;
                if self.token.kind != Kind::RParen {
                    return Err(self.unexpected("an operator or ')'"));
                }
                inner
            }
            _ => return Err(self.unexpected("an expression")),
        };
        self.advance()?;
        Ok(typed)
    }

    /// An identifier: an application property, or a call if `(` follows.
    fn name(&mut self) -> Result<Typed, Fail> {
        let (at, name) = (self.token.start, self.token_text());
        self.advance()?;
        if self.token.kind != Kind::LParen {
            return Ok(Typed::leaf(Expr::Property(name.to_owned()), ExprType::String));
        }
        if eq_ignore_case(name, "twin_change_includes") {
            return Err(Fail::new(at, Problem::TwinChangeFunction { name: name.to_owned() }));
        }
        let function =
            Function::lookup(name).ok_or_else(|| Fail::new(at, Problem::UnknownFunction { name: name.to_owned() }))?;
        self.advance()?;
        let args = self.nested(at, Self::arguments)?;
        let given: Vec<ExprType> = args.iter().map(|arg| arg.ty).collect();
        let ty = function
            .check(&given)
            .map_err(|expected| Fail::new(at, Problem::Arguments { function: name.to_owned(), given, expected }))?;
        let depth = 1 + args.iter().map(|arg| arg.depth).max().unwrap_or(0);
        node(at, Expr::Call { function, args: args.into_iter().map(|arg| arg.expr).collect() }, ty, depth)
    }

    /// Call arguments after the `(`, through the `)`.
    fn arguments(&mut self) -> Result<Vec<Typed>, Fail> {
        let mut args = Vec::new();
        if self.token.kind == Kind::RParen {
            self.advance()?;
            return Ok(args);
        }
        loop {
            args.push(self.condition()?);
            match self.token.kind {
                Kind::Comma => self.advance()?,
                Kind::RParen => {
                    self.advance()?;
                    return Ok(args);
                }
                _ => return Err(self.unexpected("an operator, ',' or ')'")),
            }
        }
    }
}

/// A node of tree depth `depth`, unless that passes [`MAX_DEPTH`].
fn node(at: usize, expr: Expr, ty: ExprType, depth: usize) -> Result<Typed, Fail> {
    if depth > MAX_DEPTH {
        return Err(Fail::new(at, Problem::TooDeep));
    }
    Ok(Typed { expr, ty, depth })
}

/// A `$name` operand (`{$name}` when `escaped`): a `$body.…` query, else a system property.
fn dollar(name: &str, escaped: bool, at: usize) -> Result<Typed, Fail> {
    if name.get(..6).is_some_and(|prefix| prefix.eq_ignore_ascii_case("$body.")) {
        let query = name.get(6..).unwrap_or_default();
        let path = BodyPath::parse(query)
            .map_err(|reason| Fail::new(at, Problem::BodyQuery { query: query.to_owned(), reason }))?;
        return Ok(Typed::leaf(Expr::Body { name: name.to_owned(), path, escaped }, ExprType::Any));
    }
    if name.contains(['[', ']']) {
        return Err(Fail::new(at, Problem::BracketedProperty { name: name.to_owned() }));
    }
    Ok(Typed::leaf(Expr::System { name: name.to_owned(), escaped }, ExprType::String))
}
