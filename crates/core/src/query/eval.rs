//! Evaluation of a parsed condition against a twin document, in three-valued logic: a missing
//! property is undefined, a comparison involving undefined or values of two types is
//! undefined, `NOT`, `AND` and `OR` follow Kleene, and only `true` matches.

use std::cmp::Ordering;

use serde_json::{Number, Value};

use super::ast::{CompareOp, Expr, Function, Operand, Path, Root};

/// The value of a condition: SQL's three-valued logic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Truth {
    True,
    False,
    Undefined,
}

impl From<bool> for Truth {
    fn from(b: bool) -> Self {
        if b { Truth::True } else { Truth::False }
    }
}

impl Truth {
    fn not(self) -> Self {
        match self {
            Truth::True => Truth::False,
            Truth::False => Truth::True,
            Truth::Undefined => Truth::Undefined,
        }
    }
}

/// The value of `expr` for `twin`.
pub(super) fn eval(expr: &Expr, twin: &Value) -> Truth {
    match expr {
        Expr::Or(items) => kleene(items, twin, Truth::True),
        Expr::And(items) => kleene(items, twin, Truth::False),
        Expr::Not(operand) => eval(operand, twin).not(),
        Expr::Compare { left, op, right } => compare(*op, resolve(left, twin), resolve(right, twin)),
        Expr::In { operand, negated, list } => {
            let found = match resolve(operand, twin) {
                None => Truth::Undefined,
                Some(value) => {
                    let mut truth = Truth::False;
                    for item in list {
                        match compare(CompareOp::Eq, Some(value), Some(item)) {
                            Truth::True => {
                                truth = Truth::True;
                                break;
                            }
                            Truth::Undefined => truth = Truth::Undefined,
                            Truth::False => {}
                        }
                    }
                    truth
                }
            };
            if *negated { found.not() } else { found }
        }
        Expr::Call { function, args } => call(*function, args, twin),
    }
}

/// OR (`decisive` true) or AND (`decisive` false) of `items`: `decisive` if any item is,
/// else undefined if any item is, else the other value.
fn kleene(items: &[Expr], twin: &Value, decisive: Truth) -> Truth {
    let mut undefined = false;
    for item in items {
        match eval(item, twin) {
            Truth::Undefined => undefined = true,
            truth if truth == decisive => return decisive,
            _ => {}
        }
    }
    if undefined { Truth::Undefined } else { decisive.not() }
}

/// The value an operand stands for; `None` when it is undefined.
fn resolve<'a>(operand: &'a Operand, twin: &'a Value) -> Option<&'a Value> {
    match operand {
        Operand::Literal(value) => Some(value),
        Operand::Path(path) => lookup(path, twin),
    }
}

/// The value at `path` in `twin`; `None` when a step is missing or not an object.
pub(super) fn lookup<'a>(path: &Path, twin: &'a Value) -> Option<&'a Value> {
    let root = match path.root {
        Root::DeviceId => twin.get("deviceId"),
        Root::ModuleId => twin.get("moduleId"),
        Root::Tags => twin.get("tags"),
        Root::Desired => twin.get("properties")?.get("desired"),
        Root::Reported => twin.get("properties")?.get("reported"),
        Root::Version => twin.get("$version"),
        Root::Status => twin.get("status"),
        Root::IotEdge => twin.get("capabilities")?.get("iotEdge"),
    }?;
    path.members.iter().try_fold(root, |value, member| value.as_object()?.get(member))
}

/// `left op right`: defined only for two defined values of one type; ordering only for
/// numbers and strings, objects and arrays only for (deep) equality.
fn compare(op: CompareOp, left: Option<&Value>, right: Option<&Value>) -> Truth {
    let (Some(left), Some(right)) = (left, right) else {
        return Truth::Undefined;
    };
    let ordering = match (left, right) {
        (Value::Number(a), Value::Number(b)) => number_order(a, b),
        (Value::String(a), Value::String(b)) => a.cmp(b),
        (Value::Bool(_), Value::Bool(_))
        | (Value::Null, Value::Null)
        | (Value::Object(_), Value::Object(_))
        | (Value::Array(_), Value::Array(_)) => {
            return match op {
                CompareOp::Eq => deep_equal(left, right).into(),
                CompareOp::Ne => (!deep_equal(left, right)).into(),
                _ => Truth::Undefined,
            };
        }
        _ => return Truth::Undefined,
    };
    match op {
        CompareOp::Eq => ordering.is_eq(),
        CompareOp::Ne => ordering.is_ne(),
        CompareOp::Lt => ordering.is_lt(),
        CompareOp::Le => ordering.is_le(),
        CompareOp::Gt => ordering.is_gt(),
        CompareOp::Ge => ordering.is_ge(),
    }
    .into()
}

/// Numeric order, exact between integers and between an integer and a float.
fn number_order(a: &Number, b: &Number) -> Ordering {
    match (integer(a), integer(b)) {
        (Some(a), Some(b)) => a.cmp(&b),
        (Some(a), None) => integer_float(a, float(b)),
        (None, Some(b)) => integer_float(b, float(a)).reverse(),
        // Neither is NaN: serde_json floats are finite.
        (None, None) => float(a).partial_cmp(&float(b)).unwrap_or(Ordering::Equal),
    }
}

fn integer(n: &Number) -> Option<i128> {
    n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from))
}

fn float(n: &Number) -> f64 {
    // serde_json numbers are integers (handled apart) or finite floats.
    n.as_f64().unwrap_or(f64::NAN)
}

/// The order of integer `i` against float `f`, without rounding `i`.
fn integer_float(i: i128, f: f64) -> Ordering {
    // 2^100 is past every i64 and u64, and exactly representable.
    const BEYOND: f64 = 1_267_650_600_228_229_401_496_703_205_376.0;
    if f.is_nan() {
        return Ordering::Less;
    }
    if f >= BEYOND {
        return Ordering::Less;
    }
    if f <= -BEYOND {
        return Ordering::Greater;
    }
    let whole = f.trunc();
    // |whole| < 2^100, so the conversion is exact.
    let truncated = whole as i128;
    i.cmp(&truncated).then(if f > whole {
        Ordering::Less
    } else if f < whole {
        Ordering::Greater
    } else {
        Ordering::Equal
    })
}

/// Whether `a` and `b` are the same JSON value, numbers compared numerically. Iterative,
/// so that deep documents cannot exhaust the stack.
fn deep_equal(a: &Value, b: &Value) -> bool {
    let mut pending = vec![(a, b)];
    while let Some((a, b)) = pending.pop() {
        match (a, b) {
            (Value::Null, Value::Null) => {}
            (Value::Bool(a), Value::Bool(b)) if a == b => {}
            (Value::Number(a), Value::Number(b)) if number_order(a, b).is_eq() => {}
            (Value::String(a), Value::String(b)) if a == b => {}
            (Value::Array(a), Value::Array(b)) if a.len() == b.len() => pending.extend(a.iter().zip(b)),
            (Value::Object(a), Value::Object(b)) if a.len() == b.len() => {
                for (key, value) in a {
                    let Some(other) = b.get(key) else {
                        return false;
                    };
                    pending.push((value, other));
                }
            }
            _ => return false,
        }
    }
    true
}

/// A predicate function: the type tests are always defined; the string tests are undefined
/// unless both arguments are strings.
fn call(function: Function, args: &[Operand], twin: &Value) -> Truth {
    let arg = |i: usize| args.get(i).and_then(|operand| resolve(operand, twin));
    let is = |test: fn(&Value) -> bool| Truth::from(arg(0).is_some_and(test));
    let strings = |test: fn(&str, &str) -> bool| match (arg(0), arg(1)) {
        (Some(Value::String(a)), Some(Value::String(b))) => Truth::from(test(a, b)),
        _ => Truth::Undefined,
    };
    match function {
        Function::IsDefined => is(|_| true),
        Function::IsNull => is(Value::is_null),
        Function::IsBool => is(Value::is_boolean),
        Function::IsNumber => is(Value::is_number),
        Function::IsString => is(Value::is_string),
        Function::IsObject => is(Value::is_object),
        Function::IsArray => is(Value::is_array),
        Function::StartsWith => strings(|a, b| a.starts_with(b)),
        Function::EndsWith => strings(|a, b| a.ends_with(b)),
        Function::Contains => strings(|a, b| a.contains(b)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn order(a: Value, b: Value) -> Ordering {
        let (Value::Number(a), Value::Number(b)) = (a, b) else { panic!("numbers only") };
        number_order(&a, &b)
    }

    #[test]
    fn numbers_order_exactly_across_integers_and_floats() {
        assert_eq!(order(json!(9), json!(9.0)), Ordering::Equal);
        assert_eq!(order(json!(9.5), json!(9)), Ordering::Greater);
        assert_eq!(order(json!(-9.5), json!(-9)), Ordering::Less);
        assert_eq!(order(json!(-1), json!(u64::MAX)), Ordering::Less);
        assert_eq!(order(json!(u64::MAX), json!(1.8446744073709552e19)), Ordering::Less);
        assert_eq!(order(json!(i64::MIN), json!(-9.223_372_036_854_776e18)), Ordering::Equal);
        assert_eq!(order(json!(i64::MAX), json!(1e300)), Ordering::Less);
        assert_eq!(order(json!(-1e300), json!(i64::MIN)), Ordering::Less);
        assert_eq!(order(json!(0.1), json!(0.2)), Ordering::Less);
        assert_eq!(order(json!(-0.0), json!(0)), Ordering::Equal);
        assert_eq!(order(json!(-0.0), json!(0.0)), Ordering::Equal);
    }

    #[test]
    fn deep_equality_compares_numbers_by_value_and_ignores_member_order() {
        assert!(deep_equal(
            &json!({"a": [1, 2.0, {"b": null}], "c": "x"}),
            &json!({"c": "x", "a": [1.0, 2, {"b": null}]})
        ));
        assert!(!deep_equal(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
        assert!(!deep_equal(&json!({"a": 1}), &json!({"b": 1})));
        assert!(!deep_equal(&json!([1, 2]), &json!([2, 1])));
        assert!(!deep_equal(&json!([1]), &json!(["1"])));
    }
}
