//! The framing of the overlay's request-response protocols (the directory, receipt counts):
//! `tag u8 ‖ length u32 ‖ bytes`, one frame per request or response, bounded.

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Reads one frame of at most `max` bytes; `what` names the protocol in errors.
pub(crate) async fn read_frame<T: AsyncRead + Unpin + Send>(
    io: &mut T,
    max: usize,
    what: &str,
) -> io::Result<(u8, Vec<u8>)> {
    let mut head = [0u8; 5];
    io.read_exact(&mut head).await?;
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{what} message of {len} bytes exceeds {max}"),
        ));
    }
    let mut body = vec![0u8; len];
    io.read_exact(&mut body).await?;
    Ok((head[0], body))
}

/// Writes one frame of at most `max` bytes and closes the stream.
pub(crate) async fn write_frame<T: AsyncWrite + Unpin + Send>(
    io: &mut T,
    tag: u8,
    body: &[u8],
    max: usize,
    what: &str,
) -> io::Result<()> {
    let len = u32::try_from(body.len())
        .ok()
        .filter(|l| (*l as usize) <= max)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{what} message of {} bytes exceeds {max}", body.len()),
            )
        })?;
    io.write_all(&[tag]).await?;
    io.write_all(&len.to_be_bytes()).await?;
    io.write_all(body).await?;
    io.close().await
}

/// The error for a tag the protocol does not know.
pub(crate) fn bad_tag(tag: u8, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("unknown {what} message {tag}"),
    )
}
