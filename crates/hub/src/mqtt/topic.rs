//! Topic names and filters: validation as the spec requires and matching with `+` and `#`
//! (filters starting with a wildcard do not match topics starting with `$`), plus MQTT 5
//! shared subscriptions (`$share/{group}/{filter}`).

/// Why a topic name or filter is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// Empty.
    #[error("is empty")]
    Empty,
    /// Longer than a string can be.
    #[error("is longer than 65,535 bytes")]
    TooLong,
    /// A wildcard in a topic name.
    #[error("{0:?} contains a wildcard; topic names cannot")]
    WildcardInName(String),
    /// `#` not alone in the last level, or `+` not alone in its level.
    #[error("{0:?} uses a wildcard inside a level or `#` before the last level")]
    BadWildcard(String),
    /// `$share/` without a group or filter, or a group with wildcards.
    #[error("{0:?} is not a valid shared subscription ($share/group/filter)")]
    BadShare(String),
}

/// Checks a topic name a client publishes to.
pub fn validate_name(name: &str) -> Result<(), TopicError> {
    if name.is_empty() {
        return Err(TopicError::Empty);
    }
    if name.len() > u16::MAX as usize {
        return Err(TopicError::TooLong);
    }
    if name.contains(['+', '#']) {
        return Err(TopicError::WildcardInName(name.to_owned()));
    }
    Ok(())
}

/// A topic filter, split into its shared-subscription group (if any) and the filter proper.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Filter {
    /// `$share` group.
    pub share_group: Option<String>,
    /// The filter that topics are matched against.
    pub filter: String,
}

/// Checks and splits a topic filter a client subscribes to.
pub fn parse_filter(text: &str) -> Result<Filter, TopicError> {
    if text.is_empty() {
        return Err(TopicError::Empty);
    }
    if text.len() > u16::MAX as usize {
        return Err(TopicError::TooLong);
    }
    let (share_group, filter) = match text.strip_prefix("$share/") {
        Some(rest) => {
            let (group, filter) = rest.split_once('/').ok_or_else(|| TopicError::BadShare(text.to_owned()))?;
            if group.is_empty() || group.contains(['+', '#']) || filter.is_empty() {
                return Err(TopicError::BadShare(text.to_owned()));
            }
            (Some(group.to_owned()), filter)
        }
        None => (None, text),
    };
    let levels: Vec<&str> = filter.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        let bad =
            (level.contains('#') && (*level != "#" || i + 1 != levels.len())) || (level.contains('+') && *level != "+");
        if bad {
            return Err(TopicError::BadWildcard(text.to_owned()));
        }
    }
    Ok(Filter { share_group, filter: filter.to_owned() })
}

/// Whether topic `name` matches `filter` (both already validated).
pub fn matches(filter: &str, name: &str) -> bool {
    if name.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut filter_levels = filter.split('/');
    let mut name_levels = name.split('/');
    loop {
        match (filter_levels.next(), name_levels.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(f), Some(n)) if f == n => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Whether `filter` contains a wildcard.
pub fn has_wildcard(filter: &str) -> bool {
    filter.contains(['+', '#'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_filters_are_validated() {
        assert!(validate_name("a/b").is_ok());
        assert!(validate_name("/").is_ok());
        assert_eq!(validate_name(""), Err(TopicError::Empty));
        assert!(matches!(validate_name("a/+"), Err(TopicError::WildcardInName(_))));
        for ok in ["#", "+", "a/#", "a/+/b", "+/+", "/+", "$share/g/a/#", "$SYS/#"] {
            assert!(parse_filter(ok).is_ok(), "{ok}");
        }
        for bad in ["a#", "a/#/b", "a+", "+a/b", "#/", "$share/g", "$share//a", "$share/g+/a", ""] {
            assert!(parse_filter(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_filter("$share/group/devices/+").unwrap(),
            Filter { share_group: Some("group".into()), filter: "devices/+".into() }
        );
    }

    #[test]
    fn matching_follows_the_spec_examples() {
        let cases = [
            ("sport/tennis/player1/#", "sport/tennis/player1", true),
            ("sport/tennis/player1/#", "sport/tennis/player1/ranking", true),
            ("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true),
            ("sport/#", "sport", true),
            ("#", "anything/at/all", true),
            ("sport/tennis/+", "sport/tennis/player1", true),
            ("sport/tennis/+", "sport/tennis/player1/ranking", false),
            ("sport/+", "sport", false),
            ("sport/+", "sport/", true),
            ("+/+", "/finance", true),
            ("/+", "/finance", true),
            ("+", "/finance", false),
            ("#", "$SYS/uptime", false),
            ("+/monitor/Clients", "$SYS/monitor/Clients", false),
            ("$SYS/#", "$SYS/uptime", true),
            ("$SYS/monitor/+", "$SYS/monitor/Clients", true),
            ("a/b", "a/b", true),
            ("a/b", "a/b/c", false),
            ("devices/d1/modules/m1/#", "devices/d1/modules/m1/inputs/in1/%24.cdid=d1", true),
        ];
        for (filter, name, expected) in cases {
            assert_eq!(matches(filter, name), expected, "{filter} vs {name}");
        }
    }
}
