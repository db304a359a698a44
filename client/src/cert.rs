//! Access certificates: ask an elected authority node for one, and check one against the
//! chain (`psp_certRequest`, `psp_certVerify`).
//!
//! The request is signed with the keystore's identity key (proof of possession), names the
//! authority's node key (so it cannot be replayed to another authority) and the current time.

use psp_net::cert::CertRequest;
use psp_net::driver::unix_now;
use psp_primitives::rpc::CertificateView;
use subxt::rpcs::rpc_params;

use crate::error::Result;
use crate::keystore::Keys;
use crate::overlay::NodeRpc;
use crate::{hex0x, parse_hex};

impl NodeRpc {
    /// Asks this node, an elected authority, for a certificate for `keys`' identity.
    pub async fn request_certificate(&self, keys: &Keys) -> Result<CertificateView> {
        let info = self.overlay_info().await?;
        let authority = parse_hex::<32>(&info.node_id, "psp_overlayInfo nodeId")?;
        let identity = keys.identity_public();
        let x25519 = keys.x25519_public();
        let now = unix_now();
        let message = CertRequest::signing_message(&identity, &x25519, &authority, now);
        let request = CertRequest {
            identity,
            x25519,
            authority,
            requested_at: now,
            signature: keys.identity_keypair().sign(&message).0,
        };
        self.request("psp_certRequest", rpc_params![hex0x(&request.encode())])
            .await
    }

    /// Has this node verify `certificate` (hex) against the elected authorities and the
    /// chain at its latest finalized block.
    pub async fn verify_certificate(&self, certificate: &str) -> Result<CertificateView> {
        self.request("psp_certVerify", rpc_params![certificate.trim()])
            .await
    }
}
