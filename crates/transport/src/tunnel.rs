//! Local TCP tunnels to a port on (or reachable from) the host, e.g. the apiserver on
//! `127.0.0.1:6443`: a `127.0.0.1:PORT` listener whose connections are forwarded over the
//! session as direct-tcpip channels, usable by any TCP client (hyper, kube, curl).

use std::net::SocketAddr;

use russh::client::Msg;
use russh::ChannelStream;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::session::Session;

/// Why a tunnel could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    /// The local listener could not be bound.
    #[error("cannot listen on 127.0.0.1 for a tunnel to {target}: {source}")]
    Listen {
        /// `host:port` on the remote side.
        target: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
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

/// A running tunnel; forwarding stops when it is dropped.
#[derive(Debug)]
pub struct Tunnel {
    local_addr: SocketAddr,
    stop: CancellationToken,
}

impl Tunnel {
    /// The local address to connect to (`127.0.0.1:PORT`).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        self.stop.cancel();
    }
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

    /// Listens on `127.0.0.1:0` and forwards each accepted connection to
    /// `target_host:target_port` as seen from the host. The first forward is opened before
    /// returning, so an unreachable target fails here rather than in the client.
    ///
    /// # Errors
    /// [`TunnelError::Listen`] or [`TunnelError::Forward`].
    pub async fn tunnel(&self, target_host: &str, target_port: u16) -> Result<Tunnel, TunnelError> {
        let target = format!("{target_host}:{target_port}");
        let probe = self.open_stream(target_host, target_port).await?;
        drop(probe);
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|source| TunnelError::Listen {
                target: target.clone(),
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| TunnelError::Listen {
            target: target.clone(),
            source,
        })?;
        let stop = CancellationToken::new();
        let session = self.clone();
        let target_host = target_host.to_owned();
        let task_stop = stop.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    () = task_stop.cancelled() => break,
                };
                let Ok((mut local, _)) = accepted else {
                    continue;
                };
                let session = session.clone();
                let target_host = target_host.clone();
                let conn_stop = task_stop.child_token();
                tokio::spawn(async move {
                    let _ = local.set_nodelay(true);
                    match session.open_stream(&target_host, target_port).await {
                        Ok(mut remote) => {
                            tokio::select! {
                                _ = tokio::io::copy_bidirectional(&mut local, &mut remote) => {}
                                () = conn_stop.cancelled() => {}
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "tunnel connection not forwarded"),
                    }
                });
            }
        });
        Ok(Tunnel { local_addr, stop })
    }
}
