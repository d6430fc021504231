//! Splitting a byte stream into newline-terminated frames with a size limit,
//! so that a peer that never sends a newline cannot make us buffer forever.

#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A complete line, without its newline.
    Line(Vec<u8>),
    /// A line longer than the limit was dropped; carries its length so far.
    Oversized(usize),
}

#[derive(Debug)]
pub struct LineFramer {
    buf: Vec<u8>,
    max: usize,
    /// Inside an oversized line: discard until its newline.
    skipping: Option<usize>,
    scanned: usize,
}

impl LineFramer {
    pub fn new(max: usize) -> Self {
        LineFramer {
            buf: Vec::new(),
            max,
            skipping: None,
            scanned: 0,
        }
    }

    /// Feeds bytes and appends every frame they complete to `out`.
    pub fn push(&mut self, mut data: &[u8], out: &mut Vec<Frame>) {
        while !data.is_empty() {
            if let Some(seen) = self.skipping {
                match memchr(b'\n', data) {
                    Some(i) => {
                        out.push(Frame::Oversized(seen + i));
                        self.skipping = None;
                        data = &data[i + 1..];
                    }
                    None => {
                        self.skipping = Some(seen + data.len());
                        return;
                    }
                }
                continue;
            }
            match memchr(b'\n', data) {
                Some(i) => {
                    if self.buf.len() + i > self.max {
                        out.push(Frame::Oversized(self.buf.len() + i));
                    } else {
                        self.buf.extend_from_slice(&data[..i]);
                        out.push(Frame::Line(std::mem::take(&mut self.buf)));
                    }
                    self.buf.clear();
                    self.scanned = 0;
                    data = &data[i + 1..];
                }
                None => {
                    if self.buf.len() + data.len() > self.max {
                        self.skipping = Some(self.buf.len() + data.len());
                        self.buf = Vec::new();
                    } else {
                        self.buf.extend_from_slice(data);
                    }
                    return;
                }
            }
        }
    }

    /// Bytes of an unfinished line.
    pub fn pending(&self) -> usize {
        self.buf.len() + self.skipping.unwrap_or(0)
    }
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(f: &mut LineFramer, chunks: &[&[u8]]) -> Vec<Frame> {
        let mut out = Vec::new();
        for c in chunks {
            f.push(c, &mut out);
        }
        out
    }

    #[test]
    fn splits_lines_across_chunks() {
        let mut f = LineFramer::new(100);
        let out = frames(&mut f, &[b"{\"a\":", b"1}\n{\"b\"", b":2}\n\n"]);
        assert_eq!(
            out,
            vec![
                Frame::Line(b"{\"a\":1}".to_vec()),
                Frame::Line(b"{\"b\":2}".to_vec()),
                Frame::Line(Vec::new()),
            ]
        );
        assert_eq!(f.pending(), 0);
    }

    #[test]
    fn oversized_line_is_reported_once_and_stream_recovers() {
        let mut f = LineFramer::new(8);
        let out = frames(&mut f, &[b"0123456", b"789abc", b"def\nok\n"]);
        assert_eq!(out, vec![Frame::Oversized(16), Frame::Line(b"ok".to_vec())]);
    }

    #[test]
    fn oversized_within_one_chunk() {
        let mut f = LineFramer::new(3);
        let out = frames(&mut f, &[b"abcdef\nxy\n"]);
        assert_eq!(out, vec![Frame::Oversized(6), Frame::Line(b"xy".to_vec())]);
    }

    #[test]
    fn memory_stays_bounded_while_skipping() {
        let mut f = LineFramer::new(4);
        let big = vec![b'x'; 1 << 20];
        let out = frames(&mut f, &[&big, &big]);
        assert!(out.is_empty());
        assert!(f.buf.capacity() <= 4);
    }
}
