//! API tokens, each with a name and a role: `read` may list, get and read
//! results; `operate` may also start and stop. From a file
//! (TELEGEN_API_TOKEN_FILE: `name:role:token` per line, `#` comments), or
//! the one legacy TELEGEN_API_TOKEN (role operate). A token is never
//! logged; its name is what the probe's audit log shows.

use std::fmt;

use telegen_common::ConfigError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Read,
    Operate,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Operate => "operate",
        }
    }
}

/// Who a request authenticated as.
#[derive(Clone, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub role: Role,
}

#[derive(Clone)]
struct Token {
    id: Identity,
    secret: String,
}

/// The tokens the gateway accepts (none: no authentication).
#[derive(Clone, Default)]
pub struct Tokens(Vec<Token>);

impl fmt::Debug for Tokens {
    // Names and roles, never the secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(
                self.0
                    .iter()
                    .map(|t| format!("{}:{}", t.id.name, t.id.role.as_str())),
            )
            .finish()
    }
}

fn check_secret(var: &'static str, what: &str, secret: &str) -> Result<(), ConfigError> {
    if secret.len() < 16 || !secret.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ConfigError::new(
            var,
            format!(
                "{what}: a token must be at least 16 printable ASCII characters without spaces"
            ),
        ));
    }
    Ok(())
}

impl Tokens {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// TELEGEN_API_TOKEN_FILE's contents and/or TELEGEN_API_TOKEN.
    pub fn parse(file: Option<(&str, &str)>, env_token: Option<&str>) -> Result<Self, ConfigError> {
        const FILE_VAR: &str = "TELEGEN_API_TOKEN_FILE";
        let mut tokens = Vec::new();
        if let Some((path, text)) = file {
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let at = format!("{path} line {}", n + 1);
                let mut f = line.splitn(3, ':');
                let (Some(name), Some(role), Some(secret)) = (f.next(), f.next(), f.next()) else {
                    return Err(ConfigError::new(
                        FILE_VAR,
                        format!("{at}: expected name:role:token"),
                    ));
                };
                let name_ok = !name.is_empty()
                    && name.len() <= 64
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_.-@".contains(c));
                if !name_ok {
                    return Err(ConfigError::new(
                        FILE_VAR,
                        format!("{at}: {name:?} is not a token name (letters, digits, _ . - @)"),
                    ));
                }
                let role = match role {
                    "read" => Role::Read,
                    "operate" => Role::Operate,
                    r => {
                        return Err(ConfigError::new(
                            FILE_VAR,
                            format!("{at}: role {r:?} is not read or operate"),
                        ))
                    }
                };
                check_secret(FILE_VAR, &at, secret)?;
                if tokens
                    .iter()
                    .any(|t: &Token| t.id.name == name || t.secret == secret)
                {
                    return Err(ConfigError::new(
                        FILE_VAR,
                        format!("{at}: {name:?} or its token is given twice"),
                    ));
                }
                tokens.push(Token {
                    id: Identity {
                        name: name.into(),
                        role,
                    },
                    secret: secret.into(),
                });
            }
            if tokens.is_empty() {
                return Err(ConfigError::new(FILE_VAR, format!("{path} holds no token")));
            }
        }
        if let Some(secret) = env_token {
            check_secret("TELEGEN_API_TOKEN", "TELEGEN_API_TOKEN", secret)?;
            tokens.push(Token {
                id: Identity {
                    name: "TELEGEN_API_TOKEN".into(),
                    role: Role::Operate,
                },
                secret: secret.into(),
            });
        }
        Ok(Tokens(tokens))
    }

    /// The identity of `given`, comparing with every token in constant
    /// time (the response time says nothing of how much of a guess was
    /// right, nor which token came close).
    pub fn identify(&self, given: &str) -> Option<Identity> {
        let mut found = None;
        for t in &self.0 {
            if constant_time_eq(given.as_bytes(), t.secret.as_bytes()) {
                found = Some(t.id.clone());
            }
        }
        found
    }
}

/// Compares without an early exit, so response time does not reveal how much
/// of a guessed token was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }

    #[test]
    fn a_file_of_named_tokens_with_roles() {
        let text = "# who may use the API\nalice:operate:aaaaaaaaaaaaaaaa1\n\nmonitor:read:bbbbbbbbbbbbbbbb2\n";
        let t = Tokens::parse(
            Some(("/etc/telegen/tokens", text)),
            Some("cccccccccccccccc3"),
        )
        .unwrap();
        let id = |s| t.identify(s).map(|i| (i.name, i.role));
        assert_eq!(
            id("aaaaaaaaaaaaaaaa1"),
            Some(("alice".into(), Role::Operate))
        );
        assert_eq!(
            id("bbbbbbbbbbbbbbbb2"),
            Some(("monitor".into(), Role::Read))
        );
        assert_eq!(
            id("cccccccccccccccc3"),
            Some(("TELEGEN_API_TOKEN".into(), Role::Operate))
        );
        assert_eq!(id("aaaaaaaaaaaaaaaa"), None);
        let shown = format!("{t:?}");
        assert!(
            shown.contains("monitor:read") && !shown.contains("bbbb"),
            "{shown}"
        );
    }

    #[test]
    fn bad_files_say_where() {
        for (text, what) in [
            ("alice:operate", "expected name:role:token"),
            ("alice:admin:aaaaaaaaaaaaaaaa1", "role \"admin\""),
            ("alice:read:short", "at least 16"),
            ("al ice:read:aaaaaaaaaaaaaaaa1", "not a token name"),
            (
                "a:read:aaaaaaaaaaaaaaaa1\na:operate:bbbbbbbbbbbbbbbb2",
                "twice",
            ),
            ("# nothing\n", "holds no token"),
        ] {
            let e = Tokens::parse(Some(("f", text)), None).err().unwrap();
            assert_eq!(e.var, "TELEGEN_API_TOKEN_FILE");
            assert!(e.msg.contains(what), "{text}: {}", e.msg);
        }
    }
}
