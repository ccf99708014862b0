//! Bearer tokens for an OTLP input (`auth_token_file=PATH`): [`BearerTokens`]
//! loads the file at start and at each SIGHUP ([`crate::reload`]) (one token per line; blank lines and
//! `#` comments ignored) and [`BearerTokens::accepts`] checks a request's
//! `Authorization` header against every token in constant time, so the
//! time a refusal takes says nothing about how much of a token matched.
//!
//! No token is ever printed: messages name the file and the line.

use crate::credentials::read_bounded;
use std::path::Path;
use subtle::ConstantTimeEq;

/// Largest token file read: thousands of tokens fit in far less.
const MAX_TOKEN_FILE_BYTES: u64 = 1 << 20;
/// Most tokens one file may hold (each request is compared with all).
pub(crate) const MAX_TOKENS: usize = 1024;
/// Longest token accepted, in bytes.
const MAX_TOKEN_BYTES: usize = 4096;

/// The tokens an OTLP input accepts in `Authorization: Bearer <token>`
/// (no `Debug`: nothing may print them).
pub(crate) struct BearerTokens {
    /// At least one; each 1 to [`MAX_TOKEN_BYTES`] bytes of RFC 6750
    /// token characters.
    tokens: Vec<Box<[u8]>>,
}

impl BearerTokens {
    /// Reads `path`. `Err` is one line naming the file (and the line of a
    /// bad token), never a token.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = read_bounded("auth_token_file", path, MAX_TOKEN_FILE_BYTES)?;
        Self::parse(&text).map_err(|error| format!("auth_token_file {}: {error}", path.display()))
    }

    /// The tokens of a file's bytes.
    fn parse(text: &[u8]) -> Result<Self, String> {
        let mut tokens = Vec::new();
        for (index, line) in text.split(|&byte| byte == b'\n').enumerate() {
            let line = line.trim_ascii();
            if line.is_empty() || line.starts_with(b"#") {
                continue;
            }
            let number = index + 1;
            if line.len() > MAX_TOKEN_BYTES || !line.iter().copied().all(is_token_byte) {
                return Err(format!(
                    "line {number} is not a bearer token (at most {MAX_TOKEN_BYTES} of A-Z a-z 0-9 - . _ ~ + / and a trailing =)"
                ));
            }
            if tokens.len() == MAX_TOKENS {
                return Err(format!("more than {MAX_TOKENS} tokens"));
            }
            tokens.push(line.into());
        }
        if tokens.is_empty() {
            return Err(
                "no token in it (one token per line; blank lines and # comments are ignored)"
                    .to_string(),
            );
        }
        Ok(Self { tokens })
    }

    /// Whether `authorization` (an `Authorization` header's value, `None`
    /// when the request has none) is `Bearer <token>` with one of the
    /// tokens. Every token is compared, each in time that depends only on
    /// the lengths.
    pub fn accepts(&self, authorization: Option<&[u8]>) -> bool {
        let Some(presented) = authorization.and_then(bearer_token) else {
            return false;
        };
        let mut matched = subtle::Choice::from(0);
        for token in &self.tokens {
            // (`ct_eq` of slices of different lengths is false, at once:
            // a token's length is not a secret worth hiding.)
            matched |= token[..].ct_eq(presented);
        }
        matched.into()
    }
}

/// RFC 6750's b64token characters (and `=`, its padding).
fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=')
}

/// The token of `Bearer <token>` (the scheme in any case, RFC 7235).
fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    let value = value.trim_ascii();
    let (scheme, rest) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"bearer") || !rest.starts_with(b" ") {
        return None;
    }
    let token = rest.trim_ascii_start();
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_file_has_one_token_a_line_with_blank_lines_and_comments_ignored() {
        let tokens =
            BearerTokens::parse(b"# the collectors\n\n  s3cr3t-A  \r\n#x\nother.token/2==\n")
                .unwrap();
        assert_eq!(tokens.tokens.len(), 2);
        let accepts = |value: &str| tokens.accepts(Some(value.as_bytes()));
        assert!(accepts("Bearer s3cr3t-A"));
        assert!(accepts("bearer   other.token/2== "));
        assert!(!tokens.accepts(None));
        for refused in [
            "",
            "Bearer",
            "Bearer ",
            "Bearer s3cr3t-a",
            "Bearer s3cr3t-A2",
            "Bearer s3cr3t",
            "Basic s3cr3t-A",
            "Bearers3cr3t-A",
            "s3cr3t-A",
        ] {
            assert!(!accepts(refused), "{refused:?}");
        }
        for (text, says) in [
            ("", "no token"),
            ("# only a comment\n\n", "no token"),
            ("good\nhas space\n", "line 2 is not a bearer token"),
            ("tab\there", "line 1"),
        ] {
            let text = text.as_bytes();
            let Err(error) = BearerTokens::parse(text) else {
                panic!("{text:?} parsed");
            };
            assert!(error.contains(says), "{text:?}: {error}");
            assert!(!error.contains("good"), "a token was printed: {error}");
        }
    }
}
