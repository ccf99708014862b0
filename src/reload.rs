//! What SIGHUP reloads: each network input's credentials, read anew from
//! disk so that certificate rotation needs no restart.
//!
//! [`Credentials`] is one input's: its TLS files (certificate, key, client
//! CA; see [`crate::tls::server_config`]) and an OTLP input's bearer token
//! file ([`BearerTokens`]), each kept in a [`Published`] cell that the
//! input's I/O worker reads through a [`Latest`] view. At SIGHUP the
//! signal thread calls [`Credentials::reload`]: it reads and checks every
//! file first, then, only when all of them are good, publishes the new
//! values; one bad file keeps every old value and is one warning saying
//! why. Both outcomes are counted in [`TlsCounters`].

use crate::auth::BearerTokens;
use crate::config::TlsFiles;
use crate::credentials::{Latest, Published};
use crate::metrics::TlsCounters;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// One input's credentials and the files they are read from.
pub(crate) struct Credentials {
    /// The input's name (its SPEC), for messages.
    name: String,
    tls: Option<(TlsFiles, Arc<Published<rustls::ServerConfig>>)>,
    tokens: Option<(PathBuf, Arc<Published<BearerTokens>>)>,
    /// Where reloads are counted.
    counters: Arc<TlsCounters>,
}

/// What one load of an input's files gave.
type Loaded = (Option<rustls::ServerConfig>, Option<BearerTokens>);

impl Credentials {
    /// Reads `tls`'s files and the token file `tokens` for input `name`.
    /// `Err` is one line naming the file and what is wrong with it.
    pub fn load(
        name: &str,
        tls: Option<&TlsFiles>,
        tokens: Option<&Path>,
        counters: Arc<TlsCounters>,
    ) -> Result<Self, String> {
        let (config, bearer) = load_files(tls, tokens)?;
        Ok(Self {
            name: name.to_string(),
            tls: tls.cloned().zip(config.map(Published::new)),
            tokens: tokens
                .map(Path::to_path_buf)
                .zip(bearer.map(Published::new)),
            counters,
        })
    }

    /// The worker's view of the TLS server configuration (a TLS input).
    pub fn server_config(&self) -> Option<Latest<rustls::ServerConfig>> {
        self.tls.as_ref().map(|(_, published)| published.latest())
    }

    /// The worker's view of the bearer tokens (`auth_token_file=`).
    pub fn tokens(&self) -> Option<Latest<BearerTokens>> {
        self.tokens
            .as_ref()
            .map(|(_, published)| published.latest())
    }

    /// Reads every file again (SIGHUP). All good: the new values are
    /// published (the TLS configuration, then the tokens), counted, and
    /// said on stderr. One bad: nothing changes; counted and one warning
    /// saying why.
    pub fn reload(&self) {
        let tls = self.tls.as_ref().map(|(files, _)| files);
        let tokens = self.tokens.as_ref().map(|(path, _)| path.as_path());
        match load_files(tls, tokens) {
            Ok((config, bearer)) => {
                if let (Some((_, published)), Some(config)) = (&self.tls, config) {
                    published.store(config);
                }
                if let (Some((_, published)), Some(bearer)) = (&self.tokens, bearer) {
                    published.store(bearer);
                }
                self.counters
                    .credential_reloads
                    .fetch_add(1, Ordering::Relaxed);
                eprintln!(
                    "ringway: input '{}': SIGHUP: reloaded {}; new connections and requests use them",
                    self.name,
                    self.what()
                );
            }
            Err(error) => {
                self.counters
                    .credential_reload_failures
                    .fetch_add(1, Ordering::Relaxed);
                eprintln!(
                    "ringway: warning: input '{}': SIGHUP: cannot reload {}, keeping the ones loaded before; error = {error}",
                    self.name,
                    self.what()
                );
            }
        }
    }

    /// What the input reloads, in words.
    fn what(&self) -> &'static str {
        match (&self.tls, &self.tokens) {
            (Some((files, _)), Some(_)) if files.client_ca.is_some() => {
                "its TLS certificate, key and client CA and its auth_token_file"
            }
            (Some(_), Some(_)) => "its TLS certificate and key and its auth_token_file",
            (Some((files, _)), None) if files.client_ca.is_some() => {
                "its TLS certificate, key and client CA"
            }
            (Some(_), None) => "its TLS certificate and key",
            (None, _) => "its auth_token_file",
        }
    }
}

/// Every file of an input, read and checked; the first bad one is `Err`.
fn load_files(tls: Option<&TlsFiles>, tokens: Option<&Path>) -> Result<Loaded, String> {
    let config = tls.map(crate::tls::server_config).transpose()?;
    let bearer = tokens.map(BearerTokens::load).transpose()?;
    Ok((config, bearer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_token_file_at_reload_keeps_the_tokens_and_counts_a_failure() {
        let dir = std::env::temp_dir().join(format!("ringway-credentials-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tokens");
        std::fs::write(&path, "first-token\n").unwrap();
        let counters = Arc::new(TlsCounters::default());
        let credentials =
            Credentials::load("otlp:test", None, Some(&path), Arc::clone(&counters)).unwrap();
        let mut tokens = credentials.tokens().expect("a token file was given");
        assert!(credentials.server_config().is_none());
        let accepts = |tokens: &mut Latest<BearerTokens>, token: &str| {
            tokens
                .get()
                .accepts(Some(format!("Bearer {token}").as_bytes()))
        };
        assert!(accepts(&mut tokens, "first-token"));
        std::fs::write(&path, "# emptied by mistake\n").unwrap();
        credentials.reload();
        assert_eq!(
            counters.credential_reload_failures.load(Ordering::Relaxed),
            1
        );
        assert_eq!(counters.credential_reloads.load(Ordering::Relaxed), 0);
        assert!(accepts(&mut tokens, "first-token"));
        std::fs::write(&path, "second-token\n").unwrap();
        credentials.reload();
        assert_eq!(counters.credential_reloads.load(Ordering::Relaxed), 1);
        assert!(!accepts(&mut tokens, "first-token"));
        assert!(accepts(&mut tokens, "second-token"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
