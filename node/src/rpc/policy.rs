//! Who may call what: the unsafe-method gate and the per-connection budget for look-ups that
//! start network work.
//!
//! - **Unsafe methods** sign with this node's keys (`psp_overlayRegistration`, the co-signing
//!   path of `psp_dhtPut`) or make it do work a caller could repeat without bound. As with
//!   Substrate's `author_rotateKeys`, they run only when the RPC server marks the connection as
//!   allowed: `--rpc-methods unsafe`, or the default `auto` with the RPC listening on loopback
//!   only. A node started with `--rpc-external` (or `--rpc-methods safe`) refuses them to
//!   everyone, which is what a public endpoint needs.
//! - **Network look-ups** (`psp_dhtGet`, `psp_directorySubmit`, `psp_certRequest`, `psp_dhtPut`)
//!   are safe but each sends overlay messages or signs a certificate, so every connection draws
//!   them from a token bucket ([`NetworkBudget`]). Loopback callers are metered too: the budget
//!   is generous for one operator and still stops a script that floods.
//!
//! Every refusal is logged at `warn` with the method and the reason.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use jsonrpsee::{
    types::{error::ErrorCode, ErrorObjectOwned},
    ConnectionId, Extensions,
};
use sc_rpc_api::DenyUnsafe;

/// Log target of refusals.
const TARGET: &str = "psp-rpc";

/// JSON-RPC error code of a rate-limited call (in the server-error range -32000..-32099,
/// which JSON-RPC leaves to implementations).
pub const RATE_LIMITED_CODE: i32 = -32029;

/// Refuses `method` unless the RPC server allowed unsafe methods on this connection.
///
/// A request without the server's marker (an in-process call) is refused: the safe default.
pub fn ensure_unsafe_allowed(ext: &Extensions, method: &str) -> Result<(), ErrorObjectOwned> {
    match ext.get::<DenyUnsafe>() {
        Some(DenyUnsafe::No) => Ok(()),
        _ => {
            log::warn!(
                target: TARGET,
                "refused {method}: unsafe method on a connection that allows only safe ones"
            );
            Err(ErrorObjectOwned::owned(
                ErrorCode::MethodNotFound.code(),
                format!(
                    "{method} is unsafe (it signs with this node's keys): the node serves it \
                     only with --rpc-methods unsafe, or with the default --rpc-methods auto \
                     while its RPC listens on loopback only (no --rpc-external)"
                ),
                None::<()>,
            ))
        }
    }
}

/// A token bucket: `burst` calls at once, refilled at `per_second`.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Per-connection budget of calls that start network work.
///
/// Connections are tracked in a map bounded by `max_connections`; when it is full, buckets
/// idle long enough to have refilled are dropped first (they carry no state worth keeping),
/// and if none are, the new connection is refused rather than the map growing.
#[derive(Debug)]
pub struct NetworkBudget {
    burst: f64,
    per_second: f64,
    max_connections: usize,
    buckets: Mutex<HashMap<usize, Bucket>>,
}

impl Default for NetworkBudget {
    /// 20 calls at once, 5 per second after that, 4,096 connections tracked.
    fn default() -> Self {
        Self::new(20, 5, 4096)
    }
}

impl NetworkBudget {
    /// A budget of `burst` calls at once and `per_second` after that, per connection.
    pub fn new(burst: u32, per_second: u32, max_connections: usize) -> Self {
        Self {
            burst: f64::from(burst.max(1)),
            per_second: f64::from(per_second.max(1)),
            max_connections: max_connections.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one call from the budget of the request's connection, or refuses `method`.
    pub fn take(&self, ext: &Extensions, method: &str) -> Result<(), ErrorObjectOwned> {
        let connection = ext.get::<ConnectionId>().map_or(0, |id| id.0);
        self.take_at(connection, Instant::now()).map_err(|retry| {
            log::warn!(
                target: TARGET,
                "refused {method} on connection {connection}: rate limited (retry in {} ms)",
                retry.as_millis()
            );
            ErrorObjectOwned::owned(
                RATE_LIMITED_CODE,
                format!(
                    "{method} rate limited: at most {} calls at once and {} per second per \
                     connection; retry in {} ms",
                    self.burst,
                    self.per_second,
                    retry.as_millis().max(1)
                ),
                None::<()>,
            )
        })
    }

    /// One call for `connection` at `now`; `Err(wait)` says how long until the next token.
    fn take_at(&self, connection: usize, now: Instant) -> Result<(), Duration> {
        // A poisoned lock only means another caller panicked mid-update; the map is still a
        // valid set of buckets.
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if !buckets.contains_key(&connection) && buckets.len() >= self.max_connections {
            let full_after = Duration::from_secs_f64(self.burst / self.per_second);
            buckets.retain(|_, b| now.saturating_duration_since(b.last) < full_after);
            if buckets.len() >= self.max_connections {
                return Err(full_after);
            }
        }
        let bucket = buckets.entry(connection).or_insert(Bucket {
            tokens: self.burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / self.per_second,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_methods_need_the_servers_permission() {
        let mut ext = Extensions::new();
        let err = ensure_unsafe_allowed(&ext, "psp_overlayRegistration").unwrap_err();
        assert_eq!(err.code(), ErrorCode::MethodNotFound.code());
        assert!(err.message().contains("--rpc-methods unsafe"));
        ext.insert(DenyUnsafe::Yes);
        assert!(ensure_unsafe_allowed(&ext, "psp_overlayRegistration").is_err());
        ext.insert(DenyUnsafe::No);
        assert!(ensure_unsafe_allowed(&ext, "psp_overlayRegistration").is_ok());
    }

    #[test]
    fn a_connection_gets_its_burst_then_the_refill_rate() {
        let budget = NetworkBudget::new(3, 2, 16);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(budget.take_at(1, t0).is_ok());
        }
        let wait = budget.take_at(1, t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        // Another connection has its own budget.
        assert!(budget.take_at(2, t0).is_ok());
        // Half a second later one token is back, not more.
        let t1 = t0 + Duration::from_millis(500);
        assert!(budget.take_at(1, t1).is_ok());
        assert!(budget.take_at(1, t1).is_err());
        // Idle for long, the bucket refills to its burst and no further.
        let t2 = t1 + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(budget.take_at(1, t2).is_ok());
        }
        assert!(budget.take_at(1, t2).is_err());
    }

    #[test]
    fn the_connection_map_stays_bounded() {
        let budget = NetworkBudget::new(2, 1, 2);
        let t0 = Instant::now();
        assert!(budget.take_at(1, t0).is_ok());
        assert!(budget.take_at(2, t0).is_ok());
        // Full of busy connections: a third is refused, the map does not grow.
        assert!(budget.take_at(3, t0).is_err());
        assert_eq!(budget.buckets.lock().unwrap().len(), 2);
        // Once the others have been idle long enough to refill, they make room.
        let later = t0 + Duration::from_secs(3);
        assert!(budget.take_at(3, later).is_ok());
        assert!(budget.buckets.lock().unwrap().len() <= 2);
    }

    #[test]
    fn refusals_carry_the_rate_limited_code() {
        let budget = NetworkBudget::new(1, 1, 4);
        let mut ext = Extensions::new();
        ext.insert(ConnectionId(7));
        assert!(budget.take(&ext, "psp_dhtGet").is_ok());
        let err = budget.take(&ext, "psp_dhtGet").unwrap_err();
        assert_eq!(err.code(), RATE_LIMITED_CODE);
        assert!(err.message().contains("psp_dhtGet rate limited"));
    }
}
