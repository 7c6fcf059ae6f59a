//! Streams to a port on (or reachable from) the host, e.g. the apiserver on
//! `127.0.0.1:6443`: each one a direct-tcpip channel of the session, handed to the caller
//! in-process. There is deliberately no local listener forwarding to them: any local user
//! could connect to one while it is open and reach the apiserver through the provider's SSH
//! session; a client that needs connections on demand is given a function that opens one
//! (the pivot hands one to the kube client and the TLS probe).

use russh::client::Msg;
use russh::ChannelStream;

use crate::session::Session;

/// Why a stream could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    /// The host refused to forward to the target.
    #[error("{host}: cannot forward to {target}: {source}")]
    Forward {
        /// Host name.
        host: String,
        /// `host:port` on the remote side.
        target: String,
        /// Why.
        #[source]
        source: russh::Error,
    },
}

impl Session {
    /// Opens one forwarded stream to `target_host:target_port` as seen from the host
    /// (an `AsyncRead + AsyncWrite` a client can speak TLS/HTTP over).
    ///
    /// # Errors
    /// [`TunnelError::Forward`] when the host refuses or cannot reach the target.
    pub async fn open_stream(&self, target_host: &str, target_port: u16) -> Result<ChannelStream<Msg>, TunnelError> {
        let channel = self
            .handle()
            .channel_open_direct_tcpip(target_host, u32::from(target_port), "127.0.0.1", 0)
            .await
            .map_err(|source| TunnelError::Forward {
                host: self.host().to_owned(),
                target: format!("{target_host}:{target_port}"),
                source,
            })?;
        Ok(channel.into_stream())
    }
}
