//! The overlay's command-line options (`--overlay-*`, `--cert-lifetime`, `--directory-*`,
//! `--media-*`).

use clap::Args;
use psp_net::driver::Multiaddr;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Overlay options of `psp-node`.
#[derive(Debug, Clone, Args)]
pub struct OverlayParams {
    /// Do not start the PSP overlay (onion relay) beside the chain.
    #[arg(long)]
    pub no_overlay: bool,

    /// TCP port of the overlay's libp2p links (onion cells).
    #[arg(long, value_name = "PORT", default_value_t = 30444)]
    pub overlay_port: u16,

    /// Address to listen on for overlay links; defaults to 127.0.0.1 and `--overlay-port`.
    #[arg(long, value_name = "MULTIADDR")]
    pub overlay_listen: Option<Multiaddr>,

    /// Address other nodes reach this node at (registered on chain); defaults to the listen
    /// address.
    #[arg(long, value_name = "MULTIADDR")]
    pub overlay_public_addr: Option<Multiaddr>,

    /// Onion cells per second each circuit may send through this node (the token bucket that
    /// keeps bulk media off the onion layer); psp-net's default when unset.
    #[arg(long, value_name = "CELLS")]
    pub overlay_circuit_rate: Option<u32>,

    /// Largest burst of cells per circuit; psp-net's default when unset.
    #[arg(long, value_name = "CELLS")]
    pub overlay_circuit_burst: Option<u32>,

    /// Lifetime of the access certificates this node issues while it is an elected
    /// authority, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    pub cert_lifetime: u64,

    /// Length of a discovery directory period, in seconds: 900 (15 minutes) by default, 10 on
    /// the dev and local chains.
    #[arg(long, value_name = "SECS")]
    pub directory_period: Option<u64>,

    /// How long after a period's start discovery nodes collect votes before they sign the
    /// consensus, in seconds; a fifth of the period when unset.
    #[arg(long, value_name = "SECS")]
    pub directory_vote_window: Option<u64>,

    /// Derive the overlay identity from this string instead of the secret file (dev and tests
    /// only: anyone knowing the string has the keys).
    #[arg(long, value_name = "SEED")]
    pub overlay_seed: Option<String>,

    /// Test networks only (dev and local chains): append what this node learns — client
    /// links, the bytes its messaging services receive, link traffic — to this file, for
    /// end-to-end tests of what each node sees.
    #[arg(long, value_name = "FILE")]
    pub overlay_observe_file: Option<std::path::PathBuf>,

    /// Do not run the media service (WHIP/WHEP signalling on TCP and WebRTC on UDP, which
    /// carries streams from producers to consumers) beside the overlay.
    #[arg(long)]
    pub no_media: bool,

    /// Port of the media service: HTTP signalling on TCP and WebRTC on UDP, the same number.
    #[arg(long, value_name = "PORT", default_value_t = 30445)]
    pub media_port: u16,

    /// Serve the operator's read-only status page on 127.0.0.1:PORT (identity, roles, stake,
    /// rewards, the directory, circuits and refusals over time). Off unless given.
    #[arg(long, value_name = "PORT")]
    pub status_port: Option<u16>,

    /// IP address the media service binds (TCP and UDP).
    #[arg(long, value_name = "IP", default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub media_ip: IpAddr,

    /// IP address producers, consumers and other nodes reach the media service at (registered
    /// on chain, and the WebRTC host candidate); defaults to `--media-ip`.
    #[arg(long, value_name = "IP")]
    pub media_public_ip: Option<IpAddr>,

    /// What this node sends to stream consumers at most, in Mbit/s, all streams together. Its
    /// load reports to landing nodes measure against it: a stream's landing node asks the
    /// producer for more distribution nodes when its access points near their capacity.
    #[arg(long, value_name = "MBIT_S", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub media_capacity: u64,

    /// Test networks: seconds between a distribution node's load reports (default 5).
    #[arg(long, value_name = "SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=300), hide = true)]
    pub media_load_report_secs: u64,

    /// Leading zero bits of work this node asks of a session-ticket puzzle as an oracle
    /// (default 20: ~0.15 s on one core in a release build).
    #[arg(long, value_name = "BITS", default_value_t = psp_net::usage::puzzle::DEFAULT_DIFFICULTY, value_parser = clap::value_parser!(u8).range(1..=32))]
    pub usage_puzzle_bits: u8,

    /// Test networks only: this node lies in its usage reports as a relay, claiming PERCENT %
    /// more bytes than it sent (tests show the chain credits no more than the consumer's count).
    #[arg(long, value_name = "PERCENT", hide = true)]
    pub test_inflate_usage: Option<u32>,
}

impl OverlayParams {
    /// The overlay listen address: `--overlay-listen`, else 127.0.0.1 and `--overlay-port`.
    pub fn listen(&self) -> Multiaddr {
        self.overlay_listen.clone().unwrap_or_else(|| {
            format!("/ip4/127.0.0.1/tcp/{}", self.overlay_port)
                .parse()
                .unwrap_or_else(|_| Multiaddr::empty())
        })
    }

    /// The media service's bounds from `--media-capacity` and the report period.
    pub fn media_limits(&self) -> super::media::state::MediaLimits {
        super::media::state::MediaLimits {
            capacity_bytes_per_sec: self.media_capacity.saturating_mul(1_000_000 / 8),
            load_report_ms: self.media_load_report_secs.saturating_mul(1000),
            ..Default::default()
        }
    }

    /// Where the media service binds, unless `--no-media`.
    pub fn media_bind(&self) -> Option<SocketAddr> {
        (!self.no_media).then(|| SocketAddr::new(self.media_ip, self.media_port))
    }

    /// Where the media service is reached (registered on chain), unless `--no-media`.
    pub fn media_public(&self) -> Option<SocketAddr> {
        (!self.no_media).then(|| {
            SocketAddr::new(
                self.media_public_ip.unwrap_or(self.media_ip),
                self.media_port,
            )
        })
    }
}
