//! [`FailureThrottle`]: repeated wrong keys from one client address are slowed down.
//!
//! Only failures count (an unknown or revoked key), per client address, in a fixed window:
//! after `CODIFIER_AUTH_FAILURES` of them within `CODIFIER_AUTH_FAILURE_WINDOW_SECONDS`, a key
//! from that address that would need an argon2 check is answered 429 with `Retry-After` until
//! the window ends. A key this process has already proven still gets in from that address (it
//! needs no argon2), and other addresses are not affected, so a shared NAT or one broken client
//! locks nobody out. The address is the socket's peer, or, when `CODIFIER_CLIENT_ADDRESS_HEADER`
//! says the server sits behind a proxy that sets it (`Fly-Client-IP`, `X-Forwarded-For`), that
//! header's address; otherwise such headers are ignored, so a client cannot pick its own.
//!
//! The same fixed-window counter bounds dynamic client registrations per address
//! (`http::oauth`), counting registrations instead of failures.
//!
//! The map of addresses is bounded: when full, expired windows are dropped first, then the
//! window that started longest ago.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::bail;

/// At most this many client addresses are tracked at once.
pub const CAPACITY: usize = 4096;

/// `CODIFIER_AUTH_FAILURES`, `CODIFIER_AUTH_FAILURE_WINDOW_SECONDS` and
/// `CODIFIER_CLIENT_ADDRESS_HEADER`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleConfig {
    /// Failures one address may have in a window before it is slowed (0 turns throttling off).
    pub max_failures: u32,
    /// How long a window lasts, from its first failure.
    pub window: Duration,
    /// The header a trusted proxy puts the client's address in, lower-case; `None` reads the
    /// socket's peer address.
    pub client_address_header: Option<String>,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            max_failures: 10,
            window: Duration::from_secs(60),
            client_address_header: None,
        }
    }
}

impl ThrottleConfig {
    pub fn from_env() -> anyhow::Result<Self> {
        let read = |name: &str| {
            std::env::var(name)
                .ok()
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let defaults = Self::default();
        let max_failures = match read("CODIFIER_AUTH_FAILURES") {
            None => defaults.max_failures,
            Some(text) => match text.parse::<u32>() {
                Ok(value) => value,
                Err(_) => bail!(
                    "CODIFIER_AUTH_FAILURES={text:?} is not a whole number (0 turns the limit off)"
                ),
            },
        };
        let window = match read("CODIFIER_AUTH_FAILURE_WINDOW_SECONDS") {
            None => defaults.window,
            Some(text) => match text.parse::<u64>() {
                Ok(seconds) if (1..=86_400).contains(&seconds) => Duration::from_secs(seconds),
                _ => bail!(
                    "CODIFIER_AUTH_FAILURE_WINDOW_SECONDS={text:?} is not a number of seconds from 1 to 86400"
                ),
            },
        };
        let client_address_header = match read("CODIFIER_CLIENT_ADDRESS_HEADER") {
            None => None,
            Some(name) => {
                let lower = name.to_ascii_lowercase();
                if lower != "fly-client-ip" && lower != "x-forwarded-for" {
                    bail!(
                        "CODIFIER_CLIENT_ADDRESS_HEADER={name:?} is not `Fly-Client-IP` or `X-Forwarded-For`: set it only when a proxy in front of the server sets that header"
                    );
                }
                Some(lower)
            }
        };
        Ok(Self {
            max_failures,
            window,
            client_address_header,
        })
    }

    /// The client address of a request: the trusted proxy's header when configured and
    /// readable, else the socket's peer. For `X-Forwarded-For` the last address is taken, the
    /// one the proxy in front of us appended (earlier ones are whatever the client sent).
    pub fn client_address(
        &self,
        headers: &axum::http::HeaderMap,
        peer: Option<IpAddr>,
    ) -> Option<IpAddr> {
        let from_header = self.client_address_header.as_deref().and_then(|name| {
            let value = headers.get_all(name).iter().next_back()?.to_str().ok()?;
            value.rsplit(',').next()?.trim().parse::<IpAddr>().ok()
        });
        from_header.or(peer)
    }
}

struct Window {
    started: Instant,
    failures: u32,
}

/// Failures per client address; see the module documentation.
pub struct FailureThrottle {
    config: ThrottleConfig,
    windows: Mutex<HashMap<IpAddr, Window>>,
}

impl FailureThrottle {
    pub fn new(config: ThrottleConfig) -> Self {
        Self {
            config,
            windows: Mutex::new(HashMap::new()),
        }
    }

    pub fn config(&self) -> &ThrottleConfig {
        &self.config
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Window>> {
        self.windows.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How long `address` must wait, when it has used up its failures in the current window.
    pub fn retry_after(&self, address: IpAddr) -> Option<Duration> {
        if self.config.max_failures == 0 {
            return None;
        }
        let windows = self.lock();
        let window = windows.get(&address)?;
        let left = self.config.window.checked_sub(window.started.elapsed())?;
        (window.failures >= self.config.max_failures && !left.is_zero()).then_some(left)
    }

    /// Counts one failed key from `address`.
    pub fn failed(&self, address: IpAddr) {
        self.count(address);
    }

    /// Counts one event from `address`: a failed key, or, for the throttle on dynamic client
    /// registration, one registration.
    pub fn count(&self, address: IpAddr) {
        if self.config.max_failures == 0 {
            return;
        }
        let mut windows = self.lock();
        let now = Instant::now();
        if !windows.contains_key(&address) && windows.len() >= CAPACITY {
            let span = self.config.window;
            windows.retain(|_, window| now.duration_since(window.started) < span);
            if windows.len() >= CAPACITY
                && let Some(oldest) = windows
                    .iter()
                    .min_by_key(|(_, window)| window.started)
                    .map(|(address, _)| *address)
            {
                windows.remove(&oldest);
            }
        }
        let window = windows.entry(address).or_insert(Window {
            started: now,
            failures: 0,
        });
        if now.duration_since(window.started) >= self.config.window {
            *window = Window {
                started: now,
                failures: 0,
            };
        }
        window.failures = window.failures.saturating_add(1);
    }

    /// How many addresses are tracked now.
    pub fn tracked(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(max_failures: u32, window: Duration) -> FailureThrottle {
        FailureThrottle::new(ThrottleConfig {
            max_failures,
            window,
            client_address_header: None,
        })
    }

    #[test]
    fn an_address_is_slowed_after_its_failures_and_others_are_not() {
        let throttle = throttle(3, Duration::from_secs(60));
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        for _ in 0..2 {
            throttle.failed(a);
        }
        assert_eq!(
            throttle.retry_after(a),
            None,
            "two failures of three allowed"
        );
        throttle.failed(a);
        let wait = throttle.retry_after(a).expect("slowed after three");
        assert!(wait <= Duration::from_secs(60) && wait > Duration::from_secs(58));
        assert_eq!(throttle.retry_after(b), None);
    }

    #[test]
    fn a_window_that_ended_lets_the_address_in_again() {
        let throttle = throttle(1, Duration::from_millis(50));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        throttle.failed(a);
        assert!(throttle.retry_after(a).is_some());
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(throttle.retry_after(a), None);
        throttle.failed(a);
        assert!(throttle.retry_after(a).is_some(), "a new window began");
    }

    #[test]
    fn the_map_of_addresses_stays_bounded() {
        let throttle = throttle(1, Duration::from_secs(60));
        for n in 0..(CAPACITY as u32 + 500) {
            throttle.failed(IpAddr::from(n.to_be_bytes()));
        }
        assert_eq!(throttle.tracked(), CAPACITY);
        let newest = IpAddr::from((CAPACITY as u32 + 499).to_be_bytes());
        assert!(throttle.retry_after(newest).is_some());
    }

    #[test]
    fn a_proxy_header_is_read_only_when_configured_and_its_last_address_counts() {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("x-forwarded-for", "1.1.1.1, 2.2.2.2".parse().unwrap());
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        let direct = ThrottleConfig::default();
        assert_eq!(direct.client_address(&headers, Some(peer)), Some(peer));
        let proxied = ThrottleConfig {
            client_address_header: Some("x-forwarded-for".into()),
            ..ThrottleConfig::default()
        };
        assert_eq!(
            proxied.client_address(&headers, Some(peer)),
            Some("2.2.2.2".parse().unwrap())
        );
        headers.insert("x-forwarded-for", "not an address".parse().unwrap());
        assert_eq!(proxied.client_address(&headers, Some(peer)), Some(peer));
    }
}
