//! DynamoDB's attribute values, their sizes and write units, and the table's key schema.

use std::fmt;

/// An attribute value, as DynamoDB types it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// String.
    S(String),
    /// Number, as decimal text (DynamoDB keeps up to 38 significant digits exactly).
    N(String),
    /// Binary.
    B(Vec<u8>),
    /// Boolean.
    Bool(bool),
    /// Null.
    Null,
    /// List.
    L(Vec<Value>),
    /// Map.
    M(Vec<(String, Value)>),
    /// String set.
    Ss(Vec<String>),
    /// Number set.
    Ns(Vec<String>),
    /// Binary set.
    Bs(Vec<Vec<u8>>),
}

/// An item: attribute names and values, in source order.
pub type Item = Vec<(String, Value)>;

/// The largest item DynamoDB stores.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

impl Value {
    /// The type's name as DynamoDB writes it (`S`, `N`, `BOOL`, …).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::S(_) => "S",
            Value::N(_) => "N",
            Value::B(_) => "B",
            Value::Bool(_) => "BOOL",
            Value::Null => "NULL",
            Value::L(_) => "L",
            Value::M(_) => "M",
            Value::Ss(_) => "SS",
            Value::Ns(_) => "NS",
            Value::Bs(_) => "BS",
        }
    }

    /// Its size by DynamoDB's rules ("Item sizes and formats", DynamoDB developer guide):
    /// strings and binaries their bytes, a number about one byte per two significant digits
    /// plus one, booleans and nulls one byte, a list or map three bytes plus one per element
    /// plus its contents.
    pub fn size(&self) -> usize {
        match self {
            Value::S(s) => s.len(),
            Value::N(n) => number_size(n),
            Value::B(b) => b.len(),
            Value::Bool(_) | Value::Null => 1,
            Value::L(list) => 3 + list.iter().map(|v| 1 + v.size()).sum::<usize>(),
            Value::M(map) => {
                3 + map
                    .iter()
                    .map(|(k, v)| 1 + k.len() + v.size())
                    .sum::<usize>()
            }
            Value::Ss(set) => set.iter().map(String::len).sum(),
            Value::Ns(set) => set.iter().map(|n| number_size(n)).sum(),
            Value::Bs(set) => set.iter().map(Vec::len).sum(),
        }
    }

    /// The value as text, for key templates and messages: a string or number as written,
    /// booleans as `true`/`false`; `None` for what has no single text (null, binary, lists…).
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::S(s) | Value::N(s) => Some(s),
            Value::Bool(true) => Some("true"),
            Value::Bool(false) => Some("false"),
            _ => None,
        }
    }
}

/// Whether two values are the same as DynamoDB stores them: numbers by their canonical text,
/// maps and sets regardless of order.
pub fn same(a: &Value, b: &Value) -> bool {
    let numbers = |x: &str, y: &str| {
        number(x)
            .ok()
            .zip(number(y).ok())
            .is_some_and(|(x, y)| x == y)
            || x == y
    };
    let sorted = |v: &[String]| {
        let mut v: Vec<String> = v
            .iter()
            .map(|n| number(n).unwrap_or_else(|_| n.clone()))
            .collect();
        v.sort();
        v
    };
    match (a, b) {
        (Value::N(x), Value::N(y)) => numbers(x, y),
        (Value::L(x), Value::L(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::M(x), Value::M(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.iter().any(|(k2, v2)| k == k2 && same(v, v2)))
        }
        (Value::Ss(x), Value::Ss(y)) | (Value::Ns(x), Value::Ns(y)) => sorted(x) == sorted(y),
        (Value::Bs(x), Value::Bs(y)) => {
            let (mut x, mut y) = (x.clone(), y.clone());
            x.sort();
            y.sort();
            x == y
        }
        _ => a == b,
    }
}

/// What differs between the item that was written and the one read back, in a sentence.
pub fn difference(written: &Item, read: &Item) -> Option<String> {
    for (name, value) in written {
        match read.iter().find(|(n, _)| n == name) {
            None => return Some(format!("attribute {name} is missing")),
            Some((_, got)) if !same(value, got) => {
                return Some(format!(
                    "attribute {name} is {got:?}, the source has {value:?}"
                ));
            }
            _ => {}
        }
    }
    read.iter()
        .find(|(name, _)| !written.iter().any(|(n, _)| n == name))
        .map(|(name, _)| format!("attribute {name} is not in the source"))
}

/// An item's size: its attribute names plus their values.
pub fn item_size(item: &Item) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value.size())
        .sum()
}

/// The write units a put of `size` bytes costs: one per KB started.
pub fn write_units(size: usize) -> u64 {
    size.div_ceil(1024).max(1) as u64
}

fn significant_digits(number: &str) -> usize {
    let mantissa = number
        .trim_start_matches(['-', '+'])
        .split(['e', 'E'])
        .next()
        .unwrap_or("");
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    digits.trim_start_matches('0').trim_end_matches('0').len()
}

fn number_size(number: &str) -> usize {
    significant_digits(number).div_ceil(2) + 1
}

/// Checks that `text` is a number DynamoDB stores exactly (decimal, at most 38 significant
/// digits, magnitude between 1E-130 and 1E+126), and returns it as DynamoDB gives it back:
/// without a `+`, leading zeros or trailing fractional zeros (`+01.50` is `1.5`).
pub fn number(text: &str) -> Result<String, String> {
    let t = text.trim();
    let unsigned = t.strip_prefix(['-', '+']).unwrap_or(t);
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e)),
        None => (unsigned, None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits_ok = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if whole.is_empty() && fraction.is_empty()
        || !digits_ok(whole)
        || !digits_ok(fraction)
        || exponent.is_some_and(|e| {
            let e = e.strip_prefix(['-', '+']).unwrap_or(e);
            e.is_empty() || !digits_ok(e)
        })
    {
        return Err(format!("{text:?} is not a number"));
    }
    if significant_digits(t) > 38 {
        return Err(format!(
            "{text:?} has more than the 38 significant digits DynamoDB keeps"
        ));
    }
    // The magnitude: the position of the first significant digit, shifted by the exponent.
    let all: String = format!("{whole}{fraction}");
    if let Some(first) = all.find(|c: char| c != '0') {
        let exponent: i64 = exponent.and_then(|e| e.parse().ok()).unwrap_or(0);
        let magnitude = whole.len() as i64 - first as i64 - 1 + exponent;
        if !(-130..=125).contains(&magnitude) {
            return Err(format!(
                "{text:?} is outside the range DynamoDB stores (1E-130 to 9.9E+125)"
            ));
        }
    }
    Ok(canonical(t))
}

fn canonical(number: &str) -> String {
    let (negative, unsigned) = match number.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, number.strip_prefix('+').unwrap_or(number)),
    };
    if unsigned.contains(['e', 'E']) {
        return format!("{}{unsigned}", if negative { "-" } else { "" });
    }
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let whole = whole.trim_start_matches('0');
    let fraction = fraction.trim_end_matches('0');
    let whole = if whole.is_empty() { "0" } else { whole };
    let digits = if fraction.is_empty() {
        whole.to_string()
    } else {
        format!("{whole}.{fraction}")
    };
    if negative && digits != "0" {
        format!("-{digits}")
    } else {
        digits
    }
}

/// A key attribute's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// String.
    S,
    /// Number.
    N,
    /// Binary.
    B,
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyKind::S => "S",
            KeyKind::N => "N",
            KeyKind::B => "B",
        })
    }
}

/// A table's primary key: the partition key and the sort key, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySchema {
    /// Partition key name and type.
    pub hash: (String, KeyKind),
    /// Sort key name and type.
    pub range: Option<(String, KeyKind)>,
}

impl KeySchema {
    /// The key attributes, partition key first.
    pub fn attributes(&self) -> impl Iterator<Item = &(String, KeyKind)> {
        std::iter::once(&self.hash).chain(&self.range)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_the_documented_rules() {
        for (value, size) in [
            (Value::S("héllo".into()), 6),
            (Value::N("123".into()), 3),
            (Value::N("-0.0012300".into()), 3),
            (Value::N("1000".into()), 2),
            (Value::B(vec![0, 1, 2]), 3),
            (Value::Bool(false), 1),
            (Value::Null, 1),
            (
                Value::L(vec![Value::S("ab".into()), Value::N("1".into())]),
                3 + 1 + 2 + 1 + 2,
            ),
            (
                Value::M(vec![("a".into(), Value::S("b".into()))]),
                3 + 1 + 1 + 1,
            ),
        ] {
            assert_eq!(value.size(), size, "{value:?}");
        }
        assert_eq!(write_units(0), 1);
        assert_eq!(write_units(1024), 1);
        assert_eq!(write_units(1025), 2);
    }

    #[test]
    fn items_read_back_compare_as_dynamodb_stores_them() {
        let written: Item = vec![
            ("n".into(), Value::N("1.50".into())),
            (
                "m".into(),
                Value::M(vec![
                    ("a".into(), Value::Bool(true)),
                    ("b".into(), Value::Null),
                ]),
            ),
            ("s".into(), Value::Ss(vec!["y".into(), "x".into()])),
        ];
        let read: Item = vec![
            ("s".into(), Value::Ss(vec!["x".into(), "y".into()])),
            (
                "m".into(),
                Value::M(vec![
                    ("b".into(), Value::Null),
                    ("a".into(), Value::Bool(true)),
                ]),
            ),
            ("n".into(), Value::N("1.5".into())),
        ];
        assert_eq!(difference(&written, &read), None);
        let mut changed = read.clone();
        changed[2].1 = Value::N("2".into());
        assert_eq!(
            difference(&written, &changed),
            Some(r#"attribute n is N("2"), the source has N("1.50")"#.into())
        );
        assert_eq!(
            difference(&written, &read[..2].to_vec()),
            Some("attribute n is missing".into())
        );
        let mut extra = read.clone();
        extra.push(("z".into(), Value::Null));
        assert_eq!(
            difference(&written, &extra),
            Some("attribute z is not in the source".into())
        );
    }

    #[test]
    fn numbers_are_checked_as_dynamodb_stores_them() {
        for ok in [
            "0", "-12.5", "+3", ".5", "5.", "1e10", "1E-130", "9.9E+125", " 42 ",
        ] {
            assert!(number(ok).is_ok(), "{ok}");
        }
        for (text, canonical) in [
            (" 42 ", "42"),
            ("+01.50", "1.5"),
            ("-0.0", "0"),
            (".5", "0.5"),
            ("5.", "5"),
            ("-007", "-7"),
            ("1.0e3", "1.0e3"),
        ] {
            assert_eq!(number(text).unwrap(), canonical, "{text}");
        }
        for bad in [
            "", "-", "1.2.3", "abc", "1e", "0x10", "NaN", "inf", "1e126", "1e-131",
        ] {
            assert!(number(bad).is_err(), "{bad}");
        }
        assert!(number(&"1".repeat(38)).is_ok());
        assert!(number(&"1".repeat(39)).is_err());
        assert!(number(&format!("{}000", "1".repeat(38))).is_ok());
    }
}
