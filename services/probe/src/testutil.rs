//! Helpers of the unit tests.

/// A variable source over `kv`, as the `from_vars` parsers take.
pub fn vars(kv: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let m: std::collections::HashMap<String, String> = kv
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| m.get(k).cloned()
}
