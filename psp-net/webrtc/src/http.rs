//! Just enough HTTP/1.1 for signalling: one request per connection, `Content-Length` bodies
//! only, every size bounded. Written by hand because a web framework would be most of the
//! crate's dependency tree for two routes.

use tokio::io::{AsyncRead, AsyncReadExt};

/// Bounds on what one message may make us buffer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// Start line plus headers plus the blank line.
    pub max_head: usize,
    pub max_headers: usize,
    pub max_body: usize,
}

/// A request or response head: the start line and the headers, in order.
#[derive(Debug)]
pub(crate) struct Head {
    pub start: String,
    pub headers: Vec<(String, String)>,
}

#[derive(Debug)]
pub(crate) enum HttpError {
    /// The head exceeds `max_head` or has more than `max_headers` headers.
    HeadTooLarge,
    /// The body (by its Content-Length) exceeds `max_body`.
    BodyTooLarge,
    /// Not HTTP/1.x as this module reads it; the reason is safe to send back.
    Malformed(&'static str),
    /// The connection closed before the message was complete.
    Eof,
    Io(std::io::Error),
}

impl From<std::io::Error> for HttpError {
    fn from(e: std::io::Error) -> Self {
        HttpError::Io(e)
    }
}

impl Head {
    /// The value of header `name` (case-insensitive); the first one if repeated.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body length: `Content-Length`, which must be unique and all digits. `None` if absent.
    pub fn content_length(&self) -> Result<Option<usize>, HttpError> {
        let mut values = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.as_str());
        let Some(first) = values.next() else {
            return Ok(None);
        };
        if values.any(|v| v != first) {
            return Err(HttpError::Malformed("conflicting Content-Length headers"));
        }
        if first.is_empty() || first.len() > 12 || !first.bytes().all(|b| b.is_ascii_digit()) {
            return Err(HttpError::Malformed("bad Content-Length"));
        }
        first
            .parse()
            .map(Some)
            .map_err(|_| HttpError::Malformed("bad Content-Length"))
    }
}

/// Reads a head; returns it with the bytes read past it (the start of the body).
pub(crate) async fn read_head<R: AsyncRead + Unpin>(
    reader: &mut R,
    limits: &Limits,
) -> Result<(Head, Vec<u8>), HttpError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    let end = loop {
        let searched_from = buf.len().saturating_sub(3);
        let n = reader.read(&mut chunk).await?;
        if n == 0 {
            return Err(HttpError::Eof);
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(at) = find(&buf[searched_from..], b"\r\n\r\n") {
            break searched_from + at;
        }
        if buf.len() > limits.max_head {
            return Err(HttpError::HeadTooLarge);
        }
    };
    if end + 4 > limits.max_head {
        return Err(HttpError::HeadTooLarge);
    }
    let rest = buf.split_off(end + 4);
    let text =
        std::str::from_utf8(&buf[..end]).map_err(|_| HttpError::Malformed("head is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let start = lines.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    for line in lines {
        if headers.len() == limits.max_headers {
            return Err(HttpError::HeadTooLarge);
        }
        let (name, value) = line
            .split_once(':')
            .ok_or(HttpError::Malformed("header line without ':'"))?;
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(HttpError::Malformed("bad header name"));
        }
        headers.push((name.to_owned(), value.trim().to_owned()));
    }
    Ok((Head { start, headers }, rest))
}

/// Reads a body of exactly `len` bytes, `already` being its first bytes.
pub(crate) async fn read_body<R: AsyncRead + Unpin>(
    reader: &mut R,
    mut already: Vec<u8>,
    len: usize,
    limits: &Limits,
) -> Result<Vec<u8>, HttpError> {
    if len > limits.max_body {
        return Err(HttpError::BodyTooLarge);
    }
    if already.len() > len {
        return Err(HttpError::Malformed("more bytes than Content-Length"));
    }
    let have = already.len();
    already.resize(len, 0);
    let mut filled = have;
    while filled < len {
        let n = reader.read(&mut already[filled..]).await?;
        if n == 0 {
            return Err(HttpError::Eof);
        }
        filled += n;
    }
    Ok(already)
}

/// A complete response; every response closes the connection.
pub(crate) fn response(
    status: u16,
    reason: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} {reason}\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// RFC 9110 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_head: 256,
        max_headers: 4,
        max_body: 16,
    };

    async fn head(bytes: &[u8]) -> Result<(Head, Vec<u8>), HttpError> {
        read_head(&mut &bytes[..], &LIMITS).await
    }

    #[tokio::test]
    async fn parses_head_and_body() {
        let (h, rest) = head(b"POST /x HTTP/1.1\r\nContent-Length: 5\r\nA: b\r\n\r\nhel")
            .await
            .unwrap();
        assert_eq!(h.start, "POST /x HTTP/1.1");
        assert_eq!(h.header("content-length"), Some("5"));
        assert_eq!(h.content_length().unwrap(), Some(5));
        let body = read_body(&mut &b"lo"[..], rest, 5, &LIMITS).await.unwrap();
        assert_eq!(body, b"hello");
    }

    #[tokio::test]
    async fn refuses_what_it_does_not_read() {
        let long = format!("GET / HTTP/1.1\r\nA: {}\r\n\r\n", "x".repeat(300));
        assert!(matches!(
            head(long.as_bytes()).await,
            Err(HttpError::HeadTooLarge)
        ));
        let many = "GET / HTTP/1.1\r\na: 1\r\nb: 1\r\nc: 1\r\nd: 1\r\ne: 1\r\n\r\n";
        assert!(matches!(
            head(many.as_bytes()).await,
            Err(HttpError::HeadTooLarge)
        ));
        assert!(matches!(
            head(b"GET / HTTP/1.1\r\nno colon\r\n\r\n").await,
            Err(HttpError::Malformed(_))
        ));
        assert!(matches!(
            head(b"GET / HTTP/1.1\r\n").await,
            Err(HttpError::Eof)
        ));
        let (h, _) = head(b"P / HTTP/1.1\r\nContent-Length: 1\r\ncontent-length: 2\r\n\r\n")
            .await
            .unwrap();
        assert!(h.content_length().is_err());
        let (h, _) = head(b"P / HTTP/1.1\r\nContent-Length: -1\r\n\r\n")
            .await
            .unwrap();
        assert!(h.content_length().is_err());
        assert!(matches!(
            read_body(&mut &b""[..], vec![], 17, &LIMITS).await,
            Err(HttpError::BodyTooLarge)
        ));
    }
}
