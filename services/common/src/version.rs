//! Build identity embedded by build.rs (SPEC section 7).

/// Version, short commit and UTC build date of this binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildInfo {
    pub version: &'static str,
    pub commit: &'static str,
    pub date: &'static str,
}

impl BuildInfo {
    pub const CURRENT: BuildInfo = BuildInfo {
        version: env!("TELEGEN_BUILD_VERSION"),
        commit: env!("TELEGEN_BUILD_COMMIT"),
        date: env!("TELEGEN_BUILD_DATE"),
    };

    /// The `--version` line shared by every binary.
    pub fn long_version() -> &'static str {
        concat!(
            env!("TELEGEN_BUILD_VERSION"),
            " (commit ",
            env!("TELEGEN_BUILD_COMMIT"),
            ", built ",
            env!("TELEGEN_BUILD_DATE"),
            ")"
        )
    }
}
