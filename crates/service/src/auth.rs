//! Bearer tokens → projects, and a request-rate limit per token.
//!
//! Tokens are kept only as SHA-256 digests (looked up by digest, so the comparison does not
//! leak a prefix through timing, and a memory dump does not show them). The rate limit is a
//! token bucket per token: `burst` requests at once, refilled at `requests_per_minute`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::config::{Limits, TokenEntry};

type TokenKey = [u8; 32];

/// The project a request acts for (put into the request by the auth middleware).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project(pub String);

/// A request was over the limit; try again after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimited {
    pub retry_after: Duration,
}

pub struct Auth {
    projects: HashMap<TokenKey, String>,
    buckets: Mutex<HashMap<TokenKey, Bucket>>,
    per_second: f64,
    burst: f64,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The bucket of requests with invalid tokens (no SHA-256 digest is all zeros in practice).
const FAILURES: TokenKey = [0; 32];

fn key(token: &str) -> TokenKey {
    Sha256::digest(token.as_bytes()).into()
}

/// Whether two secrets are equal, compared by digest (no prefix leaks through timing).
pub fn same_secret(a: &str, b: &str) -> bool {
    key(a) == key(b)
}

impl Auth {
    pub fn new(tokens: &[TokenEntry], limits: &Limits) -> Self {
        Auth {
            projects: tokens
                .iter()
                .map(|t| (key(t.token.expose()), t.project.clone()))
                .collect(),
            buckets: Mutex::default(),
            per_second: f64::from(limits.requests_per_minute.max(1)) / 60.0,
            burst: f64::from(limits.burst.max(1)),
        }
    }

    /// The project of a bearer token, if it is one of ours.
    pub fn project(&self, token: &str) -> Option<Project> {
        self.projects.get(&key(token)).cloned().map(Project)
    }

    /// Takes one request from the token's bucket.
    pub fn admit(&self, token: &str) -> Result<(), RateLimited> {
        self.admit_at(token, Instant::now())
    }

    /// Takes one request from the bucket all invalid tokens share.
    pub fn admit_failure(&self) -> Result<(), RateLimited> {
        self.admit_key(FAILURES, Instant::now())
    }

    fn admit_at(&self, token: &str, now: Instant) -> Result<(), RateLimited> {
        self.admit_key(key(token), now)
    }

    fn admit_key(&self, key: TokenKey, now: Instant) -> Result<(), RateLimited> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / self.per_second;
            Err(RateLimited {
                retry_after: Duration::from_secs_f64(wait.ceil().max(1.0)),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imagespec_core::config::Secret;

    #[test]
    fn tokens_map_to_projects_and_buckets_refill() {
        let tokens = [TokenEntry {
            project: "a".into(),
            token: Secret::new("t-aaaaaaaaaaaaaaaa"),
        }];
        let limits = Limits {
            requests_per_minute: 60,
            burst: 2,
            ..Limits::default()
        };
        let auth = Auth::new(&tokens, &limits);
        assert_eq!(
            auth.project("t-aaaaaaaaaaaaaaaa"),
            Some(Project("a".into()))
        );
        assert_eq!(auth.project("t-aaaaaaaaaaaaaaab"), None);
        let t0 = Instant::now();
        assert!(auth.admit_at("t", t0).is_ok());
        assert!(auth.admit_at("t", t0).is_ok());
        let limited = auth.admit_at("t", t0).expect_err("over the burst");
        assert_eq!(limited.retry_after, Duration::from_secs(1));
        assert!(auth.admit_at("other", t0).is_ok(), "buckets are per token");
        assert!(auth.admit_at("t", t0 + Duration::from_millis(1100)).is_ok());
    }
}
