//! The producer's side of distribution scaling and of ending a stream (issue 13, points 6
//! and 8).
//!
//! While she publishes, the landing node may ask her for more distribution nodes (a
//! `NeedNodes` media-link message down her publishing connection: its access points near
//! their capacity, or one fell silent). [`NodeSupply`] answers: it picks nodes — the spares
//! she named first, then registered nodes with a media service, never the landing node or a
//! current access point — and adds them with `POST /nodes/<stream id>` and her publish token.
//! [`end_stream`] ends the stream (`DELETE /whip/<stream id>`): the landing node drops her
//! link, closes the fan-out (consumers are disconnected) and republishes the record expired.

use std::collections::{HashSet, VecDeque};

use psp_media::wire::{Deframer, MediaMsg};
use psp_net::stream::record::StreamId;
use psp_webrtc::Route;
use rand::seq::SliceRandom;

use super::media::path_hex;
use super::{show_stream, StreamClientError};
use crate::chain::Chain;
use crate::overlay::{registered_nodes, NodeRpc};
use crate::{hex0x, parse_hex};

/// How many nodes a landing node asks for, if `message` (one data-channel message from it)
/// is a `NeedNodes`.
pub fn need_nodes(message: &[u8]) -> Option<u8> {
    match Deframer::new().feed(message).ok()?.as_slice() {
        [MediaMsg::NeedNodes { count }] => Some(*count),
        _ => None,
    }
}

/// What the producer added, or why not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Supplied {
    /// The nodes offered, hex.
    pub nodes: Vec<String>,
    /// The landing node's answer (`access points: N`).
    pub answer: String,
}

/// Picks and adds distribution nodes for one stream when its landing node asks.
pub struct NodeSupply {
    chain: Chain,
    rpc: NodeRpc,
    landing: [u8; 32],
    url: String,
    stream_id: StreamId,
    token: [u8; 32],
    spares: VecDeque<[u8; 32]>,
    offered: HashSet<[u8; 32]>,
}

impl NodeSupply {
    /// The supply of `stream_id` at `landing` (media service at `url`), offering `spares`
    /// first.
    pub fn new(
        chain: Chain,
        rpc: NodeRpc,
        landing: [u8; 32],
        url: String,
        stream_id: StreamId,
        token: [u8; 32],
        spares: Vec<[u8; 32]>,
    ) -> Self {
        Self {
            chain,
            rpc,
            landing,
            url,
            stream_id,
            token,
            spares: spares.into(),
            offered: HashSet::new(),
        }
    }

    /// Up to `count` nodes not offered before, not the landing node, not a current access
    /// point: spares first, then registered nodes with a media service at random.
    async fn pick(&mut self, count: usize) -> Result<Vec<[u8; 32]>, StreamClientError> {
        let current: HashSet<String> =
            match show_stream(&self.rpc, &self.chain, &self.landing, &self.stream_id).await {
                Ok(view) => view.access_points.into_iter().collect(),
                Err(_) => HashSet::new(),
            };
        let fresh = |node: &[u8; 32], offered: &HashSet<[u8; 32]>| {
            *node != self.landing && !offered.contains(node) && !current.contains(&hex0x(node))
        };
        let mut picked = Vec::new();
        while picked.len() < count {
            let Some(node) = self.spares.pop_front() else {
                break;
            };
            if fresh(&node, &self.offered) {
                picked.push(node);
            }
        }
        if picked.len() < count {
            let mut nodes: Vec<[u8; 32]> = registered_nodes(&self.chain)
                .await?
                .iter()
                .map(|n| n.descriptor.id.0)
                .collect();
            nodes.shuffle(&mut rand::thread_rng());
            for node in nodes {
                if picked.len() >= count {
                    break;
                }
                if fresh(&node, &self.offered)
                    && !picked.contains(&node)
                    && self.chain.media_url(&node).await.is_ok()
                {
                    picked.push(node);
                }
            }
        }
        Ok(picked)
    }

    /// Answers a request for `count` nodes: picks them and adds them at the landing node.
    pub async fn supply(&mut self, count: u8) -> Result<Supplied, StreamClientError> {
        let nodes = self.pick(usize::from(count)).await?;
        if nodes.is_empty() {
            return Err(StreamClientError::NoSpareNodes {
                stream_id: hex0x(&self.stream_id.0),
            });
        }
        self.offered.extend(nodes.iter().copied());
        let body: String = nodes.iter().map(|n| format!("{}\n", hex0x(n))).collect();
        let answer = psp_webrtc::command(
            &self.url,
            Route::Nodes,
            &path_hex(&self.stream_id.0),
            &path_hex(&self.token),
            &body,
        )
        .await
        .map_err(|source| {
            command_error(
                &self.landing,
                &self.url,
                "adding distribution nodes",
                source,
            )
        })?;
        Ok(Supplied {
            nodes: nodes.iter().map(|n| hex0x(n)).collect(),
            answer,
        })
    }
}

/// Ends `stream_id` at its landing node (`url`) with the publish token.
pub async fn end_stream(
    landing: &[u8; 32],
    url: &str,
    stream_id: &StreamId,
    token: &[u8; 32],
) -> Result<String, StreamClientError> {
    psp_webrtc::command(
        url,
        Route::End,
        &path_hex(&stream_id.0),
        &path_hex(token),
        "",
    )
    .await
    .map_err(|source| command_error(landing, url, "ending the stream", source))
}

fn command_error(
    landing: &[u8; 32],
    url: &str,
    step: &'static str,
    source: psp_webrtc::Error,
) -> StreamClientError {
    use psp_webrtc::Error as E;
    let hint = match &source {
        E::Signalling { status: 401, .. } => {
            "the publish token is wrong: give the `publishToken` `psp stream create` printed"
        }
        E::Signalling { status: 404, .. } => {
            "the landing node does not know this stream: check --stream and --landing, or the \
             stream already ended or expired"
        }
        E::Signalling { status: 409, .. } => {
            "the landing node refused the nodes: already access points, or more than the \
             receipt allows"
        }
        E::Signalling { status: 400, .. } => "a node given is not a live node identity on chain",
        _ => "could not reach the landing node's media service: is it running?",
    };
    StreamClientError::Media {
        node: hex0x(landing),
        url: url.to_owned(),
        step,
        hint,
        source,
    }
}

/// Node keys from `--spare` arguments.
pub fn parse_spares(spares: &[String]) -> crate::Result<Vec<[u8; 32]>> {
    spares
        .iter()
        .map(|s| parse_hex::<32>(s, "--spare"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn need_nodes_is_read_from_one_message_only() {
        assert_eq!(
            need_nodes(&MediaMsg::NeedNodes { count: 2 }.encode()),
            Some(2)
        );
        assert_eq!(need_nodes(&MediaMsg::Frame(vec![0; 40]).encode()), None);
        let two = [
            MediaMsg::NeedNodes { count: 1 }.encode(),
            MediaMsg::NeedNodes { count: 1 }.encode(),
        ]
        .concat();
        assert_eq!(need_nodes(&two), None);
        assert_eq!(need_nodes(&[0, 0, 0, 2, 4]), None);
        assert_eq!(need_nodes(&[]), None);
    }
}
