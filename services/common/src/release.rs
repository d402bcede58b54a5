// Shared by build.rs (via include!) and the crate's tests.

/// `vX.Y.Z` -> `release/mark-vX-Y-Z`; anything else is not a release tag.
pub fn release_name(tag: &str) -> Option<String> {
    let v = tag.strip_prefix('v')?;
    let parts: Vec<&str> = v.split('.').collect();
    let numeric = parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    numeric.then(|| format!("release/mark-v{}", parts.join("-")))
}
