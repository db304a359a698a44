//! The access-certificate methods (`psp_certRequest`, `psp_certVerify`): an elected authority
//! issues short-lived certificates to live identities; any node verifies one against the
//! elected authority set and the identity's status at the latest finalized block.

use jsonrpsee::{core::RpcResult, proc_macros::rpc, types::ErrorObjectOwned, Extensions};
use psp_net::cert::{CertError, Certificate};
use psp_net::driver::unix_now;
use psp_primitives::{
    api::{PspApi, PspStakingApi},
    rpc::CertificateView,
    staking::Role,
};
use psp_runtime::{opaque::Block, AccountId, Balance, BlockNumber};
use sp_api::ProvideRuntimeApi;
use sp_blockchain::HeaderBackend;

use super::{from_hex, hex0x, internal_error, invalid_params, runtime_error, Psp};
use crate::chain_checks::{chain_kind, elected_nodes, genesis, ChainChecks, FullBackend};

/// The certificate methods.
#[rpc(server)]
pub trait CertRpc {
    /// Issues a certificate for a signed request (hex of `psp_net::cert::CertRequest`), if
    /// this node is an elected authority and the identity is live on chain. Issuing is the
    /// public service of an authority (the request is signed by the identity and checked on
    /// chain), so it stays safe, but each call draws on the connection's network budget.
    #[method(name = "psp_certRequest", with_extensions)]
    fn cert_request(&self, request: String) -> RpcResult<CertificateView>;

    /// Verifies a certificate (hex) against the elected authorities and the chain; the
    /// certificate's contents if it is valid now, an error with the reason otherwise.
    #[method(name = "psp_certVerify")]
    fn cert_verify(&self, certificate: String) -> RpcResult<CertificateView>;
}

fn refused(err: CertError) -> ErrorObjectOwned {
    invalid_params(format!("refused: {err}"))
}

fn view(cert: &Certificate) -> CertificateView {
    let b = &cert.body;
    CertificateView {
        certificate: hex0x(&cert.encode()),
        serial: b.serial,
        identity: hex0x(&b.identity),
        kind: chain_kind(b.kind),
        x25519: hex0x(&b.x25519),
        not_before: b.not_before,
        not_after: b.not_after,
        authority: hex0x(&b.authority),
    }
}

impl<C> CertRpcServer for Psp<C>
where
    C: ProvideRuntimeApi<Block> + HeaderBackend<Block> + Send + Sync + 'static,
    C: sc_client_api::StorageProvider<Block, FullBackend>,
    C::Api: PspApi<Block, AccountId, Balance, BlockNumber>,
    C::Api: PspStakingApi<Block, AccountId, Balance, BlockNumber>,
{
    fn cert_request(&self, ext: &Extensions, request: String) -> RpcResult<CertificateView> {
        self.budget.take(ext, "psp_certRequest")?;
        let request = from_hex(&request, "request")?;
        let me = self.identity()?.node_id();
        let authorities = elected_nodes(&*self.client, Role::Authority).map_err(runtime_error)?;
        if !authorities.contains(&me) {
            return Err(invalid_params(
                "this node is not an elected authority; ask one listed by psp_stakingElected"
                    .into(),
            ));
        }
        let issuer = self
            .overlay
            .cert_authority
            .get()
            .ok_or_else(|| internal_error("certificate issuer not started"))?;
        let registry = ChainChecks::new(self.client.clone());
        let mut issuer = issuer
            .lock()
            .map_err(|_| internal_error("certificate issuer unavailable"))?;
        let cert = issuer
            .issue(&request, unix_now(), &registry)
            .map_err(refused)?;
        if let Some(metrics) = self.overlay.metrics.get() {
            metrics.certificate_issued();
        }
        log::info!(
            target: "psp-overlay",
            "issued certificate {} to 0x{}",
            cert.body.serial,
            hex::encode(cert.body.identity)
        );
        Ok(view(&cert))
    }

    fn cert_verify(&self, certificate: String) -> RpcResult<CertificateView> {
        let cert = Certificate::decode(&from_hex(&certificate, "certificate")?).map_err(refused)?;
        let genesis = genesis(&*self.client).ok_or_else(|| internal_error("no genesis block"))?;
        let authorities = elected_nodes(&*self.client, Role::Authority).map_err(runtime_error)?;
        let registry = ChainChecks::new(self.client.clone());
        cert.verify(unix_now(), &genesis, &authorities, &registry)
            .map_err(refused)?;
        Ok(view(&cert))
    }
}
