//! The control socket: the agent's side ([`bind`], [`serve`]) and the commands' side
//! ([`call`]). Line-delimited JSON ([`protocol`](super::protocol)) over a Unix socket that
//! only its owner may open (mode 0600); at most [`MAX_CONNECTIONS`] connections at once.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader,
};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot, Semaphore};

use super::error::{ErrorView, MessagingError};
use super::protocol::{decode_line, encode_line, Reply, Request, Response, MAX_LINE_LEN};

/// Control connections served at once; more are answered with an error and closed.
pub const MAX_CONNECTIONS: usize = 32;

/// A request for the agent's loop, with where its answer goes.
#[derive(Debug)]
pub struct ControlRequest {
    /// The request.
    pub request: Request,
    /// The answer.
    pub reply: oneshot::Sender<Response>,
}

/// The default socket of a keystore: `<keystore>.messaging.sock` beside it.
pub fn default_socket(keystore: &Path) -> PathBuf {
    let mut name = keystore
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "psp".into());
    name.push(".messaging.sock");
    keystore.with_file_name(name)
}

/// Listens on `path`. A socket file nobody answers on (left by an agent that was killed) is
/// replaced; one an agent answers on is refused with [`MessagingError::AgentRunning`].
pub async fn bind(path: &Path) -> Result<UnixListener, MessagingError> {
    let control = |reason: String| MessagingError::Control {
        socket: path.to_path_buf(),
        reason,
    };
    if path.exists() {
        if UnixStream::connect(path).await.is_ok() {
            return Err(MessagingError::AgentRunning {
                socket: path.to_path_buf(),
            });
        }
        std::fs::remove_file(path)
            .map_err(|e| control(format!("removing the stale socket: {e}")))?;
    }
    let listener = UnixListener::bind(path).map_err(|e| control(format!("cannot listen: {e}")))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| control(format!("cannot restrict it to its owner: {e}")))?;
    Ok(listener)
}

/// Serves connections on `listener`, passing requests to the agent through `agent`.
pub async fn serve(listener: UnixListener, agent: mpsc::Sender<ControlRequest>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let agent = agent.clone();
        match slots.clone().try_acquire_owned() {
            Ok(permit) => {
                tokio::spawn(async move {
                    let (read, write) = stream.into_split();
                    connection(read, write, agent).await;
                    drop(permit);
                });
            }
            Err(_) => {
                tokio::spawn(async move {
                    let (_, mut write) = stream.into_split();
                    let error = MessagingError::TooMany {
                        what: "control connections",
                        max: MAX_CONNECTIONS,
                    };
                    let line = encode_line(&Response::Error(ErrorView::from(&error)));
                    let _ = write.write_all(&line).await;
                });
            }
        }
    }
}

/// One connection: requests in, responses out, in order, until either side ends.
pub async fn connection(
    read: impl AsyncRead + Unpin,
    mut write: impl AsyncWrite + Unpin,
    agent: mpsc::Sender<ControlRequest>,
) {
    let mut reader = BufReader::new(read);
    loop {
        let line = match read_line(&mut reader).await {
            Ok(Some(line)) => line,
            Ok(None) => return,
            Err(e) => {
                let _ = write
                    .write_all(&encode_line(&Response::Error(e.into())))
                    .await;
                return;
            }
        };
        let response = match decode_line::<Request>(&line) {
            Ok(request) => ask(&agent, request).await,
            Err(e) => Response::Error(e.into()),
        };
        if write.write_all(&encode_line(&response)).await.is_err() {
            return;
        }
    }
}

async fn ask(agent: &mpsc::Sender<ControlRequest>, request: Request) -> Response {
    let (reply, answer) = oneshot::channel();
    if agent.send(ControlRequest { request, reply }).await.is_err() {
        return Response::Error(MessagingError::AgentStopped.into());
    }
    answer
        .await
        .unwrap_or_else(|_| Response::Error(MessagingError::AgentStopped.into()))
}

/// Reads one line of at most [`MAX_LINE_LEN`] bytes; `None` at the end of the stream.
async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
) -> Result<Option<Vec<u8>>, MessagingError> {
    let mut line = Vec::new();
    let limit = MAX_LINE_LEN as u64 + 1;
    let n = (&mut *reader)
        .take(limit)
        .read_until(b'\n', &mut line)
        .await
        .map_err(|e| MessagingError::InvalidRequest {
            what: "line",
            reason: format!("reading: {e}"),
        })?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') && line.len() > MAX_LINE_LEN {
        return Err(MessagingError::InvalidRequest {
            what: "line",
            reason: format!("longer than {MAX_LINE_LEN} bytes"),
        });
    }
    Ok(Some(line))
}

/// Sends one request to the agent listening on `socket` and waits up to `timeout` for its
/// answer.
pub async fn call(
    socket: &Path,
    request: &Request,
    timeout: Duration,
) -> Result<Reply, MessagingError> {
    let control = |reason: String| MessagingError::Control {
        socket: socket.to_path_buf(),
        reason,
    };
    let exchange = async {
        let stream = UnixStream::connect(socket).await.map_err(|e| {
            control(format!(
                "cannot connect ({e}); is `psp messaging agent` running with this --socket?"
            ))
        })?;
        let (read, mut write) = stream.into_split();
        write
            .write_all(&encode_line(request))
            .await
            .map_err(|e| control(format!("cannot send the request: {e}")))?;
        let mut reader = BufReader::new(read);
        let line = read_line(&mut reader)
            .await?
            .ok_or_else(|| control("the agent closed the connection without answering".into()))?;
        decode_line::<Response>(&line)?.into_result()
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| MessagingError::Timeout {
            what: "waiting for the agent's answer".into(),
            secs: timeout.as_secs(),
        })?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messaging::protocol::Reply;

    /// An agent that answers `requests` with an empty list and everything else with an error.
    fn fake_agent() -> mpsc::Sender<ControlRequest> {
        let (tx, mut rx) = mpsc::channel::<ControlRequest>(4);
        tokio::spawn(async move {
            while let Some(ControlRequest { request, reply }) = rx.recv().await {
                let response = match request {
                    Request::Requests => Response::Ok(Reply::Requests { requests: vec![] }),
                    _ => Response::Error(MessagingError::UnknownChannel(1).into()),
                };
                let _ = reply.send(response);
            }
        });
        tx
    }

    #[tokio::test]
    async fn a_connection_answers_each_line_in_order() {
        let (client, server) = tokio::io::duplex(1 << 16);
        let (server_read, server_write) = tokio::io::split(server);
        tokio::spawn(connection(server_read, server_write, fake_agent()));
        let (read, mut write) = tokio::io::split(client);
        write
            .write_all(b"{\"op\":\"requests\"}\nnonsense\n{\"op\":\"close\",\"channel\":1}\n")
            .await
            .expect("written");
        let mut reader = BufReader::new(read);
        let mut answers = Vec::new();
        for _ in 0..3 {
            let line = read_line(&mut reader).await.expect("read").expect("a line");
            answers.push(decode_line::<Response>(&line).expect("a response"));
        }
        assert_eq!(
            answers[0],
            Response::Ok(Reply::Requests { requests: vec![] })
        );
        assert!(matches!(&answers[1], Response::Error(e) if e.code == "InvalidRequest"));
        assert!(matches!(&answers[2], Response::Error(e) if e.code == "UnknownChannel"));
    }

    #[tokio::test]
    async fn the_socket_serves_calls_and_refuses_a_second_agent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("agent.sock");
        let listener = bind(&path).await.expect("bound");
        let mode = std::fs::metadata(&path)
            .expect("socket")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        tokio::spawn(serve(listener, fake_agent()));
        let reply = call(&path, &Request::Requests, Duration::from_secs(5))
            .await
            .expect("answered");
        assert_eq!(reply, Reply::Requests { requests: vec![] });
        let err = call(
            &path,
            &Request::Close { channel: 1 },
            Duration::from_secs(5),
        )
        .await
        .expect_err("an error");
        assert_eq!(ErrorView::from(&err).code, "UnknownChannel");
        assert!(matches!(
            bind(&path).await,
            Err(MessagingError::AgentRunning { .. })
        ));
    }

    #[tokio::test]
    async fn a_stale_socket_is_replaced_and_a_missing_agent_is_explained() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("stale.sock");
        drop(std::os::unix::net::UnixListener::bind(&path).expect("bound"));
        assert!(path.exists());
        let listener = bind(&path).await.expect("stale socket replaced");
        drop(listener);
        std::fs::remove_file(&path).expect("removed");
        let err = call(&path, &Request::Status, Duration::from_secs(5))
            .await
            .expect_err("nobody listens");
        assert!(err.to_string().contains("psp messaging agent"), "{err}");
    }

    #[test]
    fn the_default_socket_sits_beside_the_keystore() {
        assert_eq!(
            default_socket(Path::new("/tmp/keys/bob.json")),
            PathBuf::from("/tmp/keys/bob.json.messaging.sock")
        );
    }
}
